//! Accept loops: one task per bound socket, a shared connection cap (semaphore), the
//! TLS handshake under the CONNECT timeout, then the driver.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use super::{Shared, driver};

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Counts an open socket from accept to close (the `tether_mqtt_connections` gauge
/// and [`super::MqttHandle::open_connections`]).
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("tether_mqtt_connections").increment(1.0);
        Self(shared)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("tether_mqtt_connections").decrement(1.0);
        self.0.closed.notify_waiters();
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.clone();
    let transport = if tls.is_some() { "tls" } else { "tcp" };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // The permit is taken after accept so that an idle listener holds none; at
        // the cap this socket waits unserved and further ones stay in the backlog.
        let permit = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            permit = Arc::clone(&shared.permits).acquire_owned() => permit,
        };
        let Ok(permit) = permit else {
            break;
        };
        let _ = tcp.set_nodelay(true);
        metrics::counter!("tether_mqtt_accepted_total", "transport" => transport).increment(1);
        let guard = OpenGuard::new(Arc::clone(&shared));
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(
            async move {
                let _permit = permit;
                let _guard = guard;
                let Some(acceptor) = tls else {
                    return driver::serve(tcp, peer, shared).await;
                };
                let handshake =
                    tokio::time::timeout(shared.options.connect_timeout, acceptor.accept(tcp))
                        .await;
                match handshake {
                    Ok(Ok(stream)) => driver::serve(stream, peer, shared).await,
                    Ok(Err(e)) => {
                        metrics::counter!("tether_mqtt_tls_failures_total").increment(1);
                        tracing::info!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        metrics::counter!("tether_mqtt_tls_failures_total").increment(1);
                        tracing::info!(%peer, "TLS handshake timed out");
                    }
                }
            }
            .in_current_span(),
        );
    }
}
