//! The device registry: IoT Core's resource model and where it is stored.
//!
//! ```text
//!  REST API (cloudiot v1) ─┐                      ┌─▶ SqliteStore (embedded default, WAL file)
//!  MQTT / HTTP bridges ────┼─▶ dyn Store (async) ─┤
//!  CLI, simulator ─────────┘                      └─▶ PostgresStore (--database postgres://…)
//! ```
//!
//! * [`model`] holds the resources as plain Rust types (no JSON here: the REST layer maps
//!   them to the proto3 JSON of `google.cloud.iot.v1`).
//! * [`names`] holds resource names as owned values, parsed and checked by `tether-iot`
//!   (the one name parser and id rule, shared with the MQTT side).
//! * [`Store`] is the one interface every backend implements; one conformance suite runs
//!   against each. Time is always passed in.
//! * [`SqlStore`] is the one implementation, over sqlx's `Any` driver, for SQLite
//!   ([`SqliteStore`]) and PostgreSQL ([`PostgresStore`]); [`open_store`] picks one
//!   from `--database`; [`copy_database`] moves a whole database between them
//!   (`tether storage copy`).
//! * [`credentials`] checks device keys and registry CAs as IoT Core did; [`KeyCache`]
//!   keeps the bridges' parsed keys.

mod copy;
pub mod credentials;
pub mod key_cache;
mod migrate;
pub mod model;
pub mod names;
mod open;
mod paging;
mod postgres;
pub mod provisioning;
mod sql;
mod sqlite;
mod store;

pub use copy::{CopyProgress, CopyReport, copy_database};
pub use key_cache::{DeviceKeys, KeyCache, parse_key};
pub use open::{SQLITE_FILE, open_any, open_store, sqlite_path};
pub use postgres::{PostgresStore, redact};
pub use sql::SqlStore;
pub use sqlite::SqliteStore;
pub use store::{
    Activity, ActivityKind, Cause, Compaction, DeviceFilter, Page, PageRequest, Store, StoreError,
    StoreResult,
};
