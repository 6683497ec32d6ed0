//! The MQTT 5 side of [`ServerSession`]: chosen by the CONNECT's protocol level, it
//! decodes with the MQTT 5 codec, resolves Topic Aliases, honours the client's
//! Receive Maximum and Maximum Packet Size, answers with reason codes and reason
//! strings, and turns AUTH (Re-authenticate) into [`Event::Reauthenticate`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{CloseReason, Event, ServerConfig, ServerSession, SessionError, State};
use crate::codec::v5::{
    self, Ack5, ConnAck5, Packet5, Properties, PropertyError, Publish5, ReasonCode, ReasonPacket,
    SubAck5,
};
use crate::codec::{ConnectReturnCode, Publish, SubAck, SubAckCode};
use crate::error::DecodeError;
use crate::qos::QoS;
use crate::session::Timestamp;
use crate::topic::TopicName;

/// Longest Reason String sent, in bytes: enough for a precise refusal, small enough
/// for a device's log line.
pub const MAX_REASON_STRING: usize = 512;

/// What an MQTT 5 connection keeps beyond a 3.1.1 one.
#[derive(Debug)]
pub(super) struct V5State {
    /// Topics by alias (index = alias − 1), as many as announced.
    aliases: Vec<Option<TopicName>>,
    /// The client's Receive Maximum: its limit on our unacknowledged QoS 1 messages.
    receive_maximum: u16,
    /// The client's Maximum Packet Size.
    maximum_packet_size: usize,
    /// The CONNECT's Authentication Method, echoed on CONNACK and required on AUTH.
    auth_method: Option<String>,
    /// Request Problem Information: without it, reason strings go only on CONNACK,
    /// DISCONNECT and PUBLISH (§3.1.2.11.7).
    problem_info: bool,
    /// The Session Expiry Interval asked for; we keep no session, so CONNACK says 0.
    session_expiry: u32,
    /// The CONNECT's properties until the gateway decided on it.
    connect: Option<Properties>,
    /// A Re-authenticate is waiting for the gateway's answer.
    reauth_pending: bool,
    /// Input sent before the CONNACK is being decoded (right after `accept`).
    before_connack: bool,
}

impl V5State {
    pub(super) fn new(config: &ServerConfig) -> Self {
        Self {
            aliases: alloc::vec![None; usize::from(config.topic_alias_maximum)],
            receive_maximum: u16::MAX,
            maximum_packet_size: usize::MAX,
            auth_method: None,
            problem_info: true,
            session_expiry: 0,
            connect: None,
            reauth_pending: false,
            before_connack: false,
        }
    }
}

/// The MQTT 5 Connect Reason Code for a 3.1.1 return code.
pub(super) fn connack_reason(code: ConnectReturnCode) -> ReasonCode {
    match code {
        ConnectReturnCode::Accepted => ReasonCode::SUCCESS,
        ConnectReturnCode::UnacceptableProtocolVersion => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        ConnectReturnCode::IdentifierRejected => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
        ConnectReturnCode::ServerUnavailable => ReasonCode::SERVER_UNAVAILABLE,
        ConnectReturnCode::BadUserNameOrPassword => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        ConnectReturnCode::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
    }
}

/// The reason code that reports a decode error to an MQTT 5 peer.
fn decode_reason(error: &DecodeError) -> ReasonCode {
    match error {
        DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
        DecodeError::ProtocolName | DecodeError::UnsupportedProtocolLevel { .. } => {
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
        }
        DecodeError::Property {
            error: PropertyError::Truncated,
            ..
        } => ReasonCode::MALFORMED_PACKET,
        DecodeError::Property { .. }
        | DecodeError::InvalidReasonCode { .. }
        | DecodeError::SubscriptionOptions { .. }
        | DecodeError::ZeroPacketId { .. } => ReasonCode::PROTOCOL_ERROR,
        _ => ReasonCode::MALFORMED_PACKET,
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl ServerSession {
    /// Whether the connection speaks MQTT 5 (known once its CONNECT was read).
    #[must_use]
    pub fn is_v5(&self) -> bool {
        self.v5.is_some()
    }

    /// MQTT 5: the pending CONNECT's properties (Authentication Method and Data, …),
    /// until the gateway accepts or refuses it.
    #[must_use]
    pub fn connect_properties(&self) -> Option<&Properties> {
        self.v5.as_ref()?.connect.as_ref()
    }

    /// MQTT 5: the connection's Authentication Method, if its CONNECT named one.
    #[must_use]
    pub fn auth_method(&self) -> Option<&str> {
        self.v5.as_ref()?.auth_method.as_deref()
    }

    /// Answers a pending [`Event::Reauthenticate`]: AUTH Success under the
    /// connection's method. The connection goes on as before.
    ///
    /// # Errors
    /// [`SessionError::NoPendingAuth`], or [`SessionError::NotConnected`].
    pub fn reauthenticated(&mut self) -> Result<(), SessionError> {
        if !matches!(self.state, State::Connected { .. }) {
            return Err(SessionError::NotConnected);
        }
        let Some(v5) = self.v5.as_mut().filter(|v5| v5.reauth_pending) else {
            return Err(SessionError::NoPendingAuth);
        };
        v5.reauth_pending = false;
        let packet = Packet5::Auth(ReasonPacket {
            reason: ReasonCode::SUCCESS,
            properties: Properties {
                auth_method: v5.auth_method.clone(),
                ..Properties::default()
            },
        });
        self.send5(&packet)
    }

    /// Marks input decoded from now on as sent before the CONNACK (or not).
    pub(super) fn set_before_connack(&mut self, before: bool) {
        if let Some(v5) = self.v5.as_mut() {
            v5.before_connack = before;
        }
    }

    pub(super) fn inflight_limit(&self) -> usize {
        let mut limit = self.config.max_inflight;
        if let Some(v5) = &self.v5 {
            limit = limit.min(v5.receive_maximum);
        }
        usize::from(limit)
    }

    /// Encodes `packet` if it fits the client's Maximum Packet Size.
    fn send5(&mut self, packet: &Packet5) -> Result<(), SessionError> {
        let max = self
            .v5
            .as_ref()
            .map_or(usize::MAX, |v5| v5.maximum_packet_size);
        let bytes = packet.to_vec()?;
        if bytes.len() > max {
            return Err(SessionError::TooLargeForClient {
                size: bytes.len(),
                max,
            });
        }
        self.transmit.extend_from_slice(&bytes);
        Ok(())
    }

    /// Sends `packet` with `reason_string` in its properties when it fits, else
    /// without (§3.1.2.11.4 lets the server drop it to stay under the maximum).
    fn send5_with_reason(
        &mut self,
        mut packet: Packet5,
        reason_string: Option<&str>,
    ) -> Result<(), SessionError> {
        let allowed = self.v5.as_ref().is_some_and(|v5| v5.problem_info)
            || matches!(packet, Packet5::ConnAck(_) | Packet5::Disconnect(_));
        let text = reason_string
            .filter(|t| allowed && !t.is_empty())
            .map(|t| cut(t, MAX_REASON_STRING).to_string());
        if let Some(text) = text {
            let mut with = packet.clone();
            if let Some(properties) = properties_of(&mut with) {
                properties.reason_string = Some(text);
            }
            if self.send5(&with).is_ok() {
                return Ok(());
            }
            if let Some(properties) = properties_of(&mut packet) {
                properties.reason_string = None;
            }
        }
        self.send5(&packet)
    }

    pub(super) fn connack_v5(
        &mut self,
        session_present: bool,
        reason: ReasonCode,
        message: Option<&str>,
    ) {
        let config = self.config;
        let Some(v5) = self.v5.as_mut() else {
            return;
        };
        v5.connect = None;
        let mut properties = Properties::default();
        if !reason.is_failure() {
            properties.receive_maximum = Some(config.receive_maximum);
            properties.maximum_qos = Some(QoS::AtLeastOnce.as_u8());
            properties.retain_available = Some(0);
            properties.maximum_packet_size =
                Some(u32::try_from(config.decode.max_packet_size).unwrap_or(u32::MAX));
            properties.topic_alias_maximum = Some(config.topic_alias_maximum);
            properties.subscription_ids_available = Some(0);
            properties.shared_subscription_available = Some(0);
            if v5.session_expiry != 0 {
                properties.session_expiry = Some(0);
            }
            properties.auth_method.clone_from(&v5.auth_method);
        }
        let packet = Packet5::ConnAck(ConnAck5 {
            session_present: session_present && !reason.is_failure(),
            reason,
            properties,
        });
        let _ = self.send5_with_reason(packet, message);
    }

    /// Queues an MQTT 5 DISCONNECT (nothing on 3.1.1 or once closed).
    pub(super) fn disconnect_v5(&mut self, code: ReasonCode, message: &str) {
        if self.v5.is_none() || self.state == State::Closed {
            return;
        }
        // Before CONNACK, the refusal is a CONNACK (§3.2.2.2), not a DISCONNECT.
        if !matches!(self.state, State::Connected { .. }) {
            if matches!(self.state, State::AwaitingConnect { .. }) || code.is_failure() {
                self.connack_v5(false, code, Some(message));
            }
            return;
        }
        let packet = Packet5::Disconnect(ReasonPacket::new(code, None));
        let _ = self.send5_with_reason(packet, Some(message));
    }

    pub(super) fn suback_v5(&mut self, ack: &SubAck) -> Result<(), SessionError> {
        let reasons = ack
            .codes
            .iter()
            .map(|code| match code {
                SubAckCode::Granted(qos) => ReasonCode(qos.as_u8()),
                // IoT Core refuses a filter that is not one of the device's topics.
                SubAckCode::Failure => ReasonCode::NOT_AUTHORIZED,
            })
            .collect();
        self.send5(&Packet5::SubAck(SubAck5 {
            packet_id: ack.packet_id,
            properties: Properties::default(),
            reasons,
        }))
    }

    pub(super) fn publish_v5(&mut self, publish: Publish) -> Result<(), SessionError> {
        if !matches!(self.state, State::Connected { .. }) {
            return Err(SessionError::NotConnected);
        }
        self.send5(&Packet5::Publish(Publish5::of(publish)))
    }

    /// Decodes and handles one MQTT 5 packet at the front of `input`: the bytes used,
    /// or `None` when more are needed or the session ended.
    pub(super) fn decode_v5(&mut self, input: &[u8], now: Timestamp) -> Option<usize> {
        match v5::decode(input, &self.config.decode) {
            Ok(None) => None,
            Ok(Some((packet, len))) => {
                if let State::Connected { last_received, .. } = &mut self.state {
                    *last_received = now;
                }
                self.on_packet5(packet);
                Some(len)
            }
            Err(error) => {
                let text = error.to_string();
                self.disconnect_v5(decode_reason(&error), &text);
                self.close_with(CloseReason::Protocol(error));
                None
            }
        }
    }

    /// Ends the connection for a rule the client broke, telling it why.
    fn violation(&mut self, code: ReasonCode, message: String) {
        self.disconnect_v5(code, &message);
        self.close_with(CloseReason::Violation { code, message });
    }

    fn on_packet5(&mut self, packet: Packet5) {
        match (self.state, packet) {
            (State::AwaitingConnect { .. }, Packet5::Connect(connect)) => {
                let connect = *connect;
                if let Some(v5) = self.v5.as_mut() {
                    let p = &connect.properties;
                    v5.receive_maximum = p.receive_maximum.unwrap_or(u16::MAX);
                    v5.maximum_packet_size = p
                        .maximum_packet_size
                        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
                    v5.auth_method.clone_from(&p.auth_method);
                    v5.problem_info = p.request_problem_info != Some(0);
                    v5.session_expiry = p.session_expiry.unwrap_or(0);
                    if p.auth_data.is_some() && p.auth_method.is_none() {
                        return self.violation(
                            ReasonCode::PROTOCOL_ERROR,
                            "CONNECT has Authentication Data without an Authentication Method"
                                .to_string(),
                        );
                    }
                    v5.connect = Some(connect.properties);
                }
                self.state = State::Authenticating {
                    keep_alive: connect.connect.keep_alive,
                };
                self.events.push_back(Event::Connect(connect.connect));
            }
            (State::Connected { .. }, packet) => self.on_connected_packet5(packet),
            (_, packet) => self.close_with(CloseReason::UnexpectedPacket(packet.packet_type())),
        }
    }

    fn on_connected_packet5(&mut self, packet: Packet5) {
        match packet {
            Packet5::Publish(publish) => self.on_publish5(publish),
            Packet5::PubAck(Ack5 { packet_id, .. }) => {
                if self.inflight.remove(&packet_id) {
                    self.events.push_back(Event::Delivered(packet_id));
                }
            }
            Packet5::Subscribe(subscribe) => {
                if !subscribe.properties.subscription_ids.is_empty() {
                    return self.violation(
                        ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                        "SUBSCRIBE has a Subscription Identifier; this server announced \
                         Subscription Identifier Available = 0"
                            .to_string(),
                    );
                }
                self.events.push_back(Event::Subscribe(subscribe.subscribe));
            }
            Packet5::Unsubscribe(unsubscribe) => {
                let reasons =
                    alloc::vec![ReasonCode::SUCCESS; unsubscribe.unsubscribe.filters.len()];
                let _ = self.send5(&Packet5::UnsubAck(SubAck5 {
                    packet_id: unsubscribe.unsubscribe.packet_id,
                    properties: Properties::default(),
                    reasons,
                }));
                self.events
                    .push_back(Event::Unsubscribe(unsubscribe.unsubscribe));
            }
            Packet5::PingReq => {
                let _ = self.send5(&Packet5::PingResp);
                self.events.push_back(Event::Heartbeat);
            }
            Packet5::Disconnect(_) => self.close_with(CloseReason::ClientDisconnected),
            Packet5::Auth(auth) => self.on_auth(auth),
            Packet5::Connect(_) => {
                self.violation(
                    ReasonCode::PROTOCOL_ERROR,
                    "a second CONNECT was received".to_string(),
                );
            }
            other => {
                let packet = other.packet_type();
                let message = if matches!(
                    other,
                    Packet5::PubRec(_) | Packet5::PubRel(_) | Packet5::PubComp(_)
                ) {
                    alloc::format!("{packet}: QoS 2 is not supported (Maximum QoS is 1)")
                } else {
                    alloc::format!("a client must not send {packet}")
                };
                self.violation(ReasonCode::PROTOCOL_ERROR, message);
            }
        }
    }

    fn on_publish5(&mut self, mut publish: Publish5) {
        let max = self.config.topic_alias_maximum;
        let topic = match (publish.properties.topic_alias, publish.topic.clone()) {
            (None, Some(topic)) => topic,
            (Some(alias), _) if alias == 0 || alias > max => {
                return self.violation(
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    alloc::format!(
                        "Topic Alias {alias} is outside 1..={max} (this server's Topic Alias \
                         Maximum)"
                    ),
                );
            }
            (Some(alias), Some(topic)) => {
                if let Some(v5) = self.v5.as_mut()
                    && let Some(slot) = v5.aliases.get_mut(usize::from(alias) - 1)
                {
                    *slot = Some(topic.clone());
                }
                topic
            }
            (Some(alias), None) => {
                let known = self
                    .v5
                    .as_ref()
                    .and_then(|v5| v5.aliases.get(usize::from(alias) - 1).cloned().flatten());
                match known {
                    Some(topic) => topic,
                    None => {
                        return self.violation(
                            ReasonCode::PROTOCOL_ERROR,
                            alloc::format!(
                                "PUBLISH names Topic Alias {alias}, which no earlier PUBLISH \
                                 on this connection set"
                            ),
                        );
                    }
                }
            }
            // The decoder refuses a PUBLISH with neither.
            (None, None) => {
                return self.violation(
                    ReasonCode::TOPIC_NAME_INVALID,
                    "PUBLISH has no topic and no Topic Alias".to_string(),
                );
            }
        };
        let user_properties = core::mem::take(&mut publish.properties.user_properties);
        let publish = publish.into_publish(topic);
        self.events.push_back(if user_properties.is_empty() {
            Event::Publish(publish)
        } else {
            Event::PublishWithProperties(publish, user_properties)
        });
    }

    fn on_auth(&mut self, auth: ReasonPacket) {
        let Some(v5) = self.v5.as_mut() else {
            return;
        };
        let Some(method) = v5.auth_method.as_deref() else {
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH on a connection whose CONNECT had no Authentication Method; connect with \
                 Authentication Method 'jwt' to re-authenticate"
                    .to_string(),
            );
        };
        if auth.properties.auth_method.as_deref() != Some(method) {
            let message = alloc::format!(
                "AUTH must carry the CONNECT's Authentication Method '{method}', found {:?}",
                auth.properties.auth_method.as_deref().unwrap_or("none")
            );
            return self.violation(ReasonCode::BAD_AUTHENTICATION_METHOD, message);
        }
        if auth.reason != ReasonCode::REAUTHENTICATE {
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                alloc::format!(
                    "AUTH with reason {}: a client starts re-authentication with 0x19 \
                     (Re-authenticate)",
                    auth.reason
                ),
            );
        }
        if v5.before_connack {
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH sent before the CONNACK: re-authenticate only once connected".to_string(),
            );
        }
        if v5.reauth_pending {
            return self.violation(
                ReasonCode::PROTOCOL_ERROR,
                "AUTH while an earlier re-authentication is still being checked".to_string(),
            );
        }
        v5.reauth_pending = true;
        self.events.push_back(Event::Reauthenticate(
            auth.properties.auth_data.unwrap_or_default(),
        ));
    }
}

/// The properties of a packet that can carry a Reason String.
fn properties_of(packet: &mut Packet5) -> Option<&mut Properties> {
    match packet {
        Packet5::ConnAck(p) => Some(&mut p.properties),
        Packet5::PubAck(p) | Packet5::PubRec(p) | Packet5::PubRel(p) | Packet5::PubComp(p) => {
            Some(&mut p.properties)
        }
        Packet5::SubAck(p) | Packet5::UnsubAck(p) => Some(&mut p.properties),
        Packet5::Disconnect(p) | Packet5::Auth(p) => Some(&mut p.properties),
        _ => None,
    }
}
