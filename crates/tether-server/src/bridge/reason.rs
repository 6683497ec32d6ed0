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

/// Longest reason message kept: what a device sends can be far longer (a 64 KiB
/// client id or topic), and a reason goes to the log, the device record and the device.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Longest device-supplied string quoted whole by [`shown`].
pub const MAX_SHOWN_CHARS: usize = 120;

/// A device-supplied string as it may appear in a message or a log line: control
/// characters escaped (no forged log lines), and cut after [`MAX_SHOWN_CHARS`]
/// characters with the whole length noted.
pub fn shown(text: &str) -> String {
    bounded(text, MAX_SHOWN_CHARS)
}

/// `text` with control characters escaped, cut after `max` characters.
fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 32));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str(&format!("…({} bytes in all)", text.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Reason {
    /// A reason. The message is bounded ([`MAX_MESSAGE_CHARS`], control characters
    /// escaped) whatever went into it; quote device-supplied parts with [`shown`] so
    /// that the rest of the message survives.
    pub fn new(code: Code, label: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        let message =
            if message.len() <= MAX_MESSAGE_CHARS && !message.chars().any(char::is_control) {
                message
            } else {
                bounded(&message, MAX_MESSAGE_CHARS)
            };
        Self {
            code,
            label,
            message,
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
    fn device_strings_are_escaped_and_cut() {
        assert_eq!(shown("dev-1"), "dev-1");
        assert_eq!(shown("a\nWARN forged"), "a\\nWARN forged");
        let long = "x".repeat(65_535);
        let s = shown(&long);
        assert!(s.starts_with(&"x".repeat(MAX_SHOWN_CHARS)));
        assert!(s.ends_with("…(65535 bytes in all)"), "{s}");
        assert!(s.len() < 200);
        let reason = Reason::new(Code::InvalidArgument, "x", format!("bad '{long}'\r\n"));
        assert!(reason.message.chars().count() < MAX_MESSAGE_CHARS + 40);
        assert!(!reason.message.contains('\n'));
    }

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
