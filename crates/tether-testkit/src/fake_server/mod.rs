//! A small in-process server that behaves like IoT Core's MQTT bridge where the SDK
//! and `tether doctor` need it to: client id and JWT checked against registered keys
//! (CONNACK 2 for an unknown device, 4 without a password, 5 for a refused token, with
//! the reason kept as `last_error`), the connection cut at `exp` + skew, one
//! connection per device (a new CONNECT kicks the old one), config sent on subscribe
//! (QoS 1) and commands, gateway attach.
//!
//! ```text
//!  FakeServer (handle: register, set_config, send_command, records)
//!     │ State (keys, configs, live connections, what was seen) behind one mutex
//!     ▼
//!  accept loop ──▶ per connection: connection.rs drives tether_mqtt::ServerSession
//!                  (the gateway's own protocol core); auth.rs checks the CONNECT
//! ```
//!
//! The MQTT rules (CONNECT first, keep-alive at 1.5×, PINGREQ, UNSUBACK, QoS 1 in
//! flight) are the real session's, so SDK tests check against the same protocol core
//! as the gateway, not a second one.

mod auth;
mod connection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_device::{Clock, SystemClock};
use tether_jwt::PublicKey;
use tether_mqtt::{ConnectReturnCode, QoS};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How the fake server behaves.
#[derive(Debug, Clone)]
pub struct FakeServerOptions {
    /// TLS, or plain TCP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The server's clock (share a `tether_device::TokioClock` with the device under
    /// paused time).
    pub clock: Arc<dyn Clock>,
    /// JWT clock skew; the connection is cut at `exp + skew_secs`.
    pub skew_secs: i64,
    /// The CONNACK code for a well-formed client id of an unknown device.
    pub unknown_device: ConnectReturnCode,
    /// Speak MQTT 5 (with AUTH re-authentication under method `jwt`). Off by
    /// default: the fake is then a 3.1.1 server, as IoT Core was, and answers an MQTT 5
    /// CONNECT with the 3.1.1 CONNACK 0x01.
    pub mqtt5: bool,
}

impl Default for FakeServerOptions {
    fn default() -> Self {
        FakeServerOptions {
            tls: None,
            clock: Arc::new(SystemClock),
            skew_secs: 0,
            unknown_device: ConnectReturnCode::IdentifierRejected,
            mqtt5: false,
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client sent DISCONNECT, closed the socket or broke the protocol.
    ClientClosed,
    /// Another connection of the same device took over.
    Kicked,
    /// The server cut it at `exp + skew` ("The authorization token expired").
    TokenExpired,
    /// The client sent nothing for 1.5× its keep-alive ([MQTT-3.1.2-24]).
    KeepAliveTimeout,
}

/// One accepted connection.
#[derive(Debug, Clone)]
pub struct ConnRecord {
    /// The client id.
    pub client_id: String,
    /// The client's address (shows the local address the device bound).
    pub peer: SocketAddr,
    /// When it was accepted (server clock, Unix seconds).
    pub opened_at: u64,
    /// The token's `exp`.
    pub token_exp: i64,
    /// How it ended, once it has.
    pub ended: Option<Ended>,
}

/// A message a device published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The publishing client.
    pub client_id: String,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Its QoS.
    pub qos: QoS,
}

/// What the handle asks of a live connection.
#[derive(Debug)]
enum Ctl {
    Deliver { topic: String, payload: Vec<u8> },
    Kick,
}

/// Everything the handle and the connections share.
#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Vec<PublicKey>>,
    last_error: HashMap<String, String>,
    configs: HashMap<String, Vec<u8>>,
    /// Per client id: the index of its live connection in `connections`, and its
    /// control channel.
    live: HashMap<String, (usize, mpsc::UnboundedSender<Ctl>)>,
    connections: Vec<ConnRecord>,
    received: Vec<Received>,
    config_acks: usize,
    refusals: Vec<(String, ConnectReturnCode)>,
    /// MQTT 5 re-authentications accepted.
    reauths: usize,
}

/// A connected byte stream, TLS or plain.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type BoxIo = Box<dyn Io>;

/// The running server. Dropping it stops accepting.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start(options: FakeServerOptions) -> std::io::Result<FakeServer> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options).await
    }

    /// Listens on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        options: FakeServerOptions,
    ) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(accept_loop(listener, options, Arc::clone(&state)));
        Ok(FakeServer { addr, state, task })
    }

    /// Stops accepting and drops every connection, like a server going down.
    pub fn stop(self) {
        self.task.abort();
        let mut s = self.state();
        for (_, (_, tx)) in s.live.drain() {
            let _ = tx.send(Ctl::Kick);
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Registers a device (its full client id) with a public key.
    pub fn register(&self, client_id: &str, key: PublicKey) {
        self.state()
            .keys
            .entry(client_id.to_string())
            .or_default()
            .push(key);
    }

    /// Removes every key of a registered device: its next CONNECT is refused with 5
    /// (its current connection lives on until its token's `exp`).
    pub fn remove_keys(&self, client_id: &str) {
        if let Some(keys) = self.state().keys.get_mut(client_id) {
            keys.clear();
        }
    }

    /// Sets a device's config: sent on subscribe and pushed to subscribers now.
    pub fn set_config(&self, device_id: &str, payload: &[u8]) {
        let mut s = self.state();
        s.configs.insert(device_id.to_string(), payload.to_vec());
        broadcast(&s, &format!("/devices/{device_id}/config"), payload);
    }

    /// Sends a command to whoever is subscribed.
    pub fn send_command(&self, device_id: &str, subfolder: Option<&str>, payload: &[u8]) {
        let topic = match subfolder {
            Some(s) => format!("/devices/{device_id}/commands/{s}"),
            None => format!("/devices/{device_id}/commands"),
        };
        broadcast(&self.state(), &topic, payload);
    }

    /// Every connection accepted so far.
    pub fn connections(&self) -> Vec<ConnRecord> {
        self.state().connections.clone()
    }

    /// How many connections were cut because their token expired.
    pub fn expiry_cuts(&self) -> usize {
        self.connections()
            .iter()
            .filter(|c| c.ended == Some(Ended::TokenExpired))
            .count()
    }

    /// Messages published by devices.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// PUBACKs received for config messages.
    pub fn config_acks(&self) -> usize {
        self.state().config_acks
    }

    /// MQTT 5 re-authentications (AUTH) accepted.
    pub fn reauths(&self) -> usize {
        self.state().reauths
    }

    /// Refused CONNECTs: client id and code.
    pub fn refusals(&self) -> Vec<(String, ConnectReturnCode)> {
        self.state().refusals.clone()
    }

    /// Why the device's last connection was refused (like `lastErrorStatus.message`).
    pub fn last_error(&self, client_id: &str) -> Option<String> {
        self.state().last_error.get(client_id).cloned()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock must not hide its own failure.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn broadcast(s: &State, topic: &str, payload: &[u8]) {
    for (_, tx) in s.live.values() {
        let _ = tx.send(Ctl::Deliver {
            topic: topic.to_string(),
            payload: payload.to_vec(),
        });
    }
}

async fn accept_loop(listener: TcpListener, options: FakeServerOptions, state: Arc<Mutex<State>>) {
    while let Ok((tcp, peer)) = listener.accept().await {
        let options = options.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            if let Some(io) = wrap(tcp, &options).await {
                connection::serve(io, peer, &options, &state).await;
            }
        });
    }
}

async fn wrap(tcp: TcpStream, options: &FakeServerOptions) -> Option<BoxIo> {
    match &options.tls {
        None => Some(Box::new(tcp)),
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(config));
            acceptor
                .accept(tcp)
                .await
                .ok()
                .map(|s| Box::new(s) as BoxIo)
        }
    }
}
