//! Device → cloud messages, whatever the transport: route telemetry to its
//! notification topic and hand it to the sink (durable before the device is told
//! yes), store state and notify it best-effort. The MQTT bridge (direct and through
//! gateways) and the HTTP bridge both call these.

use std::sync::Arc;
use std::time::Duration;

use tether_log::{DeviceCoordinates, Message};
use tether_registry::Store;
use tether_registry::model::{DeviceRegistry, Timestamp};
use tether_route::{Route, Sink, route_event, route_state};
use tracing::Instrument as _;

use crate::hub::DeviceAddress;

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

/// The telemetry message for `subfolder`, routed by the registry's
/// `eventNotificationConfigs`.
///
/// # Errors
/// Why no topic matches (the registry has no default topic).
pub fn event_message(
    registry: &DeviceRegistry,
    coords: &DeviceCoordinates,
    subfolder: &str,
    payload: Vec<u8>,
    unix_micros: i64,
) -> Result<Message, String> {
    let configs: Vec<tether_route::EventNotificationConfig> = registry
        .event_notification_configs
        .iter()
        .map(|c| tether_route::EventNotificationConfig {
            subfolder_matches: c.subfolder_matches.clone(),
            pubsub_topic_name: c.pubsub_topic_name.clone(),
        })
        .collect();
    match route_event(&configs, subfolder) {
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

/// Hands `message` to the sink, waiting at most `timeout`.
///
/// # Errors
/// Why the sink did not accept it.
pub async fn publish(sink: &dyn Sink, message: Message, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, sink.publish(vec![message])).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the sink did not answer in time".to_owned()),
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
    registry: &DeviceRegistry,
    coords: &DeviceCoordinates,
    address: &DeviceAddress,
    payload: Vec<u8>,
    now: Timestamp,
) -> Result<(), tether_registry::StoreError> {
    store
        .record_state(&address.registry, address.num_id, &payload, now)
        .await?;
    let topic = registry
        .state_notification_config
        .as_ref()
        .map(|c| c.pubsub_topic_name.as_str());
    if let Route::Topic(topic) = route_state(topic) {
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
