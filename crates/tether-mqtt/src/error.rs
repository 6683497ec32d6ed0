//! Errors of the codec and the topic types.
//!
//! Every protocol error names the normative statement it enforces (`[MQTT-x.y.z-n]`
//! from the MQTT 3.1.1 specification) or, where the specification states a rule
//! without numbering it, its section (`[§2.2.3]`). [`DecodeError::clause`] returns the
//! tag alone, for metrics labels and logs.
//!
//! Who is at fault: a [`DecodeError`] is always the peer's (the bytes it sent break the
//! protocol or our configured limit) and the connection must be closed
//! ([MQTT-4.8.0-1]); an [`EncodeError`] is always ours (a value that cannot be put on
//! the wire); a [`TopicError`] is whoever supplied the string.

use core::fmt;

use crate::codec::ConnectReturnCode;
use crate::codec::PacketType;
use crate::codec::v5::{PropertyError, PropertyPlace};

/// Why bytes received from a peer are not a valid MQTT 3.1.1 packet.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The packet (fixed header included) is larger than the configured maximum.
    /// Raised as soon as the remaining length (or a lower bound of it) is known,
    /// before the body is awaited or anything is allocated.
    PacketTooLarge {
        /// Size of the packet in bytes, or a lower bound of it.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Packet type 0 or 15 in the first byte (§2.2.1: reserved, forbidden).
    ReservedPacketType {
        /// The four-bit type value.
        value: u8,
    },
    /// Fixed-header flags differ from the values in Table 2.2.
    InvalidFlags {
        /// The packet type of the first byte.
        packet: PacketType,
        /// The low four bits of the first byte.
        flags: u8,
    },
    /// The remaining length uses more than four bytes (§2.2.3).
    RemainingLengthTooLong,
    /// The remaining length is not in its shortest form (its last byte is 0).
    RemainingLengthNotMinimal,
    /// A packet with a fixed-size body has a different remaining length.
    WrongRemainingLength {
        /// The packet type.
        packet: PacketType,
        /// The only valid remaining length for this packet.
        expected: usize,
        /// The remaining length received.
        found: usize,
    },
    /// A field runs past the end given by the remaining length.
    Truncated {
        /// The packet type.
        packet: PacketType,
        /// The field that did not fit.
        field: &'static str,
    },
    /// Bytes are left over after the last field of a packet.
    TrailingBytes {
        /// The packet type.
        packet: PacketType,
        /// How many bytes are left over.
        count: usize,
    },
    /// A UTF-8 string field is not well-formed UTF-8 (surrogates included).
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A UTF-8 string field contains U+0000.
    NulInString {
        /// The field.
        field: &'static str,
    },
    /// The CONNECT protocol name is neither `MQTT` nor MQTT 3.1's `MQIsdp`.
    ProtocolName,
    /// The CONNECT protocol level is not 4 (MQTT 3.1.1). The server answers with
    /// CONNACK 0x01 and closes ([`DecodeError::connack_code`]).
    UnsupportedProtocolLevel {
        /// The level received (3 = MQTT 3.1, 5 = MQTT 5).
        level: u8,
    },
    /// The reserved bit 0 of the CONNECT flags is set.
    ConnectReservedFlag,
    /// Will QoS is non-zero while the Will flag is 0.
    WillQosWithoutWill,
    /// Will Retain is set while the Will flag is 0.
    WillRetainWithoutWill,
    /// A QoS field holds 3 (or, in SUBSCRIBE, any value above 2).
    InvalidQos {
        /// The packet carrying the QoS.
        packet: PacketType,
        /// The value received.
        value: u8,
    },
    /// The CONNECT Password flag is set without the User Name flag. Only raised with
    /// [`DecodeOptions::strict_password_flag`](crate::codec::DecodeOptions); by default
    /// this is decoded and reported by [`Connect::quirks`](crate::codec::Connect::quirks).
    PasswordWithoutUsername,
    /// DUP is set on a QoS 0 PUBLISH.
    DupWithQos0,
    /// A packet identifier is 0.
    ZeroPacketId {
        /// The packet type.
        packet: PacketType,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter.
    NoTopicFilters {
        /// The packet type.
        packet: PacketType,
    },
    /// SUBACK without a return code.
    NoReturnCodes,
    /// The reserved upper six bits of a SUBSCRIBE requested-QoS byte are not 0.
    SubscribeReservedBits {
        /// The byte received.
        value: u8,
    },
    /// A SUBACK return code other than 0x00, 0x01, 0x02 or 0x80.
    InvalidSubAckCode {
        /// The byte received.
        value: u8,
    },
    /// The reserved bits 7–1 of the CONNACK acknowledge flags are not 0.
    ConnAckReservedFlags {
        /// The byte received.
        value: u8,
    },
    /// A CONNACK return code above 5.
    InvalidConnectReturnCode {
        /// The byte received.
        value: u8,
    },
    /// CONNACK refuses the connection but sets Session Present.
    SessionPresentOnRefusal,
    /// A topic name or filter breaks the topic rules.
    Topic {
        /// The packet carrying it.
        packet: PacketType,
        /// What is wrong.
        error: TopicError,
    },
    /// The first packet of a connection is not CONNECT (seen by
    /// [`peek_connect_level`](crate::codec::peek_connect_level)).
    NotConnect {
        /// The packet type received instead.
        packet: PacketType,
    },
    /// MQTT 5: a property that is unknown, misplaced, repeated or out of range.
    Property {
        /// Where the property list is.
        place: PropertyPlace,
        /// What is wrong.
        error: PropertyError,
    },
    /// MQTT 5: a reason code the packet may not carry.
    InvalidReasonCode {
        /// The packet.
        packet: PacketType,
        /// The byte received.
        value: u8,
    },
    /// MQTT 5: SUBSCRIBE options with reserved bits set or Retain Handling 3.
    SubscriptionOptions {
        /// The byte received.
        value: u8,
    },
}

impl DecodeError {
    /// The specification clause this error enforces (`MQTT-3.1.2-3`, `§2.2.3`), or
    /// `None` for [`DecodeError::PacketTooLarge`], which is our limit, not the spec's.
    #[must_use]
    pub fn clause(&self) -> Option<&'static str> {
        Some(match self {
            Self::PacketTooLarge { .. } => return None,
            Self::ReservedPacketType { .. } => "§2.2.1",
            Self::InvalidFlags { packet, .. } => match packet {
                PacketType::PubRel => "MQTT-3.6.1-1",
                PacketType::Subscribe => "MQTT-3.8.1-1",
                PacketType::Unsubscribe => "MQTT-3.10.1-1",
                PacketType::Disconnect => "MQTT-3.14.1-1",
                _ => "MQTT-2.2.2-1",
            },
            Self::RemainingLengthTooLong
            | Self::RemainingLengthNotMinimal
            | Self::WrongRemainingLength { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. } => "§2.2.3",
            Self::InvalidUtf8 { .. } => "MQTT-1.5.3-1",
            Self::NulInString { .. } => "MQTT-1.5.3-2",
            Self::ProtocolName => "MQTT-3.1.2-1",
            Self::UnsupportedProtocolLevel { .. } => "MQTT-3.1.2-2",
            Self::ConnectReservedFlag => "MQTT-3.1.2-3",
            Self::WillQosWithoutWill => "MQTT-3.1.2-13",
            Self::WillRetainWithoutWill => "MQTT-3.1.2-15",
            Self::InvalidQos { packet, .. } => match packet {
                PacketType::Connect => "MQTT-3.1.2-14",
                // "3-8", not "3.8": the specification itself misprints this tag, and
                // tags are quoted exactly as it prints them. Do not "fix" it.
                PacketType::Subscribe => "MQTT-3-8.3-4",
                _ => "MQTT-3.3.1-4",
            },
            Self::PasswordWithoutUsername => "MQTT-3.1.2-22",
            Self::DupWithQos0 => "MQTT-3.3.1-2",
            Self::ZeroPacketId { .. } => "MQTT-2.3.1-1",
            Self::NoTopicFilters { packet } => match packet {
                PacketType::Unsubscribe => "MQTT-3.10.3-2",
                _ => "MQTT-3.8.3-3",
            },
            Self::NoReturnCodes => "MQTT-3.8.4-5",
            // The specification's own misprint of MQTT-3.8.3-4, kept (see above).
            Self::SubscribeReservedBits { .. } => "MQTT-3-8.3-4",
            Self::InvalidSubAckCode { .. } => "MQTT-3.9.3-2",
            Self::ConnAckReservedFlags { .. } => "§3.2.2.1",
            Self::InvalidConnectReturnCode { .. } => "§3.2.2.3",
            Self::SessionPresentOnRefusal => "MQTT-3.2.2-4",
            Self::Topic { error, .. } => error.clause(),
            Self::NotConnect { .. } => "MQTT-3.1.0-1",
            // MQTT 5 states these rules in its sections, not numbered statements.
            Self::Property { .. } => "MQTT 5 §2.2.2.2",
            Self::InvalidReasonCode { .. } => "MQTT 5 §2.4",
            Self::SubscriptionOptions { .. } => "MQTT 5 §3.8.3.1",
        })
    }

    /// The CONNACK return code a server should send before closing, when the
    /// specification asks for one: only an unsupported protocol level
    /// ([MQTT-3.1.2-2]). Every other decode error closes without CONNACK.
    #[must_use]
    pub fn connack_code(&self) -> Option<ConnectReturnCode> {
        match self {
            Self::UnsupportedProtocolLevel { .. } => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(clause) = self.clause() {
            write!(f, "[{clause}] ")?;
        }
        match self {
            Self::PacketTooLarge { size, max } => write!(
                f,
                "packet of {size} bytes or more exceeds the maximum packet size of {max} bytes"
            ),
            Self::ReservedPacketType { value } => {
                write!(f, "packet type {value} is reserved and forbidden")
            }
            Self::InvalidFlags { packet, flags } => match packet.required_flags() {
                Some(required) => write!(
                    f,
                    "{packet} fixed-header flags must be {required:#06b}, found {flags:#06b}"
                ),
                None => write!(f, "{packet} fixed-header flags {flags:#06b} are invalid"),
            },
            Self::RemainingLengthTooLong => {
                f.write_str("remaining length is encoded in more than 4 bytes")
            }
            Self::RemainingLengthNotMinimal => {
                f.write_str("remaining length is not encoded in the minimum number of bytes")
            }
            Self::WrongRemainingLength {
                packet,
                expected,
                found,
            } => write!(
                f,
                "{packet} remaining length must be {expected}, found {found}"
            ),
            Self::Truncated { packet, field } => write!(
                f,
                "{packet} {field} runs past the end of the packet (remaining length too short)"
            ),
            Self::TrailingBytes { packet, count } => write!(
                f,
                "{packet} has {count} unexpected byte(s) after its last field"
            ),
            Self::InvalidUtf8 { field } => write!(f, "{field} is not well-formed UTF-8"),
            Self::NulInString { field } => write!(f, "{field} contains the null character U+0000"),
            Self::ProtocolName => f.write_str("CONNECT protocol name must be \"MQTT\""),
            Self::UnsupportedProtocolLevel { level } => write!(
                f,
                "CONNECT protocol level {level} is not supported (only 4, MQTT 3.1.1); \
                 answer CONNACK 0x01"
            ),
            Self::ConnectReservedFlag => f.write_str("CONNECT reserved flag must be 0"),
            Self::WillQosWithoutWill => {
                f.write_str("CONNECT Will QoS must be 0 when the Will flag is 0")
            }
            Self::WillRetainWithoutWill => {
                f.write_str("CONNECT Will Retain must be 0 when the Will flag is 0")
            }
            Self::InvalidQos { packet, value } => write!(f, "{packet} QoS {value} is invalid"),
            Self::PasswordWithoutUsername => {
                f.write_str("CONNECT Password flag must be 0 when the User Name flag is 0")
            }
            Self::DupWithQos0 => f.write_str("PUBLISH DUP flag must be 0 for QoS 0"),
            Self::ZeroPacketId { packet } => write!(f, "{packet} packet identifier must not be 0"),
            Self::NoTopicFilters { packet } => {
                write!(f, "{packet} must contain at least one topic filter")
            }
            Self::NoReturnCodes => f.write_str("SUBACK must contain at least one return code"),
            Self::SubscribeReservedBits { value } => write!(
                f,
                "SUBSCRIBE requested-QoS byte {value:#04x} has reserved bits set"
            ),
            Self::InvalidSubAckCode { value } => {
                write!(f, "SUBACK return code {value:#04x} is reserved")
            }
            Self::ConnAckReservedFlags { value } => write!(
                f,
                "CONNACK acknowledge flags {value:#04x} have reserved bits 7-1 set"
            ),
            Self::InvalidConnectReturnCode { value } => {
                write!(f, "CONNACK return code {value} is reserved")
            }
            Self::SessionPresentOnRefusal => {
                f.write_str("CONNACK Session Present must be 0 when the return code is not 0")
            }
            Self::Topic { packet, error } => write!(f, "{packet}: {}", error.message()),
            Self::NotConnect { packet } => {
                write!(f, "the first packet must be CONNECT, found {packet}")
            }
            Self::Property { place, error } => write!(f, "{place} properties: {error}"),
            Self::InvalidReasonCode { packet, value } => {
                write!(f, "{packet} reason code {value:#04x} is not defined for it")
            }
            Self::SubscriptionOptions { value } => write!(
                f,
                "SUBSCRIBE options {value:#010b}: the reserved bits 7-6 must be 0 and Retain \
                 Handling must not be 3"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a packet value cannot be encoded. Always the caller's mistake: the value was
/// built with a field the wire format cannot carry.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes (§1.5.3).
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The remaining length would exceed 268,435,455 bytes (§2.2.3).
    PacketTooLarge {
        /// The remaining length the packet would need.
        remaining: usize,
    },
    /// DUP set on a QoS 0 PUBLISH.
    DupWithQos0,
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter.
    NoTopicFilters {
        /// The packet type.
        packet: PacketType,
    },
    /// SUBACK without a return code.
    NoReturnCodes,
}

impl EncodeError {
    /// The specification clause the value would break.
    #[must_use]
    pub fn clause(&self) -> &'static str {
        match self {
            Self::FieldTooLong { .. } => "§1.5.3",
            Self::PacketTooLarge { .. } => "§2.2.3",
            Self::DupWithQos0 => "MQTT-3.3.1-2",
            Self::NoTopicFilters { packet } => match packet {
                PacketType::Unsubscribe => "MQTT-3.10.3-2",
                _ => "MQTT-3.8.3-3",
            },
            Self::NoReturnCodes => "MQTT-3.8.4-5",
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.clause())?;
        match self {
            Self::FieldTooLong { field, len } => {
                write!(f, "{field} is {len} bytes; at most 65535 fit")
            }
            Self::PacketTooLarge { remaining } => write!(
                f,
                "remaining length {remaining} exceeds the maximum of 268435455"
            ),
            Self::DupWithQos0 => f.write_str("PUBLISH DUP flag must be 0 for QoS 0"),
            Self::NoTopicFilters { packet } => {
                write!(f, "{packet} must contain at least one topic filter")
            }
            Self::NoReturnCodes => f.write_str("SUBACK must contain at least one return code"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why a string is not a valid topic name or topic filter (§4.7).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Topic names and filters are at least one character long.
    Empty,
    /// Longer than 65,535 bytes.
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// Contains U+0000.
    Nul,
    /// A topic name contains `+` or `#`.
    WildcardInName,
    /// `#` is not alone in the last level of a filter.
    MultiLevelWildcardMisplaced,
    /// `+` does not occupy a whole level of a filter.
    SingleLevelWildcardMisplaced,
}

impl TopicError {
    /// The normative statement the string breaks.
    #[must_use]
    pub fn clause(&self) -> &'static str {
        match self {
            Self::Empty => "MQTT-4.7.3-1",
            Self::TooLong { .. } => "MQTT-4.7.3-3",
            Self::Nul => "MQTT-4.7.3-2",
            Self::WildcardInName => "MQTT-3.3.2-2",
            Self::MultiLevelWildcardMisplaced => "MQTT-4.7.1-2",
            Self::SingleLevelWildcardMisplaced => "MQTT-4.7.1-3",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::Empty => "topic must be at least one character long",
            Self::TooLong { .. } => "topic is longer than 65535 bytes",
            Self::Nul => "topic contains the null character U+0000",
            Self::WildcardInName => "topic name must not contain the wildcards '+' or '#'",
            Self::MultiLevelWildcardMisplaced => {
                "'#' must be the last character of a topic filter and occupy a whole level"
            }
            Self::SingleLevelWildcardMisplaced => "'+' must occupy a whole level of a topic filter",
        }
    }
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.clause(), self.message())
    }
}

impl core::error::Error for TopicError {}
