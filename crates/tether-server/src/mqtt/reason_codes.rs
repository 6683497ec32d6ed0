//! The MQTT 5 reason code a device is told beside the precise reason text: the
//! closest code of §2.4 for each refusal and close the gateway makes.

use tether_mqtt::codec::v5::ReasonCode;

use crate::bridge::{Code, Reason};

/// The Authentication Method a device names to send its JWT as Authentication Data
/// (and to re-authenticate with AUTH).
pub const JWT_AUTH_METHOD: &str = "jwt";

/// The CONNACK reason for a refusal, where it says more than the 3.1.1 code's
/// counterpart (`None`: use that).
pub fn connack(reason: &Reason) -> Option<ReasonCode> {
    match reason.label {
        "auth_method" => Some(ReasonCode::BAD_AUTHENTICATION_METHOD),
        "device_blocked" => Some(ReasonCode::BANNED),
        _ => None,
    }
}

/// The DISCONNECT reason for a close by the gateway.
pub fn disconnect(reason: &Reason) -> ReasonCode {
    match reason.label {
        "shutdown" => ReasonCode::SERVER_SHUTTING_DOWN,
        "superseded" => ReasonCode::SESSION_TAKEN_OVER,
        // The token's `exp` bounds the connection's life.
        "jwt_expired" => ReasonCode::MAXIMUM_CONNECT_TIME,
        "idle" | "keepalive" => ReasonCode::KEEP_ALIVE_TIMEOUT,
        "payload_too_large" => ReasonCode::PACKET_TOO_LARGE,
        "qos2" => ReasonCode::QOS_NOT_SUPPORTED,
        "reauth_refused" => ReasonCode::NOT_AUTHORIZED,
        "device_blocked" | "device_deleted" | "credential_removed" | "mqtt_disabled"
        | "device_unbound" => ReasonCode::ADMINISTRATIVE_ACTION,
        label if label.starts_with("topic_") || label == "no_telemetry_topic" => {
            ReasonCode::TOPIC_NAME_INVALID
        }
        label if label.starts_with("subscribe_") => ReasonCode::TOPIC_FILTER_INVALID,
        _ => match reason.code {
            Code::Unauthenticated | Code::PermissionDenied => ReasonCode::NOT_AUTHORIZED,
            Code::ResourceExhausted => ReasonCode::QUOTA_EXCEEDED,
            Code::Unavailable => ReasonCode::SERVER_BUSY,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
            }
            _ => ReasonCode::UNSPECIFIED_ERROR,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_name_their_cause() {
        let reason = |code, label| Reason::new(code, label, "x");
        assert_eq!(
            disconnect(&reason(Code::Unauthenticated, "jwt_expired")),
            ReasonCode::MAXIMUM_CONNECT_TIME
        );
        assert_eq!(
            disconnect(&reason(Code::Aborted, "superseded")),
            ReasonCode::SESSION_TAKEN_OVER
        );
        assert_eq!(
            disconnect(&reason(Code::PermissionDenied, "device_blocked")),
            ReasonCode::ADMINISTRATIVE_ACTION
        );
        assert_eq!(
            disconnect(&reason(Code::InvalidArgument, "topic_other_device")),
            ReasonCode::TOPIC_NAME_INVALID
        );
        assert_eq!(
            disconnect(&reason(Code::Unauthenticated, "something_new")),
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(
            connack(&reason(Code::Unauthenticated, "auth_method")),
            Some(ReasonCode::BAD_AUTHENTICATION_METHOD)
        );
        assert_eq!(
            connack(&reason(Code::Unauthenticated, "jwt_signature")),
            None
        );
    }
}
