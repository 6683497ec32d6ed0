//! CONNECT (§3.1) and CONNACK (§3.2).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::header::{self, PacketType};
use super::read::Reader;
use super::{DecodeOptions, write};
use crate::error::{DecodeError, EncodeError};
use crate::qos::QoS;
use crate::topic::TopicName;

/// The protocol level of MQTT 3.1.1.
pub const PROTOCOL_LEVEL_3_1_1: u8 = 4;

/// A connection request.
///
/// Decoding keeps everything a gateway needs to judge the request, including what
/// IoT Core refuses (a Will) and what it tolerates (a password without the User Name
/// flag, see [`Connect::quirks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Always 4 when decoded (other levels are a [`DecodeError::UnsupportedProtocolLevel`]).
    /// Encoded as given, so a test client can probe a server with level 3 or 5.
    pub protocol_level: u8,
    /// Clean Session flag (IoT Core devices send 1).
    pub clean_session: bool,
    /// Keep-alive in seconds; 0 turns the mechanism off.
    pub keep_alive: u16,
    /// Client identifier; for IoT Core the device path, see
    /// `tether_iot::ClientId`. May be empty (§3.1.3.1).
    pub client_id: String,
    /// The Last Will. IoT Core does not support it; the server refuses it.
    pub will: Option<Will>,
    /// User name; IoT Core ignores it (devices send `unused`).
    pub username: Option<String>,
    /// Password bytes; for IoT Core the device's JWT. Kept as bytes: nothing in
    /// MQTT says they are text.
    pub password: Option<Vec<u8>>,
}

/// A Last Will and Testament (§3.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Where the will would be published.
    pub topic: TopicName,
    /// The will message.
    pub message: Vec<u8>,
    /// Its QoS.
    pub qos: QoS,
    /// Its retain flag.
    pub retain: bool,
}

/// Something a CONNECT does that the specification forbids but real devices do, so
/// the codec decodes it and lets the server decide.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quirk {
    /// The Password flag without the User Name flag ([MQTT-3.1.2-22]). Some IoT Core
    /// device libraries send only the JWT as password when the username is empty.
    PasswordWithoutUsername,
}

impl Quirk {
    /// The normative statement the quirk breaks.
    #[must_use]
    pub fn clause(&self) -> &'static str {
        match self {
            Self::PasswordWithoutUsername => "MQTT-3.1.2-22",
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PasswordWithoutUsername => write!(
                f,
                "[{}] CONNECT has a password but no user name (tolerated)",
                self.clause()
            ),
        }
    }
}

/// The CONNECT flags byte (§3.1.2.2–3.1.2.9), the same in MQTT 3.1.1 and 5, checked.
pub(crate) struct ConnectFlags {
    pub(crate) clean_session: bool,
    pub(crate) will_flag: bool,
    pub(crate) will_qos: QoS,
    pub(crate) will_retain: bool,
    pub(crate) has_password: bool,
    pub(crate) has_username: bool,
}

impl ConnectFlags {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u8("connect flags")?;
        if flags & 0x01 != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0b11;
        let will_retain = flags & 0x20 != 0;
        if !will_flag && will_qos != 0 {
            return Err(DecodeError::WillQosWithoutWill);
        }
        if !will_flag && will_retain {
            return Err(DecodeError::WillRetainWithoutWill);
        }
        let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQos {
            packet: PacketType::Connect,
            value: will_qos,
        })?;
        Ok(Self {
            clean_session: flags & 0x02 != 0,
            will_flag,
            will_qos,
            will_retain,
            has_password: flags & 0x40 != 0,
            has_username: flags & 0x80 != 0,
        })
    }
}

impl Connect {
    /// A clean-session MQTT 3.1.1 CONNECT with a 60 s keep-alive, as IoT Core's samples
    /// send, and no will or credentials.
    #[must_use]
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            protocol_level: PROTOCOL_LEVEL_3_1_1,
            clean_session: true,
            keep_alive: 60,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        }
    }

    /// The tolerated protocol violations in this CONNECT (empty for a conforming one).
    #[must_use]
    pub fn quirks(&self) -> Vec<Quirk> {
        let mut quirks = Vec::new();
        if self.password.is_some() && self.username.is_none() {
            quirks.push(Quirk::PasswordWithoutUsername);
        }
        quirks
    }

    pub(crate) fn decode(body: &[u8], options: &DecodeOptions) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, PacketType::Connect);
        let name = r.binary("protocol name")?;
        if name != b"MQTT" && name != b"MQIsdp" {
            return Err(DecodeError::ProtocolName);
        }
        let level = r.u8("protocol level")?;
        match (name, level) {
            (b"MQTT", PROTOCOL_LEVEL_3_1_1) => {}
            (b"MQIsdp", PROTOCOL_LEVEL_3_1_1) => return Err(DecodeError::ProtocolName),
            // MQTT 3.1 (`MQIsdp`, level 3) and MQTT 5 get CONNACK 0x01.
            _ => return Err(DecodeError::UnsupportedProtocolLevel { level }),
        }
        let ConnectFlags {
            clean_session,
            will_flag,
            will_qos,
            will_retain,
            has_password,
            has_username,
        } = ConnectFlags::read(&mut r)?;
        if has_password && !has_username && options.strict_password_flag {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = r.u16("keep alive")?;
        let client_id = r.string("client identifier")?.to_string();
        let will = if will_flag {
            let topic = r.string("will topic")?;
            let topic = TopicName::new(topic).map_err(|error| DecodeError::Topic {
                packet: PacketType::Connect,
                error,
            })?;
            let message = r.binary("will message")?.to_vec();
            Some(Will {
                topic,
                message,
                qos: will_qos,
                retain: will_retain,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string("user name")?.to_string())
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary("password")?.to_vec())
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            protocol_level: level,
            clean_session,
            keep_alive,
            client_id,
            will,
            username,
            password,
        })
    }

    /// Appends the encoded packet to `out`; on error nothing is appended.
    ///
    /// # Errors
    /// A field longer than 65,535 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut remaining = 6 + 1 + 1 + 2; // "MQTT" with its length, level, flags, keep-alive
        remaining += write::prefixed_len("client identifier", self.client_id.as_bytes())?;
        if let Some(will) = &self.will {
            remaining += write::prefixed_len("will topic", will.topic.as_str().as_bytes())?;
            remaining += write::prefixed_len("will message", &will.message)?;
        }
        if let Some(username) = &self.username {
            remaining += write::prefixed_len("user name", username.as_bytes())?;
        }
        if let Some(password) = &self.password {
            remaining += write::prefixed_len("password", password)?;
        }
        let mut flags = u8::from(self.clean_session) << 1;
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos.as_u8() << 3) | (u8::from(will.retain) << 5);
        }
        flags |= u8::from(self.password.is_some()) << 6;
        flags |= u8::from(self.username.is_some()) << 7;

        header::write(out, PacketType::Connect, 0, remaining)?;
        write::prefixed(out, b"MQTT");
        out.push(self.protocol_level);
        out.push(flags);
        write::u16(out, self.keep_alive);
        write::prefixed(out, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            write::prefixed(out, will.topic.as_str().as_bytes());
            write::prefixed(out, &will.message);
        }
        if let Some(username) = &self.username {
            write::prefixed(out, username.as_bytes());
        }
        if let Some(password) = &self.password {
            write::prefixed(out, password);
        }
        Ok(())
    }
}

/// The CONNACK return code (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the server does not support the protocol level.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed (IoT Core: malformed client id or
    /// unknown device).
    IdentifierRejected = 2,
    /// 3: the service is unavailable.
    ServerUnavailable = 3,
    /// 4: malformed user name or password (IoT Core: missing or unparsable JWT).
    BadUserNameOrPassword = 4,
    /// 5: not authorized (IoT Core: any JWT, credential or authorization failure).
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a wire value; `None` for the reserved 6–255.
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A connection acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present; must be false when `code` is not `Accepted` ([MQTT-3.2.2-4]).
    pub session_present: bool,
    /// The return code.
    pub code: ConnectReturnCode,
}

impl ConnAck {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let [flags, code] = *body else {
            return Err(DecodeError::WrongRemainingLength {
                packet: PacketType::ConnAck,
                expected: 2,
                found: body.len(),
            });
        };
        if flags & 0xfe != 0 {
            return Err(DecodeError::ConnAckReservedFlags { value: flags });
        }
        let code = ConnectReturnCode::from_u8(code)
            .ok_or(DecodeError::InvalidConnectReturnCode { value: code })?;
        let session_present = flags & 0x01 != 0;
        if session_present && code != ConnectReturnCode::Accepted {
            return Err(DecodeError::SessionPresentOnRefusal);
        }
        Ok(Self {
            session_present,
            code,
        })
    }

    /// Appends the encoded packet to `out`. Session Present is sent as 0 when the code
    /// refuses the connection ([MQTT-3.2.2-4]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let session_present = self.session_present && self.code == ConnectReturnCode::Accepted;
        out.extend_from_slice(&[0x20, 0x02, u8::from(session_present), self.code.as_u8()]);
    }
}
