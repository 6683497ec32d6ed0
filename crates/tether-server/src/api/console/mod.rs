//! The web console at `/console/` on the admin listener (docs/console.md).
//!
//! ```text
//!  /console/            index.html ─┐ embedded in the binary, served with a strict CSP
//!  /console/assets/*    js, css ────┘ (no inline script, no framing, nosniff)
//!  /console/api/*       admin token ─▶ what the Device Manager API cannot say:
//!      presence   which devices are connected (the hub, cluster-wide)
//!      device     a device's keys as the gateway reads them, with fingerprints
//!      diagnose   every finding of `tether jwt diagnose` against a device's keys
//!      fleet      the /metrics numbers the fleet view charts
//!      stream     new telemetry of a topic as server-sent events
//! ```
//!
//! Everything else the page shows comes from the Device Manager API itself, with the
//! same token: the console is a client of the API, not a second API.

mod assets;
mod device;
mod diagnose;
mod fleet;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tether_route::TelemetryReader;

pub use self::diagnose::diagnosis_json;
use super::ApiState;
use super::auth::require_admin;
use crate::bridge::auth::JwtPolicy;

/// What the console's calls share.
#[derive(Clone)]
struct ConsoleState {
    api: ApiState,
    reader: Option<Arc<dyn TelemetryReader>>,
    /// The gateway's token rules, so the debugger judges a token as the gateway does.
    jwt: JwtPolicy,
}

/// The console's page, its assets and its calls; `reader` is where live telemetry
/// comes from (`None`: the stream says there is none); `jwt` is the gateway's token
/// policy, which the debugger applies.
pub fn routes(api: ApiState, reader: Option<Arc<dyn TelemetryReader>>, jwt: JwtPolicy) -> Router {
    let calls = Router::new()
        .route("/console/api/presence", get(device::presence))
        .route("/console/api/device", get(device::device))
        .route("/console/api/diagnose", post(diagnose::diagnose))
        .route("/console/api/fleet", get(fleet::fleet))
        .route("/console/api/stream", get(stream::stream))
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_admin,
        ))
        .with_state(ConsoleState { api, reader, jwt });
    Router::new()
        .route("/console", get(assets::to_index))
        .route("/console/", get(assets::index))
        .route("/console/assets/{file}", get(assets::asset))
        .merge(calls)
        .layer(axum::middleware::from_fn(security_headers))
}

/// The Content-Security-Policy of every console answer: scripts and styles from the
/// console's own files only (no inline script, so injected markup cannot run), calls
/// to the same origin only, and no framing (clickjacking).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests;
