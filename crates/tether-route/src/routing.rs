//! Subfolder → notification topic, as IoT Core routed telemetry (spec §5).
//! Pure functions: the caller passes the registry's configs in.

use std::fmt;

/// One of a registry's `eventNotificationConfigs`.
///
/// Our own small type so this crate does not depend on the registry crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotificationConfig {
    /// Empty: the default config. Otherwise this config takes only events
    /// whose subfolder is exactly this string (no leading `/`, no wildcards).
    pub subfolder_matches: String,
    /// The notification topic, e.g. `projects/p/topics/t`.
    pub pubsub_topic_name: String,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Publish to this notification topic.
    Topic(String),
    /// There is nowhere to publish. IoT Core closed the MQTT connection (and set
    /// `lastErrorStatus`) or answered HTTP `INVALID_ARGUMENT`; the reason's
    /// `Display` is the message to report.
    NoTopic(NoTopic),
}

/// Why a message has no notification topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoTopic {
    /// The registry has no event notification config at all.
    NoEventConfigs,
    /// Configs exist, none matches the subfolder exactly, and there is no default.
    NoMatchingEventConfig {
        /// The event's subfolder (may be empty).
        subfolder: String,
    },
    /// The matching config names no topic.
    EmptyTopicName {
        /// The `subfolderMatches` of the config that matched (empty: the default).
        subfolder_matches: String,
    },
    /// The registry has no state notification config.
    NoStateConfig,
}

impl fmt::Display for NoTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEventConfigs => f.write_str(
                "the registry has no event notification config, so telemetry has no Pub/Sub topic",
            ),
            Self::NoMatchingEventConfig { subfolder } if subfolder.is_empty() => f.write_str(
                "the registry has no default event notification config (one with an empty \
                 subfolderMatches) for telemetry published without a subfolder",
            ),
            Self::NoMatchingEventConfig { subfolder } => write!(
                f,
                "the registry has no event notification config for subfolder '{subfolder}' \
                 and no default config"
            ),
            Self::EmptyTopicName { subfolder_matches } if subfolder_matches.is_empty() => f
                .write_str(
                    "the registry's default event notification config has an empty pubsubTopicName",
                ),
            Self::EmptyTopicName { subfolder_matches } => write!(
                f,
                "the registry's event notification config for subfolder '{subfolder_matches}' \
                 has an empty pubsubTopicName"
            ),
            Self::NoStateConfig => f.write_str("the registry has no state notification config"),
        }
    }
}

/// Routes a telemetry event by its subfolder (everything after `events/`, or
/// the HTTP `subFolder`; empty when there is none).
///
/// The first config whose `subfolder_matches` equals the subfolder wins;
/// otherwise the first default config (empty `subfolder_matches`). A config
/// with a non-empty match never takes another subfolder.
pub fn route_event(configs: &[EventNotificationConfig], subfolder: &str) -> Route {
    if configs.is_empty() {
        return Route::NoTopic(NoTopic::NoEventConfigs);
    }
    let exact = configs
        .iter()
        .find(|c| !c.subfolder_matches.is_empty() && c.subfolder_matches == subfolder);
    let chosen = exact.or_else(|| configs.iter().find(|c| c.subfolder_matches.is_empty()));
    match chosen {
        None => Route::NoTopic(NoTopic::NoMatchingEventConfig {
            subfolder: subfolder.to_owned(),
        }),
        Some(c) if c.pubsub_topic_name.is_empty() => Route::NoTopic(NoTopic::EmptyTopicName {
            subfolder_matches: c.subfolder_matches.clone(),
        }),
        Some(c) => Route::Topic(c.pubsub_topic_name.clone()),
    }
}

/// Routes a state notification: the registry's `stateNotificationConfig`
/// topic, if any. IoT Core stored the state either way (best effort).
pub fn route_state(state_topic: Option<&str>) -> Route {
    match state_topic {
        Some(t) if !t.is_empty() => Route::Topic(t.to_owned()),
        _ => Route::NoTopic(NoTopic::NoStateConfig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(m: &str, t: &str) -> EventNotificationConfig {
        EventNotificationConfig {
            subfolder_matches: m.into(),
            pubsub_topic_name: t.into(),
        }
    }

    fn topic(t: &str) -> Route {
        Route::Topic(t.into())
    }

    #[test]
    fn exact_match_wins_even_after_the_default() {
        let configs = [cfg("", "default"), cfg("alerts", "a1"), cfg("alerts", "a2")];
        assert_eq!(route_event(&configs, "alerts"), topic("a1"));
        assert_eq!(route_event(&configs, "other"), topic("default"));
        assert_eq!(route_event(&configs, ""), topic("default"));
    }

    #[test]
    fn non_empty_match_is_exact_not_a_prefix() {
        let configs = [cfg("alerts", "a")];
        assert_eq!(route_event(&configs, "alerts"), topic("a"));
        for sub in ["alerts/x", "alert", "Alerts", "/alerts", ""] {
            assert!(
                matches!(route_event(&configs, sub), Route::NoTopic(_)),
                "{sub}"
            );
        }
    }

    #[test]
    fn reasons_are_precise() {
        let Route::NoTopic(r) = route_event(&[cfg("x", "t")], "alerts") else {
            panic!("expected NoTopic");
        };
        assert_eq!(
            r.to_string(),
            "the registry has no event notification config for subfolder 'alerts' and no default config"
        );
        let Route::NoTopic(r) = route_event(&[], "") else {
            panic!("expected NoTopic");
        };
        assert!(r.to_string().contains("no event notification config"));
        let Route::NoTopic(r) = route_event(&[cfg("", "")], "a") else {
            panic!("expected NoTopic");
        };
        assert!(
            r.to_string()
                .contains("default event notification config has an empty")
        );
    }

    #[test]
    fn state_routes_to_the_state_topic() {
        assert_eq!(route_state(Some("s")), topic("s"));
        assert_eq!(route_state(None), Route::NoTopic(NoTopic::NoStateConfig));
        assert_eq!(
            route_state(Some("")),
            Route::NoTopic(NoTopic::NoStateConfig)
        );
    }
}
