//! Why the bridge refused or closed something: a `google.rpc.Code`, a stable label
//! for metrics and a message that says what to fix. Stored as the device's
//! `lastErrorStatus` with IoT Core's prefix.

use tether_registry::model::Status;

/// What every MQTT bridge `lastErrorStatus` message starts with, as IoT Core's did
/// (`mqtt: SERVER: The connection was closed because MQTT keep-alive check failed.`).
pub const STATUS_PREFIX: &str = "mqtt: SERVER: ";

/// The `google.rpc.Code` values the bridge records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RpcCode {
    /// 0: not an error; a warning stored with an accepted connection.
    Ok = 0,
    /// 1: the server ended the connection (shutdown, superseded).
    Cancelled = 1,
    /// 3: malformed input (client id, topic, packet, size).
    InvalidArgument = 3,
    /// 4: a timer ran out (CONNECT, keep-alive, idle).
    DeadlineExceeded = 4,
    /// 5: no such registry or device.
    NotFound = 5,
    /// 7: authenticated, but not allowed (blocked device, another device's topic).
    PermissionDenied = 7,
    /// 8: a limit was hit.
    ResourceExhausted = 8,
    /// 9: the registry's set-up forbids it (MQTT disabled, no telemetry topic).
    FailedPrecondition = 9,
    /// 14: the store or sink is not answering.
    Unavailable = 14,
    /// 16: the JWT or password does not authenticate the device.
    Unauthenticated = 16,
}

/// A refusal or close reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The `google.rpc.Code`.
    pub code: RpcCode,
    /// Short stable name for metrics and logs (`jwt_expired`, `topic_other_device`…).
    pub label: &'static str,
    /// What happened and what to do, without the prefix. Never contains the token.
    pub message: String,
}

impl Reason {
    /// A reason.
    pub fn new(code: RpcCode, label: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            label,
            message: message.into(),
        }
    }

    /// The `lastErrorStatus` to store.
    pub fn status(&self) -> Status {
        Status {
            code: self.code as i32,
            message: format!("{STATUS_PREFIX}{}", self.message),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_has_the_prefix_and_the_rpc_number() {
        let s = Reason::new(
            RpcCode::Unauthenticated,
            "jwt_expired",
            "The authorization token expired.",
        )
        .status();
        assert_eq!(s.code, 16);
        assert_eq!(s.message, "mqtt: SERVER: The authorization token expired.");
    }
}
