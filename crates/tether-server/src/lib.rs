//! The Tether gateway: IoT Core's device protocol and Device Manager API, self-hosted.
//!
//! ```text
//!  device ──TLS 8883/443──▶ mqtt (listener → driver → tether-mqtt session) ─┐
//!  admin/scripts ──HTTP──▶ api (cloudiot v1 REST, Google's JSON) ───────────┼─▶ dyn Store (registry)
//!  HTTP devices ──HTTP(S)─▶ device_http (publishEvent, setState, config) ────┤
//!                                                                           ├─▶ sinks (telemetry log, NATS)
//!              hub (bridge::hub): API → connected devices (config, commands)
//! ```
//!
//! Layers, each importing only those below it (CI checks this with
//! `.ci/import_cycles.py`):
//! - `serve`: the composition root; settings; the only place things are wired.
//! - `cluster`, `device_http`: the cluster relay and the HTTP device bridge.
//! - `mqtt`, `api`: the MQTT bridge and the Device Manager API.
//! - `bridge`, `listen`, `tls`: what every transport shares (device auth, uplink,
//!   hub, reasons and codes, limits, the clock), how sockets are accepted, and the
//!   certificates.
//!
//! Glossary: five types name a device, each for its own reason.
//! - `tether_registry::names::DeviceRef`: how a caller names a device, by id or numId,
//!   inside a `RegistryPath`.
//! - [`bridge::hub::DeviceAddress`]: registry path plus numId, the stable key of a
//!   connected device in the hub and the cluster.
//! - `tether_log::DeviceCoordinates`: the IoT Core Pub/Sub attributes a message
//!   carries (project, location, registry, device id, numId).
//! - [`mqtt::auth::Principal`]: an authenticated device: its registry and device rows,
//!   the key that verified its token and the token's expiry.
//! - `tether_device::DevicePath`: the SDK's name for the device it runs as.

pub mod api;
pub mod bridge;
pub mod cluster;
pub mod device_http;
pub mod listen;
pub mod mqtt;
pub mod serve;
pub mod tls;

#[cfg(test)]
mod testing;
