//! The MQTT 5 packet codec (protocol level 5): [`Packet5`], [`decode`] and
//! [`Packet5::encode`].
//!
//! MQTT 5 keeps 3.1.1's fixed header and most fields and adds properties, reason
//! codes and the AUTH packet. The packets reuse the 3.1.1 types for what the two
//! versions share ([`Connect`], [`Subscribe`], [`Unsubscribe`]) and add what is new
//! beside them, so the gateway handles one set of types whatever the version.

mod properties;
mod reason;

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec::Vec;

pub use properties::{Properties, PropertyError, PropertyPlace};
pub use reason::ReasonCode;

use super::connect::ConnectFlags;
use super::header::{self, PacketType};
use super::read::Reader;
use super::{
    Connect, DecodeOptions, Delivery, Publish, Subscribe, Subscription, Unsubscribe, Will, write,
};
use crate::error::{DecodeError, EncodeError};
use crate::qos::{PacketId, QoS};
use crate::topic::{TopicFilter, TopicName};

/// The protocol level of MQTT 5.
pub const PROTOCOL_LEVEL_5: u8 = 5;

/// A CONNECT with its MQTT 5 properties. `connect.clean_session` is Clean Start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect5 {
    /// The fields MQTT 3.1.1 has too.
    pub connect: Connect,
    /// The CONNECT properties.
    pub properties: Properties,
    /// The Will Properties (empty without a Will).
    pub will_properties: Properties,
}

/// A CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck5 {
    /// Session Present.
    pub session_present: bool,
    /// The Connect Reason Code.
    pub reason: ReasonCode,
    /// The CONNACK properties.
    pub properties: Properties,
}

/// A PUBLISH. The topic is `None` when the packet names it by Topic Alias only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish5 {
    /// DUP.
    pub dup: bool,
    /// QoS and packet identifier.
    pub delivery: Delivery,
    /// RETAIN.
    pub retain: bool,
    /// The topic, absent (empty on the wire) when a Topic Alias stands for it.
    pub topic: Option<TopicName>,
    /// The PUBLISH properties.
    pub properties: Properties,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Publish5 {
    /// An MQTT 5 PUBLISH of a 3.1.1 message, without properties.
    #[must_use]
    pub fn of(publish: Publish) -> Self {
        Self {
            dup: publish.dup,
            delivery: publish.delivery,
            retain: publish.retain,
            topic: Some(publish.topic),
            properties: Properties::default(),
            payload: publish.payload,
        }
    }

    /// The message with `topic` (its own, or the one its alias stands for).
    #[must_use]
    pub fn into_publish(self, topic: TopicName) -> Publish {
        Publish {
            dup: self.dup,
            delivery: self.delivery,
            retain: self.retain,
            topic,
            payload: self.payload,
        }
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack5 {
    /// The packet identifier acknowledged.
    pub packet_id: PacketId,
    /// The reason code (0 when the packet omits it).
    pub reason: ReasonCode,
    /// The properties.
    pub properties: Properties,
}

impl Ack5 {
    /// A successful acknowledgement of `id`.
    #[must_use]
    pub fn success(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }
    }
}

/// The Subscription Options of one filter (§3.8.3.1) besides its QoS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling (0–2).
    pub retain_handling: u8,
}

/// A SUBSCRIBE with its MQTT 5 options and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe5 {
    /// The filters and their QoS.
    pub subscribe: Subscribe,
    /// The other options of each filter, in the same order.
    pub options: Vec<SubscriptionOptions>,
    /// The SUBSCRIBE properties.
    pub properties: Properties,
}

/// SUBACK or UNSUBACK: one reason code per filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck5 {
    /// The identifier of the request answered.
    pub packet_id: PacketId,
    /// The properties.
    pub properties: Properties,
    /// One code per filter, in the request's order.
    pub reasons: Vec<ReasonCode>,
}

/// An UNSUBSCRIBE with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe5 {
    /// The filters.
    pub unsubscribe: Unsubscribe,
    /// The properties.
    pub properties: Properties,
}

/// DISCONNECT or AUTH: a reason code and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonPacket {
    /// The reason code.
    pub reason: ReasonCode,
    /// The properties.
    pub properties: Properties,
}

impl ReasonPacket {
    /// A packet with `reason` and, when given, a Reason String.
    #[must_use]
    pub fn new(reason: ReasonCode, reason_string: Option<&str>) -> Self {
        Self {
            reason,
            properties: Properties {
                reason_string: reason_string.map(ToString::to_string),
                ..Properties::default()
            },
        }
    }
}

/// Any MQTT 5 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet5 {
    /// CONNECT.
    Connect(Box<Connect5>),
    /// CONNACK.
    ConnAck(ConnAck5),
    /// PUBLISH.
    Publish(Publish5),
    /// PUBACK.
    PubAck(Ack5),
    /// PUBREC.
    PubRec(Ack5),
    /// PUBREL.
    PubRel(Ack5),
    /// PUBCOMP.
    PubComp(Ack5),
    /// SUBSCRIBE.
    Subscribe(Subscribe5),
    /// SUBACK.
    SubAck(SubAck5),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe5),
    /// UNSUBACK.
    UnsubAck(SubAck5),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(ReasonPacket),
    /// AUTH.
    Auth(ReasonPacket),
}

impl Packet5 {
    /// The packet's type.
    #[must_use]
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// [`EncodeError`] when a field cannot be put on the wire.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let packet = self.packet_type();
        let flags = packet.required_flags().unwrap_or(0);
        let mut body = Vec::new();
        let flags = match self {
            Self::Connect(c) => {
                encode_connect(c, &mut body)?;
                flags
            }
            Self::ConnAck(c) => {
                body.push(u8::from(c.session_present && !c.reason.is_failure()));
                body.push(c.reason.0);
                body.extend_from_slice(&c.properties.to_bytes()?);
                flags
            }
            Self::Publish(p) => {
                if p.dup && p.delivery == Delivery::AtMostOnce {
                    return Err(EncodeError::DupWithQos0);
                }
                let topic = p.topic.as_ref().map_or("", TopicName::as_str);
                write::prefixed_len("topic name", topic.as_bytes())?;
                write::prefixed(&mut body, topic.as_bytes());
                if let Some(id) = p.delivery.packet_id() {
                    write::u16(&mut body, id.get());
                }
                body.extend_from_slice(&p.properties.to_bytes()?);
                body.extend_from_slice(&p.payload);
                header::publish_flags(p.dup, p.delivery.qos(), p.retain)
            }
            Self::PubAck(a) | Self::PubRec(a) | Self::PubRel(a) | Self::PubComp(a) => {
                write::u16(&mut body, a.packet_id.get());
                // The shortest form: a successful ack without properties is 2 bytes.
                if a.reason != ReasonCode::SUCCESS || !a.properties.is_empty() {
                    body.push(a.reason.0);
                    if !a.properties.is_empty() {
                        body.extend_from_slice(&a.properties.to_bytes()?);
                    }
                }
                flags
            }
            Self::Subscribe(s) => {
                if s.subscribe.subscriptions.is_empty() {
                    return Err(EncodeError::NoTopicFilters { packet });
                }
                write::u16(&mut body, s.subscribe.packet_id.get());
                body.extend_from_slice(&s.properties.to_bytes()?);
                for (i, sub) in s.subscribe.subscriptions.iter().enumerate() {
                    let options = s.options.get(i).copied().unwrap_or_default();
                    write::prefixed_len("topic filter", sub.filter.as_str().as_bytes())?;
                    write::prefixed(&mut body, sub.filter.as_str().as_bytes());
                    body.push(
                        sub.qos.as_u8()
                            | (u8::from(options.no_local) << 2)
                            | (u8::from(options.retain_as_published) << 3)
                            | ((options.retain_handling & 0b11) << 4),
                    );
                }
                flags
            }
            Self::SubAck(a) | Self::UnsubAck(a) => {
                if a.reasons.is_empty() {
                    return Err(EncodeError::NoReturnCodes);
                }
                write::u16(&mut body, a.packet_id.get());
                body.extend_from_slice(&a.properties.to_bytes()?);
                body.extend(a.reasons.iter().map(|r| r.0));
                flags
            }
            Self::Unsubscribe(u) => {
                if u.unsubscribe.filters.is_empty() {
                    return Err(EncodeError::NoTopicFilters { packet });
                }
                write::u16(&mut body, u.unsubscribe.packet_id.get());
                body.extend_from_slice(&u.properties.to_bytes()?);
                for filter in &u.unsubscribe.filters {
                    write::prefixed_len("topic filter", filter.as_str().as_bytes())?;
                    write::prefixed(&mut body, filter.as_str().as_bytes());
                }
                flags
            }
            Self::PingReq | Self::PingResp => flags,
            Self::Disconnect(d) | Self::Auth(d) => {
                // The shortest form: Success (Normal disconnection) alone is empty.
                if d.reason != ReasonCode::SUCCESS || !d.properties.is_empty() {
                    body.push(d.reason.0);
                    if !d.properties.is_empty() {
                        body.extend_from_slice(&d.properties.to_bytes()?);
                    }
                }
                flags
            }
        };
        header::write(out, packet, flags, body.len())?;
        out.extend_from_slice(&body);
        Ok(())
    }

    /// The encoded packet in a new vector.
    ///
    /// # Errors
    /// As [`Packet5::encode`].
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

fn encode_connect(c: &Connect5, body: &mut Vec<u8>) -> Result<(), EncodeError> {
    let connect = &c.connect;
    write::prefixed(body, b"MQTT");
    body.push(connect.protocol_level);
    let mut flags = u8::from(connect.clean_session) << 1;
    if let Some(will) = &connect.will {
        flags |= 0x04 | (will.qos.as_u8() << 3) | (u8::from(will.retain) << 5);
    }
    flags |= u8::from(connect.password.is_some()) << 6;
    flags |= u8::from(connect.username.is_some()) << 7;
    body.push(flags);
    write::u16(body, connect.keep_alive);
    body.extend_from_slice(&c.properties.to_bytes()?);
    write::prefixed_len("client identifier", connect.client_id.as_bytes())?;
    write::prefixed(body, connect.client_id.as_bytes());
    if let Some(will) = &connect.will {
        body.extend_from_slice(&c.will_properties.to_bytes()?);
        write::prefixed_len("will topic", will.topic.as_str().as_bytes())?;
        write::prefixed(body, will.topic.as_str().as_bytes());
        write::prefixed_len("will payload", &will.message)?;
        write::prefixed(body, &will.message);
    }
    if let Some(username) = &connect.username {
        write::prefixed_len("user name", username.as_bytes())?;
        write::prefixed(body, username.as_bytes());
    }
    if let Some(password) = &connect.password {
        write::prefixed_len("password", password)?;
        write::prefixed(body, password);
    }
    Ok(())
}

/// Decodes one MQTT 5 packet from the start of `buf`: `Ok(None)` until a whole packet
/// is there, as [`super::decode_with`] does for 3.1.1.
///
/// # Errors
/// [`DecodeError`] naming the broken rule.
pub fn decode(
    buf: &[u8],
    options: &DecodeOptions,
) -> Result<Option<(Packet5, usize)>, DecodeError> {
    let Some(header) = header::parse_versioned(buf, options.max_packet_size, true)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(header.header_len..header.total_len()) else {
        return Ok(None);
    };
    let packet_type = header.packet_type;
    let mut r = Reader::new(body, packet_type);
    let place = PropertyPlace::Packet(packet_type);
    let packet = match packet_type {
        PacketType::Connect => Packet5::Connect(Box::new(decode_connect(&mut r)?)),
        PacketType::ConnAck => {
            let flags = r.u8("connect acknowledge flags")?;
            if flags & 0xfe != 0 {
                return Err(DecodeError::ConnAckReservedFlags { value: flags });
            }
            let reason = reason_code(&mut r, packet_type)?;
            let session_present = flags & 1 != 0;
            if session_present && reason.is_failure() {
                return Err(DecodeError::SessionPresentOnRefusal);
            }
            Packet5::ConnAck(ConnAck5 {
                session_present,
                reason,
                properties: Properties::decode(&mut r, place)?,
            })
        }
        PacketType::Publish => {
            let topic = r.string("topic name")?;
            let topic = if topic.is_empty() {
                None
            } else {
                Some(TopicName::new(topic).map_err(|error| DecodeError::Topic {
                    packet: packet_type,
                    error,
                })?)
            };
            let flags = header.flags;
            let delivery = match (flags >> 1) & 0b11 {
                0 => Delivery::AtMostOnce,
                1 => Delivery::AtLeastOnce(r.packet_id()?),
                _ => Delivery::ExactlyOnce(r.packet_id()?),
            };
            let properties = Properties::decode(&mut r, place)?;
            if topic.is_none() && properties.topic_alias.is_none() {
                return Err(DecodeError::Topic {
                    packet: packet_type,
                    error: crate::error::TopicError::Empty,
                });
            }
            return Ok(Some((
                Packet5::Publish(Publish5 {
                    dup: flags & 0b1000 != 0,
                    delivery,
                    retain: flags & 1 != 0,
                    topic,
                    properties,
                    payload: r.rest().to_vec(),
                }),
                header.total_len(),
            )));
        }
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
            let packet_id = r.packet_id()?;
            let (reason, properties) = if r.is_empty() {
                (ReasonCode::SUCCESS, Properties::default())
            } else {
                let reason = reason_code(&mut r, packet_type)?;
                let properties = if r.is_empty() {
                    Properties::default()
                } else {
                    Properties::decode(&mut r, place)?
                };
                (reason, properties)
            };
            let ack = Ack5 {
                packet_id,
                reason,
                properties,
            };
            match packet_type {
                PacketType::PubAck => Packet5::PubAck(ack),
                PacketType::PubRec => Packet5::PubRec(ack),
                PacketType::PubRel => Packet5::PubRel(ack),
                _ => Packet5::PubComp(ack),
            }
        }
        PacketType::Subscribe => {
            let packet_id = r.packet_id()?;
            let properties = Properties::decode(&mut r, place)?;
            let mut subscriptions = Vec::new();
            let mut options = Vec::new();
            while !r.is_empty() {
                let filter = r.string("topic filter")?;
                let filter = TopicFilter::new(filter).map_err(|error| DecodeError::Topic {
                    packet: packet_type,
                    error,
                })?;
                let byte = r.u8("subscription options")?;
                if byte & 0b1100_0000 != 0 || (byte >> 4) & 0b11 == 3 {
                    return Err(DecodeError::SubscriptionOptions { value: byte });
                }
                let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidQos {
                    packet: packet_type,
                    value: byte & 0b11,
                })?;
                subscriptions.push(Subscription { filter, qos });
                options.push(SubscriptionOptions {
                    no_local: byte & 0b100 != 0,
                    retain_as_published: byte & 0b1000 != 0,
                    retain_handling: (byte >> 4) & 0b11,
                });
            }
            if subscriptions.is_empty() {
                return Err(DecodeError::NoTopicFilters {
                    packet: packet_type,
                });
            }
            Packet5::Subscribe(Subscribe5 {
                subscribe: Subscribe {
                    packet_id,
                    subscriptions,
                },
                options,
                properties,
            })
        }
        PacketType::SubAck | PacketType::UnsubAck => {
            let packet_id = r.packet_id()?;
            let properties = Properties::decode(&mut r, place)?;
            let reasons = r
                .rest()
                .iter()
                .map(|&value| known(packet_type, value))
                .collect::<Result<Vec<_>, _>>()?;
            if reasons.is_empty() {
                return Err(DecodeError::NoReturnCodes);
            }
            let ack = SubAck5 {
                packet_id,
                properties,
                reasons,
            };
            if packet_type == PacketType::SubAck {
                Packet5::SubAck(ack)
            } else {
                Packet5::UnsubAck(ack)
            }
        }
        PacketType::Unsubscribe => {
            let packet_id = r.packet_id()?;
            let properties = Properties::decode(&mut r, place)?;
            let mut filters = Vec::new();
            while !r.is_empty() {
                let filter = r.string("topic filter")?;
                filters.push(
                    TopicFilter::new(filter).map_err(|error| DecodeError::Topic {
                        packet: packet_type,
                        error,
                    })?,
                );
            }
            if filters.is_empty() {
                return Err(DecodeError::NoTopicFilters {
                    packet: packet_type,
                });
            }
            Packet5::Unsubscribe(Unsubscribe5 {
                unsubscribe: Unsubscribe { packet_id, filters },
                properties,
            })
        }
        PacketType::PingReq | PacketType::PingResp => {
            if !body.is_empty() {
                return Err(DecodeError::WrongRemainingLength {
                    packet: packet_type,
                    expected: 0,
                    found: body.len(),
                });
            }
            if packet_type == PacketType::PingReq {
                Packet5::PingReq
            } else {
                Packet5::PingResp
            }
        }
        PacketType::Disconnect | PacketType::Auth => {
            let mut packet = ReasonPacket::new(ReasonCode::SUCCESS, None);
            if !r.is_empty() {
                packet.reason = reason_code(&mut r, packet_type)?;
                if !r.is_empty() {
                    packet.properties = Properties::decode(&mut r, place)?;
                }
            }
            if packet_type == PacketType::Auth {
                if !matches!(
                    packet.reason,
                    ReasonCode::SUCCESS
                        | ReasonCode::CONTINUE_AUTHENTICATION
                        | ReasonCode::REAUTHENTICATE
                ) {
                    return Err(DecodeError::InvalidReasonCode {
                        packet: packet_type,
                        value: packet.reason.0,
                    });
                }
                Packet5::Auth(packet)
            } else {
                Packet5::Disconnect(packet)
            }
        }
    };
    r.finish()?;
    Ok(Some((packet, header.total_len())))
}

fn reason_code(r: &mut Reader<'_>, packet: PacketType) -> Result<ReasonCode, DecodeError> {
    let value = r.u8("reason code")?;
    known(packet, value)
}

fn known(packet: PacketType, value: u8) -> Result<ReasonCode, DecodeError> {
    let code = ReasonCode(value);
    if code.name().is_none() {
        return Err(DecodeError::InvalidReasonCode { packet, value });
    }
    Ok(code)
}

fn decode_connect(r: &mut Reader<'_>) -> Result<Connect5, DecodeError> {
    let name = r.binary("protocol name")?;
    if name != b"MQTT" {
        return Err(DecodeError::ProtocolName);
    }
    let level = r.u8("protocol level")?;
    if level != PROTOCOL_LEVEL_5 {
        return Err(DecodeError::UnsupportedProtocolLevel { level });
    }
    let flags = ConnectFlags::read(r)?;
    let keep_alive = r.u16("keep alive")?;
    let properties = Properties::decode(r, PropertyPlace::Packet(PacketType::Connect))?;
    let client_id = r.string("client identifier")?.to_string();
    let mut will_properties = Properties::default();
    let will = if flags.will_flag {
        will_properties = Properties::decode(r, PropertyPlace::Will)?;
        let topic = r.string("will topic")?;
        let topic = TopicName::new(topic).map_err(|error| DecodeError::Topic {
            packet: PacketType::Connect,
            error,
        })?;
        let message = r.binary("will payload")?.to_vec();
        Some(Will {
            topic,
            message,
            qos: flags.will_qos,
            retain: flags.will_retain,
        })
    } else {
        None
    };
    // MQTT 5 allows a password without a user name (§3.1.2.9).
    let username = if flags.has_username {
        Some(r.string("user name")?.to_string())
    } else {
        None
    };
    let password = if flags.has_password {
        Some(r.binary("password")?.to_vec())
    } else {
        None
    };
    Ok(Connect5 {
        connect: Connect {
            protocol_level: level,
            clean_session: flags.clean_session,
            keep_alive,
            client_id,
            will,
            username,
            password,
        },
        properties,
        will_properties,
    })
}
