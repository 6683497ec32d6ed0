//! The device side of the IoT Core protocol, done right: a token refreshed before it
//! expires, reconnects that back off with jitter, endpoint failover with a clear way
//! back, and every refusal surfaced as a typed reason.
//!
//! ```text
//!            ┌──────────── policy (sans-io, time passed in) ────────────┐
//!  app ──▶   │ Backoff (full jitter, 1 s … 15 min)                      │
//!            │ RefreshPlan (reconnect with a fresh JWT before exp)       │ ──▶ driver (tokio + rustls)
//!            │ Endpoints (preferred first; back to it at a refresh)      │
//!            └───────────────────────────────────────────────────────────┘
//! ```

pub mod backoff;
pub mod endpoints;
pub mod refresh;
