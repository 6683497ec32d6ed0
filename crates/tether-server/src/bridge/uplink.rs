//! Device → cloud messages, whatever the transport: route telemetry to its
//! notification topic and hand it to the sink (durable before the device is told
//! yes), store state and notify it best-effort. The MQTT bridge (direct and through
//! gateways) and the HTTP bridge both call these.

use std::sync::Arc;
use std::time::Duration;

use tether_log::{Attributes, DeviceCoordinates, Message};
use tether_registry::Store;
use tether_registry::model::{DeviceRegistry, Timestamp};
use tether_route::{EventNotificationConfig, Route, Sink, SinkError, route_event, route_state};
use tracing::Instrument as _;

use crate::bridge::hub::DeviceAddress;
use crate::bridge::{Code, Reason};

/// The routing coordinates (Pub/Sub attributes) of a device.
pub fn coordinates(address: &DeviceAddress, device_id: &str) -> DeviceCoordinates {
    DeviceCoordinates {
        project_id: address.registry.project.clone(),
        location: address.registry.location.clone(),
        registry_id: address.registry.registry.clone(),
        device_id: device_id.to_owned(),
        device_num_id: address.num_id,
    }
}

/// A registry's notification configs in the form routing wants, made once when the
/// registry is read (not for every message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    events: Vec<EventNotificationConfig>,
    state_topic: Option<String>,
}

impl Routing {
    /// The routing of `registry`.
    pub fn of(registry: &DeviceRegistry) -> Self {
        Self {
            events: registry
                .event_notification_configs
                .iter()
                .map(|c| EventNotificationConfig {
                    subfolder_matches: c.subfolder_matches.clone(),
                    pubsub_topic_name: c.pubsub_topic_name.clone(),
                })
                .collect(),
            state_topic: registry
                .state_notification_config
                .as_ref()
                .map(|c| c.pubsub_topic_name.clone()),
        }
    }

    /// The state notification topic, if the registry has one.
    pub fn state_topic(&self) -> Option<&str> {
        self.state_topic.as_deref()
    }
}

/// Most User Properties kept on one message: Pub/Sub allows 100 attributes, and IoT
/// Core's own take six.
pub const MAX_USER_ATTRIBUTES: usize = 94;
/// Pub/Sub's limits on an attribute's key and value, in bytes.
const MAX_ATTRIBUTE_KEY: usize = 256;
const MAX_ATTRIBUTE_VALUE: usize = 1024;

/// An MQTT 5 message's User Properties as telemetry attributes beside IoT Core's,
/// within Pub/Sub's rules for attributes.
///
/// # Errors
/// The first property that breaks a rule, and how to fix it: more than
/// [`MAX_USER_ATTRIBUTES`], an empty or over-long key or value, a key that is not
/// printable ASCII (or holds `:`), a value with control characters, a key Pub/Sub or
/// the NATS sink reserves (`goog…`, `Nats-…`, `Tether-…`) or one of IoT Core's attribute
/// names, a key given twice.
pub fn user_attributes(
    properties: Vec<(String, String)>,
) -> Result<std::collections::BTreeMap<String, String>, Reason> {
    let refuse =
        |message: String| Err(Reason::new(Code::InvalidArgument, "user_property", message));
    if properties.len() > MAX_USER_ATTRIBUTES {
        return refuse(format!(
            "The connection was closed because the PUBLISH has {} User Properties; at most \
             {MAX_USER_ATTRIBUTES} are kept as telemetry attributes.",
            properties.len()
        ));
    }
    let reserved = [
        tether_log::message::attr::DEVICE_ID,
        tether_log::message::attr::DEVICE_NUM_ID,
        tether_log::message::attr::DEVICE_REGISTRY_ID,
        tether_log::message::attr::DEVICE_REGISTRY_LOCATION,
        tether_log::message::attr::PROJECT_ID,
        tether_log::message::attr::SUB_FOLDER,
    ];
    let mut attributes = std::collections::BTreeMap::new();
    for (key, value) in properties {
        let shown_key = crate::bridge::shown(&key);
        let why = if key.is_empty() || key.len() > MAX_ATTRIBUTE_KEY {
            Some(format!(
                "its name is {} bytes (1 to {MAX_ATTRIBUTE_KEY})",
                key.len()
            ))
        } else if value.len() > MAX_ATTRIBUTE_VALUE {
            Some(format!(
                "its value is {} bytes (at most {MAX_ATTRIBUTE_VALUE})",
                value.len()
            ))
        } else if !key.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            // The strictest sink's rule: with --nats attributes are NATS headers.
            Some("names are printable ASCII without spaces or ':'".to_owned())
        } else if value.chars().any(char::is_control) {
            Some("values may not hold control characters (line breaks, tabs)".to_owned())
        } else if key.starts_with("goog") {
            Some("names starting with 'goog' are reserved by Pub/Sub".to_owned())
        } else if ["nats-", "tether-"]
            .iter()
            .any(|p| key.to_ascii_lowercase().starts_with(p))
        {
            Some("names starting with 'Nats-' or 'Tether-' are reserved".to_owned())
        } else if reserved.contains(&key.as_str()) {
            Some("it would replace IoT Core's attribute of that name; rename it".to_owned())
        } else if attributes.contains_key(&key) {
            Some("it is given twice; attributes are a map".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            return refuse(format!(
                "The connection was closed because User Property '{shown_key}' cannot be a \
                 telemetry attribute: {why}."
            ));
        }
        attributes.insert(key, value);
    }
    Ok(attributes)
}

/// The telemetry message for `subfolder`, routed by the registry's
/// `eventNotificationConfigs`.
///
/// # Errors
/// Why no topic matches (the registry has no default topic).
pub fn event_message(
    routing: &Routing,
    attributes: Attributes,
    subfolder: &str,
    payload: Vec<u8>,
    unix_micros: i64,
) -> Result<Message, String> {
    match route_event(&routing.events, subfolder) {
        Route::Topic(topic) => Ok(Message::with_attributes(
            topic,
            attributes,
            payload,
            unix_micros,
        )),
        Route::NoTopic(why) => Err(why.to_string()),
    }
}

/// Why a device message was not made durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UplinkError {
    /// The sink did not answer within the timeout.
    #[error("the telemetry sink did not accept it within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The sink refused it (the embedded log or NATS said why).
    #[error("{0}")]
    Sink(#[from] SinkError),
    /// The registry store did not store the state.
    #[error("{0}")]
    Store(#[from] tether_registry::StoreError),
}

impl UplinkError {
    /// A short stable label for metrics: `timeout`, `log`, `nats`, `sink` or `store`.
    pub fn label(&self) -> &'static str {
        match self {
            UplinkError::Timeout(_) => "timeout",
            UplinkError::Sink(SinkError::Log(_)) => "log",
            UplinkError::Sink(SinkError::Nats(_)) => "nats",
            UplinkError::Sink(_) => "sink",
            UplinkError::Store(_) => "store",
        }
    }
}

/// Hands `batch` to the sink, waiting at most `timeout`.
///
/// # Errors
/// Why the sink did not accept it.
pub async fn publish(
    sink: &dyn Sink,
    batch: Vec<Message>,
    timeout: Duration,
) -> Result<(), UplinkError> {
    match tokio::time::timeout(timeout, sink.publish(batch)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(UplinkError::Timeout(timeout)),
    }
}

/// Where a state report's notification goes and what it carries beside the state.
#[derive(Debug)]
pub struct StateNotice<'a> {
    /// The registry's state notification topic, if it has one.
    pub topic: Option<&'a str>,
    /// The device's coordinates (IoT Core's attributes).
    pub coords: &'a DeviceCoordinates,
    /// More attributes (an MQTT 5 message's User Properties).
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Stores a state report, then publishes the state notification best-effort (as IoT
/// Core: the state is stored either way).
///
/// # Errors
/// The store's error; nothing was stored.
pub async fn store_state(
    store: &dyn Store,
    sink: Arc<dyn Sink>,
    notice: StateNotice<'_>,
    address: &DeviceAddress,
    payload: Vec<u8>,
    now: Timestamp,
) -> Result<(), UplinkError> {
    store
        .record_state(&address.registry, address.num_id, &payload, now)
        .await?;
    if let Route::Topic(topic) = route_state(notice.topic) {
        let mut message = Message::state(topic, notice.coords, payload, now.0);
        if !notice.attributes.is_empty() {
            Arc::make_mut(&mut message.attributes).extend(notice.attributes);
        }
        tokio::spawn(
            async move {
                if let Err(e) = sink.publish(vec![message]).await {
                    tracing::warn!(error = %e, "state notification not delivered");
                }
            }
            .in_current_span(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod user_attribute_tests {
    use super::*;

    fn refused(pairs: &[(&str, &str)]) -> String {
        let properties = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match user_attributes(properties) {
            Err(reason) => reason.message,
            Ok(kept) => panic!("kept {kept:?}"),
        }
    }

    #[test]
    fn user_properties_follow_every_sink_s_rules() {
        let kept = user_attributes(vec![("firmware".into(), "2.4.1".into())]);
        assert_eq!(
            kept.ok().map(|m| m["firmware"].clone()),
            Some("2.4.1".into())
        );
        assert!(refused(&[("subFolder", "x")]).contains("IoT Core's attribute"));
        assert!(refused(&[("googX", "x")]).contains("'goog'"));
        assert!(refused(&[("Nats-Msg-Id", "x")]).contains("'Nats-'"));
        assert!(refused(&[("bad name", "x")]).contains("printable ASCII"));
        assert!(refused(&[("a:b", "x")]).contains("':'"));
        assert!(refused(&[("k", "line\nbreak")]).contains("control characters"));
        assert!(refused(&[("", "x")]).contains("0 bytes"));
        let long = "v".repeat(1025);
        assert!(refused(&[("k", &long)]).contains("1025 bytes"));
        assert!(refused(&[("k", "1"), ("k", "2")]).contains("twice"));
        let many: Vec<(String, String)> = (0..95).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(user_attributes(many).is_err());
    }
}
