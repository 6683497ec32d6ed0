//! The MQTT bridge's listeners on [`crate::listen`]: one accept loop per bound socket,
//! one connection cap shared by all of them, the TLS handshake, then the driver.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Shared, driver};
use crate::listen::{self, Incoming, ListenPolicy};

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

/// Accepts devices on `listener` until shutdown.
pub(crate) fn spawn(
    listener: TcpListener,
    policy: ListenPolicy,
    shared: Arc<Shared>,
) -> JoinHandle<()> {
    let shutdown = shared.shutdown.clone();
    listen::spawn_accept_loop(listener, policy, shutdown, move |incoming| {
        connection(incoming, Arc::clone(&shared))
    })
}

async fn connection(incoming: Incoming, shared: Arc<Shared>) {
    let transport = if incoming.is_tls() { "tls" } else { "tcp" };
    metrics::counter!("tether_mqtt_accepted_total", "transport" => transport).increment(1);
    let _guard = OpenGuard::new(Arc::clone(&shared));
    if !incoming.admission().is_pooled() {
        match incoming.handshake_here().await {
            Ok(accepted) => {
                let _permit = accepted.permit;
                driver::serve(accepted.conn, accepted.peer, shared).await;
            }
            Err(_) => metrics::counter!("tether_mqtt_tls_failures_total").increment(1),
        }
        return;
    }
    // The handshake, the CONNECT, its authentication and the device's first seconds on
    // the admission threads (the socket on their reactor); the settled device's traffic
    // on the device threads.
    let admitted = incoming
        .admit(move |accepted| async move {
            let admitted = driver::admit(accepted.conn, accepted.peer, shared).await?;
            Some((admitted, accepted.permit))
        })
        .await;
    match admitted {
        Ok(Some((admitted, _permit))) => admitted.serve().await,
        Ok(None) => {}
        Err(_) => metrics::counter!("tether_mqtt_tls_failures_total").increment(1),
    }
}
