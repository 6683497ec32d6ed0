//! The server side of one MQTT 3.1.1 connection.
//!
//! What it enforces: CONNECT first ([MQTT-3.1.0-1]) and only once ([MQTT-3.1.0-2]),
//! within a CONNECT timeout; nothing after CONNECT is processed until the gateway
//! accepts it, and nothing at all if it refuses ([MQTT-3.1.4-5]); keep-alive at 1.5×
//! the client's value ([MQTT-3.1.2-24]); PINGREQ answered; UNSUBSCRIBE acknowledged;
//! outgoing QoS 1 messages tracked by packet identifier until PUBACK.
//!
//! What it leaves to the gateway (through [`Event`]s and methods): authentication
//! ([`ServerSession::accept`] / [`ServerSession::refuse`]), topic authorization and
//! granted QoS ([`ServerSession::suback`]), and when to PUBACK a device's QoS 1 message
//! ([`ServerSession::puback`], after the sink durably accepted it). QoS 2 is not
//! supported (IoT Core closes the connection): a QoS 2 PUBLISH is still delivered as an
//! event so the gateway can record why it closes; PUBREC, PUBREL and PUBCOMP close the
//! connection.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use super::Timestamp;
use super::input::InputBuffer;
use crate::codec::v5::ReasonCode;
use crate::codec::{
    ConnAck, Connect, ConnectReturnCode, DecodeOptions, Delivery, Packet, PacketType, Publish,
    SubAck, Subscribe, Unsubscribe, decode_with,
};
use crate::error::{DecodeError, EncodeError};
use crate::qos::{PacketId, QoS};
use crate::topic::TopicName;

mod v5;

pub use v5::MAX_REASON_STRING;

/// Settings of a server session.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Decoder settings (maximum packet size, strictness).
    pub decode: DecodeOptions,
    /// How long a new connection may take to send its CONNECT.
    pub connect_timeout: Duration,
    /// How many outgoing QoS 1 messages may await PUBACK at once.
    pub max_inflight: u16,
    /// MQTT 5: the Receive Maximum announced to clients (how many QoS 1 messages a
    /// client may have unacknowledged).
    pub receive_maximum: u16,
    /// MQTT 5: the Topic Alias Maximum announced to clients (aliases kept per
    /// connection; 0 turns aliases off).
    pub topic_alias_maximum: u16,
    /// Whether protocol level 5 is spoken; when off, an MQTT 5 CONNECT gets the 3.1.1
    /// CONNACK 0x01 as from a server that only knows 3.1.1.
    pub mqtt5: bool,
}

impl ServerConfig {
    /// Tolerant decoding with `max_packet_size`, a 10 s CONNECT timeout and 16 messages
    /// in flight.
    #[must_use]
    pub const fn new(max_packet_size: usize) -> Self {
        Self {
            decode: DecodeOptions::new(max_packet_size),
            connect_timeout: Duration::from_secs(10),
            max_inflight: 16,
            receive_maximum: 64,
            topic_alias_maximum: 16,
            mqtt5: true,
        }
    }

    /// The same settings with MQTT 5 on or off.
    #[must_use]
    pub const fn mqtt5(mut self, on: bool) -> Self {
        self.mqtt5 = on;
        self
    }

    /// The same settings with another MQTT 5 Receive Maximum (at least 1).
    #[must_use]
    pub const fn receive_maximum(mut self, max: u16) -> Self {
        self.receive_maximum = if max == 0 { 1 } else { max };
        self
    }

    /// The same settings with another MQTT 5 Topic Alias Maximum.
    #[must_use]
    pub const fn topic_alias_maximum(mut self, max: u16) -> Self {
        self.topic_alias_maximum = max;
        self
    }

    /// The same settings with another CONNECT timeout.
    #[must_use]
    pub const fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The same settings with another in-flight limit.
    #[must_use]
    pub const fn max_inflight(mut self, max: u16) -> Self {
        self.max_inflight = max;
        self
    }

    /// The same settings with other decoder options.
    #[must_use]
    pub const fn decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode = options;
        self
    }
}

/// Something the gateway must act on or know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The client's CONNECT: authenticate it, then call [`ServerSession::accept`] or
    /// [`ServerSession::refuse`]. Until then later input is buffered, not processed.
    Connect(Connect),
    /// An application message. For QoS 1 call [`ServerSession::puback`] once it is
    /// durably accepted.
    Publish(Publish),
    /// MQTT 5: an application message with User Properties (name, value), in their
    /// order; otherwise as [`Event::Publish`]. Without User Properties an MQTT 5
    /// message is an [`Event::Publish`].
    PublishWithProperties(Publish, Vec<(alloc::string::String, alloc::string::String)>),
    /// A subscribe request: answer with [`ServerSession::suback`].
    Subscribe(Subscribe),
    /// An unsubscribe request; the UNSUBACK has already been queued.
    Unsubscribe(Unsubscribe),
    /// The client acknowledged our QoS 1 PUBLISH with this identifier.
    Delivered(PacketId),
    /// The client sent PINGREQ (already answered): IoT Core's `lastHeartbeatTime`.
    Heartbeat,
    /// MQTT 5: the client asks to re-authenticate (AUTH, reason 0x19) with this
    /// Authentication Data, under the CONNECT's Authentication Method. Answer with
    /// [`ServerSession::reauthenticated`], or refuse with
    /// [`ServerSession::close_with_reason`] (0x87 Not authorized).
    Reauthenticate(Vec<u8>),
    /// The connection is over: send what [`ServerSession::poll_transmit`] still
    /// returns, then close the socket. Always the last event.
    Closed(CloseReason),
}

/// Why a session ended.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent bytes that are not valid MQTT 3.1.1.
    Protocol(DecodeError),
    /// The first packet was not CONNECT ([MQTT-3.1.0-1]).
    FirstPacketNotConnect(PacketType),
    /// A second CONNECT ([MQTT-3.1.0-2]).
    SecondConnect,
    /// A packet a client must not send, or a QoS 2 flow packet.
    UnexpectedPacket(PacketType),
    /// No CONNECT within the CONNECT timeout.
    ConnectTimeout,
    /// Nothing received for 1.5× the keep-alive ([MQTT-3.1.2-24]).
    KeepAliveTimeout,
    /// More input arrived while the CONNECT was being authenticated than one packet
    /// may hold.
    InputOverflow,
    /// The client sent DISCONNECT.
    ClientDisconnected,
    /// The gateway refused the CONNECT with this code.
    Refused(ConnectReturnCode),
    /// The gateway closed the session ([`ServerSession::close`]).
    ClosedByServer,
    /// MQTT 5: the client broke a rule of the connection (a Topic Alias out of range,
    /// an AUTH without a method…); the DISCONNECT with this code and text is queued.
    Violation {
        /// The DISCONNECT reason code.
        code: ReasonCode,
        /// What the client did wrong.
        message: alloc::string::String,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::FirstPacketNotConnect(p) => {
                write!(
                    f,
                    "[MQTT-3.1.0-1] the first packet must be CONNECT, found {p}"
                )
            }
            Self::SecondConnect => f.write_str("[MQTT-3.1.0-2] a second CONNECT was received"),
            Self::UnexpectedPacket(p) => write!(f, "unexpected {p} from the client"),
            Self::ConnectTimeout => f.write_str("no CONNECT received in time"),
            Self::KeepAliveTimeout => {
                f.write_str("[MQTT-3.1.2-24] the MQTT keep-alive check failed")
            }
            Self::InputOverflow => f.write_str("too much input while CONNECT was authenticated"),
            Self::ClientDisconnected => f.write_str("the client disconnected"),
            Self::Refused(code) => write!(f, "CONNECT refused with return code {}", code.as_u8()),
            Self::ClosedByServer => f.write_str("closed by the server"),
            Self::Violation { code, message } => write!(f, "{message} (reason code {code})"),
        }
    }
}

/// A call that does not fit the session's state.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// `accept`/`refuse` without a pending CONNECT.
    NoPendingConnect,
    /// `refuse` with `Accepted`.
    RefuseWithAccepted,
    /// The session is not (or no longer) connected.
    NotConnected,
    /// `max_inflight` QoS 1 messages already await PUBACK.
    InflightFull,
    /// QoS 2 is not supported.
    Qos2NotSupported,
    /// The packet identifier is not awaiting PUBACK.
    UnknownPacketId,
    /// The packet cannot be encoded.
    Encode(EncodeError),
    /// MQTT 5: the packet is larger than the client's Maximum Packet Size.
    TooLargeForClient {
        /// The packet's size in bytes.
        size: usize,
        /// The client's maximum.
        max: usize,
    },
    /// MQTT 5: no re-authentication is pending, or the connection has no
    /// Authentication Method.
    NoPendingAuth,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPendingConnect => f.write_str("no CONNECT is awaiting a decision"),
            Self::RefuseWithAccepted => f.write_str("refuse needs a non-zero return code"),
            Self::NotConnected => f.write_str("the session is not connected"),
            Self::InflightFull => f.write_str("too many QoS 1 messages await PUBACK"),
            Self::Qos2NotSupported => f.write_str("QoS 2 is not supported"),
            Self::UnknownPacketId => {
                f.write_str("no QoS 1 message with this identifier is in flight")
            }
            Self::Encode(e) => e.fmt(f),
            Self::TooLargeForClient { size, max } => write!(
                f,
                "the packet is {size} bytes; the client's Maximum Packet Size is {max}"
            ),
            Self::NoPendingAuth => f.write_str("no re-authentication awaits an answer"),
        }
    }
}

impl core::error::Error for SessionError {}

impl From<EncodeError> for SessionError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingConnect {
        deadline: Timestamp,
    },
    Authenticating {
        keep_alive: u16,
    },
    Connected {
        keep_alive: u16,
        last_received: Timestamp,
    },
    Closed,
}

/// The server side of one connection: see the [`server`](crate::session::server) module for
/// what it enforces and what it leaves to the gateway.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    received: InputBuffer,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    inflight: BTreeSet<PacketId>,
    next_id: PacketId,
    /// Set when the CONNECT asked for MQTT 5 (boxed: 3.1.1 connections pay a pointer).
    v5: Option<alloc::boxed::Box<v5::V5State>>,
}

/// Queued events a drained session keeps room for; past it the queue is released.
const EVENTS_KEPT: usize = 32;

impl ServerSession {
    /// A session for a connection accepted at `now`.
    #[must_use]
    pub fn new(config: ServerConfig, now: Timestamp) -> Self {
        Self {
            config,
            state: State::AwaitingConnect {
                deadline: now.saturating_add(config.connect_timeout),
            },
            received: InputBuffer::default(),
            transmit: Vec::new(),
            events: VecDeque::new(),
            inflight: BTreeSet::new(),
            next_id: PacketId::from(core::num::NonZeroU16::MIN),
            v5: None,
        }
    }

    /// Feeds bytes read from the socket at `now`.
    pub fn handle_input(&mut self, bytes: &[u8], now: Timestamp) {
        if self.state == State::Closed {
            return;
        }
        let mut received = core::mem::take(&mut self.received);
        received.feed(bytes, |input| self.decode_from(input, now));
        self.keep_unless_closed(received);
        if matches!(self.state, State::Authenticating { .. })
            && self.received.len() > self.config.decode.max_packet_size
        {
            self.close_with(CloseReason::InputOverflow);
        }
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let reason = match self.state {
                    State::AwaitingConnect { .. } => CloseReason::ConnectTimeout,
                    _ => {
                        self.disconnect_v5(
                            ReasonCode::KEEP_ALIVE_TIMEOUT,
                            "nothing was received for 1.5 times the Keep Alive",
                        );
                        CloseReason::KeepAliveTimeout
                    }
                };
                self.close_with(reason);
            }
            _ => {}
        }
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(core::mem::take(&mut self.transmit))
        }
    }

    /// The next event for the gateway, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > EVENTS_KEPT {
            // A burst (one read of hundreds of packets, queued while the gateway was
            // busy) is over: give its queue back rather than keep it for the
            // connection's lifetime, on every connection that ever had one.
            self.events = VecDeque::new();
        }
        event
    }

    /// Gives back the event queue's memory if it is empty, for a server whose
    /// connection waits for input (most connections are idle devices, and the queue
    /// that held their CONNECT would otherwise stay for the connection's lifetime).
    pub fn release_idle_memory(&mut self) {
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
    }

    /// Bytes this session holds in its queues and input buffer (their capacity):
    /// small while it is idle or steady, larger only during a burst.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.events.capacity() * core::mem::size_of::<Event>()
            + self.received.capacity()
            + self.transmit.capacity()
    }

    /// When [`ServerSession::handle_timeout`] must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::AwaitingConnect { deadline } => Some(deadline),
            State::Connected {
                keep_alive,
                last_received,
            } if keep_alive > 0 => {
                // [MQTT-3.1.2-24]: one and a half times the keep-alive.
                Some(
                    last_received
                        .saturating_add(Duration::from_millis(u64::from(keep_alive) * 1500)),
                )
            }
            _ => None,
        }
    }

    /// Whether the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Accepts the pending CONNECT: queues CONNACK 0 and processes buffered input.
    ///
    /// # Errors
    /// [`SessionError::NoPendingConnect`] unless an [`Event::Connect`] awaits a decision.
    pub fn accept(&mut self, session_present: bool, now: Timestamp) -> Result<(), SessionError> {
        let State::Authenticating { keep_alive } = self.state else {
            return Err(SessionError::NoPendingConnect);
        };
        if self.v5.is_some() {
            self.connack_v5(session_present, ReasonCode::SUCCESS, None);
        } else {
            ConnAck {
                session_present,
                code: ConnectReturnCode::Accepted,
            }
            .encode(&mut self.transmit);
        }
        self.state = State::Connected {
            keep_alive,
            last_received: now,
        };
        // What is buffered was sent before the CONNACK (MQTT 5 forbids AUTH there).
        self.set_before_connack(true);
        let mut received = core::mem::take(&mut self.received);
        received.resume(|input| self.decode_from(input, now));
        self.keep_unless_closed(received);
        self.set_before_connack(false);
        Ok(())
    }

    /// Refuses the pending CONNECT: queues a CONNACK with `code` and ends the session
    /// without looking at anything the client sent after its CONNECT ([MQTT-3.1.4-5]).
    ///
    /// # Errors
    /// [`SessionError::NoPendingConnect`], or [`SessionError::RefuseWithAccepted`].
    pub fn refuse(&mut self, code: ConnectReturnCode) -> Result<(), SessionError> {
        self.refuse_with(code, None, "")
    }

    /// [`ServerSession::refuse`] that tells an MQTT 5 client why: its CONNACK carries
    /// `reason` (by default the 3.1.1 code's counterpart) and `message` as its Reason
    /// String (cut to [`MAX_REASON_STRING`] bytes; empty: none). A 3.1.1 client gets
    /// the CONNACK code alone, as MQTT 3.1.1 has nowhere to put more.
    ///
    /// # Errors
    /// As [`ServerSession::refuse`].
    pub fn refuse_with(
        &mut self,
        code: ConnectReturnCode,
        reason: Option<ReasonCode>,
        message: &str,
    ) -> Result<(), SessionError> {
        if !matches!(self.state, State::Authenticating { .. }) {
            return Err(SessionError::NoPendingConnect);
        }
        if code == ConnectReturnCode::Accepted {
            return Err(SessionError::RefuseWithAccepted);
        }
        if self.v5.is_some() {
            let reason = reason.unwrap_or_else(|| v5::connack_reason(code));
            self.connack_v5(false, reason, Some(message));
        } else {
            ConnAck {
                session_present: false,
                code,
            }
            .encode(&mut self.transmit);
        }
        self.close_with(CloseReason::Refused(code));
        Ok(())
    }

    /// Acknowledges the client's QoS 1 PUBLISH `id`.
    ///
    /// # Errors
    /// [`SessionError::NotConnected`].
    pub fn puback(&mut self, id: PacketId) -> Result<(), SessionError> {
        // A successful MQTT 5 PUBACK without properties is the 3.1.1 one, byte for byte.
        self.send(&Packet::PubAck(id))
    }

    /// Answers a SUBSCRIBE.
    ///
    /// # Errors
    /// [`SessionError::NotConnected`], or an empty code list.
    pub fn suback(&mut self, ack: SubAck) -> Result<(), SessionError> {
        if self.v5.is_some() {
            return self.suback_v5(&ack);
        }
        self.send(&Packet::SubAck(ack))
    }

    /// Sends a message to the client. For QoS 1 returns the packet identifier that
    /// [`Event::Delivered`] will report once the client acknowledges it.
    ///
    /// # Errors
    /// [`SessionError::NotConnected`], [`SessionError::InflightFull`],
    /// [`SessionError::Qos2NotSupported`].
    pub fn publish(
        &mut self,
        topic: TopicName,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<Option<PacketId>, SessionError> {
        if !matches!(self.state, State::Connected { .. }) {
            return Err(SessionError::NotConnected);
        }
        match qos {
            QoS::AtMostOnce => {
                self.send_publish(Publish::at_most_once(topic, payload))?;
                Ok(None)
            }
            QoS::AtLeastOnce => {
                if self.inflight.len() >= self.inflight_limit() {
                    return Err(SessionError::InflightFull);
                }
                let id = self.allocate_id();
                let publish = Publish {
                    delivery: Delivery::AtLeastOnce(id),
                    ..Publish::at_most_once(topic, payload)
                };
                self.send_publish(publish)?;
                self.inflight.insert(id);
                Ok(Some(id))
            }
            QoS::ExactlyOnce => Err(SessionError::Qos2NotSupported),
        }
    }

    /// Sends an unacknowledged QoS 1 message again with the DUP flag and the same
    /// identifier ([MQTT-4.4.0-1] allows it only on reconnect; IoT Core redelivered
    /// config until PUBACK, and clients accept a DUP copy at any time).
    ///
    /// # Errors
    /// [`SessionError::NotConnected`], or [`SessionError::UnknownPacketId`] when `id`
    /// is not in flight (already acknowledged or forgotten).
    pub fn resend(
        &mut self,
        id: PacketId,
        topic: TopicName,
        payload: Vec<u8>,
    ) -> Result<(), SessionError> {
        if !self.inflight.contains(&id) {
            return Err(SessionError::UnknownPacketId);
        }
        let publish = Publish {
            dup: true,
            ..Publish::at_least_once(id, topic, payload)
        };
        self.send_publish(publish)
    }

    /// Stops waiting for the PUBACK of `id` (a newer message superseded it); a late
    /// PUBACK for it is then ignored. Returns whether it was in flight.
    pub fn forget(&mut self, id: PacketId) -> bool {
        self.inflight.remove(&id)
    }

    /// How many outgoing QoS 1 messages await PUBACK.
    #[must_use]
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Ends the session from the server side (token expired, device blocked, shutdown).
    pub fn close(&mut self) {
        self.close_with_reason(ReasonCode::UNSPECIFIED_ERROR, "");
    }

    /// [`ServerSession::close`] that tells an MQTT 5 client why: a DISCONNECT with
    /// `code` and `message` as its Reason String (cut to [`MAX_REASON_STRING`] bytes;
    /// empty: none). A 3.1.1 connection is closed without a packet, as 3.1.1 has none
    /// for it.
    pub fn close_with_reason(&mut self, code: ReasonCode, message: &str) {
        if self.state != State::Closed {
            self.disconnect_v5(code, message);
            self.close_with(CloseReason::ClosedByServer);
        }
    }

    fn allocate_id(&mut self) -> PacketId {
        // At most `max_inflight` (≤ 65535) ids are taken, so a free one exists.
        while self.inflight.contains(&self.next_id) {
            self.next_id = self.next_id.next();
        }
        let id = self.next_id;
        self.next_id = id.next();
        id
    }

    fn send_publish(&mut self, publish: Publish) -> Result<(), SessionError> {
        if self.v5.is_some() {
            return self.publish_v5(publish);
        }
        self.send(&Packet::Publish(publish))
    }

    fn send(&mut self, packet: &Packet) -> Result<(), SessionError> {
        if !matches!(self.state, State::Connected { .. }) {
            return Err(SessionError::NotConnected);
        }
        packet.encode(&mut self.transmit)?;
        Ok(())
    }

    fn close_with(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        self.received.clear();
        self.inflight.clear();
        self.events.push_back(Event::Closed(reason));
    }

    /// Puts the undecoded input back, or drops it if the session ended meanwhile.
    fn keep_unless_closed(&mut self, received: InputBuffer) {
        if self.state != State::Closed {
            self.received = received;
        }
    }

    /// Decodes and handles the packets at the front of `input` while the state allows
    /// (not while a CONNECT awaits the gateway's decision); returns the bytes used.
    fn decode_from(&mut self, input: &[u8], now: Timestamp) -> usize {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                State::Closed | State::Authenticating { .. } => return used,
                State::AwaitingConnect { .. } => {
                    let first = rest.first().map(|b| PacketType::from_nibble(b >> 4));
                    if let Some(Some(packet)) = first
                        && packet != PacketType::Connect
                    {
                        self.close_with(CloseReason::FirstPacketNotConnect(packet));
                        return used;
                    }
                    // Incomplete input and errors are the decoder's to report, below.
                    if let Ok(Some(crate::codec::ProtocolLevel::V5)) =
                        crate::codec::peek_connect_level(rest)
                        && self.config.mqtt5
                        && self.v5.is_none()
                    {
                        self.v5 = Some(alloc::boxed::Box::new(v5::V5State::new(&self.config)));
                    }
                }
                State::Connected { .. } => {}
            }
            if self.v5.is_some() {
                match self.decode_v5(rest, now) {
                    Some(len) => {
                        used += len;
                        continue;
                    }
                    None => return used,
                }
            }
            match decode_with(rest, &self.config.decode) {
                Ok(None) => return used,
                Ok(Some((packet, len))) => {
                    used += len;
                    self.on_packet(packet, now);
                }
                Err(error) => {
                    if let (State::AwaitingConnect { .. }, Some(code)) =
                        (self.state, error.connack_code())
                    {
                        ConnAck {
                            session_present: false,
                            code,
                        }
                        .encode(&mut self.transmit);
                    }
                    self.close_with(CloseReason::Protocol(error));
                    return used;
                }
            }
        }
    }

    fn on_packet(&mut self, packet: Packet, now: Timestamp) {
        if let State::Connected { last_received, .. } = &mut self.state {
            *last_received = now;
        }
        match (self.state, packet) {
            (State::AwaitingConnect { .. }, Packet::Connect(connect)) => {
                self.state = State::Authenticating {
                    keep_alive: connect.keep_alive,
                };
                self.events.push_back(Event::Connect(connect));
            }
            (State::Connected { .. }, packet) => self.on_connected_packet(packet),
            // `decode_from` only decodes while awaiting CONNECT (first byte checked) or
            // connected.
            (_, packet) => self.close_with(CloseReason::UnexpectedPacket(packet.packet_type())),
        }
    }

    fn on_connected_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Publish(publish) => self.events.push_back(Event::Publish(publish)),
            Packet::PubAck(id) => {
                if self.inflight.remove(&id) {
                    self.events.push_back(Event::Delivered(id));
                }
            }
            Packet::Subscribe(subscribe) => self.events.push_back(Event::Subscribe(subscribe)),
            Packet::Unsubscribe(unsubscribe) => {
                Packet::UnsubAck(unsubscribe.packet_id)
                    .encode(&mut self.transmit)
                    .ok();
                self.events.push_back(Event::Unsubscribe(unsubscribe));
            }
            Packet::PingReq => {
                Packet::PingResp.encode(&mut self.transmit).ok();
                self.events.push_back(Event::Heartbeat);
            }
            Packet::Disconnect => self.close_with(CloseReason::ClientDisconnected),
            Packet::Connect(_) => self.close_with(CloseReason::SecondConnect),
            other => self.close_with(CloseReason::UnexpectedPacket(other.packet_type())),
        }
    }
}
