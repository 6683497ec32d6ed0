//! The device-facing HTTPS listener (IoT Core: `cloudiotdevice.googleapis.com:443`;
//! Tether default 8443) with the gateway's TLS certificate, on [`crate::listen`]:
//! a connection cap, the handshake and header timeouts, and draining on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::listen::http::{self, HttpPolicy};
use crate::listen::{Cap, DeviceGate, ListenPolicy};

/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then lets
/// requests in flight finish. ALPN is set to `http/1.1` on a copy of `tls` (the MQTT
/// listeners may advertise other protocols on the same certificate).
///
/// # Errors
/// The listener failed.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    cap: Cap,
    gate: DeviceGate,
    policy: HttpPolicy,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut config = (*tls).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listen = ListenPolicy {
        name: "https",
        cap,
        tls: Some(Arc::new(config)),
        handshake_timeout: HANDSHAKE_TIMEOUT,
        per_ip: gate.per_ip,
        admission: gate.admission,
    };
    http::serve(listener, listen, policy, router, shutdown).await
}
