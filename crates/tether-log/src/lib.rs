//! Tether's embedded durable log: an append-only store of telemetry
//! [`Message`]s per notification topic, the default sink on a single machine.
//!
//! ```text
//!  append() ─┐                          ┌─ writer thread ───────────────────────┐
//!  submit() ─┼─▶ queue ─ drain all ────▶│ append each topic's records,          │
//!  append() ─┘   (one batch)            │ fsync each touched segment once,      │
//!      ▲                                │ then answer every waiter of the batch │
//!      └───── oneshot Ok(offsets) ──────┴───────────────┬───────────────────────┘
//!                                                       ▼ committed length / offset
//!  read(topic, from, max) ◀── segment files ◀── shared per-topic state ──▶ subscribe(): watch
//! ```
//!
//! * **Segment files**: one directory per topic under `DATA_DIR/telemetry/`
//!   (the topic percent-escaped), holding files named by their first offset;
//!   a segment is rolled at `segment_bytes`. Record formats in `record/`:
//!   format 2 is written (about 20 bytes around a payload: attribute sets are
//!   kept once per 64 KiB block and referenced by id); format-1 segments from
//!   older versions stay readable.
//! * **Group commit**: one writer thread owns every file. It takes all requests
//!   waiting in its queue (bounded, no allocation per request: `writer/queue.rs`;
//!   `submit` queues without waiting, for callers that hold many appends in
//!   flight), appends them and calls `sync_data` once per touched
//!   file, so many concurrent publishers share one fsync. Readers never see
//!   bytes that are not yet durable: the writer publishes a segment's length and
//!   the topic's next offset only after the fsync.
//! * **Recovery** on open: the directory is locked, the last segment of each
//!   topic is checked record by record and a torn tail is truncated; older
//!   segments are indexed by their headers only and checked (CRC) when read.
//! * **Limits** delete whole segments, oldest first and never a topic's active
//!   one. By default the log keeps 7 days and at most 10 GiB across all topics
//!   (less on a small disk, see [`TotalCap::Auto`]). The writer checks the
//!   total after every group commit, so the disk stays within the cap plus
//!   what one commit adds, and applies the age limit as segments roll, at the
//!   newest publish time written: this crate never reads the clock.
//!
//! See `docs/telemetry.md` in the repository for the durability argument.

pub mod appenders;
mod awake;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod limits;
pub mod message;
pub mod percent;
mod reader;
mod record;
mod recovery;
mod retention;
mod segment;
mod state;
mod writer;
pub mod yielders;

pub use config::LogConfig;
pub use error::LogError;
pub use handle::{Appending, EmbeddedLog, LogUsage, Record, TopicOffsets};
pub use limits::Limits;
pub use message::{Attributes, DeviceCoordinates, EventAttributes, Message};
pub use record::CorruptReason;
pub use recovery::Truncation;
pub use retention::{RemovalReason, RemovedSegment, RetentionPolicy, TotalCap};
