//! The fixed header (§2.2): packet type, flags and remaining length, checked before
//! anything else is read.

use alloc::vec::Vec;
use core::fmt;

use super::varint::{self, MAX_REMAINING_LENGTH, Varint};
use crate::error::{DecodeError, EncodeError};
use crate::qos::QoS;

/// The fourteen MQTT 3.1.1 control packet types (§2.2.1) and MQTT 5's AUTH.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Client → server: connection request.
    Connect = 1,
    /// Server → client: connection acknowledgement.
    ConnAck = 2,
    /// Either way: an application message.
    Publish = 3,
    /// QoS 1 acknowledgement.
    PubAck = 4,
    /// QoS 2, part 1.
    PubRec = 5,
    /// QoS 2, part 2.
    PubRel = 6,
    /// QoS 2, part 3.
    PubComp = 7,
    /// Client → server: subscribe.
    Subscribe = 8,
    /// Server → client: subscribe acknowledgement.
    SubAck = 9,
    /// Client → server: unsubscribe.
    Unsubscribe = 10,
    /// Server → client: unsubscribe acknowledgement.
    UnsubAck = 11,
    /// Client → server: keep-alive ping.
    PingReq = 12,
    /// Server → client: ping response.
    PingResp = 13,
    /// Client → server: clean disconnect (MQTT 5: either way).
    Disconnect = 14,
    /// MQTT 5 only: authentication exchange (reserved in 3.1.1).
    Auth = 15,
}

impl PacketType {
    /// The type for the high nibble of the first byte; `None` for the reserved 0 and 15.
    #[must_use]
    pub const fn from_nibble(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            _ => return None,
        })
    }

    /// The name the specification uses, e.g. `"CONNACK"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::ConnAck => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK",
            Self::PubRec => "PUBREC",
            Self::PubRel => "PUBREL",
            Self::PubComp => "PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::SubAck => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::UnsubAck => "UNSUBACK",
            Self::PingReq => "PINGREQ",
            Self::PingResp => "PINGRESP",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }

    /// The fixed-header flags Table 2.2 requires; `None` for PUBLISH, whose flags
    /// carry DUP, QoS and RETAIN.
    #[must_use]
    pub const fn required_flags(self) -> Option<u8> {
        match self {
            Self::Publish => None,
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded fixed header whose size is within the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    pub(crate) packet_type: PacketType,
    pub(crate) flags: u8,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub(crate) header_len: usize,
    pub(crate) remaining: usize,
}

impl FixedHeader {
    pub(crate) fn total_len(&self) -> usize {
        self.header_len + self.remaining
    }
}

/// Reads the fixed header at the start of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed. The type and flags are checked on
/// the first byte; the size is checked against `max_packet_size` as soon as the
/// remaining length is known, or as soon as a lower bound of it already exceeds the
/// limit, so an oversized packet fails without waiting for its body.
pub(crate) fn parse(
    buf: &[u8],
    max_packet_size: usize,
) -> Result<Option<FixedHeader>, DecodeError> {
    parse_versioned(buf, max_packet_size, false)
}

/// [`parse`], with MQTT 5's AUTH (type 15) allowed when `v5`.
pub(crate) fn parse_versioned(
    buf: &[u8],
    max_packet_size: usize,
    v5: bool,
) -> Result<Option<FixedHeader>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let packet_type = match PacketType::from_nibble(first >> 4) {
        Some(packet) => packet,
        None if v5 && first >> 4 == 15 => PacketType::Auth,
        None => return Err(DecodeError::ReservedPacketType { value: first >> 4 }),
    };
    let flags = first & 0x0f;
    check_flags(packet_type, flags)?;
    match varint::decode(rest)? {
        Varint::Complete { value, len } => {
            let header = FixedHeader {
                packet_type,
                flags,
                header_len: 1 + len,
                remaining: value,
            };
            if header.total_len() > max_packet_size {
                return Err(DecodeError::PacketTooLarge {
                    size: header.total_len(),
                    max: max_packet_size,
                });
            }
            Ok(Some(header))
        }
        Varint::Partial { lower_bound } => {
            // At least one more length byte follows the ones we have.
            let size = 1 + rest.len() + 1 + lower_bound;
            if !rest.is_empty() && size > max_packet_size {
                return Err(DecodeError::PacketTooLarge {
                    size,
                    max: max_packet_size,
                });
            }
            Ok(None)
        }
    }
}

/// The whole length of the packet at the start of `buf` (fixed header included), once
/// its remaining-length field is complete; `None` before that or when the field is
/// invalid. Nothing else is checked: [`parse`] does that when the packet is decoded.
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    match varint::decode(buf.get(1..)?) {
        Ok(Varint::Complete { value, len }) => Some(1 + len + value),
        _ => None,
    }
}

fn check_flags(packet_type: PacketType, flags: u8) -> Result<(), DecodeError> {
    match packet_type.required_flags() {
        Some(required) if flags != required => Err(DecodeError::InvalidFlags {
            packet: packet_type,
            flags,
        }),
        Some(_) => Ok(()),
        None => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::InvalidQos {
                    packet: PacketType::Publish,
                    value: qos,
                });
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::DupWithQos0);
            }
            Ok(())
        }
    }
}

/// The PUBLISH fixed-header flags.
pub(crate) fn publish_flags(dup: bool, qos: QoS, retain: bool) -> u8 {
    (u8::from(dup) << 3) | (qos.as_u8() << 1) | u8::from(retain)
}

/// Appends a fixed header for a packet whose body is `remaining` bytes long.
pub(crate) fn write(
    out: &mut Vec<u8>,
    packet_type: PacketType,
    flags: u8,
    remaining: usize,
) -> Result<(), EncodeError> {
    if remaining > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge { remaining });
    }
    out.reserve(1 + varint::encoded_len(remaining) + remaining);
    out.push(((packet_type as u8) << 4) | flags);
    varint::encode(remaining, out);
    Ok(())
}
