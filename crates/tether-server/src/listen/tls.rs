//! TLS on rustls' unbuffered API, so that the connection's buffers are ours to size
//! and to free.
//!
//! rustls' buffered `ServerConnection` keeps a 4 KiB record buffer for the whole life of
//! a connection, however long it sits idle; with 19,000 idle devices that is 76 MB of
//! nothing. Here the ciphertext read from the socket, the plaintext not yet read and the
//! ciphertext not yet written are three `Vec`s that [`TlsConn`] gives back (to the
//! thread's [`buffer_pool`], which a busy server reuses them from) whenever a read finds
//! the socket empty with nothing half-received, so an idle connection holds none.
//!
//! ```text
//!  socket ─read─▶ incoming (ciphertext) ─rustls: decrypt─▶ plaintext ─poll_read─▶ caller
//!  caller ─poll_write─▶ rustls: encrypt ─▶ outgoing (ciphertext) ─write─▶ socket
//!                       handshake, tickets, alerts, key updates ─▶ outgoing
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::buffer_pool;

/// Bytes asked of the socket per read (rustls' buffered connection reads the same).
const READ_SIZE: usize = 4096;

/// Ciphertext waiting for the socket beyond which a write waits for the socket.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// A server-side TLS connection over `S` (a TCP socket).
pub struct TlsConn<S> {
    tls: UnbufferedServerConnection,
    io: S,
    /// Ciphertext from the socket: `incoming[..filled]`; the rest is read space.
    incoming: Vec<u8>,
    filled: usize,
    /// Decrypted, not yet read: `plaintext[taken..]`.
    plaintext: Vec<u8>,
    taken: usize,
    /// Encrypted, not yet written: `outgoing[sent..]`.
    outgoing: Vec<u8>,
    sent: usize,
    /// The peer's close_notify arrived.
    peer_closed: bool,
    /// Ours is queued.
    close_notify_queued: bool,
    /// The socket reported end of file.
    eof: bool,
    /// The TLS error that ended the connection: rustls must not see the input again.
    /// (Boxed: every connection carries the field, few ever fill it.)
    error: Option<Box<rustls::Error>>,
}

impl<S> fmt::Debug for TlsConn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn")
            .field("handshaking", &self.tls.is_handshaking())
            .field("incoming", &self.filled)
            .field("plaintext", &(self.plaintext.len() - self.taken))
            .field("outgoing", &(self.outgoing.len() - self.sent))
            .finish_non_exhaustive()
    }
}

/// What the connection should do to rustls on the way.
#[derive(Clone, Copy)]
enum Action<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// Where rustls stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// It needs more from the peer (handshake, or nothing to do).
    NeedsInput,
    /// The action was done.
    Done,
    /// Both sides sent close_notify.
    Closed,
}

impl<S> TlsConn<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Runs the server side of the handshake on `io`.
    ///
    /// # Errors
    /// The TLS error (sent to the peer as an alert first, where rustls has one), or the
    /// socket's.
    pub async fn accept(config: Arc<ServerConfig>, io: S) -> io::Result<Self> {
        let tls = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        let mut conn = TlsConn {
            tls,
            io,
            incoming: Vec::new(),
            filled: 0,
            plaintext: Vec::new(),
            taken: 0,
            outgoing: Vec::new(),
            sent: 0,
            peer_closed: false,
            close_notify_queued: false,
            eof: false,
            error: None,
        };
        std::future::poll_fn(|cx| conn.poll_handshake(cx)).await?;
        Ok(conn)
    }

    /// The socket.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The protocol the client chose by ALPN, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let stop = self.process(Action::Nothing, cx)?;
            ready!(self.poll_write_outgoing(cx))?;
            if stop == Stop::Closed || self.peer_closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed during the TLS handshake",
                )));
            }
            if !self.tls.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_fill(cx))?;
        }
    }

    /// Feeds rustls what has arrived and does `action`, until rustls needs the network.
    /// Handshake records, tickets and alerts go to `outgoing`; application data to
    /// `plaintext`. On a TLS error the alert rustls queued is written if the socket
    /// takes it at once.
    fn process(&mut self, action: Action<'_>, cx: &mut Context<'_>) -> io::Result<Stop> {
        if let Some(error) = &self.error {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                (**error).clone(),
            ));
        }
        loop {
            let UnbufferedStatus { discard, state } = self
                .tls
                .process_tls_records(&mut self.incoming[..self.filled]);
            let stop = match state {
                Err(error) => {
                    self.discard(discard);
                    return Err(self.fail(error, cx));
                }
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => {
                                if self.plaintext.capacity() == 0 {
                                    self.plaintext = buffer_pool::take(record.payload.len());
                                }
                                self.plaintext.extend_from_slice(record.payload);
                            }
                            Err(error) => {
                                self.error = Some(Box::new(error.clone()));
                                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                            }
                        }
                    }
                    None
                }
                Ok(ConnectionState::EncodeTlsData(mut data)) => {
                    append(&mut self.outgoing, |out| data.encode(out))?;
                    None
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    // `outgoing` goes to the socket in order before anything we read
                    // next is answered; rustls only needs to know it was taken.
                    transmit.done();
                    None
                }
                Ok(ConnectionState::BlockedHandshake) => Some(Stop::NeedsInput),
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    None
                }
                Ok(ConnectionState::Closed) => Some(Stop::Closed),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => match action {
                    Action::Nothing => Some(Stop::NeedsInput),
                    Action::Encrypt(data) => {
                        append(&mut self.outgoing, |out| traffic.encrypt(data, out))?;
                        Some(Stop::Done)
                    }
                    Action::CloseNotify => {
                        append(&mut self.outgoing, |out| traffic.queue_close_notify(out))?;
                        Some(Stop::Done)
                    }
                },
                Ok(_) => {
                    return Err(io::Error::other(
                        "unexpected TLS state (early data is not enabled)",
                    ));
                }
            };
            self.discard(discard);
            if let Some(stop) = stop {
                return Ok(stop);
            }
        }
    }

    /// Drops the first `n` bytes of `incoming`, which rustls has finished with.
    fn discard(&mut self, n: usize) {
        self.incoming.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// After a TLS error: takes the alert rustls queued (if any) and tries to send it.
    /// One call only: rustls hands out what it queued before it looks at the input
    /// again, and looking again would fail again (and queue a second alert).
    fn fail(&mut self, error: rustls::Error, cx: &mut Context<'_>) -> io::Error {
        self.error = Some(Box::new(error.clone()));
        // The same buffer as before: rustls keeps offsets into it.
        let status = self
            .tls
            .process_tls_records(&mut self.incoming[..self.filled]);
        if let Ok(ConnectionState::EncodeTlsData(mut alert)) = status.state {
            let _ = append(&mut self.outgoing, |out| alert.encode(out));
            // Best effort: the connection is over either way.
            let _ = self.poll_write_outgoing(cx);
        }
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// Writes `outgoing` to the socket; ready when all of it is written.
    fn poll_write_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.outgoing.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads more ciphertext. Pending when the socket has nothing, after freeing every
    /// buffer that holds nothing (an idle connection's memory).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.eof {
            return Poll::Ready(Err(unexpected_eof()));
        }
        if self.incoming.capacity() == 0 {
            self.incoming = buffer_pool::take(READ_SIZE);
        }
        if self.incoming.len() < self.filled + READ_SIZE {
            self.incoming.resize(self.filled + READ_SIZE, 0);
        }
        let mut space = ReadBuf::new(&mut self.incoming[self.filled..]);
        match Pin::new(&mut self.io).poll_read(cx, &mut space) {
            Poll::Ready(Ok(())) => {
                let n = space.filled().len();
                if n == 0 {
                    self.eof = true;
                    return Poll::Ready(Err(unexpected_eof()));
                }
                self.filled += n;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.release_idle_buffers();
                Poll::Pending
            }
        }
    }

    /// Gives every buffer that holds nothing back to the thread's pool.
    fn release_idle_buffers(&mut self) {
        if self.filled == 0 {
            buffer_pool::release(&mut self.incoming);
        }
        if self.taken == self.plaintext.len() {
            buffer_pool::release(&mut self.plaintext);
            self.taken = 0;
        }
        if self.sent == self.outgoing.len() {
            buffer_pool::release(&mut self.outgoing);
            self.sent = 0;
        }
    }
}

fn unexpected_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection without sending TLS close_notify",
    )
}

/// rustls' two "the buffer is too small" errors, with the size it needs.
trait NeedsRoom: std::error::Error + Send + Sync + 'static {
    fn required_size(&self) -> Option<usize>;
}

impl NeedsRoom for EncodeError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

impl NeedsRoom for EncryptError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

/// Appends what `write` puts into a slice to `out`, growing `out` as rustls asks.
fn append<E: NeedsRoom>(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<()> {
    if out.capacity() == 0 {
        *out = buffer_pool::take(512);
    }
    let start = out.len();
    let mut want = 512;
    loop {
        out.resize(start + want, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => {
                out.truncate(start);
                match e.required_size() {
                    Some(required) if required > want => want = required,
                    _ => return Err(io::Error::other(e)),
                }
            }
        }
    }
}

impl<S> AsyncRead for TlsConn<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.plaintext.len() {
                let n = buf.remaining().min(this.plaintext.len() - this.taken);
                buf.put_slice(&this.plaintext[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.plaintext.len() {
                    this.plaintext.clear();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let stop = this.process(Action::Nothing, cx)?;
            if this.taken < this.plaintext.len() {
                continue;
            }
            if stop == Stop::Closed || this.peer_closed {
                return Poll::Ready(Ok(())); // end of stream
            }
            // Replies rustls produced (key updates, tickets) go out before we wait; a
            // socket that is full wakes us when it drains.
            if let Poll::Ready(Err(e)) = this.poll_write_outgoing(cx) {
                return Poll::Ready(Err(e));
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<S> AsyncWrite for TlsConn<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.outgoing.len() - this.sent >= WRITE_HIGH_WATER {
            ready!(this.poll_write_outgoing(cx))?;
        }
        match this.process(Action::Encrypt(buf), cx)? {
            Stop::Done => {}
            Stop::Closed => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Stop::NeedsInput => {
                return Poll::Ready(Err(io::Error::other(
                    "TLS cannot send application data now (the connection is closing)",
                )));
            }
        }
        // Start sending now; what the socket does not take waits for the next write
        // or the flush.
        if let Poll::Ready(Err(e)) = this.poll_write_outgoing(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_queued {
            // Either way no close_notify can go out after this.
            this.close_notify_queued = true;
            this.process(Action::CloseNotify, cx)?;
        }
        ready!(this.poll_write_outgoing(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
impl<S> TlsConn<S> {
    /// Bytes the connection's own buffers hold allocated.
    fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.plaintext.capacity() + self.outgoing.capacity()
    }
}

/// A rustls client and a [`TlsConn`] server, handshaken, for tests here and in the
/// MQTT driver.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::client::TlsStream as ClientTls;

    use super::TlsConn;

    /// The two ends; `_dir` holds the embedded CA's files.
    pub(crate) struct Peers<S> {
        pub(crate) client: ClientTls<S>,
        pub(crate) server: TlsConn<S>,
        pub(crate) _dir: tempfile::TempDir,
    }

    /// The server's real TLS setup (embedded CA in a temporary directory), with `alpn`
    /// offered, and a client config that trusts it with the same ALPN.
    pub(crate) fn configs(
        alpn: &[&[u8]],
    ) -> (
        Arc<rustls::ServerConfig>,
        Arc<rustls::ClientConfig>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let setup = crate::tls::setup(
            &crate::tls::TlsSource::Embedded {
                data_dir: dir.path().to_path_buf(),
                host_names: vec!["localhost".into()],
            },
            crate::bridge::Clock::unix_secs(&crate::bridge::SystemClock),
        )
        .expect("TLS setup");
        let mut server = (*setup.config).clone();
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let mut roots = rustls::RootCertStore::empty();
        let ca = setup.ca_path.expect("embedded CA");
        for cert in CertificateDer::pem_file_iter(&ca).expect("CA file") {
            roots.add(cert.expect("CA cert")).expect("CA");
        }
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        client.alpn_protocols = server.alpn_protocols.clone();
        (Arc::new(server), Arc::new(client), dir)
    }

    /// A connected pair of loopback TCP sockets: (client, server).
    pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    /// Both sides of the handshake over `client` and `server`.
    pub(crate) async fn handshake<S>(client: S, server: S, alpn: &[&[u8]]) -> Peers<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (server_config, client_config, dir) = configs(alpn);
        let connector = tokio_rustls::TlsConnector::from(client_config);
        let name = ServerName::try_from("localhost").expect("name");
        let (client, server) = tokio::join!(
            connector.connect(name, client),
            TlsConn::accept(server_config, server)
        );
        Peers {
            client: client.expect("client handshake"),
            server: server.expect("server handshake"),
            _dir: dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::testing::{Peers, configs, handshake, tcp_pair};
    use super::*;

    /// Over loopback TCP.
    async fn connect(alpn: &[&[u8]]) -> Peers<TcpStream> {
        let (client, server) = tcp_pair().await;
        handshake(client, server, alpn).await
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    /// `data` written by `from` (in a task) arrives whole at `to`; `from` comes back.
    async fn carry<W, R>(mut from: W, to: &mut R, data: Vec<u8>) -> W
    where
        W: AsyncWrite + Unpin + Send + 'static,
        R: AsyncRead + Unpin,
    {
        let len = data.len();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            from.write_all(&data).await.expect("write");
            from.flush().await.expect("flush");
            from
        });
        let mut got = vec![0u8; len];
        within(to.read_exact(&mut got)).await.expect("read");
        assert_eq!(got, sent, "{len} bytes");
        writer.await.expect("writer")
    }

    async fn within<T>(what: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), what)
            .await
            .expect("within 10 s")
    }

    #[tokio::test]
    async fn data_crosses_both_ways_in_records_of_every_size() {
        let Peers {
            mut client,
            mut server,
            _dir,
        } = connect(&[b"mqtt"]).await;
        assert_eq!(server.alpn_protocol(), Some(&b"mqtt"[..]));
        for len in [1, 100, 4096, 16_384, 16_385, 100_000] {
            client = carry(client, &mut server, pattern(len, 1)).await;
            server = carry(server, &mut client, pattern(len, 2)).await;
        }
    }

    #[tokio::test]
    async fn an_idle_connection_holds_no_buffers() {
        let Peers {
            mut client,
            mut server,
            _dir,
        } = connect(&[]).await;
        client.write_all(&pattern(10_000, 3)).await.expect("write");
        client.flush().await.expect("flush");
        let mut got = vec![0u8; 10_000];
        within(server.read_exact(&mut got)).await.expect("read");
        server.write_all(b"reply").await.expect("reply");
        server.flush().await.expect("flush");
        let mut reply = [0u8; 5];
        within(client.read_exact(&mut reply))
            .await
            .expect("client read");

        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut space = [0u8; 64];
        let mut buf = ReadBuf::new(&mut space);
        assert!(
            Pin::new(&mut server)
                .poll_read(&mut cx, &mut buf)
                .is_pending()
        );
        assert_eq!(server.buffered_capacity(), 0, "{server:?}");

        // And it still works after.
        client.write_all(b"again").await.expect("write");
        client.flush().await.expect("flush");
        let mut again = [0u8; 5];
        within(server.read_exact(&mut again)).await.expect("read");
        assert_eq!(&again, b"again");
    }

    /// A pipe of 1,000 bytes: a 6,000-byte record reaches the server a piece at a
    /// time, each read finds the pipe empty with part of a record kept, and the record
    /// still arrives whole.
    #[tokio::test]
    async fn a_record_arriving_in_pieces_is_kept_across_waits() {
        let (client, server) = tokio::io::duplex(1000);
        let Peers {
            mut client,
            mut server,
            _dir,
        } = handshake(client, server, &[]).await;
        let sent = pattern(6000, 4);
        let to_server = sent.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&to_server).await.expect("write");
            client.flush().await.expect("flush");
            client
        });
        let mut got = vec![0u8; 6000];
        within(server.read_exact(&mut got)).await.expect("read");
        assert_eq!(got, sent);
        let _client = writer.await.expect("writer");
    }

    #[tokio::test]
    async fn close_notify_ends_the_stream_and_a_bare_end_of_file_is_an_error() {
        let Peers {
            mut client,
            mut server,
            _dir,
        } = connect(&[]).await;
        client.shutdown().await.expect("close_notify");
        let mut buf = [0u8; 8];
        assert_eq!(within(server.read(&mut buf)).await.expect("clean end"), 0);

        let Peers {
            client, mut server, ..
        } = connect(&[]).await;
        let (mut tcp, _) = client.into_inner();
        tcp.shutdown().await.expect("TCP FIN without close_notify");
        let error = within(server.read(&mut buf))
            .await
            .expect_err("no close_notify");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn the_server_s_shutdown_sends_close_notify() {
        let Peers {
            mut client,
            mut server,
            _dir,
        } = connect(&[]).await;
        server.write_all(b"bye").await.expect("write");
        server.shutdown().await.expect("shutdown");
        let mut got = Vec::new();
        within(client.read_to_end(&mut got))
            .await
            .expect("a clean end, not an error");
        assert_eq!(got, b"bye");
    }

    #[tokio::test]
    async fn bytes_that_are_not_tls_fail_the_handshake_with_an_alert() {
        let (server_config, _, _dir) = configs(&[]);
        let (mut client, server) = tcp_pair().await;
        client
            .write_all(b"\x99\x03\x01\x00\x05hello") // content type 0x99: no such thing
            .await
            .expect("write");
        let error = within(TlsConn::accept(server_config, server))
            .await
            .expect_err("not a ClientHello");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        let mut alert = Vec::new();
        let _ = within(client.read_to_end(&mut alert)).await;
        assert_eq!(
            alert.first(),
            Some(&0x15),
            "an alert record: {alert:?} after {error}"
        );
    }

    /// A record that does not decrypt ends the connection with an error, and every
    /// later call gets the same error (rustls never sees the bad input twice).
    #[tokio::test]
    async fn a_forged_record_fails_the_connection_for_good() {
        let Peers {
            mut client,
            mut server,
            _dir,
        } = connect(&[]).await;
        let forged = [&[0x17, 0x03, 0x03, 0x00, 0x20][..], &[0xa5; 32]].concat();
        client.get_mut().0.write_all(&forged).await.expect("write");
        let mut buf = [0u8; 16];
        for attempt in 0..3 {
            let error = within(server.read(&mut buf))
                .await
                .expect_err("a forged record");
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidData,
                "attempt {attempt}: {error}"
            );
        }
        let error = server.write_all(b"x").await.expect_err("no writes either");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
