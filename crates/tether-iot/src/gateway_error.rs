//! The JSON on a gateway's `/devices/{gateway}/errors` topic (QoS 0): what went wrong
//! for a device behind the gateway. One type, written by the server and read by the
//! device SDK (`serde` feature):
//!
//! ```text
//! {"error_type":"GATEWAY_DEVICE_NOT_FOUND","description":"…","device_id":"sensor-1",
//!  "mqtt_message_info":{"message_type":"PUBLISH","topic":"/devices/sensor-1/state","packet_id":10}}
//! ```
//!
//! Reading is lenient, as a device must be: every field may be missing, and an
//! `error_type` this crate does not name is kept as [`GatewayErrorType::Other`].

use alloc::string::String;
use core::fmt;

/// IoT Core's `error_type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GatewayErrorType {
    /// `GATEWAY_ATTACHMENT_ERROR`: an attach was refused (no PUBACK).
    GatewayAttachmentError,
    /// `GATEWAY_DEVICE_NOT_FOUND`: a message for a device not attached to the gateway.
    GatewayDeviceNotFound,
    /// `GATEWAY_DETACHMENT_DEVICE_ERROR`: the server detached a device (deleted,
    /// blocked, connected elsewhere).
    GatewayDetachmentDeviceError,
    /// Any other value, verbatim; empty when the field is missing.
    Other(String),
}

impl GatewayErrorType {
    /// The wire spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::GatewayAttachmentError => "GATEWAY_ATTACHMENT_ERROR",
            Self::GatewayDeviceNotFound => "GATEWAY_DEVICE_NOT_FOUND",
            Self::GatewayDetachmentDeviceError => "GATEWAY_DETACHMENT_DEVICE_ERROR",
            Self::Other(other) => other,
        }
    }

    /// Reads the wire spelling; unknown values become [`GatewayErrorType::Other`].
    #[must_use]
    pub fn from_wire(text: &str) -> Self {
        match text {
            "GATEWAY_ATTACHMENT_ERROR" => Self::GatewayAttachmentError,
            "GATEWAY_DEVICE_NOT_FOUND" => Self::GatewayDeviceNotFound,
            "GATEWAY_DETACHMENT_DEVICE_ERROR" => Self::GatewayDetachmentDeviceError,
            other => Self::Other(other.into()),
        }
    }
}

impl Default for GatewayErrorType {
    /// What a message without `error_type` reads as.
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl fmt::Display for GatewayErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the wire spelling, e.g. `error_type == "GATEWAY_ATTACHMENT_ERROR"`.
impl PartialEq<str> for GatewayErrorType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for GatewayErrorType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Which MQTT message caused an error (`mqtt_message_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MqttMessageInfo {
    /// The packet type, e.g. `PUBLISH` or `SUBSCRIBE`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub message_type: String,
    /// The topic or topic filter.
    #[cfg_attr(feature = "serde", serde(default))]
    pub topic: String,
    /// The packet id, when the message had one (QoS 1 PUBLISH, SUBSCRIBE).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub packet_id: Option<u16>,
}

/// One message on `/devices/{gateway}/errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GatewayError {
    /// The kind.
    #[cfg_attr(feature = "serde", serde(default))]
    pub error_type: GatewayErrorType,
    /// What happened and what to do, in words.
    #[cfg_attr(feature = "serde", serde(default))]
    pub description: String,
    /// The device behind the gateway.
    #[cfg_attr(feature = "serde", serde(default))]
    pub device_id: String,
    /// The message that caused it, if one did.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub mqtt_message_info: Option<MqttMessageInfo>,
}

impl GatewayError {
    /// What a reader keeps of a payload that is not this JSON: the text as the
    /// description, under the error type `UNPARSED`.
    #[must_use]
    pub fn unparsed(payload: &[u8]) -> Self {
        Self {
            error_type: GatewayErrorType::Other("UNPARSED".into()),
            description: String::from_utf8_lossy(payload).into_owned(),
            device_id: String::new(),
            mqtt_message_info: None,
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} for '{}': {}",
            self.error_type, self.device_id, self.description
        )
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for GatewayErrorType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for GatewayErrorType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <alloc::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::from_wire(&text))
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn read(json: &str) -> GatewayError {
        serde_json::from_str(json).expect(json)
    }

    fn not_found() -> GatewayError {
        GatewayError {
            error_type: GatewayErrorType::GatewayDeviceNotFound,
            description: "not attached".into(),
            device_id: "sensor-1".into(),
            mqtt_message_info: Some(MqttMessageInfo {
                message_type: "PUBLISH".into(),
                topic: "/devices/sensor-1/state".into(),
                packet_id: Some(10),
            }),
        }
    }

    #[test]
    fn writes_the_iot_core_fields() {
        let json = serde_json::to_string(&not_found()).expect("serializes");
        assert_eq!(
            json,
            r#"{"error_type":"GATEWAY_DEVICE_NOT_FOUND","description":"not attached","device_id":"sensor-1","mqtt_message_info":{"message_type":"PUBLISH","topic":"/devices/sensor-1/state","packet_id":10}}"#
        );
        let bare = GatewayError {
            error_type: GatewayErrorType::GatewayAttachmentError,
            ..GatewayError::default()
        };
        assert_eq!(
            serde_json::to_string(&bare).expect("serializes"),
            r#"{"error_type":"GATEWAY_ATTACHMENT_ERROR","description":"","device_id":""}"#
        );
    }

    #[test]
    fn reads_what_it_writes() {
        for error in [
            not_found(),
            GatewayError::default(),
            GatewayError::unparsed(b"oops"),
        ] {
            let json: Vec<u8> = serde_json::to_vec(&error).expect("serializes");
            assert_eq!(
                serde_json::from_slice::<GatewayError>(&json).ok(),
                Some(error)
            );
        }
    }

    /// The payloads the device SDK's own reader accepted: every field optional,
    /// any error type.
    #[test]
    fn reads_leniently() {
        let e = read("{}");
        assert_eq!(e, GatewayError::default());
        assert_eq!(e.error_type, "");
        let e = read(r#"{"error_type":"GATEWAY_ATTACHMENT_ERROR","device_id":"ghost-7"}"#);
        assert_eq!(e.error_type, GatewayErrorType::GatewayAttachmentError);
        assert_eq!(e.error_type, "GATEWAY_ATTACHMENT_ERROR");
        assert_eq!(e.device_id, "ghost-7");
        assert_eq!(e.mqtt_message_info, None);
        let e = read(
            r#"{"error_type":"GATEWAY_UNEXPECTED_PACKET_ID","description":"d","extra":1,
                "mqtt_message_info":{"topic":"/devices/a1x/events"}}"#,
        );
        assert_eq!(
            e.error_type,
            GatewayErrorType::Other("GATEWAY_UNEXPECTED_PACKET_ID".into())
        );
        let info = e.mqtt_message_info.expect("info");
        assert_eq!((info.message_type.as_str(), info.packet_id), ("", None));
        let e = read(r#"{"mqtt_message_info":{"message_type":"SUBSCRIBE","packet_id":7}}"#);
        assert_eq!(e.mqtt_message_info.and_then(|i| i.packet_id), Some(7));
    }

    #[test]
    fn reads_in_words() {
        assert_eq!(
            not_found().to_string(),
            "GATEWAY_DEVICE_NOT_FOUND for 'sensor-1': not attached"
        );
        assert_eq!(
            GatewayError::unparsed(b"not json").to_string(),
            "UNPARSED for '': not json"
        );
    }
}
