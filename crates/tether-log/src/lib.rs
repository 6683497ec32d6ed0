//! Tether's embedded durable log: an append-only store of telemetry
//! [`Message`]s per notification topic, the default sink on a single machine.
//!
//! ```text
//!  append() ─┐                          ┌─ writer thread ───────────────────────┐
//!  append() ─┼─▶ mpsc ─ drain all ─────▶│ append each topic's records,          │
//!  append() ─┘   (one batch)            │ fsync each touched segment once,      │
//!      ▲                                │ then answer every waiter of the batch │
//!      └───── oneshot Ok(offsets) ──────┴───────────────┬───────────────────────┘
//!                                                       ▼ committed length / offset
//!  read(topic, from, max) ◀── segment files ◀── shared per-topic state ──▶ subscribe(): watch
//! ```
//!
//! * **Segment files**: one directory per topic under `DATA_DIR/telemetry/`
//!   (the topic percent-escaped), holding files named by their first offset;
//!   a segment is rolled at `segment_bytes`. Record format in `record.rs`.
//! * **Group commit**: one writer thread owns every file. It takes all requests
//!   waiting in the channel, appends them and calls `sync_data` once per touched
//!   file, so many concurrent publishers share one fsync. Readers never see
//!   bytes that are not yet durable: the writer publishes a segment's length and
//!   the topic's next offset only after the fsync.
//! * **Recovery** on open: the directory is locked, the last segment of each
//!   topic is checked record by record and a torn tail is truncated; older
//!   segments are indexed by their headers only and checked (CRC) when read.
//! * **Retention** deletes whole segments, oldest first and never the active
//!   one, by age or total size, at a `now` the caller passes in: this crate
//!   never reads the clock.
//!
//! See `docs/telemetry.md` in the repository for the durability argument.

mod config;
mod error;
mod handle;
pub mod message;
pub mod percent;
mod reader;
mod record;
mod recovery;
mod retention;
mod segment;
mod state;
mod writer;

pub use config::LogConfig;
pub use error::LogError;
pub use handle::{EmbeddedLog, Record, TopicOffsets};
pub use message::{DeviceCoordinates, Message};
pub use record::CorruptReason;
pub use recovery::Truncation;
pub use retention::{RemovedSegment, RetentionPolicy};
