//! HTTP/1.1 over a [`super`] listener: the admin API and the HTTPS device bridge.
//!
//! Every connection is bounded in time as well as in number: a client has
//! `header_timeout` to send a complete request head, counted from the handshake and
//! again from the end of each response, so a slow sender (slowloris) and an idle
//! keep-alive connection both close after it. Handlers are bounded by the router's own
//! deadline (see `api::with_deadline`). On shutdown, connections finish the request in
//! hand and close; after `drain` the rest are cut.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Accepted, ListenPolicy, spawn_accept_loop};

/// The time bounds of an HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Time to send a complete request head, from the handshake and again from the end
    /// of each response (the keep-alive idle limit).
    pub header_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
///
/// # Errors
/// Never today; the signature leaves room for listener failures.
pub async fn serve(
    listener: TcpListener,
    listen: ListenPolicy,
    http: HttpPolicy,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let cap = listen.cap.clone();
    let stop = stop_rx.clone();
    let accept = spawn_accept_loop(listener, listen, stop_rx, move |incoming| {
        let router = router.clone();
        let stop = stop.clone();
        async move {
            if let Ok(accepted) = incoming.handshake().await {
                serve_connection(accepted, router, http, stop).await;
            }
        }
    });
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = accept.await;
    // Connections give their permits back as they close.
    let drained = tokio::time::timeout(http.drain, async {
        while cap.in_use() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = cap.in_use(),
            "HTTP connections still open after the drain period"
        );
    }
    Ok(())
}

async fn serve_connection(
    accepted: Accepted,
    router: Router,
    http: HttpPolicy,
    mut stop: watch::Receiver<bool>,
) {
    let Accepted {
        conn, peer, permit, ..
    } = accepted;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(conn), TowerToHyperService::new(router));
    tokio::pin!(connection);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's business.
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
    drop(permit);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use std::sync::Arc;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;
    use crate::listen::Cap;

    async fn start(cap: usize, header: Duration) -> (SocketAddr, Cap, watch::Sender<bool>) {
        start_limited(cap, header, None).await
    }

    async fn start_limited(
        cap: usize,
        header: Duration,
        per_ip: Option<Arc<crate::listen::rate::ConnectRate>>,
    ) -> (SocketAddr, Cap, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cap = Cap::new(cap);
        let listen = ListenPolicy {
            name: "test",
            cap: cap.clone(),
            tls: None,
            handshake_timeout: Duration::from_secs(1),
            per_ip,
            admission: crate::listen::admission::Admission::inline(),
        };
        let policy = HttpPolicy {
            header_timeout: header,
            drain: Duration::from_secs(1),
        };
        let router = Router::new().route("/", get(|| async { "ok" }));
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(serve(listener, listen, policy, router, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        (addr, cap, stop)
    }

    /// Sends a whole GET and reads until the server closes or answers.
    async fn get_ok(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    /// Reads until EOF; how long the server kept the socket.
    async fn held_for(mut s: TcpStream) -> Duration {
        let start = tokio::time::Instant::now();
        let mut buf = [0u8; 256];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        start.elapsed()
    }

    #[tokio::test]
    async fn slow_and_idle_clients_are_cut_at_the_header_timeout() {
        let (addr, cap, _stop) = start(8, Duration::from_millis(500)).await;
        // A slowloris: half a request head, then nothing.
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("write");
        // A keep-alive client that got its answer and then stays silent.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        let mut first = [0u8; 64];
        let n = idle.read(&mut first).await.expect("answer");
        assert!(first[..n].starts_with(b"HTTP/1.1 200"));
        let (slow, idle) = tokio::join!(held_for(slow), held_for(idle));
        for held in [slow, idle] {
            assert!(
                held < Duration::from_secs(3),
                "the connection was held {held:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cap.in_use(), 0, "both permits are back");
    }

    #[tokio::test]
    async fn at_the_cap_new_clients_wait_and_are_served_once_a_slot_frees() {
        let (addr, cap, _stop) = start(2, Duration::from_millis(700)).await;
        let mut holders = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET / HT").await.expect("write");
            holders.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cap.in_use(), 2);
        // The third waits in the backlog until the holders time out, then is served.
        let answer = tokio::time::timeout(Duration::from_secs(5), get_ok(addr))
            .await
            .expect("served after the holders were cut");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(cap.in_use() <= 2);
    }

    #[tokio::test]
    async fn an_address_over_its_connect_rate_is_closed_before_any_work() {
        let limit = Arc::new(crate::listen::rate::ConnectRate::new(5));
        let (addr, _cap, _stop) = start_limited(64, Duration::from_secs(5), Some(limit)).await;
        let mut served = 0;
        for _ in 0..20 {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let _ = s
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await;
            let mut out = Vec::new();
            // A refused socket is closed or reset without an answer.
            let _ = s.read_to_end(&mut out).await;
            if out.starts_with(b"HTTP/1.1 200") {
                served += 1;
            }
        }
        // A burst of twice the rate, plus what refilled while the loop ran.
        assert!((10..=12).contains(&served), "{served} of 20 served");
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let (addr, cap, stop) = start(4, Duration::from_secs(5)).await;
        assert!(get_ok(addr).await.starts_with("HTTP/1.1 200"));
        let _ = stop.send(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listening socket is closed after shutdown"
        );
        assert_eq!(cap.in_use(), 0);
    }
}
