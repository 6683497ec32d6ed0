//! The MQTT 3.1.1 packet codec: [`Packet`], [`decode`] and [`Packet::encode`].
//!
//! Decoding is streaming and allocation-safe: [`decode`] looks at whatever bytes the
//! connection has buffered, returns `Ok(None)` until a whole packet is there, and
//! rejects an oversized packet from its fixed header alone, before anything is
//! allocated or the body is awaited.

mod connect;
mod header;
mod publish;
mod read;
mod subscribe;
pub mod v5;
mod varint;
mod write;

use alloc::vec::Vec;

pub use connect::{ConnAck, Connect, ConnectReturnCode, PROTOCOL_LEVEL_3_1_1, Quirk, Will};
pub use header::PacketType;
pub(crate) use header::frame_len;
pub use publish::{Delivery, Publish};
pub use subscribe::{SubAck, SubAckCode, Subscribe, Subscription, Unsubscribe};
pub use varint::MAX_REMAINING_LENGTH;

use crate::error::{DecodeError, EncodeError};
use crate::qos::PacketId;

/// Any MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Connect),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK with its packet identifier.
    PubAck(PacketId),
    /// PUBREC with its packet identifier.
    PubRec(PacketId),
    /// PUBREL with its packet identifier.
    PubRel(PacketId),
    /// PUBCOMP with its packet identifier.
    PubComp(PacketId),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK with its packet identifier.
    UnsubAck(PacketId),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect,
}

impl Packet {
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
            Self::Disconnect => PacketType::Disconnect,
        }
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// [`EncodeError`] when a field cannot be put on the wire (too long, DUP on QoS 0,
    /// an empty filter or return-code list).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Connect(p) => p.encode(out),
            Self::ConnAck(p) => {
                p.encode(out);
                Ok(())
            }
            Self::Publish(p) => p.encode(out),
            Self::Subscribe(p) => p.encode(out),
            Self::SubAck(p) => p.encode(out),
            Self::Unsubscribe(p) => p.encode(out),
            Self::PubAck(id)
            | Self::PubRec(id)
            | Self::PubRel(id)
            | Self::PubComp(id)
            | Self::UnsubAck(id) => {
                publish::encode_id_only(self.packet_type(), *id, out);
                Ok(())
            }
            Self::PingReq | Self::PingResp | Self::Disconnect => {
                out.extend_from_slice(&[(self.packet_type() as u8) << 4, 0x00]);
                Ok(())
            }
        }
    }

    /// The encoded packet in a new vector.
    ///
    /// # Errors
    /// As [`Packet::encode`].
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

macro_rules! from_packet {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Packet {
            fn from(p: $ty) -> Self {
                Self::$variant(p)
            }
        }
    )*};
}
from_packet!(
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe)
);

/// Decoder settings.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The largest packet accepted, fixed header included. MQTT 3.1.1 cannot tell the
    /// peer this limit; a larger packet is a [`DecodeError::PacketTooLarge`] and the
    /// connection is closed.
    pub max_packet_size: usize,
    /// Refuse a CONNECT with the Password flag but not the User Name flag
    /// ([MQTT-3.1.2-22]). Off by default: IoT Core devices do this, so the packet is
    /// decoded and [`Connect::quirks`] reports it for the server to decide.
    pub strict_password_flag: bool,
}

impl DecodeOptions {
    /// Tolerant options with the given maximum packet size.
    #[must_use]
    pub const fn new(max_packet_size: usize) -> Self {
        Self {
            max_packet_size,
            strict_password_flag: false,
        }
    }

    /// The same options with [`DecodeOptions::strict_password_flag`] set to `strict`.
    #[must_use]
    pub const fn strict_password_flag(mut self, strict: bool) -> Self {
        self.strict_password_flag = strict;
        self
    }
}

/// Decodes one packet from the start of `buf` with tolerant options.
///
/// Returns `Ok(Some((packet, consumed)))` when a whole packet is there (the caller
/// drops `consumed` bytes from its buffer), `Ok(None)` when more bytes are needed, and
/// an error when the bytes can never become a valid packet; the connection is then
/// closed ([MQTT-4.8.0-1]). `max_packet_size` counts the whole packet, fixed header
/// included, and is checked before the body is awaited.
///
/// # Errors
/// [`DecodeError`] naming the broken rule.
pub fn decode(buf: &[u8], max_packet_size: usize) -> Result<Option<(Packet, usize)>, DecodeError> {
    decode_with(buf, &DecodeOptions::new(max_packet_size))
}

/// [`decode`] with explicit [`DecodeOptions`].
///
/// # Errors
/// [`DecodeError`] naming the broken rule.
pub fn decode_with(
    buf: &[u8],
    options: &DecodeOptions,
) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(header) = header::parse(buf, options.max_packet_size)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(header.header_len..header.total_len()) else {
        return Ok(None);
    };
    let packet = match header.packet_type {
        PacketType::Connect => Packet::Connect(Connect::decode(body, options)?),
        PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(body)?),
        PacketType::Publish => Packet::Publish(Publish::decode(header.flags, body)?),
        PacketType::PubAck => Packet::PubAck(publish::decode_id_only(PacketType::PubAck, body)?),
        PacketType::PubRec => Packet::PubRec(publish::decode_id_only(PacketType::PubRec, body)?),
        PacketType::PubRel => Packet::PubRel(publish::decode_id_only(PacketType::PubRel, body)?),
        PacketType::PubComp => Packet::PubComp(publish::decode_id_only(PacketType::PubComp, body)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(body)?),
        PacketType::SubAck => Packet::SubAck(SubAck::decode(body)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(body)?),
        PacketType::UnsubAck => {
            Packet::UnsubAck(publish::decode_id_only(PacketType::UnsubAck, body)?)
        }
        // `header::parse` refuses type 15 outside MQTT 5.
        PacketType::Auth => return Err(DecodeError::ReservedPacketType { value: 15 }),
        PacketType::PingReq | PacketType::PingResp | PacketType::Disconnect => {
            if !body.is_empty() {
                return Err(DecodeError::WrongRemainingLength {
                    packet: header.packet_type,
                    expected: 0,
                    found: body.len(),
                });
            }
            match header.packet_type {
                PacketType::PingReq => Packet::PingReq,
                PacketType::PingResp => Packet::PingResp,
                _ => Packet::Disconnect,
            }
        }
    };
    Ok(Some((packet, header.total_len())))
}

/// The protocol a CONNECT asks for, read without decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolLevel {
    /// `MQTT`, level 4: decode with this crate's [`decode`].
    V3_1_1,
    /// `MQTT`, level 5: hand the connection to an MQTT 5 codec.
    V5,
    /// Anything else (`MQIsdp` level 3 is MQTT 3.1): answer CONNACK 0x01 and close.
    Other(u8),
}

/// Reads the protocol level of the CONNECT at the start of `buf`, so that a server
/// can pick the codec for the connection before decoding anything.
///
/// Returns `Ok(None)` while more bytes are needed (at most 2 + 4 + 2 + 6 + 1 bytes).
///
/// # Errors
/// [`DecodeError::NotConnect`] when the first packet is not a CONNECT
/// ([MQTT-3.1.0-1]); [`DecodeError::ProtocolName`] for a name other than `MQTT` or
/// `MQIsdp`; fixed-header errors as in [`decode`].
pub fn peek_connect_level(buf: &[u8]) -> Result<Option<ProtocolLevel>, DecodeError> {
    let Some(header) = header::parse(buf, usize::MAX)? else {
        return Ok(None);
    };
    if header.packet_type != PacketType::Connect {
        return Err(DecodeError::NotConnect {
            packet: header.packet_type,
        });
    }
    let body = buf.get(header.header_len..).unwrap_or_default();
    let body = body.get(..header.remaining).unwrap_or(body);
    let mut r = read::Reader::new(body, PacketType::Connect);
    let complete = header.remaining <= body.len();
    let name = match r.binary("protocol name") {
        Ok(name) => name,
        Err(_) if !complete => return Ok(None),
        Err(e) => return Err(e),
    };
    if name != b"MQTT" && name != b"MQIsdp" {
        return Err(DecodeError::ProtocolName);
    }
    let level = match r.u8("protocol level") {
        Ok(level) => level,
        Err(_) if !complete => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(match (name, level) {
        (b"MQTT", 4) => ProtocolLevel::V3_1_1,
        (b"MQTT", 5) => ProtocolLevel::V5,
        // Level 4 under MQTT 3.1's name is neither protocol; `decode` says the same.
        (b"MQIsdp", 4) => return Err(DecodeError::ProtocolName),
        _ => ProtocolLevel::Other(level),
    }))
}
