//! A TCP socket that can move between runtimes.
//!
//! A tokio socket belongs to the reactor of the runtime it was registered with: its
//! readiness wakes tasks through that runtime's I/O thread. A handshake polled on the
//! admission threads with the socket still on the device runtime's reactor costs a
//! wake-up across threads for every flight of the handshake (measured: about 100 µs
//! more CPU per connect). So the socket moves to the admission runtime for the
//! handshake and back for the connection's life; the TLS stream wraps this type, so
//! that it can move without taking the stream apart.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connected socket, registered with the runtime it was last adopted by.
#[derive(Debug)]
pub struct Tcp {
    /// `None` only if moving it failed half-way: every use is then an error.
    stream: Option<TcpStream>,
}

impl Tcp {
    /// Wraps a socket where it is.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream: Some(stream),
        }
    }

    /// Registers a socket with the current runtime.
    ///
    /// # Errors
    /// When it cannot be registered.
    pub fn adopt(stream: std::net::TcpStream) -> io::Result<Self> {
        Ok(Self::new(TcpStream::from_std(stream)?))
    }

    /// Moves the socket to the current runtime's reactor.
    ///
    /// # Errors
    /// When it cannot be moved; the socket is then closed.
    pub fn rehome(&mut self) -> io::Result<()> {
        let stream = self.stream.take().ok_or_else(gone)?;
        self.stream = Some(TcpStream::from_std(stream.into_std()?)?);
        Ok(())
    }

    /// Whether `TCP_NODELAY` is set.
    #[cfg(test)]
    pub fn nodelay(&self) -> io::Result<bool> {
        self.stream.as_ref().ok_or_else(gone)?.nodelay()
    }

    fn pinned(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.stream.as_mut().map(Pin::new).ok_or_else(gone)
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket was lost while moving between runtimes",
    )
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().pinned() {
            Ok(s) => s.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().pinned() {
            Ok(s) => s.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().pinned() {
            Ok(s) => s.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().pinned() {
            Ok(s) => s.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().pinned() {
            Ok(s) => s.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A socket accepted on one runtime, used on a second, then moved back, keeps
    /// its bytes in order both ways.
    #[test]
    fn a_socket_moves_to_another_runtime_and_back() {
        let home = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let away = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        home.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = tokio::spawn(async move {
                let mut c = TcpStream::connect(addr).await.expect("connect");
                c.write_all(b"ping").await.expect("write");
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).await.expect("read");
                assert_eq!(&buf, b"pong");
                c.write_all(b"back").await.expect("write");
                c.read_exact(&mut buf).await.expect("read");
                assert_eq!(&buf, b"home");
            });
            let (server, _) = listener.accept().await.expect("accept");
            let std = server.into_std().expect("into std");
            let mut moved = away
                .spawn(async move {
                    let mut tcp = Tcp::adopt(std).expect("adopt");
                    let mut buf = [0u8; 4];
                    tcp.read_exact(&mut buf).await.expect("read");
                    assert_eq!(&buf, b"ping");
                    tcp.write_all(b"pong").await.expect("write");
                    tcp
                })
                .await
                .expect("away");
            moved.rehome().expect("rehome");
            let mut buf = [0u8; 4];
            moved.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"back");
            moved.write_all(b"home").await.expect("write");
            client.await.expect("client");
        });
        away.shutdown_background();
    }
}
