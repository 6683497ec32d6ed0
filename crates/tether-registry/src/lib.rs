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
//! * [`names`] parses and validates resource names and ids with IoT Core's rules.
//! * [`Store`] is the one interface every backend implements; one conformance suite runs
//!   against each. Time is always passed in.

pub mod model;
pub mod names;
mod store;

pub use store::{
    Activity, ActivityKind, DeviceFilter, Page, PageRequest, Store, StoreError, StoreResult,
};
