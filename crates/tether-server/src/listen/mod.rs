//! One way to accept sockets, for every listener of the server: MQTT (8883, 443, plain
//! TCP for development), the HTTPS device bridge and the admin API.
//!
//! ```text
//!  TcpListener ─accept─▶ permit from the listener's Cap ─spawn─▶ Incoming
//!      │ accept error (no descriptors): pause, retry     │ at the cap: this socket
//!      │ shutdown: stop accepting                        │ waits, later ones stay in
//!      │                                                 │ the kernel's backlog
//!      ▼                                                 ▼
//!                        Incoming::handshake(): TLS under a timeout (ALPN set by the
//!                        listener's rustls config) ─▶ Conn ─▶ the listener's service
//! ```
//!
//! The services (the MQTT driver, [`http`]) own what happens after the handshake: their
//! own timeouts, and draining on shutdown. A socket holds its permit until it closes,
//! so a listener can never hold more descriptors than its cap.

pub mod admission;
pub(crate) mod buffer_pool;
pub mod http;
pub mod rate;
pub mod tcp;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The most sockets one listener (or a group of listeners sharing it) holds open.
#[derive(Debug, Clone)]
pub struct Cap {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Cap {
    /// At most `limit` sockets at once (at least one).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sockets open now.
    pub fn in_use(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }
}

/// How one listener accepts.
#[derive(Clone)]
pub struct ListenPolicy {
    /// Names the listener in logs and in the `listener` label of metrics
    /// (`mqtt`, `https`, `admin`).
    pub name: &'static str,
    /// The connection cap (shared by the listeners of one service).
    pub cap: Cap,
    /// TLS, or plain TCP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Connects per second allowed from one source address, checked before any TLS
    /// work (`None`: no limit).
    pub per_ip: Option<Arc<rate::ConnectRate>>,
    /// Where the TLS handshake runs (device listeners: below device traffic).
    pub admission: admission::Admission,
}

impl std::fmt::Debug for ListenPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenPolicy")
            .field("name", &self.name)
            .field("cap", &self.cap.limit)
            .field("tls", &self.tls.is_some())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("per_ip", &self.per_ip.is_some())
            .field("admission", &self.admission)
            .finish()
    }
}

/// What stands in front of a device listener's handshakes: the connect rate per source
/// address and where the handshake runs.
#[derive(Debug, Clone, Default)]
pub struct DeviceGate {
    /// Connects per second allowed from one source address (`None`: no limit).
    pub per_ip: Option<Arc<rate::ConnectRate>>,
    /// Where handshakes run.
    pub admission: admission::Admission,
}

/// An accepted socket that holds its permit, before the TLS handshake.
pub struct Incoming {
    tcp: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    name: &'static str,
    tls: Option<Arc<rustls::ServerConfig>>,
    handshake_timeout: Duration,
    admission: admission::Admission,
}

/// A connection ready for its service, with the permit it holds until it is dropped.
#[derive(Debug)]
pub struct Accepted {
    /// The stream, TLS or plain.
    pub conn: Conn,
    /// The client's address.
    pub peer: SocketAddr,
    /// Keeps the socket counted against the cap.
    pub permit: OwnedSemaphorePermit,
}

/// Why a handshake did not give a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client sent something that is not a TLS handshake we accept.
    Failed,
    /// The client did not finish in time.
    TimedOut,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer)
            .field("listener", &self.name)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// Does the TLS handshake (if the listener has TLS) under the handshake timeout,
    /// where the listener's admission runs; the connection comes back on the caller's
    /// runtime. Failures are logged at DEBUG and counted in
    /// `tether_listener_tls_failures_total{listener}`.
    ///
    /// # Errors
    /// [`HandshakeFailure`] when the client failed or was too slow.
    pub async fn handshake(self) -> Result<Accepted, HandshakeFailure> {
        if !self.admission.is_pooled() {
            return self.handshake_here().await;
        }
        // On the admission threads with the socket on their reactor, so that its
        // readiness wakes them directly; then back to this runtime's reactor.
        let (admission, name) = (self.admission.clone(), self.name);
        let detached = self.detach().map_err(|e| failed(name, None, &e))?;
        let mut accepted = admission
            .run(async move {
                let incoming = detached
                    .adopt()
                    .map_err(|(e, peer)| failed(name, Some(peer), &e))?;
                incoming.handshake_here().await
            })
            .await
            .unwrap_or(Err(HandshakeFailure::Failed))?;
        accepted
            .conn
            .rehome()
            .map_err(|e| failed(name, Some(accepted.peer), &e))?;
        Ok(accepted)
    }

    /// Does the TLS handshake on the current runtime (see [`Incoming::handshake`]).
    ///
    /// # Errors
    /// [`HandshakeFailure`] when the client failed or was too slow.
    pub async fn handshake_here(self) -> Result<Accepted, HandshakeFailure> {
        let Incoming {
            tcp,
            peer,
            permit,
            name,
            tls,
            handshake_timeout,
            admission: _,
        } = self;
        let tcp = tcp::Tcp::new(tcp);
        let Some(acceptor) = tls else {
            return Ok(Accepted {
                conn: Conn::Plain(tcp),
                peer,
                permit,
            });
        };
        match tls_accept(acceptor, tcp, handshake_timeout).await {
            Ok(stream) => Ok(Accepted {
                conn: Conn::Tls(stream),
                peer,
                permit,
            }),
            Err(Some(e)) => Err(failed(name, Some(peer), &e)),
            Err(None) => {
                tracing::debug!(listener = name, %peer, "TLS handshake timed out");
                metrics::counter!("tether_listener_tls_failures_total", "listener" => name)
                    .increment(1);
                Err(HandshakeFailure::TimedOut)
            }
        }
    }

    /// Takes the socket off this runtime's reactor, for [`Detached::adopt`] on another.
    ///
    /// # Errors
    /// When the socket cannot be deregistered (it is closed).
    fn detach(self) -> io::Result<Detached> {
        Ok(Detached {
            tcp: self.tcp.into_std()?,
            peer: self.peer,
            permit: self.permit,
            name: self.name,
            tls: self.tls,
            handshake_timeout: self.handshake_timeout,
            admission: self.admission,
        })
    }

    /// Whether the handshake will be TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// An accepted socket on no runtime's reactor, on its way to the admission threads.
struct Detached {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    name: &'static str,
    tls: Option<Arc<rustls::ServerConfig>>,
    handshake_timeout: Duration,
    admission: admission::Admission,
}

impl Detached {
    /// Registers the socket with the current runtime.
    ///
    /// # Errors
    /// When it cannot be registered (the socket is closed), with the client's address.
    fn adopt(self) -> Result<Incoming, (io::Error, SocketAddr)> {
        let peer = self.peer;
        Ok(Incoming {
            tcp: TcpStream::from_std(self.tcp).map_err(|e| (e, peer))?,
            peer,
            permit: self.permit,
            name: self.name,
            tls: self.tls,
            handshake_timeout: self.handshake_timeout,
            admission: self.admission,
        })
    }
}

/// Logs and counts a failed handshake.
fn failed(name: &'static str, peer: Option<SocketAddr>, e: &io::Error) -> HandshakeFailure {
    match peer {
        Some(peer) => tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed"),
        None => tracing::debug!(listener = name, error = %e, "TLS handshake failed"),
    }
    metrics::counter!("tether_listener_tls_failures_total", "listener" => name).increment(1);
    HandshakeFailure::Failed
}

/// The TLS handshake under `limit`: the stream, or the error (`None`: timed out).
async fn tls_accept(
    config: Arc<rustls::ServerConfig>,
    tcp: tcp::Tcp,
    limit: Duration,
) -> Result<tls::TlsConn<tcp::Tcp>, Option<io::Error>> {
    match tokio::time::timeout(limit, tls::TlsConn::accept(config, tcp)).await {
        Ok(accepted) => accepted.map_err(Some),
        Err(_) => Err(None),
    }
}

/// Accepts on `listener` until `shutdown` turns true, handing each socket (with its
/// permit) to `serve` in a task of its own.
pub fn spawn_accept_loop<F, Fut>(
    listener: TcpListener,
    policy: ListenPolicy,
    shutdown: watch::Receiver<bool>,
    serve: F,
) -> JoinHandle<()>
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(accept_loop(listener, policy, shutdown, serve).in_current_span())
}

/// [`spawn_accept_loop`] on `runtime`: the listening socket moves to its reactor, so
/// that accepting, the per-address limit and the tasks `serve` starts run there.
///
/// # Errors
/// When the socket cannot leave the current runtime's reactor.
pub fn spawn_accept_loop_on<F, Fut>(
    runtime: &tokio::runtime::Handle,
    listener: TcpListener,
    policy: ListenPolicy,
    shutdown: watch::Receiver<bool>,
    serve: F,
) -> io::Result<JoinHandle<()>>
where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = listener.into_std()?;
    let accepting = async move {
        match TcpListener::from_std(listener) {
            Ok(listener) => accept_loop(listener, policy, shutdown, serve).await,
            Err(e) => {
                tracing::error!(listener = policy.name, error = %e, "cannot accept connections");
            }
        }
    };
    Ok(runtime.spawn(accepting.in_current_span()))
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    policy: ListenPolicy,
    mut shutdown: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(Incoming) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = policy.name;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                metrics::counter!("tether_listener_accept_errors_total", "listener" => name)
                    .increment(1);
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Over its address's connect rate: closed before it costs a handshake.
        if let Some(limit) = &policy.per_ip
            && !limit.allow(peer.ip(), tokio::time::Instant::now())
        {
            metrics::counter!("tether_listener_rate_limited_total", "listener" => name)
                .increment(1);
            drop(tcp);
            continue;
        }
        // The permit is taken after accept so that an idle listener holds none; at the
        // cap this socket waits unserved and later ones stay in the kernel's backlog.
        let permit = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            permit = Arc::clone(&policy.cap.permits).acquire_owned() => permit,
        };
        let Ok(permit) = permit else {
            break;
        };
        let _ = tcp.set_nodelay(true);
        metrics::counter!("tether_listener_accepted_total", "listener" => name).increment(1);
        tokio::spawn(
            serve(Incoming {
                tcp,
                peer,
                permit,
                name,
                tls: policy.tls.clone(),
                handshake_timeout: policy.handshake_timeout,
                admission: policy.admission.clone(),
            })
            .in_current_span(),
        );
    }
}

/// A connection after the handshake: TLS, or plain TCP on a development listener.
// TLS is the normal case, and the MQTT driver that holds one is boxed already; boxing
// the stream as well would cost every connection a second allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Conn {
    /// Plain TCP.
    Plain(tcp::Tcp),
    /// TLS over TCP (rustls' unbuffered API: an idle connection holds no buffers).
    Tls(tls::TlsConn<tcp::Tcp>),
}

impl Conn {
    /// Moves the socket to the current runtime's reactor (see [`tcp::Tcp`]).
    ///
    /// # Errors
    /// When it cannot be moved; the connection is then unusable.
    pub fn rehome(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.rehome(),
            Conn::Tls(tls) => tls.get_mut().rehome(),
        }
    }

    /// The protocol the client chose by ALPN, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(tls) => tls.alpn_protocol(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
