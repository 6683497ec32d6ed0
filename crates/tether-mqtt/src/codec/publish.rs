//! PUBLISH (§3.3) and the two-byte acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP
//! and UNSUBACK (§3.4–3.7, §3.11).

use alloc::vec::Vec;

use super::header::{self, PacketType};
use super::read::Reader;
use super::write;
use crate::error::{DecodeError, EncodeError};
use crate::qos::{PacketId, QoS};
use crate::topic::TopicName;

/// How a PUBLISH is delivered: its QoS and, for QoS 1 and 2, the packet identifier
/// that only those carry. One type, so a QoS 0 message cannot have an identifier and a
/// QoS 1 message cannot lack one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// QoS 0.
    AtMostOnce,
    /// QoS 1.
    AtLeastOnce(PacketId),
    /// QoS 2.
    ExactlyOnce(PacketId),
}

impl Delivery {
    /// The QoS.
    #[must_use]
    pub const fn qos(self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce(_) => QoS::AtLeastOnce,
            Self::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, for QoS 1 and 2.
    #[must_use]
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce(id) | Self::ExactlyOnce(id) => Some(id),
        }
    }
}

/// An application message.
///
/// The payload is owned: decoding copies it out of the bytes it is given, so the
/// connection driver can reuse its buffer at once and the message can be handed to
/// another task. The sessions decode from the driver's read buffer itself, so that is
/// the only copy, except for a message split across reads, which the session gathers
/// first. At the sizes IoT Core allows (≤256 KB) a copy is cheap next to the TLS
/// decryption that produced the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Re-delivery flag; must be false for QoS 0 ([MQTT-3.3.1-2]).
    pub dup: bool,
    /// QoS and packet identifier.
    pub delivery: Delivery,
    /// Retain flag (IoT Core does not support retained messages).
    pub retain: bool,
    /// The topic.
    pub topic: TopicName,
    /// The payload, possibly empty.
    pub payload: Vec<u8>,
}

impl Publish {
    /// A QoS 0 message, no DUP, no RETAIN.
    #[must_use]
    pub fn at_most_once(topic: TopicName, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            dup: false,
            delivery: Delivery::AtMostOnce,
            retain: false,
            topic,
            payload: payload.into(),
        }
    }

    /// A QoS 1 message, no DUP, no RETAIN.
    #[must_use]
    pub fn at_least_once(id: PacketId, topic: TopicName, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            delivery: Delivery::AtLeastOnce(id),
            ..Self::at_most_once(topic, payload)
        }
    }

    pub(crate) fn decode(flags: u8, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, PacketType::Publish);
        let topic = r.string("topic name")?;
        let topic = TopicName::new(topic).map_err(|error| DecodeError::Topic {
            packet: PacketType::Publish,
            error,
        })?;
        // The fixed header already rejected QoS 3 and DUP on QoS 0.
        let delivery = match (flags >> 1) & 0b11 {
            0 => Delivery::AtMostOnce,
            1 => Delivery::AtLeastOnce(r.packet_id()?),
            _ => Delivery::ExactlyOnce(r.packet_id()?),
        };
        Ok(Self {
            dup: flags & 0b1000 != 0,
            delivery,
            retain: flags & 0b0001 != 0,
            topic,
            payload: r.rest().to_vec(),
        })
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// DUP on QoS 0, or a packet larger than 256 MB.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.dup && self.delivery == Delivery::AtMostOnce {
            return Err(EncodeError::DupWithQos0);
        }
        let id_len = if self.delivery.packet_id().is_some() {
            2
        } else {
            0
        };
        let remaining = 2 + self.topic.as_str().len() + id_len + self.payload.len();
        let flags = header::publish_flags(self.dup, self.delivery.qos(), self.retain);
        header::write(out, PacketType::Publish, flags, remaining)?;
        write::prefixed(out, self.topic.as_str().as_bytes());
        if let Some(id) = self.delivery.packet_id() {
            write::u16(out, id.get());
        }
        out.extend_from_slice(&self.payload);
        Ok(())
    }
}

/// Decodes the body of a packet that is exactly a packet identifier.
pub(crate) fn decode_id_only(packet: PacketType, body: &[u8]) -> Result<PacketId, DecodeError> {
    if body.len() != 2 {
        return Err(DecodeError::WrongRemainingLength {
            packet,
            expected: 2,
            found: body.len(),
        });
    }
    Reader::new(body, packet).packet_id()
}

/// Appends a packet that is exactly a packet identifier.
pub(crate) fn encode_id_only(packet: PacketType, id: PacketId, out: &mut Vec<u8>) {
    let flags = packet.required_flags().unwrap_or(0);
    let [hi, lo] = id.get().to_be_bytes();
    out.extend_from_slice(&[((packet as u8) << 4) | flags, 0x02, hi, lo]);
}
