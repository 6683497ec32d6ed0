//! MQTT 5 properties (§2.2.2): a length, then identifier–value pairs. Decoding checks
//! that each identifier is known, allowed in the packet it came in, given at most once
//! (User Property and Subscription Identifier excepted) and has a valid value.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::codec::header::PacketType;
use crate::codec::read::Reader;
use crate::codec::varint::{self, MAX_REMAINING_LENGTH, Varint};
use crate::codec::write;
use crate::error::{DecodeError, EncodeError};

/// Where a property list is: a packet, or the Will of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyPlace {
    /// The variable header of this packet.
    Packet(PacketType),
    /// The Will Properties of a CONNECT.
    Will,
}

impl PropertyPlace {
    fn bit(self) -> u16 {
        match self {
            Self::Will => 1,
            Self::Packet(p) => 1 << (p as u8),
        }
    }

    /// The packet the list belongs to.
    #[must_use]
    pub fn packet(self) -> PacketType {
        match self {
            Self::Packet(p) => p,
            Self::Will => PacketType::Connect,
        }
    }
}

impl fmt::Display for PropertyPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Packet(p) => p.fmt(f),
            Self::Will => f.write_str("CONNECT Will Properties"),
        }
    }
}

/// What is wrong with a property.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyError {
    /// An identifier MQTT 5 does not define.
    Unknown(u32),
    /// A property that may not appear where it did.
    NotAllowed(&'static str),
    /// A property given twice that may be given once.
    Duplicate(&'static str),
    /// A value outside the property's range.
    BadValue(&'static str, u32),
    /// The property length runs past the packet.
    Truncated,
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(id) => write!(f, "unknown property identifier {id:#04x}"),
            Self::NotAllowed(name) => write!(f, "{name} is not allowed here"),
            Self::Duplicate(name) => write!(f, "{name} is included more than once"),
            Self::BadValue(name, value) => write!(f, "{name} value {value} is not allowed"),
            Self::Truncated => f.write_str("the property length runs past the packet"),
        }
    }
}

/// The properties of one packet (or Will). Absent properties are `None` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01 Payload Format Indicator: 1 = UTF-8 text.
    pub payload_format: Option<u8>,
    /// 0x02 Message Expiry Interval (s).
    pub message_expiry: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Vec<u8>>,
    /// 0x0B Subscription Identifier (several on a PUBLISH).
    pub subscription_ids: Vec<u32>,
    /// 0x11 Session Expiry Interval (s).
    pub session_expiry: Option<u32>,
    /// 0x12 Assigned Client Identifier.
    pub assigned_client_id: Option<String>,
    /// 0x13 Server Keep Alive (s).
    pub server_keep_alive: Option<u16>,
    /// 0x15 Authentication Method.
    pub auth_method: Option<String>,
    /// 0x16 Authentication Data.
    pub auth_data: Option<Vec<u8>>,
    /// 0x17 Request Problem Information (0 or 1).
    pub request_problem_info: Option<u8>,
    /// 0x18 Will Delay Interval (s).
    pub will_delay: Option<u32>,
    /// 0x19 Request Response Information (0 or 1).
    pub request_response_info: Option<u8>,
    /// 0x1A Response Information.
    pub response_info: Option<String>,
    /// 0x1C Server Reference.
    pub server_reference: Option<String>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x21 Receive Maximum (1–65,535).
    pub receive_maximum: Option<u16>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
    /// 0x24 Maximum QoS (0 or 1).
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available (0 or 1).
    pub retain_available: Option<u8>,
    /// 0x26 User Property pairs, in order.
    pub user_properties: Vec<(String, String)>,
    /// 0x27 Maximum Packet Size (≥ 1).
    pub maximum_packet_size: Option<u32>,
    /// 0x28 Wildcard Subscription Available (0 or 1).
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 Subscription Identifier Available (0 or 1).
    pub subscription_ids_available: Option<u8>,
    /// 0x2A Shared Subscription Available (0 or 1).
    pub shared_subscription_available: Option<u8>,
}

// Where each property may appear: a bit per packet type, bit 0 for the Will.
const WILL: u16 = 1;
const fn on(packets: &[PacketType]) -> u16 {
    let mut bits = 0;
    let mut i = 0;
    while i < packets.len() {
        bits |= 1 << (packets[i] as u8);
        i += 1;
    }
    bits
}
const PUBLISH: u16 = on(&[PacketType::Publish]) | WILL;
const CONNECT_ACK_DISCONNECT: u16 = on(&[
    PacketType::Connect,
    PacketType::ConnAck,
    PacketType::Disconnect,
]);
const AUTH_PLACES: u16 = on(&[PacketType::Connect, PacketType::ConnAck, PacketType::Auth]);
const CONNACK: u16 = on(&[PacketType::ConnAck]);
const CONNECT: u16 = on(&[PacketType::Connect]);
const CONNECT_CONNACK: u16 = on(&[PacketType::Connect, PacketType::ConnAck]);
const REASON_STRING: u16 = on(&[
    PacketType::ConnAck,
    PacketType::PubAck,
    PacketType::PubRec,
    PacketType::PubRel,
    PacketType::PubComp,
    PacketType::SubAck,
    PacketType::UnsubAck,
    PacketType::Disconnect,
    PacketType::Auth,
]);
const EVERYWHERE: u16 = u16::MAX;

/// Identifier, name and where it may appear.
fn describe(id: u32) -> Option<(&'static str, u16)> {
    Some(match id {
        0x01 => ("Payload Format Indicator", PUBLISH),
        0x02 => ("Message Expiry Interval", PUBLISH),
        0x03 => ("Content Type", PUBLISH),
        0x08 => ("Response Topic", PUBLISH),
        0x09 => ("Correlation Data", PUBLISH),
        0x0B => (
            "Subscription Identifier",
            on(&[PacketType::Publish, PacketType::Subscribe]),
        ),
        0x11 => ("Session Expiry Interval", CONNECT_ACK_DISCONNECT),
        0x12 => ("Assigned Client Identifier", CONNACK),
        0x13 => ("Server Keep Alive", CONNACK),
        0x15 => ("Authentication Method", AUTH_PLACES),
        0x16 => ("Authentication Data", AUTH_PLACES),
        0x17 => ("Request Problem Information", CONNECT),
        0x18 => ("Will Delay Interval", WILL),
        0x19 => ("Request Response Information", CONNECT),
        0x1A => ("Response Information", CONNACK),
        0x1C => (
            "Server Reference",
            on(&[PacketType::ConnAck, PacketType::Disconnect]),
        ),
        0x1F => ("Reason String", REASON_STRING),
        0x21 => ("Receive Maximum", CONNECT_CONNACK),
        0x22 => ("Topic Alias Maximum", CONNECT_CONNACK),
        0x23 => ("Topic Alias", on(&[PacketType::Publish])),
        0x24 => ("Maximum QoS", CONNACK),
        0x25 => ("Retain Available", CONNACK),
        0x26 => ("User Property", EVERYWHERE),
        0x27 => ("Maximum Packet Size", CONNECT_CONNACK),
        0x28 => ("Wildcard Subscription Available", CONNACK),
        0x29 => ("Subscription Identifier Available", CONNACK),
        0x2A => ("Shared Subscription Available", CONNACK),
        _ => return None,
    })
}

/// Sets `slot` once; a second value is a duplicate.
fn once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), PropertyError> {
    if slot.is_some() {
        return Err(PropertyError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn flag(value: u8, name: &'static str) -> Result<u8, PropertyError> {
    if value > 1 {
        return Err(PropertyError::BadValue(name, u32::from(value)));
    }
    Ok(value)
}

/// A Variable Byte Integer inside a body (the remaining-length encoding).
pub(crate) fn read_varint(r: &mut Reader<'_>, field: &'static str) -> Result<usize, DecodeError> {
    let rest = r.peek();
    match varint::decode(rest)? {
        Varint::Complete { value, len } => {
            r.take(len, field)?;
            Ok(value)
        }
        Varint::Partial { .. } => Err(DecodeError::Truncated {
            packet: r.packet(),
            field,
        }),
    }
}

impl Properties {
    /// Whether no property is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads a property length and the properties it covers.
    pub(crate) fn decode(r: &mut Reader<'_>, place: PropertyPlace) -> Result<Self, DecodeError> {
        let packet = place.packet();
        let wrap = |error| DecodeError::Property { place, error };
        let len = read_varint(r, "property length")?;
        let bytes = r
            .take(len, "properties")
            .map_err(|_| wrap(PropertyError::Truncated))?;
        let mut r = Reader::new(bytes, packet);
        let mut p = Self::default();
        while !r.is_empty() {
            let id = read_varint(&mut r, "property identifier")?;
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            let (name, places) = describe(id).ok_or(wrap(PropertyError::Unknown(id)))?;
            if places & place.bit() == 0 {
                return Err(wrap(PropertyError::NotAllowed(name)));
            }
            p.read_one(&mut r, id, name).map_err(|e| match e {
                Ok(error) => wrap(error),
                Err(decode) => decode,
            })?;
        }
        Ok(p)
    }

    /// One property's value. `Err(Ok(_))` is a property error, `Err(Err(_))` a
    /// field that does not fit.
    fn read_one(
        &mut self,
        r: &mut Reader<'_>,
        id: u32,
        name: &'static str,
    ) -> Result<(), Result<PropertyError, DecodeError>> {
        let string = |r: &mut Reader<'_>| r.string(name).map(ToString::to_string).map_err(Err);
        let binary = |r: &mut Reader<'_>| r.binary(name).map(<[u8]>::to_vec).map_err(Err);
        let byte = |r: &mut Reader<'_>| r.u8(name).map_err(Err);
        let two = |r: &mut Reader<'_>| r.u16(name).map_err(Err);
        let four = |r: &mut Reader<'_>| r.u32(name).map_err(Err);
        let set = |result: Result<(), PropertyError>| result.map_err(Ok);
        match id {
            0x01 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.payload_format, v, name))
            }
            0x02 => {
                let v = four(r)?;
                set(once(&mut self.message_expiry, v, name))
            }
            0x03 => {
                let v = string(r)?;
                set(once(&mut self.content_type, v, name))
            }
            0x08 => {
                let v = string(r)?;
                set(once(&mut self.response_topic, v, name))
            }
            0x09 => {
                let v = binary(r)?;
                set(once(&mut self.correlation_data, v, name))
            }
            0x0B => {
                let v = read_varint(r, name).map_err(Err)?;
                if v == 0 {
                    return Err(Ok(PropertyError::BadValue(name, 0)));
                }
                if r.packet() == PacketType::Subscribe && !self.subscription_ids.is_empty() {
                    return Err(Ok(PropertyError::Duplicate(name)));
                }
                self.subscription_ids
                    .push(u32::try_from(v).unwrap_or(u32::MAX));
                Ok(())
            }
            0x11 => {
                let v = four(r)?;
                set(once(&mut self.session_expiry, v, name))
            }
            0x12 => {
                let v = string(r)?;
                set(once(&mut self.assigned_client_id, v, name))
            }
            0x13 => {
                let v = two(r)?;
                set(once(&mut self.server_keep_alive, v, name))
            }
            0x15 => {
                let v = string(r)?;
                set(once(&mut self.auth_method, v, name))
            }
            0x16 => {
                let v = binary(r)?;
                set(once(&mut self.auth_data, v, name))
            }
            0x17 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.request_problem_info, v, name))
            }
            0x18 => {
                let v = four(r)?;
                set(once(&mut self.will_delay, v, name))
            }
            0x19 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.request_response_info, v, name))
            }
            0x1A => {
                let v = string(r)?;
                set(once(&mut self.response_info, v, name))
            }
            0x1C => {
                let v = string(r)?;
                set(once(&mut self.server_reference, v, name))
            }
            0x1F => {
                let v = string(r)?;
                set(once(&mut self.reason_string, v, name))
            }
            0x21 => {
                let v = two(r)?;
                if v == 0 {
                    return Err(Ok(PropertyError::BadValue(name, 0)));
                }
                set(once(&mut self.receive_maximum, v, name))
            }
            0x22 => {
                let v = two(r)?;
                set(once(&mut self.topic_alias_maximum, v, name))
            }
            0x23 => {
                // 0 is checked by the receiver, which answers Topic Alias invalid.
                let v = two(r)?;
                set(once(&mut self.topic_alias, v, name))
            }
            0x24 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.maximum_qos, v, name))
            }
            0x25 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.retain_available, v, name))
            }
            0x26 => {
                let key = string(r)?;
                let value = string(r)?;
                self.user_properties.push((key, value));
                Ok(())
            }
            0x27 => {
                let v = four(r)?;
                if v == 0 {
                    return Err(Ok(PropertyError::BadValue(name, 0)));
                }
                set(once(&mut self.maximum_packet_size, v, name))
            }
            0x28 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.wildcard_subscription_available, v, name))
            }
            0x29 => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.subscription_ids_available, v, name))
            }
            0x2A => {
                let v = flag(byte(r)?, name).map_err(Ok)?;
                set(once(&mut self.shared_subscription_available, v, name))
            }
            _ => Err(Ok(PropertyError::Unknown(id))),
        }
    }

    /// The encoded properties, length prefix included.
    ///
    /// # Errors
    /// A string or binary value longer than 65,535 bytes.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut body = Vec::new();
        let byte = |body: &mut Vec<u8>, id: u8, v: Option<u8>| {
            if let Some(v) = v {
                body.extend_from_slice(&[id, v]);
            }
        };
        let two = |body: &mut Vec<u8>, id: u8, v: Option<u16>| {
            if let Some(v) = v {
                body.push(id);
                write::u16(body, v);
            }
        };
        let four = |body: &mut Vec<u8>, id: u8, v: Option<u32>| {
            if let Some(v) = v {
                body.push(id);
                body.extend_from_slice(&v.to_be_bytes());
            }
        };
        let bytes = |body: &mut Vec<u8>, id: u8, name, v: Option<&[u8]>| {
            if let Some(v) = v {
                write::prefixed_len(name, v)?;
                body.push(id);
                write::prefixed(body, v);
            }
            Ok::<(), EncodeError>(())
        };
        byte(&mut body, 0x01, self.payload_format);
        four(&mut body, 0x02, self.message_expiry);
        bytes(
            &mut body,
            0x03,
            "Content Type",
            self.content_type.as_deref().map(str::as_bytes),
        )?;
        bytes(
            &mut body,
            0x08,
            "Response Topic",
            self.response_topic.as_deref().map(str::as_bytes),
        )?;
        bytes(
            &mut body,
            0x09,
            "Correlation Data",
            self.correlation_data.as_deref(),
        )?;
        for &id in &self.subscription_ids {
            body.push(0x0B);
            varint::encode(
                usize::try_from(id).unwrap_or(MAX_REMAINING_LENGTH),
                &mut body,
            );
        }
        four(&mut body, 0x11, self.session_expiry);
        bytes(
            &mut body,
            0x12,
            "Assigned Client Identifier",
            self.assigned_client_id.as_deref().map(str::as_bytes),
        )?;
        two(&mut body, 0x13, self.server_keep_alive);
        bytes(
            &mut body,
            0x15,
            "Authentication Method",
            self.auth_method.as_deref().map(str::as_bytes),
        )?;
        bytes(
            &mut body,
            0x16,
            "Authentication Data",
            self.auth_data.as_deref(),
        )?;
        byte(&mut body, 0x17, self.request_problem_info);
        four(&mut body, 0x18, self.will_delay);
        byte(&mut body, 0x19, self.request_response_info);
        bytes(
            &mut body,
            0x1A,
            "Response Information",
            self.response_info.as_deref().map(str::as_bytes),
        )?;
        bytes(
            &mut body,
            0x1C,
            "Server Reference",
            self.server_reference.as_deref().map(str::as_bytes),
        )?;
        bytes(
            &mut body,
            0x1F,
            "Reason String",
            self.reason_string.as_deref().map(str::as_bytes),
        )?;
        two(&mut body, 0x21, self.receive_maximum);
        two(&mut body, 0x22, self.topic_alias_maximum);
        two(&mut body, 0x23, self.topic_alias);
        byte(&mut body, 0x24, self.maximum_qos);
        byte(&mut body, 0x25, self.retain_available);
        for (key, value) in &self.user_properties {
            write::prefixed_len("User Property", key.as_bytes())?;
            write::prefixed_len("User Property", value.as_bytes())?;
            body.push(0x26);
            write::prefixed(&mut body, key.as_bytes());
            write::prefixed(&mut body, value.as_bytes());
        }
        four(&mut body, 0x27, self.maximum_packet_size);
        byte(&mut body, 0x28, self.wildcard_subscription_available);
        byte(&mut body, 0x29, self.subscription_ids_available);
        byte(&mut body, 0x2A, self.shared_subscription_available);
        if body.len() > MAX_REMAINING_LENGTH {
            return Err(EncodeError::PacketTooLarge {
                remaining: body.len(),
            });
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        varint::encode(body.len(), &mut out);
        out.extend_from_slice(&body);
        Ok(out)
    }
}
