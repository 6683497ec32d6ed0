//! Who may publish and subscribe where (spec §1.4). Pure functions of the connected
//! device's id and the topic; the driver turns a refusal into a disconnect (PUBLISH)
//! or a SUBACK 0x80 (SUBSCRIBE) and records the reason.

use tether_mqtt::{IotTopic, QoS, TopicFilter, TopicName};

use super::reason::{Reason, RpcCode};

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
}

/// What a device's SUBSCRIBE filter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// `/devices/{id}/config`.
    Config,
    /// `/devices/{id}/commands/#`.
    Commands,
}

/// Checks a PUBLISH from device `device_id`.
///
/// # Errors
/// The reason to close the connection with.
pub fn authorize_publish<'a>(
    device_id: &str,
    topic: &'a TopicName,
    qos: QoS,
) -> Result<Inbound<'a>, Reason> {
    if qos == QoS::ExactlyOnce {
        return Err(Reason::new(
            RpcCode::InvalidArgument,
            "qos2",
            format!(
                "PUBLISH to '{}' used QoS 2, which is not supported; use QoS 0 or 1",
                topic.as_str()
            ),
        ));
    }
    let parsed = IotTopic::parse(topic.as_str());
    check_device(device_id, &parsed, topic.as_str(), "publish to")?;
    match parsed {
        IotTopic::Events { subfolder, .. } => Ok(Inbound::Event {
            subfolder: subfolder.unwrap_or(""),
        }),
        IotTopic::State { .. } => Ok(Inbound::State),
        IotTopic::Attach { .. } | IotTopic::Detach { .. } => Err(Reason::new(
            RpcCode::PermissionDenied,
            "topic_gateway_only",
            format!(
                "'{}' is a gateway control topic; this device is not a gateway (gateways are \
                 not supported by this server yet)",
                topic.as_str()
            ),
        )),
        IotTopic::Other { reason } => Err(unknown_topic(topic.as_str(), reason)),
        IotTopic::Config { .. }
        | IotTopic::Commands { .. }
        | IotTopic::CommandsWildcard { .. }
        | IotTopic::Errors { .. } => Err(Reason::new(
            RpcCode::InvalidArgument,
            "topic_wrong_direction",
            format!(
                "devices cannot publish to '{}'; publish telemetry to '/devices/{device_id}/events' \
                 and state to '/devices/{device_id}/state'",
                topic.as_str()
            ),
        )),
    }
}

/// Checks one SUBSCRIBE filter from device `device_id`; returns what it is and the
/// QoS granted (QoS 2 is granted as 1, as IoT Core did).
///
/// # Errors
/// The reason for a SUBACK 0x80.
pub fn authorize_subscribe(
    device_id: &str,
    filter: &TopicFilter,
    requested: QoS,
) -> Result<(Outbound, QoS), Reason> {
    let parsed = IotTopic::parse(filter.as_str());
    check_device(device_id, &parsed, filter.as_str(), "subscribe to")?;
    let granted = requested.min(QoS::AtLeastOnce);
    match parsed {
        IotTopic::Config { .. } => Ok((Outbound::Config, granted)),
        IotTopic::CommandsWildcard { .. } => Ok((Outbound::Commands, granted)),
        IotTopic::Commands { .. } => Err(Reason::new(
            RpcCode::InvalidArgument,
            "subscribe_commands_subfolder",
            format!(
                "subscribing to '{}' is not supported; subscribe to \
                 '/devices/{device_id}/commands/#' and filter by subfolder on the device",
                filter.as_str()
            ),
        )),
        IotTopic::Errors { .. } => Err(Reason::new(
            RpcCode::PermissionDenied,
            "topic_gateway_only",
            format!(
                "'{}' is for gateways; this device is not a gateway",
                filter.as_str()
            ),
        )),
        IotTopic::Other { reason } if filter.has_wildcards() => Err(Reason::new(
            RpcCode::InvalidArgument,
            "subscribe_wildcard",
            format!(
                "subscribing to '{}' is not supported ({reason}); subscribe to \
                 '/devices/{device_id}/config' and '/devices/{device_id}/commands/#'",
                filter.as_str()
            ),
        )),
        IotTopic::Other { reason } => Err(unknown_topic(filter.as_str(), reason)),
        IotTopic::Events { .. }
        | IotTopic::State { .. }
        | IotTopic::Attach { .. }
        | IotTopic::Detach { .. } => Err(Reason::new(
            RpcCode::InvalidArgument,
            "topic_wrong_direction",
            format!(
                "devices cannot subscribe to '{}'; subscribe to '/devices/{device_id}/config' \
                 and '/devices/{device_id}/commands/#'",
                filter.as_str()
            ),
        )),
    }
}

fn check_device(
    device_id: &str,
    parsed: &IotTopic<'_>,
    topic: &str,
    action: &str,
) -> Result<(), Reason> {
    match parsed.device() {
        Some(other) if other != device_id => Err(Reason::new(
            RpcCode::PermissionDenied,
            "topic_other_device",
            format!(
                "device '{device_id}' tried to {action} '{topic}', a topic of device '{other}'; \
                 a device may only use its own topics"
            ),
        )),
        _ => Ok(()),
    }
}

fn unknown_topic(topic: &str, reason: &str) -> Reason {
    Reason::new(
        RpcCode::InvalidArgument,
        "topic_unknown",
        format!("'{topic}' is not a supported topic: {reason}"),
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

    #[test]
    fn own_events_and_state_are_allowed() {
        let t = name("/devices/dev-1/events/a/b");
        assert_eq!(
            authorize_publish("dev-1", &t, QoS::AtLeastOnce),
            Ok(Inbound::Event { subfolder: "a/b" })
        );
        let t = name("/devices/dev-1/events");
        assert_eq!(
            authorize_publish("dev-1", &t, QoS::AtMostOnce),
            Ok(Inbound::Event { subfolder: "" })
        );
        let t = name("/devices/dev-1/state");
        assert_eq!(
            authorize_publish("dev-1", &t, QoS::AtMostOnce),
            Ok(Inbound::State)
        );
    }

    #[test]
    fn publish_refusals_are_labelled() {
        let label = |device: &str, topic: &str, qos| {
            authorize_publish(device, &name(topic), qos)
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
    fn subscriptions() {
        let sub = |t: &str, q| authorize_subscribe("dev-1", &filter(t), q);
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
    }
}
