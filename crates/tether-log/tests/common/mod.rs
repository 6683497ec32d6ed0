//! Fixtures shared by the log's integration tests, and by tether-route's
//! conformance suite (which includes this file): topics, a device, and
//! messages whose payload names them.
#![allow(dead_code)]

use tether_log::{DeviceCoordinates, Message};

pub const TOPIC: &str = "projects/acme/topics/telemetry";
pub const ALERTS: &str = "projects/acme/topics/alerts";

pub fn device(n: u64) -> DeviceCoordinates {
    DeviceCoordinates {
        project_id: "acme".into(),
        location: "europe-west1".into(),
        registry_id: "fleet".into(),
        device_id: format!("dev-{n}"),
        device_num_id: 2_800_000_000_000 + n,
    }
}

/// A telemetry message whose payload names it, so read-backs can be checked.
pub fn event(topic: &str, label: &str, time: i64) -> Message {
    Message::event(topic, &device(1), "alerts", label.as_bytes().to_vec(), time)
}

pub fn labels(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect()
}
