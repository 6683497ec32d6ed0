//! Device → cloud messages, whatever the transport: route telemetry to its
//! notification topic and hand it to the sink (durable before the device is told
//! yes), store state and notify it best-effort. The MQTT bridge (direct and through
//! gateways) and the HTTP bridge both call these.

use std::sync::Arc;
use std::time::Duration;

use tether_log::{DeviceCoordinates, Message};
use tether_registry::Store;
use tether_registry::model::{DeviceRegistry, Timestamp};
use tether_route::{EventNotificationConfig, Route, Sink, SinkError, route_event, route_state};
use tracing::Instrument as _;

use crate::bridge::hub::DeviceAddress;

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

/// The telemetry message for `subfolder`, routed by the registry's
/// `eventNotificationConfigs`.
///
/// # Errors
/// Why no topic matches (the registry has no default topic).
pub fn event_message(
    routing: &Routing,
    coords: &DeviceCoordinates,
    subfolder: &str,
    payload: Vec<u8>,
    unix_micros: i64,
) -> Result<Message, String> {
    match route_event(&routing.events, subfolder) {
        Route::Topic(topic) => Ok(Message::event(
            topic,
            coords,
            subfolder,
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

/// Hands `message` to the sink, waiting at most `timeout`.
///
/// # Errors
/// Why the sink did not accept it.
pub async fn publish(
    sink: &dyn Sink,
    message: Message,
    timeout: Duration,
) -> Result<(), UplinkError> {
    match tokio::time::timeout(timeout, sink.publish(vec![message])).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(UplinkError::Timeout(timeout)),
    }
}

/// Stores a state report, then publishes the state notification best-effort (as IoT
/// Core: the state is stored either way).
///
/// # Errors
/// The store's error; nothing was stored.
pub async fn store_state(
    store: &dyn Store,
    sink: Arc<dyn Sink>,
    state_topic: Option<&str>,
    coords: &DeviceCoordinates,
    address: &DeviceAddress,
    payload: Vec<u8>,
    now: Timestamp,
) -> Result<(), UplinkError> {
    store
        .record_state(&address.registry, address.num_id, &payload, now)
        .await?;
    if let Route::Topic(topic) = route_state(state_topic) {
        let message = Message::state(topic, coords, payload, now.0);
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
