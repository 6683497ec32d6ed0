//! Classification of IoT Core device topics (spec §1.4).
//!
//! [`IotTopic::parse`] takes a topic name (PUBLISH) or a topic filter (SUBSCRIBE) and
//! says which device topic it is. It does not know the direction or the connected
//! device: the server checks that devices publish only to `events`/`state` (and
//! gateways to `attach`/`detach`), subscribe only to `config`, `commands/#` and
//! `errors`, and that the device is the connected one or attached to it.

use core::fmt;

use crate::ids::{IdError, validate_id};

/// The longest subfolder, in bytes (spec §0).
pub const MAX_SUBFOLDER_LEN: usize = 256;

/// An IoT Core device topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IotTopic<'a> {
    /// `/devices/{device}/events` or `/devices/{device}/events/{subfolder…}`:
    /// telemetry. The subfolder is everything after `events/`, verbatim.
    Events {
        /// The device id.
        device: &'a str,
        /// The subfolder, possibly with `/` inside.
        subfolder: Option<&'a str>,
    },
    /// `/devices/{device}/state`: device state (no subfolders).
    State {
        /// The device id.
        device: &'a str,
    },
    /// `/devices/{device}/config`: configuration, subscribed by the device.
    Config {
        /// The device id.
        device: &'a str,
    },
    /// `/devices/{device}/commands` or `/devices/{device}/commands/{subfolder…}`: where
    /// the server publishes commands. Devices may not subscribe to one subfolder.
    Commands {
        /// The device id.
        device: &'a str,
        /// The subfolder, possibly with `/` inside.
        subfolder: Option<&'a str>,
    },
    /// `/devices/{device}/commands/#`: the one command subscription devices make.
    CommandsWildcard {
        /// The device id.
        device: &'a str,
    },
    /// `/devices/{device}/attach`: a gateway attaches a device.
    Attach {
        /// The device being attached.
        device: &'a str,
    },
    /// `/devices/{device}/detach`: a gateway detaches a device.
    Detach {
        /// The device being detached.
        device: &'a str,
    },
    /// `/devices/{gateway}/errors`: asynchronous gateway errors, QoS 0 only.
    Errors {
        /// The gateway's device id.
        device: &'a str,
    },
    /// Not a topic IoT Core knows; IoT Core disconnects a device that uses one.
    Other {
        /// Why, in words fit for the device's `lastErrorStatus`.
        reason: &'static str,
    },
}

const NOT_A_DEVICE_TOPIC: &str = "not a device topic: expected '/devices/{device-id}/{events|state|config|commands|attach|detach|errors}'";

impl<'a> IotTopic<'a> {
    /// Classifies a topic name or filter.
    #[must_use]
    pub fn parse(topic: &'a str) -> Self {
        let other = |reason| Self::Other { reason };
        let Some(rest) = topic.strip_prefix("/devices/") else {
            if topic.starts_with("projects/") && topic.contains("/topics/") {
                return other("a Pub/Sub topic name, not a device topic");
            }
            if topic.starts_with("devices/") {
                return other("device topics start with '/devices/' (the leading '/' is missing)");
            }
            return other(NOT_A_DEVICE_TOPIC);
        };
        let Some((device, kind)) = rest.split_once('/') else {
            return other("missing the topic kind after the device id");
        };
        if device == "+" || device == "#" {
            return other("wildcards in place of the device id are not supported");
        }
        if let Err(e) = validate_id(device) {
            return other(device_id_reason(e));
        }
        let (kind, sub) = match kind.split_once('/') {
            Some((kind, sub)) => (kind, Some(sub)),
            None => (kind, None),
        };
        match (kind, sub) {
            ("events", None) => Self::Events {
                device,
                subfolder: None,
            },
            ("events", Some(sub)) => match check_subfolder(sub) {
                Ok(()) => Self::Events {
                    device,
                    subfolder: Some(sub),
                },
                Err(reason) => other(reason),
            },
            ("state", None) => Self::State { device },
            ("state", Some(_)) => other("subfolder on state is not supported"),
            ("config", None) => Self::Config { device },
            ("config", Some(_)) => other("subfolder on config is not supported"),
            ("commands", None) => Self::Commands {
                device,
                subfolder: None,
            },
            ("commands", Some("#")) => Self::CommandsWildcard { device },
            ("commands", Some(sub)) if sub.contains(['+', '#']) => other(
                "the only command subscription supported is '/devices/{device-id}/commands/#'",
            ),
            ("commands", Some(sub)) => match check_subfolder(sub) {
                Ok(()) => Self::Commands {
                    device,
                    subfolder: Some(sub),
                },
                Err(reason) => other(reason),
            },
            ("attach", None) => Self::Attach { device },
            ("detach", None) => Self::Detach { device },
            ("errors", None) => Self::Errors { device },
            ("attach" | "detach" | "errors", Some(_)) => {
                other("subfolders are only supported on events and commands")
            }
            ("+" | "#", _) => other("wildcards in place of the topic kind are not supported"),
            _ => other(
                "unknown device topic kind: expected events, state, config, commands, attach, \
                 detach or errors",
            ),
        }
    }

    /// The device id, unless this is [`IotTopic::Other`].
    #[must_use]
    pub fn device(&self) -> Option<&'a str> {
        match *self {
            Self::Events { device, .. }
            | Self::State { device }
            | Self::Config { device }
            | Self::Commands { device, .. }
            | Self::CommandsWildcard { device }
            | Self::Attach { device }
            | Self::Detach { device }
            | Self::Errors { device } => Some(device),
            Self::Other { .. } => None,
        }
    }
}

impl fmt::Display for IotTopic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (device, kind, sub) = match *self {
            Self::Events { device, subfolder } => (device, "events", subfolder),
            Self::State { device } => (device, "state", None),
            Self::Config { device } => (device, "config", None),
            Self::Commands { device, subfolder } => (device, "commands", subfolder),
            Self::CommandsWildcard { device } => (device, "commands", Some("#")),
            Self::Attach { device } => (device, "attach", None),
            Self::Detach { device } => (device, "detach", None),
            Self::Errors { device } => (device, "errors", None),
            Self::Other { reason } => return write!(f, "(not a device topic: {reason})"),
        };
        write!(f, "/devices/{device}/{kind}")?;
        if let Some(sub) = sub {
            write!(f, "/{sub}")?;
        }
        Ok(())
    }
}

/// `"device "` + [`IdError::reason`], spelled out because a `&'static str` cannot be
/// joined without an allocator (a test keeps the two in step).
fn device_id_reason(error: IdError) -> &'static str {
    match error {
        IdError::TooShort { .. } => "device id is shorter than 3 characters",
        IdError::TooLong { .. } => "device id is longer than 255 characters",
        IdError::FirstNotLetter => "device id must start with a letter",
        IdError::GoogPrefix => "device id must not start with 'goog' (in any case)",
        _ => "device id may contain only letters, digits and - . _ + ~ %",
    }
}

fn check_subfolder(sub: &str) -> Result<(), &'static str> {
    if sub.is_empty() {
        return Err("empty subfolder after the trailing '/'");
    }
    if sub.len() > MAX_SUBFOLDER_LEN {
        return Err("subfolder is longer than 256 bytes");
    }
    if sub.contains(['+', '#']) {
        return Err("wildcards are not allowed in a subfolder");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn reason(topic: &str) -> &'static str {
        match IotTopic::parse(topic) {
            IotTopic::Other { reason } => reason,
            t => panic!("{topic} classified as {t:?}"),
        }
    }

    #[test]
    fn device_topics() {
        use IotTopic::*;
        let cases = [
            (
                "/devices/dev-1/events",
                Events {
                    device: "dev-1",
                    subfolder: None,
                },
            ),
            (
                "/devices/dev-1/events/a/b",
                Events {
                    device: "dev-1",
                    subfolder: Some("a/b"),
                },
            ),
            ("/devices/dev-1/state", State { device: "dev-1" }),
            ("/devices/dev-1/config", Config { device: "dev-1" }),
            (
                "/devices/dev-1/commands",
                Commands {
                    device: "dev-1",
                    subfolder: None,
                },
            ),
            (
                "/devices/dev-1/commands/x/y",
                Commands {
                    device: "dev-1",
                    subfolder: Some("x/y"),
                },
            ),
            (
                "/devices/dev-1/commands/#",
                CommandsWildcard { device: "dev-1" },
            ),
            ("/devices/dev-1/attach", Attach { device: "dev-1" }),
            ("/devices/dev-1/detach", Detach { device: "dev-1" }),
            ("/devices/gw-1/errors", Errors { device: "gw-1" }),
        ];
        for (topic, expected) in cases {
            let parsed = IotTopic::parse(topic);
            assert_eq!(parsed, expected, "{topic}");
            assert_eq!(parsed.to_string(), topic);
            assert!(parsed.device().is_some());
        }
    }

    #[test]
    fn other_topics_say_why() {
        assert_eq!(
            reason("projects/p/topics/telemetry"),
            "a Pub/Sub topic name, not a device topic"
        );
        assert_eq!(
            reason("/devices/dev-1/state/x"),
            "subfolder on state is not supported"
        );
        assert_eq!(
            reason("/devices/dev-1/config/x"),
            "subfolder on config is not supported"
        );
        assert!(reason("devices/dev-1/events").contains("leading '/'"));
        assert!(reason("/foo/bar").starts_with("not a device topic"));
        assert_eq!(
            reason("/devices/dev-1"),
            "missing the topic kind after the device id"
        );
        assert_eq!(
            reason("/devices/d1/events"),
            "device id is shorter than 3 characters"
        );
        assert_eq!(
            reason("/devices/1dev/events"),
            "device id must start with a letter"
        );
        assert_eq!(
            reason("/devices/googdev/events"),
            "device id must not start with 'goog' (in any case)"
        );
        assert_eq!(
            reason("/devices/GOOG1/events"),
            "device id must not start with 'goog' (in any case)"
        );
        assert!(reason("/devices/de v/events").starts_with("device id may contain only"));
        assert!(reason("/devices/+/events").starts_with("wildcards in place of the device id"));
        assert!(reason("/devices/dev-1/+").starts_with("wildcards in place of the topic kind"));
        assert!(reason("/devices/dev-1/commands/+").starts_with("the only command subscription"));
        assert!(reason("/devices/dev-1/commands/a/#").starts_with("the only command subscription"));
        assert_eq!(
            reason("/devices/dev-1/events/"),
            "empty subfolder after the trailing '/'"
        );
        assert_eq!(
            reason("/devices/dev-1/events/#"),
            "wildcards are not allowed in a subfolder"
        );
        let long = alloc::format!("/devices/dev-1/events/{}", "s".repeat(257));
        assert_eq!(reason(&long), "subfolder is longer than 256 bytes");
        assert!(reason("/devices/dev-1/telemetry").starts_with("unknown device topic kind"));
        assert_eq!(
            reason("/devices/dev-1/attach/x"),
            "subfolders are only supported on events and commands"
        );
        assert!(
            IotTopic::parse("/x")
                .to_string()
                .starts_with("(not a device topic")
        );
    }

    #[test]
    fn device_id_reasons_are_the_id_rule() {
        for error in [
            IdError::TooShort { len: 1 },
            IdError::TooLong { len: 256 },
            IdError::FirstNotLetter,
            IdError::InvalidChar { ch: '!' },
            IdError::GoogPrefix,
        ] {
            assert_eq!(
                device_id_reason(error),
                alloc::format!("device {}", error.reason())
            );
        }
    }
}
