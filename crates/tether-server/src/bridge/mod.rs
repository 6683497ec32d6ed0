//! What every device transport shares: the MQTT bridge, the HTTP device bridge and the
//! cluster relay are built on this core and on nothing of each other.
//!
//! ```text
//!  mqtt/ ──┐                      ┌─ auth: registry + device lookup, JWT, blocked
//!  device_http/ ─▶ BridgeDeps ───┼─ uplink: telemetry → route → sink, state → store
//!  cluster ─┘   (store, sink,     ├─ hub: the API's way to connected devices
//!               keys, clock)      ├─ reason + code: why, as a google.rpc.Code
//!                                 └─ limits, gateway_rules, clock
//! ```

pub mod auth;
pub mod clock;
pub mod code;
pub mod gateway_rules;
pub mod hub;
pub mod limits;
pub mod log_budget;
pub mod provision;
pub mod reason;
pub mod uplink;

use std::sync::Arc;

use tether_registry::Store;
use tether_route::Sink;

pub use auth::{CredentialSource, JwtPolicy};
pub use clock::{Clock, FixedClock, OffsetClock, SystemClock};
pub use code::Code;
pub use limits::Limits;
pub use log_budget::LogBudget;
pub use reason::{Reason, Transport, shown};

/// What a device bridge needs from the rest of the server. Both bridges take the same
/// one, so they share one key cache and one clock.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeDeps {
    /// The device registry.
    pub store: Arc<dyn Store>,
    /// Where telemetry and state notifications go.
    pub sink: Arc<dyn Sink>,
    /// Parsed device keys (a cache in production).
    pub credentials: Arc<dyn CredentialSource>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// What clients can make the server log.
    pub log_budget: Arc<LogBudget>,
}

impl BridgeDeps {
    /// The store and sink, a fresh key cache and the system clock.
    pub fn new(store: Arc<dyn Store>, sink: Arc<dyn Sink>) -> Self {
        Self {
            store,
            sink,
            credentials: Arc::new(tether_registry::KeyCache::new()),
            clock: Arc::new(SystemClock),
            log_budget: Arc::new(LogBudget::default()),
        }
    }

    /// The same with another credential source.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Arc<dyn CredentialSource>) -> Self {
        self.credentials = credentials;
        self
    }

    /// The same with another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}
