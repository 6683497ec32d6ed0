//! The connections of a gRPC listener (the Device Manager's, the Pub/Sub API's over
//! TLS and in plaintext), as tonic takes them: the server's one accept loop
//! (`listen`: cap, `TCP_NODELAY`, handshake timeout, accept back-off, listener
//! metrics under the listener's name), with ALPN set to h2 over TLS, each accepted
//! connection handed over through a channel.
//!
//! `TCP_NODELAY` matters for streaming pulls: with Nagle's algorithm on, a small
//! response written while the previous one is unacknowledged waits for the client's
//! (delayed) ACK, and a few percent of the messages arrived 10–40 ms late.

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

/// One accepted connection (handshaken, over TLS); its slot of the cap is freed
/// when it closes.
#[derive(Debug)]
pub struct GrpcConn(Accepted);

impl tonic::transport::server::Connected for GrpcConn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for GrpcConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0.conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcConn {
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

/// Accepts on `listener`, with `tls` (a copy, ALPN set to h2) or in plaintext, at
/// most `cap` at once, until `shutdown` turns true; returns the stream of accepted
/// connections and the accept task. `name` labels the listener's metrics and log
/// lines.
pub fn incoming(
    name: &'static str,
    listener: TcpListener,
    tls: Option<&rustls::ServerConfig>,
    cap: usize,
    shutdown: watch::Receiver<bool>,
) -> (
    ReceiverStream<Result<GrpcConn, std::io::Error>>,
    JoinHandle<()>,
) {
    let tls = tls.map(|tls| {
        let mut config = tls.clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    });
    let policy = ListenPolicy {
        name,
        cap: Cap::new(cap),
        tls,
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
                let _ = tx.send(Ok(GrpcConn(accepted))).await;
            }
        }
    });
    (ReceiverStream::new(rx), task)
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpStream;
    use tokio::time::timeout;
    use tokio_stream::StreamExt as _;

    use super::*;
    use crate::listen::Conn;

    #[tokio::test]
    async fn plaintext_connections_are_capped_and_written_without_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (_stop, shutdown) = watch::channel(false);
        let (mut conns, accept) = incoming("test", listener, None, 1, shutdown);

        let _first = TcpStream::connect(addr).await.expect("connect");
        let first = timeout(Duration::from_secs(5), conns.next())
            .await
            .expect("accepted")
            .expect("a connection")
            .expect("no error");
        let Conn::Plain(tcp) = &first.0.conn else {
            panic!("no TLS configured, yet the connection is TLS");
        };
        assert!(
            tcp.nodelay().expect("nodelay"),
            "Nagle's algorithm would hold a streaming pull's responses"
        );

        // At the cap, the next connection waits until a slot is free.
        let _second = TcpStream::connect(addr).await.expect("connect");
        assert!(
            timeout(Duration::from_millis(300), conns.next())
                .await
                .is_err(),
            "a second connection was served over a cap of 1"
        );
        drop(first);
        let second = timeout(Duration::from_secs(5), conns.next())
            .await
            .expect("served once the first closed");
        assert!(matches!(second, Some(Ok(_))));
        accept.abort();
    }
}
