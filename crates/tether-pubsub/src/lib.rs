//! Pub/Sub-compatible consumers for Tether's telemetry: the `google.pubsub.v1`
//! gRPC API (publisher and subscriber, streaming pull included), so a backend
//! written for IoT Core's Pub/Sub topics works with `PUBSUB_EMULATOR_HOST` set.
//!
//! ```text
//!  devices ─▶ gateway ─▶ Sink (embedded log | JetStream) ◀── Publish (backends)
//!                              │ TelemetryReader: read(topic, offset), wait
//!                              ▼
//!   PubSub (engine) ── Subscription ── Ledger (sans-io: floor, acked, leases, due)
//!        │                                  └─ Catalog (SQLite: subscriptions, acks)
//!        ▼
//!   grpc: Publisher, Subscriber (Pull, StreamingPull, Acknowledge, ModifyAckDeadline)
//! ```
//!
//! * A topic is a telemetry topic (`projects/{p}/topics/{t}`): one a registry
//!   routes to, one created with `CreateTopic`, or one holding messages.
//! * A subscription reads its topic from the offset that was next when it was
//!   created, so it receives what is published after it exists. The `messageId`
//!   is the offset; the attributes are IoT Core's.
//! * Delivery is at-least-once: a message is leased for the ack deadline; a nack
//!   or an expired deadline delivers it again. Acks are committed to the catalog
//!   before the call answers, so after a restart (or `kill -9`) an acked message
//!   is never delivered again and an unacked one always is.

mod ack_id;
mod ack_log;
pub mod catalog;
pub mod engine;
mod error;
pub mod grpc;
mod ledger;
pub mod names;
pub mod push;

pub use catalog::{Catalog, CatalogError};
pub use engine::{NoRegistries, PubSub, RegistryTopics, WallClock};
pub use error::{PubSubError, PubSubResult};
pub use grpc::GrpcLimits;
pub use push::PushOptions;
