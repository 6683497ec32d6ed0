//! The client side of one MQTT 3.1.1 connection, sans-io: the device SDK, the
//! simulator and `tether doctor` drive it from their own sockets and clocks.
//!
//! ```text
//!  connect(CONNECT, now) ─▶ AwaitingConnAck ──CONNACK 0──▶ Connected ──▶ Closed(reason)
//!                               │ CONNACK ≠ 0 / timeout          │ keep-alive missed,
//!                               ▼                                │ peer error, close()
//!                            Closed(Refused | Timeout)  ◀────────┘
//! ```
//!
//! * **QoS 1 out:** [`ClientSession::publish`] hands out packet ids and keeps the
//!   message until its PUBACK. A message published while not connected waits; after
//!   the next CONNACK every unacknowledged message is sent again (DUP set).
//!   [`ClientSession::adopt`] carries them over to the session of a new connection,
//!   which is how a reconnect with a fresh token loses nothing.
//! * **QoS 1 in:** an incoming PUBLISH becomes [`ClientEvent::Message`] with its id;
//!   the PUBACK is sent only when the application calls [`ClientSession::ack`], i.e.
//!   once it has taken the message (IoT Core redelivers an unacknowledged config).
//! * **Keep-alive:** a PINGREQ after `keep_alive` without sending anything; no answer
//!   (PINGRESP or any packet) within `ping_timeout` closes the session.
//! * Time is a [`Timestamp`] passed in; nothing here reads a clock.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::Timestamp;
use super::input::InputBuffer;
use crate::codec::v5::{Connect5, ReasonCode};
use crate::codec::{ConnAck, Connect, ConnectReturnCode, Delivery, Packet, Publish};
use crate::codec::{SubAckCode, Subscribe, Subscription, Unsubscribe};
use crate::error::{DecodeError, EncodeError};
use crate::qos::{PacketId, QoS};
use crate::topic::{TopicFilter, TopicName};

/// Timings and limits of a client session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// How long to wait for CONNACK after sending CONNECT.
    pub connack_timeout: Duration,
    /// How long to wait for any packet after a PINGREQ.
    pub ping_timeout: Duration,
    /// The largest packet accepted from the server.
    pub max_packet_size: usize,
    /// Most QoS 1 messages waiting for PUBACK; more are refused with
    /// [`ClientError::InflightFull`].
    pub max_inflight: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connack_timeout: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(10),
            // IoT Core's largest message (a 256 KB command) plus headers.
            max_packet_size: 256 * 1024 + 1024,
            max_inflight: 100,
        }
    }
}

/// Why a client session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server answered CONNACK with a refusal.
    Refused(ConnectReturnCode),
    /// No CONNACK within `connack_timeout`.
    ConnAckTimeout,
    /// No answer to a PINGREQ within `ping_timeout`.
    KeepAliveTimeout,
    /// The server sent bytes that are not MQTT 3.1.1.
    Protocol(DecodeError),
    /// The server sent a packet a server must not send, or out of order.
    Unexpected(&'static str),
    /// The application closed the session (DISCONNECT queued).
    Disconnected,
    /// The transport ended (reported by the driver).
    TransportClosed,
    /// MQTT 5: the server refused the CONNECT with this reason code and, if it gave
    /// one, its Reason String.
    RefusedV5 {
        /// The Connect Reason Code.
        code: ReasonCode,
        /// The server's explanation.
        reason: Option<alloc::string::String>,
    },
    /// MQTT 5: the server ended the connection with DISCONNECT.
    ServerDisconnected {
        /// The Disconnect Reason Code.
        code: ReasonCode,
        /// The server's explanation.
        reason: Option<alloc::string::String>,
    },
}

impl CloseReason {
    /// The server's Reason String, when it sent one (MQTT 5).
    #[must_use]
    pub fn reason_string(&self) -> Option<&str> {
        match self {
            Self::RefusedV5 { reason, .. } | Self::ServerDisconnected { reason, .. } => {
                reason.as_deref()
            }
            _ => None,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(code) => write!(f, "connection refused: CONNACK {}", code.as_u8()),
            Self::ConnAckTimeout => f.write_str("no CONNACK from the server in time"),
            Self::KeepAliveTimeout => f.write_str("the server did not answer PINGREQ in time"),
            Self::Protocol(e) => write!(f, "the server broke the protocol: {e}"),
            Self::Unexpected(what) => write!(f, "the server sent {what}"),
            Self::Disconnected => f.write_str("disconnected by the client"),
            Self::TransportClosed => f.write_str("the connection was closed"),
            Self::RefusedV5 { code, reason } => {
                write!(f, "connection refused: CONNACK {code}")?;
                reason_suffix(f, reason.as_deref())
            }
            Self::ServerDisconnected { code, reason } => {
                write!(f, "the server disconnected: {code}")?;
                reason_suffix(f, reason.as_deref())
            }
        }
    }
}

fn reason_suffix(f: &mut fmt::Formatter<'_>, reason: Option<&str>) -> fmt::Result {
    match reason {
        Some(reason) => write!(f, ": {reason}"),
        None => Ok(()),
    }
}

/// Why a request to the session was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// QoS 0 and SUBSCRIBE need a connection; QoS 1 messages wait for one instead.
    NotConnected,
    /// The session is closed; make a new one.
    Closed,
    /// `max_inflight` QoS 1 messages are waiting for PUBACK.
    InflightFull,
    /// QoS 2 is not supported (IoT Core closes the connection on it).
    QoS2,
    /// The packet cannot be encoded.
    Encode(EncodeError),
    /// MQTT 5 re-authentication needs an MQTT 5 connection made with an
    /// Authentication Method.
    NoAuthMethod,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected"),
            Self::Closed => f.write_str("the session is closed"),
            Self::InflightFull => f.write_str("too many QoS 1 messages waiting for PUBACK"),
            Self::QoS2 => f.write_str("QoS 2 is not supported by IoT Core"),
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
            Self::NoAuthMethod => f.write_str(
                "re-authentication needs an MQTT 5 connection with an Authentication Method",
            ),
        }
    }
}

impl core::error::Error for ClientError {}

impl From<EncodeError> for ClientError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// CONNACK 0.
    Connected {
        /// The server's Session Present flag.
        session_present: bool,
    },
    /// A message from the server. With `ack: Some(id)` call
    /// [`ClientSession::ack`] once the message has been taken.
    Message {
        /// The topic.
        topic: TopicName,
        /// The payload.
        payload: Vec<u8>,
        /// The id to acknowledge (QoS 1).
        ack: Option<PacketId>,
        /// The server's DUP flag.
        dup: bool,
    },
    /// PUBACK for one of our QoS 1 messages.
    Published(PacketId),
    /// SUBACK: one code per filter, in order.
    Subscribed {
        /// The SUBSCRIBE's id.
        id: PacketId,
        /// The granted QoS or failure per filter.
        codes: Vec<SubAckCode>,
    },
    /// UNSUBACK.
    Unsubscribed(PacketId),
    /// MQTT 5: the server accepted [`ClientSession::reauthenticate`] (AUTH Success).
    Reauthenticated,
    /// The session ended; the driver closes the transport.
    Closed(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    AwaitingConnAck { deadline: Timestamp },
    Connected,
    Closed(CloseReason),
}

/// One client connection's MQTT state. See the module docs.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    keep_alive: Duration,
    received: InputBuffer,
    tx: Vec<u8>,
    events: VecDeque<ClientEvent>,
    next_id: PacketId,
    /// QoS 1 messages waiting for PUBACK, by packet id, with whether they were sent on
    /// this connection yet.
    inflight: BTreeMap<u16, (Publish, bool)>,
    last_sent: Timestamp,
    ping_deadline: Option<Timestamp>,
    /// Set by [`ClientSession::connect_v5`].
    v5: Option<alloc::boxed::Box<ClientV5>>,
}

/// What an MQTT 5 client session keeps beyond a 3.1.1 one.
#[derive(Debug)]
struct ClientV5 {
    auth_method: Option<alloc::string::String>,
    reauth_pending: bool,
    /// The server's Receive Maximum (our QoS 1 messages it takes unacknowledged).
    receive_maximum: usize,
}

impl ClientSession {
    /// A session that has not connected yet.
    #[must_use]
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            keep_alive: Duration::ZERO,
            received: InputBuffer::default(),
            tx: Vec::new(),
            events: VecDeque::new(),
            next_id: PacketId::new(1).unwrap_or(PacketId::from(core::num::NonZeroU16::MIN)),
            inflight: BTreeMap::new(),
            last_sent: Timestamp::default(),
            ping_deadline: None,
            v5: None,
        }
    }

    /// Takes over the unacknowledged QoS 1 messages and the packet-id counter of the
    /// session of a previous connection; they are sent again after this session's
    /// CONNACK, or at once if it is already connected. Call it before this session
    /// hands out packet ids.
    pub fn adopt(&mut self, previous: ClientSession, now: Timestamp) {
        for (id, (mut publish, _)) in previous.inflight {
            publish.dup = true;
            self.inflight.insert(id, (publish, false));
        }
        if previous.next_id > self.next_id {
            self.next_id = previous.next_id;
        }
        if self.is_connected() {
            self.resend_inflight(now);
        }
    }

    /// Queues CONNECT and starts the CONNACK timer.
    ///
    /// # Errors
    /// [`ClientError::Closed`] if this session already connected once;
    /// [`ClientError::Encode`] for an unencodable CONNECT.
    pub fn connect(&mut self, connect: &Connect, now: Timestamp) -> Result<(), ClientError> {
        if self.state != State::Idle {
            return Err(ClientError::Closed);
        }
        connect.encode(&mut self.tx)?;
        self.keep_alive = Duration::from_secs(u64::from(connect.keep_alive));
        self.last_sent = now;
        self.state = State::AwaitingConnAck {
            deadline: now.saturating_add(self.config.connack_timeout),
        };
        Ok(())
    }

    /// [`ClientSession::connect`] in MQTT 5: the CONNECT with its properties (an
    /// Authentication Method makes [`ClientSession::reauthenticate`] possible). The
    /// rest of the session speaks MQTT 5. A server that knows only 3.1.1 answers with
    /// its CONNACK 0x01, reported as [`CloseReason::Refused`] with
    /// `UnacceptableProtocolVersion`, so the caller can try again with 3.1.1.
    ///
    /// # Errors
    /// As [`ClientSession::connect`].
    pub fn connect_v5(&mut self, connect: &Connect5, now: Timestamp) -> Result<(), ClientError> {
        if self.state != State::Idle {
            return Err(ClientError::Closed);
        }
        crate::codec::v5::Packet5::Connect(alloc::boxed::Box::new(connect.clone()))
            .encode(&mut self.tx)?;
        self.v5 = Some(alloc::boxed::Box::new(ClientV5 {
            auth_method: connect.properties.auth_method.clone(),
            reauth_pending: false,
            receive_maximum: usize::from(u16::MAX),
        }));
        self.keep_alive = Duration::from_secs(u64::from(connect.connect.keep_alive));
        self.last_sent = now;
        self.state = State::AwaitingConnAck {
            deadline: now.saturating_add(self.config.connack_timeout),
        };
        Ok(())
    }

    /// Whether the session speaks MQTT 5.
    #[must_use]
    pub fn is_v5(&self) -> bool {
        self.v5.is_some()
    }

    /// MQTT 5: re-authenticates on the live connection (AUTH, Re-authenticate) with
    /// new Authentication Data under the CONNECT's method; the server answers
    /// [`ClientEvent::Reauthenticated`], or a DISCONNECT that says why not.
    ///
    /// # Errors
    /// [`ClientError::NotConnected`], [`ClientError::NoAuthMethod`].
    pub fn reauthenticate(&mut self, data: Vec<u8>, now: Timestamp) -> Result<(), ClientError> {
        if !self.is_connected() {
            return Err(ClientError::NotConnected);
        }
        let Some(v5) = self.v5.as_mut() else {
            return Err(ClientError::NoAuthMethod);
        };
        let Some(method) = v5.auth_method.clone() else {
            return Err(ClientError::NoAuthMethod);
        };
        let auth = crate::codec::v5::Packet5::Auth(crate::codec::v5::ReasonPacket {
            reason: ReasonCode::REAUTHENTICATE,
            properties: crate::codec::v5::Properties {
                auth_method: Some(method),
                auth_data: Some(data),
                ..crate::codec::v5::Properties::default()
            },
        });
        auth.encode(&mut self.tx)?;
        v5.reauth_pending = true;
        self.last_sent = now;
        Ok(())
    }

    /// Whether CONNACK 0 has been received and the session has not ended.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Why the session ended, once it has.
    #[must_use]
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// QoS 1 messages still waiting for PUBACK.
    #[must_use]
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Publishes a message. QoS 1 returns its packet id ([`ClientEvent::Published`]
    /// reports the PUBACK); before CONNACK it waits and is sent after it.
    ///
    /// # Errors
    /// QoS 0 while not connected, QoS 2, a full in-flight window, a closed session.
    pub fn publish(
        &mut self,
        topic: TopicName,
        payload: Vec<u8>,
        qos: QoS,
        now: Timestamp,
    ) -> Result<Option<PacketId>, ClientError> {
        if matches!(self.state, State::Closed(_)) {
            return Err(ClientError::Closed);
        }
        match qos {
            QoS::ExactlyOnce => Err(ClientError::QoS2),
            QoS::AtMostOnce => {
                if !self.is_connected() {
                    return Err(ClientError::NotConnected);
                }
                self.send(&Packet::Publish(Publish::at_most_once(topic, payload)), now)?;
                Ok(None)
            }
            QoS::AtLeastOnce => {
                let limit = self.v5.as_ref().map_or(self.config.max_inflight, |v5| {
                    self.config.max_inflight.min(v5.receive_maximum)
                });
                if self.inflight.len() >= limit {
                    return Err(ClientError::InflightFull);
                }
                let id = self.allocate_id();
                let publish = Publish::at_least_once(id, topic, payload);
                let connected = self.is_connected();
                if connected {
                    self.send(&Packet::Publish(publish.clone()), now)?;
                }
                self.inflight.insert(id.get(), (publish, connected));
                Ok(Some(id))
            }
        }
    }

    /// Subscribes to filters; [`ClientEvent::Subscribed`] reports the SUBACK.
    ///
    /// # Errors
    /// Not connected, no filters, or unencodable.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, QoS)>,
        now: Timestamp,
    ) -> Result<PacketId, ClientError> {
        if !self.is_connected() {
            return Err(ClientError::NotConnected);
        }
        let id = self.allocate_id();
        let subscriptions = filters
            .into_iter()
            .map(|(filter, qos)| Subscription { filter, qos })
            .collect();
        self.send(
            &Packet::Subscribe(Subscribe {
                packet_id: id,
                subscriptions,
            }),
            now,
        )?;
        Ok(id)
    }

    /// Unsubscribes from filters; [`ClientEvent::Unsubscribed`] reports the UNSUBACK.
    ///
    /// # Errors
    /// Not connected, no filters, or unencodable.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        now: Timestamp,
    ) -> Result<PacketId, ClientError> {
        if !self.is_connected() {
            return Err(ClientError::NotConnected);
        }
        let id = self.allocate_id();
        self.send(
            &Packet::Unsubscribe(Unsubscribe {
                packet_id: id,
                filters,
            }),
            now,
        )?;
        Ok(id)
    }

    /// Acknowledges an incoming QoS 1 message the application has taken. Ignored when
    /// the session is no longer connected (the server redelivers on the next one).
    pub fn ack(&mut self, id: PacketId, now: Timestamp) {
        if self.is_connected() {
            // A two-byte PUBACK always encodes.
            let _ = self.send(&Packet::PubAck(id), now);
        }
    }

    /// Queues DISCONNECT (when connected) and ends the session.
    pub fn disconnect(&mut self) {
        if self.is_connected() {
            let _ = self.encode(&Packet::Disconnect);
        }
        self.close(CloseReason::Disconnected);
    }

    /// The driver's transport ended (EOF or error).
    pub fn transport_closed(&mut self) {
        self.close(CloseReason::TransportClosed);
    }

    /// Feeds bytes received from the server.
    pub fn handle_input(&mut self, bytes: &[u8], now: Timestamp) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        let mut received = core::mem::take(&mut self.received);
        received.feed(bytes, |input| self.decode_from(input, now));
        self.received = received;
    }

    /// Decodes and handles the packets at the front of `input` until the session
    /// closes; returns the bytes used.
    fn decode_from(&mut self, input: &[u8], now: Timestamp) -> usize {
        let mut used = 0;
        while !matches!(self.state, State::Closed(_)) {
            if self.v5.is_some() {
                match self.decode_v5(&input[used..], now) {
                    Some(len) => {
                        used += len;
                        continue;
                    }
                    None => break,
                }
            }
            match crate::codec::decode(&input[used..], self.config.max_packet_size) {
                Ok(Some((packet, len))) => {
                    used += len;
                    self.on_packet(packet, now);
                }
                Ok(None) => break,
                Err(e) => {
                    self.close(CloseReason::Protocol(e));
                    break;
                }
            }
        }
        used
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self.state {
            State::AwaitingConnAck { deadline } if now >= deadline => {
                self.close(CloseReason::ConnAckTimeout);
            }
            State::Connected => {
                if self.ping_deadline.is_some_and(|d| now >= d) {
                    self.close(CloseReason::KeepAliveTimeout);
                } else if self.ping_deadline.is_none()
                    && !self.keep_alive.is_zero()
                    && now >= self.last_sent.saturating_add(self.keep_alive)
                {
                    let _ = self.send(&Packet::PingReq, now);
                    self.ping_deadline = Some(now.saturating_add(self.config.ping_timeout));
                }
            }
            _ => {}
        }
    }

    /// The bytes to write to the transport, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.tx.is_empty() {
            None
        } else {
            Some(core::mem::take(&mut self.tx))
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`ClientSession::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::AwaitingConnAck { deadline } => Some(deadline),
            State::Connected => match self.ping_deadline {
                Some(deadline) => Some(deadline),
                None if self.keep_alive.is_zero() => None,
                None => Some(self.last_sent.saturating_add(self.keep_alive)),
            },
            _ => None,
        }
    }

    fn allocate_id(&mut self) -> PacketId {
        // Skip ids still in flight; the window is far smaller than 65,535.
        let mut id = self.next_id;
        while self.inflight.contains_key(&id.get()) {
            id = id.next();
        }
        self.next_id = id.next();
        id
    }

    fn send(&mut self, packet: &Packet, now: Timestamp) -> Result<(), ClientError> {
        self.encode(packet)?;
        self.last_sent = now;
        Ok(())
    }

    /// Appends `packet` to the output in the session's protocol version.
    fn encode(&mut self, packet: &Packet) -> Result<(), EncodeError> {
        if self.v5.is_some() {
            return v5_client::upgrade(packet).encode(&mut self.tx);
        }
        packet.encode(&mut self.tx)
    }

    fn close(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        for (publish, sent) in self.inflight.values_mut() {
            if *sent {
                publish.dup = true;
                *sent = false;
            }
        }
        self.ping_deadline = None;
        self.state = State::Closed(reason.clone());
        self.events.push_back(ClientEvent::Closed(reason));
    }

    fn on_packet(&mut self, packet: Packet, now: Timestamp) {
        // Any packet from the server proves it is alive.
        self.ping_deadline = None;
        match (&self.state, packet) {
            (State::AwaitingConnAck { .. }, Packet::ConnAck(ConnAck { code, .. }))
                if code != ConnectReturnCode::Accepted =>
            {
                self.close(CloseReason::Refused(code));
            }
            (State::AwaitingConnAck { .. }, Packet::ConnAck(ack)) => {
                self.state = State::Connected;
                self.events.push_back(ClientEvent::Connected {
                    session_present: ack.session_present,
                });
                self.resend_inflight(now);
            }
            (State::AwaitingConnAck { .. }, _) => {
                self.close(CloseReason::Unexpected("a packet before CONNACK"));
            }
            (State::Connected, Packet::Publish(p)) => match p.delivery {
                Delivery::ExactlyOnce(_) => {
                    self.close(CloseReason::Unexpected("a QoS 2 PUBLISH"));
                }
                delivery => self.events.push_back(ClientEvent::Message {
                    topic: p.topic,
                    payload: p.payload,
                    ack: delivery.packet_id(),
                    dup: p.dup,
                }),
            },
            // A PUBACK for an id we no longer hold (a duplicate) is ignored below.
            (State::Connected, Packet::PubAck(id)) if self.inflight.remove(&id.get()).is_some() => {
                self.events.push_back(ClientEvent::Published(id));
            }
            (State::Connected, Packet::PubAck(_)) => {}
            (State::Connected, Packet::SubAck(ack)) => {
                self.events.push_back(ClientEvent::Subscribed {
                    id: ack.packet_id,
                    codes: ack.codes,
                });
            }
            (State::Connected, Packet::UnsubAck(id)) => {
                self.events.push_back(ClientEvent::Unsubscribed(id));
            }
            (State::Connected, Packet::PingResp) => {}
            (State::Connected, _) => {
                self.close(CloseReason::Unexpected(
                    "a packet only clients send, or CONNACK twice",
                ));
            }
            _ => {}
        }
    }

    fn resend_inflight(&mut self, now: Timestamp) {
        let mut out = core::mem::take(&mut self.tx);
        let before = out.len();
        let v5 = self.v5.is_some();
        for (publish, sent) in self.inflight.values_mut() {
            if *sent {
                continue;
            }
            let packet = Packet::Publish(publish.clone());
            let encoded = if v5 {
                v5_client::upgrade(&packet).encode(&mut out)
            } else {
                packet.encode(&mut out)
            };
            *sent = encoded.is_ok();
        }
        if out.len() > before {
            self.last_sent = now;
        }
        self.tx = out;
    }
}

mod v5_client;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SubAck;
    use alloc::vec;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn topic(s: &str) -> TopicName {
        TopicName::new(s).unwrap_or_else(|_| unreachable!())
    }

    fn server_packets(bytes: &[u8]) -> Vec<Packet> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Ok(Some((p, n))) = crate::codec::decode(rest, 1 << 20) {
            out.push(p);
            rest = &rest[n..];
        }
        out
    }

    fn connected() -> ClientSession {
        let mut s = ClientSession::new(ClientConfig::default());
        let mut c = Connect::new("projects/p/locations/l/registries/r/devices/d");
        c.keep_alive = 60;
        assert_eq!(s.connect(&c, t(0)), Ok(()));
        let sent = s.poll_transmit().unwrap_or_default();
        assert!(matches!(server_packets(&sent)[..], [Packet::Connect(_)]));
        let ack = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        });
        s.handle_input(&ack.to_vec().unwrap_or_default(), t(5));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Connected {
                session_present: false
            })
        );
        s
    }

    #[test]
    fn many_messages_in_one_read_give_the_same_events_as_any_split() {
        let mut input = Vec::new();
        for i in 0..100u16 {
            let payload = vec![0x5a; if i % 25 == 0 { 300 } else { 4 }];
            let publish = match PacketId::new(i + 1) {
                Some(id) if i % 2 == 1 => {
                    Publish::at_least_once(id, topic("/devices/d/config"), payload)
                }
                _ => Publish::at_most_once(topic("/devices/d/commands"), payload),
            };
            input.extend(Packet::Publish(publish).to_vec().unwrap_or_default());
        }
        let events_in_reads_of = |chunk: usize| {
            let mut s = connected();
            let mut events = Vec::new();
            for piece in input.chunks(chunk) {
                s.handle_input(piece, t(10));
                events.extend(core::iter::from_fn(|| s.poll_event()));
            }
            events
        };
        let whole = events_in_reads_of(input.len());
        assert_eq!(whole.len(), 100);
        assert!(
            whole
                .iter()
                .all(|e| matches!(e, ClientEvent::Message { .. })),
            "{whole:?}"
        );
        for chunk in [1, 3, 64, 1000] {
            assert_eq!(events_in_reads_of(chunk), whole, "{chunk}-byte reads");
        }
    }

    #[test]
    fn refusal_and_connack_timeout_close_the_session() {
        let mut s = ClientSession::new(ClientConfig::default());
        assert_eq!(s.connect(&Connect::new("c"), t(0)), Ok(()));
        let refuse = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::NotAuthorized,
        });
        s.handle_input(&refuse.to_vec().unwrap_or_default(), t(1));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Closed(CloseReason::Refused(
                ConnectReturnCode::NotAuthorized
            )))
        );

        let mut s = ClientSession::new(ClientConfig::default());
        assert_eq!(s.connect(&Connect::new("c"), t(0)), Ok(()));
        assert_eq!(s.poll_timeout(), Some(t(10_000)));
        s.handle_timeout(t(9_999));
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(t(10_000));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Closed(CloseReason::ConnAckTimeout))
        );
    }

    #[test]
    fn qos1_waits_for_puback_and_is_resent_by_the_next_session() {
        let mut s = connected();
        let id = s
            .publish(topic("/devices/d/events"), vec![1], QoS::AtLeastOnce, t(10))
            .ok()
            .flatten();
        let Some(id) = id else {
            panic!("QoS 1 has an id")
        };
        assert_eq!(s.inflight(), 1);
        s.transport_closed();
        assert_eq!(
            s.publish(topic("/devices/d/events"), vec![], QoS::AtMostOnce, t(11)),
            Err(ClientError::Closed)
        );

        let mut next = ClientSession::new(ClientConfig::default());
        next.adopt(s, t(20));
        assert_eq!(next.connect(&Connect::new("c"), t(20)), Ok(()));
        let _ = next.poll_transmit();
        let ack = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        });
        next.handle_input(&ack.to_vec().unwrap_or_default(), t(21));
        let resent = server_packets(&next.poll_transmit().unwrap_or_default());
        let [Packet::Publish(p)] = &resent[..] else {
            panic!("resent after CONNACK: {resent:?}")
        };
        assert!(p.dup);
        assert_eq!(p.delivery.packet_id(), Some(id));
        let puback = Packet::PubAck(id).to_vec().unwrap_or_default();
        next.handle_input(&puback, t(22));
        let _ = next.poll_event();
        assert_eq!(next.poll_event(), Some(ClientEvent::Published(id)));
        assert_eq!(next.inflight(), 0);
    }

    #[test]
    fn incoming_qos1_is_acked_only_when_the_app_says_so() {
        let mut s = connected();
        let Some(pid) = PacketId::new(7) else {
            panic!("7 is not 0")
        };
        let msg = Packet::Publish(Publish::at_least_once(
            pid,
            topic("/devices/d/config"),
            vec![9],
        ));
        s.handle_input(&msg.to_vec().unwrap_or_default(), t(30));
        assert!(matches!(
            s.poll_event(),
            Some(ClientEvent::Message { ack: Some(id), .. }) if id == pid
        ));
        assert_eq!(s.poll_transmit(), None, "no PUBACK before the app took it");
        s.ack(pid, t(31));
        assert_eq!(
            server_packets(&s.poll_transmit().unwrap_or_default()),
            vec![Packet::PubAck(pid)]
        );
    }

    #[test]
    fn keep_alive_pings_then_times_out() {
        let mut s = connected();
        assert_eq!(s.poll_timeout(), Some(t(60_000)));
        s.handle_timeout(t(60_000));
        assert_eq!(
            server_packets(&s.poll_transmit().unwrap_or_default()),
            vec![Packet::PingReq]
        );
        assert_eq!(s.poll_timeout(), Some(t(70_000)));
        s.handle_input(&Packet::PingResp.to_vec().unwrap_or_default(), t(60_010));
        assert_eq!(s.poll_timeout(), Some(t(120_000)));
        s.handle_timeout(t(120_000));
        let _ = s.poll_transmit();
        s.handle_timeout(t(130_000));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Closed(CloseReason::KeepAliveTimeout))
        );
    }

    #[test]
    fn suback_and_garbage() {
        let mut s = connected();
        let filter = TopicFilter::new("/devices/d/config").unwrap_or_else(|_| unreachable!());
        let Ok(id) = s.subscribe(vec![(filter, QoS::AtLeastOnce)], t(40)) else {
            panic!("connected")
        };
        let ack = Packet::SubAck(SubAck {
            packet_id: id,
            codes: vec![SubAckCode::Failure],
        });
        s.handle_input(&ack.to_vec().unwrap_or_default(), t(41));
        assert_eq!(
            s.poll_event(),
            Some(ClientEvent::Subscribed {
                id,
                codes: vec![SubAckCode::Failure]
            })
        );
        s.handle_input(&[0xf0, 0x00], t(42));
        assert!(matches!(
            s.poll_event(),
            Some(ClientEvent::Closed(CloseReason::Protocol(_)))
        ));
    }
}
