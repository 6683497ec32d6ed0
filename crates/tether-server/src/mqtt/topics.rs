//! Who may publish and subscribe where (spec §1.4). Pure functions of the connected
//! device's id, whether it is a gateway, and the topic; the driver turns a refusal
//! into a disconnect (PUBLISH) or a SUBACK 0x80 (SUBSCRIBE) and records the reason.
//! For a gateway, another device's topic is allowed here and names that device
//! ([`Target::device`]); the driver then checks that it is attached.

use tether_iot::IotTopic;
use tether_mqtt::{QoS, TopicFilter, TopicName};

use crate::bridge::{Code, Reason, shown};

/// What a device's PUBLISH is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Telemetry; the subfolder is empty without one.
    Event {
        /// Everything after `events/`, verbatim.
        subfolder: &'a str,
    },
    /// A state report.
    State,
    /// A gateway attaches the device.
    Attach,
    /// A gateway detaches the device.
    Detach,
    /// The device registers a new key of its own (key rotation, docs/provisioning.md).
    RotateKey,
}

/// What a device's SUBSCRIBE filter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// `/devices/{id}/config`.
    Config,
    /// `/devices/{id}/commands/#`.
    Commands,
    /// `/devices/{gateway}/errors` (gateways only).
    Errors,
    /// `/devices/{id}/provision/result`: replies to key rotations.
    ProvisionResult,
}

/// A topic and the device it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a, T> {
    /// `None`: the connected device itself; `Some(id)`: a device behind the gateway.
    pub device: Option<&'a str>,
    /// What the topic is.
    pub kind: T,
}

/// Checks a PUBLISH from device `device_id` (`gateway`: it is a gateway).
///
/// # Errors
/// The reason to close the connection with.
pub fn authorize_publish<'a>(
    device_id: &str,
    gateway: bool,
    topic: &'a TopicName,
    qos: QoS,
) -> Result<Target<'a, Inbound<'a>>, Reason> {
    if qos == QoS::ExactlyOnce {
        return Err(Reason::new(
            Code::InvalidArgument,
            "qos2",
            format!(
                "PUBLISH to '{}' used QoS 2, which is not supported; use QoS 0 or 1",
                shown(topic.as_str())
            ),
        ));
    }
    let parsed = IotTopic::parse(topic.as_str());
    if !gateway && matches!(parsed, IotTopic::Attach { .. } | IotTopic::Detach { .. }) {
        return Err(Reason::new(
            Code::PermissionDenied,
            "topic_gateway_only",
            format!(
                "'{}' is a gateway control topic and this device is not a gateway \
                 (gatewayConfig.gatewayType must be GATEWAY)",
                shown(topic.as_str())
            ),
        ));
    }
    let device = check_device(device_id, gateway, &parsed, topic.as_str(), "publish to")?;
    let kind = match parsed {
        IotTopic::Events { subfolder, .. } => Inbound::Event {
            subfolder: subfolder.unwrap_or(""),
        },
        IotTopic::State { .. } => Inbound::State,
        IotTopic::Attach { .. } => Inbound::Attach,
        IotTopic::Detach { .. } => Inbound::Detach,
        // Not one of IoT Core's topics: looked at only after they did not match.
        IotTopic::Other { .. } if own_topic(topic.as_str(), device_id, "/provision") => {
            Inbound::RotateKey
        }
        IotTopic::Other { reason } => return Err(unknown_topic(topic.as_str(), reason)),
        IotTopic::Config { .. }
        | IotTopic::Commands { .. }
        | IotTopic::CommandsWildcard { .. }
        | IotTopic::Errors { .. } => {
            return Err(Reason::new(
                Code::InvalidArgument,
                "topic_wrong_direction",
                format!(
                    "devices cannot publish to '{}'; publish telemetry to \
                     '/devices/{device_id}/events' and state to '/devices/{device_id}/state'",
                    shown(topic.as_str())
                ),
            ));
        }
    };
    Ok(Target { device, kind })
}

/// Checks one SUBSCRIBE filter from device `device_id`; returns what it is and the
/// QoS granted (QoS 2 is granted as 1, as IoT Core did; the errors topic is QoS 0).
///
/// # Errors
/// The reason for a SUBACK 0x80.
pub fn authorize_subscribe<'a>(
    device_id: &str,
    gateway: bool,
    filter: &'a TopicFilter,
    requested: QoS,
) -> Result<(Target<'a, Outbound>, QoS), Reason> {
    let parsed = IotTopic::parse(filter.as_str());
    let device = check_device(device_id, gateway, &parsed, filter.as_str(), "subscribe to")?;
    let granted = requested.min(QoS::AtLeastOnce);
    let target = |kind| Target { device, kind };
    match parsed {
        IotTopic::Config { .. } => Ok((target(Outbound::Config), granted)),
        IotTopic::CommandsWildcard { .. } => Ok((target(Outbound::Commands), granted)),
        IotTopic::Errors { .. } if gateway && device.is_none() => {
            Ok((target(Outbound::Errors), QoS::AtMostOnce))
        }
        IotTopic::Commands { .. } => Err(Reason::new(
            Code::InvalidArgument,
            "subscribe_commands_subfolder",
            format!(
                "subscribing to '{}' is not supported; subscribe to \
                 '/devices/{device_id}/commands/#' and filter by subfolder on the device",
                shown(filter.as_str())
            ),
        )),
        IotTopic::Errors { .. } => Err(Reason::new(
            Code::PermissionDenied,
            "topic_gateway_only",
            format!(
                "'{}' is for gateways, each on its own errors topic",
                shown(filter.as_str())
            ),
        )),
        IotTopic::Other { reason } if filter.has_wildcards() => Err(Reason::new(
            Code::InvalidArgument,
            "subscribe_wildcard",
            format!(
                "subscribing to '{}' is not supported ({reason}); subscribe to \
                 '/devices/{device_id}/config' and '/devices/{device_id}/commands/#'",
                shown(filter.as_str())
            ),
        )),
        IotTopic::Other { .. } if own_topic(filter.as_str(), device_id, "/provision/result") => {
            Ok((target(Outbound::ProvisionResult), granted))
        }
        IotTopic::Other { reason } => Err(unknown_topic(filter.as_str(), reason)),
        IotTopic::Events { .. }
        | IotTopic::State { .. }
        | IotTopic::Attach { .. }
        | IotTopic::Detach { .. } => Err(Reason::new(
            Code::InvalidArgument,
            "topic_wrong_direction",
            format!(
                "devices cannot subscribe to '{}'; subscribe to '/devices/{device_id}/config' \
                 and '/devices/{device_id}/commands/#'",
                shown(filter.as_str())
            ),
        )),
    }
}

/// The device a topic is for: `None` for the connected device itself, `Some(id)` for
/// another device (gateways only).
fn check_device<'a>(
    device_id: &str,
    gateway: bool,
    parsed: &IotTopic<'a>,
    topic: &str,
    action: &str,
) -> Result<Option<&'a str>, Reason> {
    match parsed.device() {
        Some(other) if other != device_id && gateway => Ok(Some(other)),
        Some(other) if other != device_id => Err(Reason::new(
            Code::PermissionDenied,
            "topic_other_device",
            format!(
                "device '{device_id}' tried to {action} '{}', a topic of device '{}'; \
                 a device may only use its own topics",
                shown(topic),
                shown(other)
            ),
        )),
        _ => Ok(None),
    }
}

/// Whether `topic` is `/devices/{device_id}{suffix}`, without allocating.
fn own_topic(topic: &str, device_id: &str, suffix: &str) -> bool {
    topic
        .strip_prefix("/devices/")
        .and_then(|rest| rest.strip_prefix(device_id))
        == Some(suffix)
}

fn unknown_topic(topic: &str, reason: &str) -> Reason {
    Reason::new(
        Code::InvalidArgument,
        "topic_unknown",
        format!("'{}' is not a supported topic: {reason}", shown(topic)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> TopicName {
        TopicName::new(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    fn filter(t: &str) -> TopicFilter {
        TopicFilter::new(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    fn own<T>(kind: T) -> Target<'static, T> {
        Target { device: None, kind }
    }

    #[test]
    fn own_events_and_state_are_allowed() {
        let t = name("/devices/dev-1/events/a/b");
        assert_eq!(
            authorize_publish("dev-1", false, &t, QoS::AtLeastOnce),
            Ok(own(Inbound::Event { subfolder: "a/b" }))
        );
        let t = name("/devices/dev-1/events");
        assert_eq!(
            authorize_publish("dev-1", false, &t, QoS::AtMostOnce),
            Ok(own(Inbound::Event { subfolder: "" }))
        );
        let t = name("/devices/dev-1/state");
        assert_eq!(
            authorize_publish("dev-1", false, &t, QoS::AtMostOnce),
            Ok(own(Inbound::State))
        );
    }

    #[test]
    fn publish_refusals_are_labelled() {
        let label = |device: &str, topic: &str, qos| {
            authorize_publish(device, false, &name(topic), qos)
                .err()
                .map(|r| r.label)
        };
        assert_eq!(
            label("dev-1", "/devices/dev-2/events", QoS::AtMostOnce),
            Some("topic_other_device")
        );
        assert_eq!(
            label("dev-1", "/devices/dev-1/events", QoS::ExactlyOnce),
            Some("qos2")
        );
        assert_eq!(
            label("dev-1", "projects/p/topics/t", QoS::AtMostOnce),
            Some("topic_unknown")
        );
        assert_eq!(
            label("dev-1", "/devices/dev-1/config", QoS::AtMostOnce),
            Some("topic_wrong_direction")
        );
        assert_eq!(
            label("dev-1", "/devices/dev-1/attach", QoS::AtLeastOnce),
            Some("topic_gateway_only")
        );
    }

    #[test]
    fn gateways_name_the_device_behind_them() {
        let t = name("/devices/dev-2/attach");
        assert_eq!(
            authorize_publish("gw-1", true, &t, QoS::AtLeastOnce),
            Ok(Target {
                device: Some("dev-2"),
                kind: Inbound::Attach
            })
        );
        let t = name("/devices/dev-2/events/x");
        assert_eq!(
            authorize_publish("gw-1", true, &t, QoS::AtLeastOnce),
            Ok(Target {
                device: Some("dev-2"),
                kind: Inbound::Event { subfolder: "x" }
            })
        );
        let f = filter("/devices/gw-1/errors");
        assert_eq!(
            authorize_subscribe("gw-1", true, &f, QoS::AtLeastOnce),
            Ok((own(Outbound::Errors), QoS::AtMostOnce))
        );
        let f = filter("/devices/dev-2/errors");
        assert!(authorize_subscribe("gw-1", true, &f, QoS::AtMostOnce).is_err());
    }

    #[test]
    fn subscriptions() {
        let sub = |t: &str, q| {
            let f = filter(t);
            authorize_subscribe("dev-1", false, &f, q).map(|(t, q)| (t.kind, q))
        };
        assert_eq!(
            sub("/devices/dev-1/config", QoS::ExactlyOnce),
            Ok((Outbound::Config, QoS::AtLeastOnce))
        );
        assert_eq!(
            sub("/devices/dev-1/commands/#", QoS::AtMostOnce),
            Ok((Outbound::Commands, QoS::AtMostOnce))
        );
        let label = |t: &str| sub(t, QoS::AtLeastOnce).err().map(|r| r.label);
        assert_eq!(label("#"), Some("subscribe_wildcard"));
        assert_eq!(label("/devices/+/config"), Some("subscribe_wildcard"));
        assert_eq!(label("/devices/dev-2/config"), Some("topic_other_device"));
        assert_eq!(
            label("/devices/dev-1/commands/x"),
            Some("subscribe_commands_subfolder")
        );
        assert_eq!(
            label("/devices/dev-1/events"),
            Some("topic_wrong_direction")
        );
        assert_eq!(label("/devices/dev-1/errors"), Some("topic_gateway_only"));
    }
}
