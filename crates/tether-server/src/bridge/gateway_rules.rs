//! Gateways (spec §1.4, §1.7): the attach payload, what a gateway's auth method
//! demands of an attaching device, and the messages sent on `/devices/{gw}/errors`
//! (the wire type is `tether_iot::GatewayError`, which the device SDK reads too).
//! Pure functions; the driver does the store reads and the sending.

use tether_iot::{GatewayError, GatewayErrorType, MqttMessageInfo};
use tether_registry::model::GatewayAuthMethod;

use crate::bridge::{Code, Reason};

/// The payload to publish for `error` (its JSON, as `tether-iot` spells it).
pub fn error_payload(error: &GatewayError) -> Vec<u8> {
    // Serializing plain strings and enums cannot fail; an empty object is the
    // harmless fallback all the same.
    serde_json::to_vec(error).unwrap_or_else(|_| b"{}".to_vec())
}

/// `GATEWAY_DEVICE_NOT_FOUND` for a message about a device that is not attached.
pub fn not_attached(device_id: &str, info: MqttMessageInfo) -> GatewayError {
    GatewayError {
        error_type: GatewayErrorType::GatewayDeviceNotFound,
        description: format!(
            "The specified device with ID '{id}' is not attached to the gateway; \
             publish to '/devices/{id}/attach' first.",
            id = super::shown(device_id)
        ),
        device_id: device_id.to_owned(),
        mqtt_message_info: Some(info),
    }
}

/// The device token in an attach payload: `None` for an empty payload or `{}`
/// (association-only auth).
///
/// # Errors
/// Why the payload is not an attach message.
pub fn parse_attach(payload: &[u8]) -> Result<Option<String>, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| format!("the attach payload is not JSON ({e}); send {{\"authorization\":\"<device JWT>\"}} or an empty payload"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("the attach payload must be a JSON object".into());
    };
    match map.get("authorization") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(token)) if token.is_empty() => Ok(None),
        Some(serde_json::Value::String(token)) => Ok(Some(token.clone())),
        Some(_) => {
            Err("'authorization' in the attach payload must be a string (the device's JWT)".into())
        }
    }
}

/// What the gateway's auth method demands of an attaching device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demands {
    /// The device must be bound to the gateway.
    pub association: bool,
    /// The device's own JWT must be sent and verify.
    pub token: bool,
}

/// The demands of `method` (proto `GatewayAuthMethod`).
///
/// # Errors
/// The unspecified method lets no device attach.
pub fn demands(method: GatewayAuthMethod) -> Result<Demands, Reason> {
    match method {
        GatewayAuthMethod::AssociationOnly => Ok(Demands {
            association: true,
            token: false,
        }),
        GatewayAuthMethod::DeviceAuthTokenOnly => Ok(Demands {
            association: false,
            token: true,
        }),
        GatewayAuthMethod::AssociationAndDeviceAuthToken => Ok(Demands {
            association: true,
            token: true,
        }),
        GatewayAuthMethod::Unspecified => Err(Reason::new(
            Code::FailedPrecondition,
            "gateway_auth_unspecified",
            "the gateway's gatewayConfig.gatewayAuthMethod is unspecified, so no device may \
             attach; set ASSOCIATION_ONLY, DEVICE_AUTH_TOKEN_ONLY or \
             ASSOCIATION_AND_DEVICE_AUTH_TOKEN",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_payloads() {
        assert_eq!(parse_attach(b""), Ok(None));
        assert_eq!(parse_attach(b"{}"), Ok(None));
        assert_eq!(
            parse_attach(br#"{"authorization":"a.b.c"}"#),
            Ok(Some("a.b.c".into()))
        );
        assert!(parse_attach(b"nope").is_err());
        assert!(parse_attach(br#"{"authorization":1}"#).is_err());
    }

    #[test]
    fn error_json_has_iot_core_fields() {
        let e = not_attached(
            "x",
            MqttMessageInfo {
                message_type: "PUBLISH".into(),
                topic: "/devices/x/state".into(),
                packet_id: Some(10),
            },
        );
        let v: serde_json::Value =
            serde_json::from_slice(&error_payload(&e)).unwrap_or(serde_json::Value::Null);
        assert_eq!(v["error_type"], "GATEWAY_DEVICE_NOT_FOUND");
        assert_eq!(v["device_id"], "x");
        assert_eq!(v["mqtt_message_info"]["packet_id"], 10);
    }

    #[test]
    fn auth_methods() {
        assert!(demands(GatewayAuthMethod::default()).is_err());
        assert_eq!(
            demands(GatewayAuthMethod::AssociationAndDeviceAuthToken),
            Ok(Demands {
                association: true,
                token: true
            })
        );
    }
}
