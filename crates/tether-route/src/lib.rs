//! Telemetry routing and sinks for Tether: where a device's events and state
//! notifications go after the gateway has accepted them.
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
//! ```
//!
//! * **Routing is a pure function** of the registry's notification configs
//!   and the subfolder ([`routing`]); it returns a typed reason when there is
//!   no topic, which the gateway reports to the device.
//! * **The embedded log is its own crate**, `tether-log` (which also defines
//!   [`Message`](tether_log::Message)); this crate makes it a [`Sink`].
//! * **One [`Sink`] trait, one meaning of `Ok`**: the batch is durably stored.
//!   The gateway sends a QoS 1 PUBACK only after that, as IoT Core acked only
//!   after Pub/Sub accepted the message. One conformance suite
//!   (`tests/conformance.rs`) runs against every sink.
//! * **No clock inside**: `publish_time` is passed in.
//!
//! See `docs/telemetry.md` in the repository for the record format,
//! retention and the durability argument.

pub mod nats;
pub mod routing;
pub mod sink;

pub use nats::{NatsConfig, NatsError, NatsSink};
pub use routing::{EventNotificationConfig, NoTopic, Route, route_event, route_state};
pub use sink::{Sink, SinkError};
