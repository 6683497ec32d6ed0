//! Why a bridge refused or closed something: a `google.rpc.Code`, a stable label for
//! metrics and a message that says what to fix. Stored as the device's
//! `lastErrorStatus` with the prefix of the transport it happened on, as IoT Core did.

use tether_registry::model::Status;

use super::code::Code;

/// The device transport a reason is recorded for: it picks IoT Core's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The MQTT bridge (`mqtt: SERVER: The connection was closed because …`).
    Mqtt,
    /// The HTTP device bridge (`http: SERVER: …`).
    Http,
}

impl Transport {
    /// What every `lastErrorStatus` message of this transport starts with.
    pub fn status_prefix(self) -> &'static str {
        match self {
            Transport::Mqtt => "mqtt: SERVER: ",
            Transport::Http => "http: SERVER: ",
        }
    }
}

/// A refusal or close reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The `google.rpc.Code`.
    pub code: Code,
    /// Short stable name for metrics and logs (`jwt_expired`, `topic_other_device`…).
    pub label: &'static str,
    /// What happened and what to do, without the prefix. Never contains the token.
    pub message: String,
}

impl Reason {
    /// A reason.
    pub fn new(code: Code, label: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            label,
            message: message.into(),
        }
    }

    /// The `lastErrorStatus` to store for a reason met on `transport`.
    pub fn status(&self, transport: Transport) -> Status {
        Status {
            code: self.code.as_i32(),
            message: format!("{}{}", transport.status_prefix(), self.message),
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
    fn status_has_the_transport_s_prefix_and_the_rpc_number() {
        let reason = Reason::new(
            Code::Unauthenticated,
            "jwt_expired",
            "The authorization token expired.",
        );
        let s = reason.status(Transport::Mqtt);
        assert_eq!(s.code, 16);
        assert_eq!(s.message, "mqtt: SERVER: The authorization token expired.");
        let s = reason.status(Transport::Http);
        assert_eq!(s.message, "http: SERVER: The authorization token expired.");
    }
}
