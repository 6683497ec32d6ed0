//! The message every sink receives: IoT Core's Pub/Sub message (payload plus
//! attributes) and the notification topic it was routed to.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A message's attributes, shared: the messages of one device reference one set
/// instead of each holding six strings and a map of its own (the log's encoder and
/// decoder share them too). Change one with `Arc::make_mut`.
pub type Attributes = Arc<BTreeMap<String, String>>;

/// Attribute names exactly as IoT Core set them on Pub/Sub messages (spec §5).
pub mod attr {
    /// The device's string id.
    pub const DEVICE_ID: &str = "deviceId";
    /// The device's numeric id (uint64 as decimal text).
    pub const DEVICE_NUM_ID: &str = "deviceNumId";
    /// The registry id.
    pub const DEVICE_REGISTRY_ID: &str = "deviceRegistryId";
    /// The registry's cloud region, e.g. `us-central1`.
    pub const DEVICE_REGISTRY_LOCATION: &str = "deviceRegistryLocation";
    /// The project id.
    pub const PROJECT_ID: &str = "projectId";
    /// Everything after `events/` in the MQTT topic, or the HTTP `subFolder`.
    /// Telemetry only; state notifications do not carry it.
    pub const SUB_FOLDER: &str = "subFolder";
}

/// One notification: what IoT Core published to Pub/Sub, plus the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The notification topic name, e.g. `projects/p/topics/t`.
    pub topic: String,
    /// The raw payload: MQTT PUBLISH bytes or the decoded HTTP `binaryData`.
    pub data: Vec<u8>,
    /// IoT Core's attributes (see [`attr`]).
    pub attributes: Attributes,
    /// When the gateway accepted the message, in unix microseconds. Passed in by
    /// the caller: this crate never reads the clock.
    pub publish_time: i64,
}

/// Where a message came from: the coordinates IoT Core turned into attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCoordinates {
    /// Project id.
    pub project_id: String,
    /// Cloud region of the registry.
    pub location: String,
    /// Registry id.
    pub registry_id: String,
    /// Device string id.
    pub device_id: String,
    /// Device numeric id.
    pub device_num_id: u64,
}

impl DeviceCoordinates {
    /// The attributes of a state notification: the five device attributes,
    /// without `subFolder` (IoT Core's state notifications had no subfolder).
    pub fn state_attributes(&self) -> Attributes {
        Arc::new(self.state_map())
    }

    fn state_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (attr::DEVICE_ID.to_owned(), self.device_id.clone()),
            (
                attr::DEVICE_NUM_ID.to_owned(),
                self.device_num_id.to_string(),
            ),
            (
                attr::DEVICE_REGISTRY_ID.to_owned(),
                self.registry_id.clone(),
            ),
            (
                attr::DEVICE_REGISTRY_LOCATION.to_owned(),
                self.location.clone(),
            ),
            (attr::PROJECT_ID.to_owned(), self.project_id.clone()),
        ])
    }

    /// The attributes of a telemetry event: the state set plus `subFolder`.
    ///
    /// IoT Core always set `subFolder` on telemetry, empty when the device
    /// published to `/devices/{id}/events` with no subfolder, so it is always set.
    pub fn event_attributes(&self, subfolder: &str) -> Attributes {
        let mut attributes = self.state_map();
        attributes.insert(attr::SUB_FOLDER.to_owned(), subfolder.to_owned());
        Arc::new(attributes)
    }
}

/// The attribute set of a device's last telemetry event, kept for its next ones: a
/// device publishes to one subfolder or a few, so its messages share a set instead
/// of each building one (six strings and a map per message, in the profile of a
/// busy gateway). One per device connection, empty until it publishes.
///
/// The subfolder is kept beside the set: the check reads the connection's own
/// memory, not the map's node and strings (cache misses on every message, 3 % of a
/// busy server's samples when the check read the map).
#[derive(Debug, Default)]
pub struct EventAttributes(Option<(Box<str>, Attributes)>);

impl EventAttributes {
    /// The attributes of an event of `device` to `subfolder`: the last set if it
    /// was for the same subfolder, else a new one, kept.
    pub fn get(&mut self, device: &DeviceCoordinates, subfolder: &str) -> Attributes {
        if let Some((last, set)) = &self.0
            && **last == *subfolder
        {
            return Arc::clone(set);
        }
        let set = device.event_attributes(subfolder);
        self.0 = Some((subfolder.into(), Arc::clone(&set)));
        set
    }
}

impl Message {
    /// A telemetry event routed to `topic`.
    pub fn event(
        topic: impl Into<String>,
        device: &DeviceCoordinates,
        subfolder: &str,
        data: Vec<u8>,
        publish_time: i64,
    ) -> Self {
        Self::with_attributes(
            topic,
            device.event_attributes(subfolder),
            data,
            publish_time,
        )
    }

    /// A message routed to `topic` with `attributes` made before (an event's from
    /// [`EventAttributes`]).
    pub fn with_attributes(
        topic: impl Into<String>,
        attributes: Attributes,
        data: Vec<u8>,
        publish_time: i64,
    ) -> Self {
        Self {
            topic: topic.into(),
            data,
            attributes,
            publish_time,
        }
    }

    /// A state notification sent to the registry's state topic.
    pub fn state(
        topic: impl Into<String>,
        device: &DeviceCoordinates,
        data: Vec<u8>,
        publish_time: i64,
    ) -> Self {
        Self::with_attributes(topic, device.state_attributes(), data, publish_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceCoordinates {
        DeviceCoordinates {
            project_id: "acme".into(),
            location: "europe-west1".into(),
            registry_id: "reg1".into(),
            device_id: "dev-1".into(),
            device_num_id: 2_817_123_456_789,
        }
    }

    #[test]
    fn event_attributes_use_iot_core_names() {
        let m = Message::event("projects/acme/topics/t", &device(), "alerts", vec![1], 7);
        let keys: Vec<&str> = m.attributes.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "deviceId",
                "deviceNumId",
                "deviceRegistryId",
                "deviceRegistryLocation",
                "projectId",
                "subFolder"
            ]
        );
        assert_eq!(m.attributes["deviceNumId"], "2817123456789");
        assert_eq!(m.attributes["subFolder"], "alerts");
        assert_eq!(m.publish_time, 7);
    }

    #[test]
    fn a_device_s_events_share_the_set_of_their_subfolder() {
        let (device, mut sets) = (device(), EventAttributes::default());
        let first = sets.get(&device, "");
        let again = sets.get(&device, "");
        assert!(Arc::ptr_eq(&first, &again), "the same subfolder: one set");
        assert_eq!(*first, *device.event_attributes(""));
        let alerts = sets.get(&device, "alerts");
        assert!(!Arc::ptr_eq(&first, &alerts));
        assert_eq!(alerts[attr::SUB_FOLDER], "alerts");
        assert_eq!(*alerts, *device.event_attributes("alerts"));
        assert!(Arc::ptr_eq(&alerts, &sets.get(&device, "alerts")));
        assert_eq!(sets.get(&device, "")[attr::SUB_FOLDER], "");
    }

    #[test]
    fn state_attributes_have_no_subfolder() {
        let m = Message::state("projects/acme/topics/s", &device(), vec![], 0);
        assert_eq!(m.attributes.len(), 5);
        assert!(!m.attributes.contains_key(attr::SUB_FOLDER));
    }
}
