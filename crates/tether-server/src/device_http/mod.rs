//! The HTTP device bridge (IoT Core's `cloudiotdevice.googleapis.com` DeviceService,
//! spec §3): `:publishEvent`, `:setState` and `GET …/config` for devices that only
//! speak HTTP, each authorized by the device's own JWT (never the admin token).
//!
//! ```text
//!  request ─▶ intercept (before the admin router's auth): is it a bridge call?
//!     no  ─▶ admin API as before
//!     yes ─▶ auth: Bearer JWT ─▶ device_auth (same rules, keys, blocked) + HTTP_DISABLED
//!                                + gatewayInfo (delegatedDeviceId | gatewayId)
//!         ─▶ handlers: telemetry (route → sink, durable before 200 {}),
//!                      state (store + notification), config (localVersion)
//! ```
//!
//! The calls share the admin listener (their paths do not collide with the admin
//! API's) and are also served over TLS with [`serve_https`], so a device can use
//! Tether exactly as it used Google's endpoint.

mod auth;
mod handlers;
mod https;
mod provision;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tether_mqtt::Timestamp as MqttTime;
use tether_registry::Store;
use tether_registry::names::{DeviceRef, RegistryPath, parse_device};
use tether_route::Sink;

pub use https::serve_https;

use crate::bridge::hub::DeviceAddress;
use crate::bridge::limits::TokenBucket;
use crate::bridge::{BridgeDeps, Clock, CredentialSource, JwtPolicy, Limits};

/// Past this many devices the rate table starts afresh (a full bucket for everyone),
/// so it cannot grow without bound.
const MAX_TRACKED_DEVICES: usize = 100_000;

/// The HTTP bridge and what it shares with the MQTT bridge.
#[derive(Clone)]
pub struct DeviceBridge {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    credentials: Arc<dyn CredentialSource>,
    clock: Arc<dyn Clock>,
    jwt: JwtPolicy,
    limits: Limits,
    sink_timeout: Duration,
    rates: Mutex<HashMap<DeviceAddress, Rates>>,
    log_budget: Arc<crate::bridge::LogBudget>,
}

struct Rates {
    messages: TokenBucket,
    states: TokenBucket,
}

impl std::fmt::Debug for DeviceBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBridge")
            .field("jwt", &self.inner.jwt)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl DeviceBridge {
    /// A bridge over the shared store, sink, key cache and clock, with the same JWT
    /// policy and limits as the MQTT bridge.
    pub fn new(deps: &BridgeDeps, jwt: JwtPolicy, limits: Limits, sink_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Arc::clone(&deps.store),
                sink: Arc::clone(&deps.sink),
                credentials: Arc::clone(&deps.credentials),
                clock: Arc::clone(&deps.clock),
                jwt,
                limits,
                sink_timeout,
                rates: Mutex::new(HashMap::new()),
                log_budget: Arc::clone(&deps.log_budget),
            }),
        }
    }

    /// Takes a message token (and a state token for state) for `device`, or says
    /// when to retry.
    fn take(&self, device: &DeviceAddress, state: bool) -> Result<(), Duration> {
        let now = MqttTime::from_millis(self.inner.clock.unix_millis());
        let limits = self.inner.limits;
        let mut rates = self
            .inner
            .rates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if rates.len() >= MAX_TRACKED_DEVICES && !rates.contains_key(device) {
            rates.clear();
        }
        let entry = rates.entry(device.clone()).or_insert_with(|| Rates {
            messages: TokenBucket::new(limits.messages_per_sec, now),
            states: TokenBucket::new(limits.state_per_sec, now),
        });
        let wait =
            |at: MqttTime| Duration::from_millis(at.as_millis().saturating_sub(now.as_millis()));
        if state {
            entry.states.take(now).map_err(wait)?;
        }
        entry.messages.take(now).map_err(wait)
    }
}

/// Which bridge method a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    PublishEvent,
    SetState,
    GetConfig,
    /// Zero-touch provisioning (an extension of the bridge).
    Provision,
}

/// A bridge request's method and device.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) call: Call,
    pub(crate) registry: RegistryPath,
    pub(crate) device: DeviceRef,
}

/// Recognises `POST /v1/{device}:publishEvent`, `POST /v1/{device}:setState`,
/// `GET /v1/{device}/config` and `POST /v1/{device}:provision`; anything else is not
/// a bridge call.
pub(crate) fn bridge_call(method: &Method, path: &str) -> Option<Target> {
    let name = path.strip_prefix("/v1/")?;
    let (name, call) = if let Some(n) = name.strip_suffix(":publishEvent") {
        (n, Call::PublishEvent)
    } else if let Some(n) = name.strip_suffix(":setState") {
        (n, Call::SetState)
    } else if let Some(n) = name.strip_suffix(":provision") {
        (n, Call::Provision)
    } else if let Some(n) = name.strip_suffix("/config") {
        (n, Call::GetConfig)
    } else {
        return None;
    };
    let expected = match call {
        Call::GetConfig => Method::GET,
        _ => Method::POST,
    };
    if *method != expected {
        return None;
    }
    let (registry, device) = parse_device(&percent_decode(name)?).ok()?;
    Some(Target {
        call,
        registry,
        device,
    })
}

/// Decodes `%XX` escapes; `None` for a bad escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `router` (the admin API) with the bridge calls answered before it: they pass
/// neither through its routing nor through its admin-token check.
pub fn with_bridge(router: Router, bridge: DeviceBridge) -> Router {
    router.layer(axum::middleware::from_fn_with_state(bridge, intercept))
}

/// Only the bridge calls, for the device-facing HTTPS listener (everything else is
/// answered 404 in Google's envelope).
pub fn bridge_router(bridge: DeviceBridge) -> Router {
    with_bridge(
        Router::new().fallback(|method: Method, uri: axum::http::Uri| async move {
            crate::api::request::unknown_method(method.as_str(), uri.path()).into_response()
        }),
        bridge,
    )
}

async fn intercept(State(bridge): State<DeviceBridge>, request: Request, next: Next) -> Response {
    match bridge_call(request.method(), request.uri().path()) {
        Some(target) => handlers::handle(&bridge, target, request).await,
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_bridge_calls_only() {
        let base = "/v1/projects/acme/locations/us-central1/registries/fleet/devices/dev-1";
        let call = |m: &Method, p: &str| bridge_call(m, p).map(|t| t.call);
        assert_eq!(
            call(&Method::POST, &format!("{base}:publishEvent")),
            Some(Call::PublishEvent)
        );
        assert_eq!(
            call(&Method::POST, &format!("{base}:setState")),
            Some(Call::SetState)
        );
        assert_eq!(
            call(&Method::GET, &format!("{base}/config")),
            Some(Call::GetConfig)
        );
        assert_eq!(call(&Method::GET, &format!("{base}/configVersions")), None);
        assert_eq!(
            call(&Method::POST, &format!("{base}:modifyCloudToDeviceConfig")),
            None
        );
        assert_eq!(call(&Method::GET, &format!("{base}:publishEvent")), None);
        assert_eq!(call(&Method::GET, "/v1/projects/p/config"), None);
        let t = bridge_call(&Method::GET, &format!("{base}%2Bx/config"));
        assert_eq!(t.map(|t| t.device), Some(DeviceRef::Id("dev-1+x".into())));
    }
}
