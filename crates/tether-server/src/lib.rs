//! The Tether gateway: IoT Core's device protocol and Device Manager API, self-hosted.
//!
//! ```text
//!  device ──TLS 8883/443──▶ mqtt (listener → driver → tether-mqtt session) ─┐
//!  admin/scripts ──HTTP──▶ api (cloudiot v1 REST, Google's JSON) ───────────┼─▶ dyn Store (registry)
//!  HTTP devices ──HTTP(S)─▶ device_http (publishEvent, setState, config) ────┤
//!                                                                           ├─▶ sinks (telemetry log, NATS)
//!                                  hub: API → connected devices (config, commands)
//! ```

pub mod api;
pub mod bridge;
pub mod cluster;
pub mod device_http;
pub mod listen;
pub mod mqtt;
pub mod serve;
pub mod tls;
