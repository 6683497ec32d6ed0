//! The connections of a gRPC listener over TLS (the Device Manager's, the Pub/Sub
//! API's), as tonic takes them: the server's one accept loop (`listen`: cap,
//! handshake timeout, accept back-off, listener metrics under the listener's name)
//! with ALPN set to h2, each handshaken connection handed over through a channel.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::listen::{self, Accepted, Cap, ListenPolicy};

/// How long a client has for its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// One handshaken connection; its slot of the cap is freed when it closes.
#[derive(Debug)]
pub struct TlsConn(Accepted);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0.conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0.conn).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0.conn).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.conn.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0.conn).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0.conn).poll_shutdown(cx)
    }
}

/// Accepts on `listener` with `tls` (a copy, ALPN set to h2), at most `cap` at once,
/// until `shutdown` turns true; returns the stream of handshaken connections and
/// the accept task. `name` labels the listener's metrics and log lines.
pub fn incoming(
    name: &'static str,
    listener: TcpListener,
    tls: &rustls::ServerConfig,
    cap: usize,
    shutdown: watch::Receiver<bool>,
) -> (
    ReceiverStream<Result<TlsConn, std::io::Error>>,
    JoinHandle<()>,
) {
    let mut config = tls.clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let policy = ListenPolicy {
        name,
        cap: Cap::new(cap),
        tls: Some(Arc::new(config)),
        handshake_timeout: HANDSHAKE,
        per_ip: None,
        admission: listen::admission::Admission::inline(),
    };
    let (tx, rx) = mpsc::channel(64);
    let task = listen::spawn_accept_loop(listener, policy, shutdown, move |incoming| {
        let tx = tx.clone();
        async move {
            // A failed handshake is counted and logged by `listen`.
            if let Ok(accepted) = incoming.handshake().await {
                let _ = tx.send(Ok(TlsConn(accepted))).await;
            }
        }
    });
    (ReceiverStream::new(rx), task)
}
