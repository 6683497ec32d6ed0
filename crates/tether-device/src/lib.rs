//! The device side of the IoT Core protocol, done right: a token refreshed before it
//! expires, reconnects that back off with jitter, endpoint failover with a clear way
//! back, and every refusal surfaced as a typed reason.
//!
//! ```text
//!  app ── Device (handle) ──requests──▶ driver task (tokio + rustls) ──▶ socket
//!           ▲  status watch, config watch,       │ ClientSession (sans-io MQTT, tether-mqtt)
//!           │  commands / configs / errors        │ policies (sans-io, time passed in):
//!           └────────────────────────────────────┘   Backoff · RefreshPlan · Endpoints
//! ```
//!
//! Life cycle:
//!
//! ```text
//!  Device::connect ── one round over the endpoints ──✗──▶ Err(ConnectError): Dns | Tcp |
//!       │                                                  Tls{cause} | Refused{code} | Token | …
//!       ✓ subscribe config (QoS 1) + commands/# (+ errors for gateways)
//!       ▼
//!  Connected ──(exp − margin)──▶ connect again with a fresh JWT ─✓─▶ Connected (new socket;
//!       │                         the server drops the old one; in-flight QoS 1 carried over)
//!       │                         ─✗─▶ keep the old one, retry after a backoff delay
//!       └─lost──▶ Connecting (next endpoint at once on a network/TLS failure)
//!                    └─ a whole round failed, or refused ─▶ Backoff{attempt, wait, last_error}
//!                        (full jitter, 1 s … 15 min) ─▶ Connecting …
//! ```
//!
//! * **Refresh before expiry:** IoT Core cuts a connection at `exp` + skew. The driver
//!   reconnects at `exp − margin` ([`RefreshPlan`]) with a new token; the new
//!   connection is made before the old one is dropped, so the server never has to cut.
//! * **Failover:** [`Endpoints`] — next endpoint at once on a network or TLS failure,
//!   backoff only after a whole round; return to the preferred endpoint only at a
//!   planned refresh after `return_after`. Each endpoint may bind a local address to
//!   choose the network path (Wi-Fi or cellular).
//! * **Config (QoS 1):** acknowledged once it is in the latest-config watch and the
//!   config stream, i.e. the SDK holds it for the application; a newer config
//!   supersedes an older one in the watch.
//! * **First boot:** [`provision`] registers the device's own key through a
//!   provisioning claim (the key's raw bytes and a proof signed by it); then
//!   [`Device::connect`] with that key as usual.
//! * **HTTP-only devices:** [`HttpDevice`] calls the HTTP bridge (`publishEvent`,
//!   `setState`, `getConfig`) with the same options and token refresh.
//! * **Time** is injectable: [`Clock`] for `iat`/`exp` and `tokio::time` for intervals,
//!   so tests run on paused time.

pub mod backoff;
pub mod clock;
mod device;
mod driver;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod jitter;
mod messages;
mod options;
pub mod provision;
pub mod refresh;
pub mod tls;
mod token;
mod transport;

pub use backoff::Backoff;
pub use clock::{Clock, SystemClock, TokioClock};
pub use device::Device;
pub use endpoints::{Endpoint, Endpoints};
pub use error::{
    ConnectError, GatewayError, GatewayErrorType, MqttMessageInfo, PublishError, Stage, TlsCause,
    connack_meaning,
};
pub use http::{HttpConfig, HttpDevice, HttpError};
pub use jitter::{FixedJitter, Jitter, SystemJitter};
pub use messages::{Command, Config, Status};
pub use options::{DeviceOptions, DevicePath, MqttVersion, SharedSigner};
pub use provision::{ProvisionError, Provisioned, provision};
pub use refresh::RefreshPlan;
pub use tether_mqtt::QoS;
pub use transport::Security;

/// Opens a signer from a key file or a `pkcs11:` URI, ready for [`DeviceOptions`].
pub fn open_signer(spec: &str) -> Result<SharedSigner, tether_keys::Error> {
    let signer = tether_keys::open_signer(spec)?;
    Ok(std::sync::Arc::from(signer))
}
