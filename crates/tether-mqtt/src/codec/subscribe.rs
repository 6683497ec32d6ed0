//! SUBSCRIBE (§3.8), SUBACK (§3.9) and UNSUBSCRIBE (§3.10).

use alloc::vec::Vec;

use super::header::{self, PacketType};
use super::read::Reader;
use super::write;
use crate::error::{DecodeError, EncodeError};
use crate::qos::{PacketId, QoS};
use crate::topic::TopicFilter;

/// One topic filter of a SUBSCRIBE with the QoS the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The filter.
    pub filter: TopicFilter,
    /// The maximum QoS the client wants to receive at.
    pub qos: QoS,
}

/// A subscribe request: at least one filter ([MQTT-3.8.3-3]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier the SUBACK repeats.
    pub packet_id: PacketId,
    /// The filters, in order; the SUBACK answers each in the same order.
    pub subscriptions: Vec<Subscription>,
}

impl Subscribe {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, PacketType::Subscribe);
        let packet_id = r.packet_id()?;
        let mut subscriptions = Vec::new();
        while !r.is_empty() {
            let filter = r.string("topic filter")?;
            let filter = TopicFilter::new(filter).map_err(|error| DecodeError::Topic {
                packet: PacketType::Subscribe,
                error,
            })?;
            let requested = r.u8("requested QoS")?;
            if requested & 0b1111_1100 != 0 {
                return Err(DecodeError::SubscribeReservedBits { value: requested });
            }
            let qos = QoS::from_u8(requested).ok_or(DecodeError::InvalidQos {
                packet: PacketType::Subscribe,
                value: requested,
            })?;
            subscriptions.push(Subscription { filter, qos });
        }
        if subscriptions.is_empty() {
            return Err(DecodeError::NoTopicFilters {
                packet: PacketType::Subscribe,
            });
        }
        Ok(Self {
            packet_id,
            subscriptions,
        })
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// No subscriptions, or a packet larger than 256 MB.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.subscriptions.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet: PacketType::Subscribe,
            });
        }
        let remaining = 2 + self
            .subscriptions
            .iter()
            .map(|s| 2 + s.filter.as_str().len() + 1)
            .sum::<usize>();
        header::write(out, PacketType::Subscribe, 0b0010, remaining)?;
        write::u16(out, self.packet_id.get());
        for s in &self.subscriptions {
            write::prefixed(out, s.filter.as_str().as_bytes());
            out.push(s.qos.as_u8());
        }
        Ok(())
    }
}

/// The answer to one filter of a SUBSCRIBE (§3.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubAckCode {
    /// Subscribed; messages arrive at up to this QoS.
    Granted(QoS),
    /// 0x80: refused (IoT Core: not one of the device's topics).
    Failure,
}

impl SubAckCode {
    /// The wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Granted(qos) => qos.as_u8(),
            Self::Failure => 0x80,
        }
    }

    /// The code for a wire value; `None` for the reserved values.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0x80 => Some(Self::Failure),
            _ => match QoS::from_u8(value) {
                Some(qos) => Some(Self::Granted(qos)),
                None => None,
            },
        }
    }
}

/// A subscribe acknowledgement: one code per requested filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's packet identifier.
    pub packet_id: PacketId,
    /// One code per filter, in the SUBSCRIBE's order.
    pub codes: Vec<SubAckCode>,
}

impl SubAck {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, PacketType::SubAck);
        let packet_id = r.packet_id()?;
        let codes = r
            .rest()
            .iter()
            .map(|&value| {
                SubAckCode::from_u8(value).ok_or(DecodeError::InvalidSubAckCode { value })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if codes.is_empty() {
            return Err(DecodeError::NoReturnCodes);
        }
        Ok(Self { packet_id, codes })
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// No return codes, or a packet larger than 256 MB.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.codes.is_empty() {
            return Err(EncodeError::NoReturnCodes);
        }
        header::write(out, PacketType::SubAck, 0, 2 + self.codes.len())?;
        write::u16(out, self.packet_id.get());
        out.extend(self.codes.iter().map(|code| code.as_u8()));
        Ok(())
    }
}

/// An unsubscribe request: at least one filter ([MQTT-3.10.3-2]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier the UNSUBACK repeats.
    pub packet_id: PacketId,
    /// The filters to remove.
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, PacketType::Unsubscribe);
        let packet_id = r.packet_id()?;
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string("topic filter")?;
            filters.push(
                TopicFilter::new(filter).map_err(|error| DecodeError::Topic {
                    packet: PacketType::Unsubscribe,
                    error,
                })?,
            );
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters {
                packet: PacketType::Unsubscribe,
            });
        }
        Ok(Self { packet_id, filters })
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// No filters, or a packet larger than 256 MB.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet: PacketType::Unsubscribe,
            });
        }
        let remaining = 2 + self
            .filters
            .iter()
            .map(|f| 2 + f.as_str().len())
            .sum::<usize>();
        header::write(out, PacketType::Unsubscribe, 0b0010, remaining)?;
        write::u16(out, self.packet_id.get());
        for filter in &self.filters {
            write::prefixed(out, filter.as_str().as_bytes());
        }
        Ok(())
    }
}
