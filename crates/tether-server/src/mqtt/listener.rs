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

/// Counts a socket while it is on the admission threads (the
/// `tether_mqtt_connections_admitting` gauge and
/// [`super::MqttHandle::admitting_connections`]).
struct AdmittingGuard(Arc<Shared>);

impl AdmittingGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.admitting.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("tether_mqtt_connections_admitting").increment(1.0);
        Self(shared)
    }
}

impl Drop for AdmittingGuard {
    fn drop(&mut self) {
        self.0.admitting.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("tether_mqtt_connections_admitting").decrement(1.0);
    }
}

/// Accepts devices on `listener` until shutdown. With admission threads, the accept
/// loop runs on them too: a connection that never gets connected (a flood's bad
/// tokens, a port scan) costs the device threads nothing, not even its accept.
///
/// # Errors
/// When the socket cannot move to the admission threads.
pub(crate) fn spawn(
    listener: TcpListener,
    mut policy: ListenPolicy,
    shared: Arc<Shared>,
) -> std::io::Result<JoinHandle<()>> {
    let shutdown = shared.shutdown.clone();
    let Some(admission) = policy.admission.runtime().cloned() else {
        return Ok(listen::spawn_accept_loop(
            listener,
            policy,
            shutdown,
            move |incoming| connection(incoming, Arc::clone(&shared)),
        ));
    };
    let devices = tokio::runtime::Handle::current();
    // Already where admission runs: each connection's handshake runs in place.
    policy.admission = listen::admission::Admission::inline();
    listen::spawn_accept_loop_on(&admission, listener, policy, shutdown, move |incoming| {
        admitted(incoming, Arc::clone(&shared), devices.clone())
    })
}

/// A connection on the device threads from its first byte to its close.
async fn connection(incoming: Incoming, shared: Arc<Shared>) {
    let _guard = accepted(&incoming, &shared);
    match incoming.handshake_here().await {
        Ok(accepted) => {
            let _permit = accepted.permit;
            driver::serve(accepted.conn, accepted.peer, shared).await;
        }
        Err(_) => metrics::counter!("tether_mqtt_tls_failures_total").increment(1),
    }
}

/// A connection accepted on the admission threads: the handshake, the CONNECT, its
/// authentication and the device's first seconds run there (the socket on their
/// reactor); then the settled device's traffic moves to the device threads.
async fn admitted(incoming: Incoming, shared: Arc<Shared>, devices: tokio::runtime::Handle) {
    let guard = accepted(&incoming, &shared);
    let admitting = AdmittingGuard::new(Arc::clone(&shared));
    let accepted = match incoming.handshake_here().await {
        Ok(accepted) => accepted,
        Err(_) => {
            metrics::counter!("tether_mqtt_tls_failures_total").increment(1);
            return;
        }
    };
    let permit = accepted.permit;
    let admitted = driver::admit(accepted.conn, accepted.peer, shared).await;
    drop(admitting);
    if let Some(admitted) = admitted {
        devices.spawn(async move {
            let _held = (guard, permit);
            admitted.serve().await;
        });
        // The spawn woke a device thread: let it have the core now.
        listen::admission::step_aside();
    }
}

/// Counts an accepted socket; the guard counts it closed.
fn accepted(incoming: &Incoming, shared: &Arc<Shared>) -> OpenGuard {
    let transport = if incoming.is_tls() { "tls" } else { "tcp" };
    metrics::counter!("tether_mqtt_accepted_total", "transport" => transport).increment(1);
    OpenGuard::new(Arc::clone(shared))
}
