//! Telemetry routing, sinks and readers for Tether: where a device's events and
//! state notifications go after the gateway has accepted them, and how they are
//! read back.
//!
//! ```text
//!  PUBLISH /devices/d/events/alerts ─┐
//!  HTTP publishEvent (subFolder) ────┴▶ route_event(configs, "alerts")   (pure, sans-io)
//!                                          │ Route::Topic("projects/p/topics/t")
//!                                          │ Route::NoTopic(reason) ─▶ disconnect / INVALID_ARGUMENT
//!                                          ▼
//!               Message { topic, data, attributes (IoT Core names), publish_time }
//!                                          │
//!                                          ▼  Arc<dyn Sink>::publish(batch) ── Ok = durable ─▶ PUBACK
//!                        ┌─────────────────┴──────────────────┐
//!        tether_log::EmbeddedLog                   NatsSink
//!     DATA_DIR/telemetry/<topic>/<offset>.log      JetStream stream, subject
//!     group commit: one fsync per batch            tether.telemetry.<project>.<topic>,
//!     read / subscribe (tail --follow)             ack from the stream = durable
//!                        └──── both: TelemetryReader (topics, read, wait) ────┘
//! ```
//!
//! * **Routing is a pure function** of the registry's notification configs
//!   and the subfolder ([`routing`]); it returns a typed reason when there is
//!   no topic, which the gateway reports to the device.
//! * **The embedded log is its own crate**, `tether-log` (which also defines
//!   [`Message`](tether_log::Message)); this crate makes it a [`Sink`] and a
//!   [`TelemetryReader`].
//! * **One [`Sink`] trait, one meaning of `Ok`**: the batch is durably stored.
//!   The gateway sends a QoS 1 PUBACK only after that, as IoT Core acked only
//!   after Pub/Sub accepted the message. One conformance suite
//!   (`tests/conformance.rs`) runs against every sink.
//! * **One [`TelemetryReader`] trait** reads stored messages back by topic and
//!   offset, whichever sink stored them (`/v1/telemetry/*`, `tether events`):
//!   the embedded log numbers each topic 0, 1, 2, …; JetStream's offsets are
//!   its stream sequence numbers ([`reader`]).
//! * **No clock inside**: `publish_time` is passed in.
//!
//! See `docs/telemetry.md` in the repository for the record format,
//! retention and the durability argument.

pub mod nats;
pub mod reader;
pub mod routing;
pub mod sink;

pub use nats::{NatsConfig, NatsError, NatsSink, durable};
pub use reader::{ReadError, ReadLimits, TelemetryReader, TopicInfo};
pub use routing::{EventNotificationConfig, NoTopic, Route, route_event, route_state};
pub use sink::{Receipt, SettleObserver, Sink, SinkError};
