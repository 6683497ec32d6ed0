//! A small in-process server that behaves like IoT Core's MQTT bridge where the SDK
//! and `tether doctor` need it to: client id and JWT checked against registered keys
//! (CONNACK 2 for an unknown device, 4 without a password, 5 for a refused token, with
//! the reason kept as `last_error`), the connection cut at `exp` + skew, one
//! connection per device (a new CONNECT kicks the old one), config sent on subscribe
//! (QoS 1) and commands, gateway attach. For tests only (feature `fake-server`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tether_iot::{ClientId, IotTopic};
use tether_jwt::{Credential, PublicKey, Rules};
use tether_mqtt::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Packet, PacketId, Publish, QoS, SubAck,
    SubAckCode, TopicFilter, TopicName, decode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use crate::clock::{Clock, SystemClock, instant_at};
use crate::transport::BoxIo;

/// How the fake server behaves.
#[derive(Debug, Clone)]
pub struct FakeServerOptions {
    /// TLS, or plain TCP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The server's clock (share a [`crate::TokioClock`] with the device under paused
    /// time).
    pub clock: Arc<dyn Clock>,
    /// JWT clock skew; the connection is cut at `exp + skew_secs`.
    pub skew_secs: i64,
    /// The CONNACK code for a well-formed client id of an unknown device.
    pub unknown_device: ConnectReturnCode,
}

impl Default for FakeServerOptions {
    fn default() -> Self {
        FakeServerOptions {
            tls: None,
            clock: Arc::new(SystemClock),
            skew_secs: 0,
            unknown_device: ConnectReturnCode::IdentifierRejected,
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client sent DISCONNECT or closed the socket.
    ClientClosed,
    /// Another connection of the same device took over.
    Kicked,
    /// The server cut it at `exp + skew` ("The authorization token expired").
    TokenExpired,
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

#[derive(Debug)]
enum Ctl {
    Deliver { topic: String, payload: Vec<u8> },
    Kick,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Vec<PublicKey>>,
    last_error: HashMap<String, String>,
    configs: HashMap<String, Vec<u8>>,
    live: HashMap<String, (usize, mpsc::UnboundedSender<Ctl>)>,
    connections: Vec<ConnRecord>,
    received: Vec<Received>,
    config_acks: usize,
    refusals: Vec<(String, ConnectReturnCode)>,
}

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
                serve(io, peer, &options, &state).await;
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

async fn write(io: &mut BoxIo, packet: &Packet) -> bool {
    let Ok(bytes) = packet.to_vec() else {
        return false;
    };
    io.write_all(&bytes).await.is_ok() && io.flush().await.is_ok()
}

/// Reads the next packet; `None` on EOF, error or garbage.
async fn read_packet(io: &mut BoxIo, buf: &mut Vec<u8>) -> Option<Packet> {
    loop {
        match decode(buf, 1 << 20) {
            Ok(Some((packet, used))) => {
                buf.drain(..used);
                return Some(packet);
            }
            Ok(None) => {}
            Err(_) => return None,
        }
        let mut chunk = [0u8; 4096];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn refuse(state: &Mutex<State>, client_id: &str, code: ConnectReturnCode, why: Option<String>) {
    let mut s = lock(state);
    s.refusals.push((client_id.to_string(), code));
    if let Some(why) = why {
        s.last_error.insert(client_id.to_string(), why);
    }
}

/// Checks a CONNECT; the token's `exp` when accepted.
fn authenticate(
    connect: &Connect,
    options: &FakeServerOptions,
    state: &Mutex<State>,
) -> Result<i64, ConnectReturnCode> {
    let id = connect.client_id.as_str();
    let Ok(client) = ClientId::parse(id) else {
        refuse(state, id, ConnectReturnCode::IdentifierRejected, None);
        return Err(ConnectReturnCode::IdentifierRejected);
    };
    let keys = lock(state).keys.get(id).cloned();
    let Some(keys) = keys else {
        let why = format!("mqtt: SERVER: device '{}' is not registered", client.device);
        refuse(state, id, options.unknown_device, Some(why));
        return Err(options.unknown_device);
    };
    let Some(token) = connect
        .password
        .as_deref()
        .and_then(|p| std::str::from_utf8(p).ok())
    else {
        let why = "mqtt: SERVER: the password (JWT) is missing or not text".to_string();
        refuse(
            state,
            id,
            ConnectReturnCode::BadUserNameOrPassword,
            Some(why),
        );
        return Err(ConnectReturnCode::BadUserNameOrPassword);
    };
    let now = i64::try_from(options.clock.unix_now()).unwrap_or(i64::MAX);
    let mut rules = Rules::new(client.project, now);
    rules.skew_secs = options.skew_secs;
    let credentials: Vec<Credential> = keys.into_iter().map(Credential::new).collect();
    match tether_jwt::verify(token, &rules, &credentials) {
        Ok(verified) => Ok(verified.exp),
        Err(refusal) => {
            let why = format!("mqtt: SERVER: {refusal}");
            refuse(state, id, ConnectReturnCode::NotAuthorized, Some(why));
            Err(ConnectReturnCode::NotAuthorized)
        }
    }
}

async fn serve(mut io: BoxIo, peer: SocketAddr, options: &FakeServerOptions, state: &Mutex<State>) {
    let mut buf = Vec::new();
    let first = tokio::time::timeout(Duration::from_secs(10), read_packet(&mut io, &mut buf)).await;
    let Ok(Some(Packet::Connect(connect))) = first else {
        return;
    };
    let exp = match authenticate(&connect, options, state) {
        Ok(exp) => exp,
        Err(code) => {
            write(
                &mut io,
                &Packet::ConnAck(ConnAck {
                    session_present: false,
                    code,
                }),
            )
            .await;
            return;
        }
    };
    let client_id = connect.client_id.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let index = {
        let mut s = lock(state);
        let index = s.connections.len();
        s.connections.push(ConnRecord {
            client_id: client_id.clone(),
            peer,
            opened_at: options.clock.unix_now(),
            token_exp: exp,
            ended: None,
        });
        if let Some((_, old)) = s.live.insert(client_id.clone(), (index, tx)) {
            let _ = old.send(Ctl::Kick);
        }
        index
    };
    let accepted = ConnAck {
        session_present: false,
        code: ConnectReturnCode::Accepted,
    };
    let mut conn = Connection {
        client_id,
        subs: Vec::new(),
        next_id: PacketId::new(1),
        config_ids: Vec::new(),
    };
    let cut_at = instant_at(
        &*options.clock,
        u64::try_from(exp + options.skew_secs).unwrap_or(0),
    );
    let ended = if write(&mut io, &Packet::ConnAck(accepted)).await {
        conn.run(&mut io, &mut buf, &mut rx, cut_at, state).await
    } else {
        Ended::ClientClosed
    };
    let mut s = lock(state);
    if let Some(record) = s.connections.get_mut(index) {
        record.ended = Some(ended);
    }
    if s.live
        .get(&conn.client_id)
        .is_some_and(|(i, _)| *i == index)
    {
        s.live.remove(&conn.client_id);
    }
}

struct Connection {
    client_id: String,
    subs: Vec<(TopicFilter, QoS)>,
    next_id: Option<PacketId>,
    config_ids: Vec<PacketId>,
}

impl Connection {
    async fn run(
        &mut self,
        io: &mut BoxIo,
        buf: &mut Vec<u8>,
        rx: &mut mpsc::UnboundedReceiver<Ctl>,
        cut_at: tokio::time::Instant,
        state: &Mutex<State>,
    ) -> Ended {
        loop {
            tokio::select! {
                packet = read_packet(io, buf) => {
                    let Some(packet) = packet else { return Ended::ClientClosed };
                    if packet == Packet::Disconnect {
                        return Ended::ClientClosed;
                    }
                    for reply in self.on_packet(packet, state) {
                        if !write(io, &reply).await {
                            return Ended::ClientClosed;
                        }
                    }
                }
                ctl = rx.recv() => match ctl {
                    Some(Ctl::Deliver { topic, payload }) => {
                        if let Some(p) = self.deliver(&topic, payload)
                            && !write(io, &p).await
                        {
                            return Ended::ClientClosed;
                        }
                    }
                    Some(Ctl::Kick) | None => return Ended::Kicked,
                },
                () = sleep_until(cut_at) => return Ended::TokenExpired,
            }
        }
    }

    fn id(&mut self) -> PacketId {
        let id = self
            .next_id
            .unwrap_or(PacketId::from(std::num::NonZeroU16::MIN));
        self.next_id = Some(id.next());
        id
    }

    /// A PUBLISH for `topic` if this connection subscribed to it.
    fn deliver(&mut self, topic: &str, payload: Vec<u8>) -> Option<Packet> {
        let name = TopicName::new(topic).ok()?;
        let qos = self
            .subs
            .iter()
            .filter(|(f, _)| f.matches(&name))
            .map(|(_, q)| *q)
            .max()?;
        let publish = match qos {
            QoS::AtMostOnce => Publish::at_most_once(name, payload),
            _ => {
                let id = self.id();
                if topic.ends_with("/config") {
                    self.config_ids.push(id);
                }
                Publish::at_least_once(id, name, payload)
            }
        };
        Some(Packet::Publish(publish))
    }

    fn on_packet(&mut self, packet: Packet, state: &Mutex<State>) -> Vec<Packet> {
        match packet {
            Packet::PingReq => vec![Packet::PingResp],
            Packet::PubAck(id) => {
                if let Some(i) = self.config_ids.iter().position(|c| *c == id) {
                    self.config_ids.remove(i);
                    lock(state).config_acks += 1;
                }
                vec![]
            }
            Packet::Subscribe(sub) => {
                let mut codes = Vec::new();
                let mut out = Vec::new();
                for s in sub.subscriptions {
                    let qos = s.qos.min(QoS::AtLeastOnce);
                    codes.push(SubAckCode::Granted(qos));
                    self.subs.push((s.filter.clone(), qos));
                    if let IotTopic::Config { device } = IotTopic::parse(s.filter.as_str()) {
                        let config = lock(state).configs.get(device).cloned();
                        out.extend(config.and_then(|c| self.deliver(s.filter.as_str(), c)));
                    }
                }
                let mut replies = vec![Packet::SubAck(SubAck {
                    packet_id: sub.packet_id,
                    codes,
                })];
                replies.extend(out);
                replies
            }
            Packet::Unsubscribe(u) => {
                self.subs.retain(|(f, _)| !u.filters.contains(f));
                vec![Packet::UnsubAck(u.packet_id)]
            }
            Packet::Publish(p) => self.on_publish(p, state),
            _ => vec![],
        }
    }

    fn on_publish(&mut self, p: Publish, state: &Mutex<State>) -> Vec<Packet> {
        let topic = p.topic.as_str().to_string();
        lock(state).received.push(Received {
            client_id: self.client_id.clone(),
            topic: topic.clone(),
            payload: p.payload.clone(),
            qos: p.delivery.qos(),
        });
        let puback = match p.delivery {
            Delivery::AtLeastOnce(id) => vec![Packet::PubAck(id)],
            _ => vec![],
        };
        let IotTopic::Attach { device } = IotTopic::parse(&topic) else {
            return puback;
        };
        // An attach succeeds only for a registered device; otherwise the gateway
        // hears about it on its errors topic and gets no PUBACK.
        let gateway = ClientId::parse(&self.client_id)
            .map(|c| c.device.to_string())
            .unwrap_or_default();
        let known = lock(state)
            .keys
            .keys()
            .any(|k| k.ends_with(&format!("/devices/{device}")));
        if known {
            return puback;
        }
        let error = serde_json::json!({
            "error_type": "GATEWAY_ATTACHMENT_ERROR",
            "description": format!("Device '{device}' does not exist."),
            "device_id": device,
        });
        let topic = format!("/devices/{gateway}/errors");
        self.deliver(&topic, error.to_string().into_bytes())
            .into_iter()
            .collect()
    }
}

/// A test CA, and a server certificate it signed for some names, as rustls wants them.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (PEM): what devices trust.
    pub ca_pem: String,
    /// The server's TLS configuration (leaf + CA chain, ECDSA P-256 key).
    pub server: Arc<rustls::ServerConfig>,
    /// The server certificate followed by the CA (PEM), for other servers (Mosquitto).
    pub server_chain_pem: String,
    /// The server's private key (PKCS#8 PEM).
    pub server_key_pem: String,
}

impl TestPki {
    /// A new CA named `ca_name` and a server certificate for `names`, valid from an
    /// hour before `now` for a day.
    pub fn new(ca_name: &str, names: &[&str], now: i64) -> Result<TestPki, String> {
        use tether_keys::KeyHandle;
        use tether_keys::ca::Ca;
        use tether_keys::cert::Validity;
        use tether_keys::generate::{KeySpec, generate};
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let validity = Validity {
            not_before: now - 3600,
            days: 1,
        };
        let ca_key = generate(KeySpec::Es256).map_err(|e| err(&e))?;
        let ca = Ca::init(
            KeyHandle::Software(ca_key),
            &format!("CN={ca_name}"),
            validity,
        )
        .map_err(|e| err(&e))?;
        let server_key = generate(KeySpec::Es256).map_err(|e| err(&e))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = ca
            .issue_server(server_key.public_key(), &names, validity)
            .map_err(|e| err(&e))?;
        let chain = vec![
            rustls::pki_types::CertificateDer::from(leaf),
            rustls::pki_types::CertificateDer::from(ca.certificate().der().to_vec()),
        ];
        let server_chain_pem = format!(
            "{}{}",
            tether_keys::convert::pem_text("CERTIFICATE", &chain[0]),
            tether_keys::convert::pem_text("CERTIFICATE", &chain[1])
        );
        let server_key_pem = tether_keys::convert::pem_text("PRIVATE KEY", &server_key.pkcs8_der());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.pkcs8_der().to_vec().into());
        let server = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| err(&e))?;
        Ok(TestPki {
            ca_pem: tether_keys::convert::pem_text("CERTIFICATE", ca.certificate().der()),
            server: Arc::new(server),
            server_chain_pem,
            server_key_pem,
        })
    }
}
