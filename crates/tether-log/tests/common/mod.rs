//! Fixtures shared by the log's integration tests, and by tether-route's
//! conformance suite (which includes this file): topics, a device, and
//! messages whose payload names them.
#![allow(dead_code)]

use tether_log::{DeviceCoordinates, Message};

pub const TOPIC: &str = "projects/acme/topics/telemetry";
pub const ALERTS: &str = "projects/acme/topics/alerts";
/// [`TOPIC`]'s directory in the log.
pub const TOPIC_DIR: &str = "projects%2Facme%2Ftopics%2Ftelemetry";

/// The segment files in `topic_dir` of the log at `log_root`, oldest first.
pub fn segments(log_root: &std::path::Path, topic_dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(log_root.join(topic_dir))
        .expect("topic dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

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

/// The messages of the checked-in log written by the first (version 1) record
/// format, `tests/fixtures/v1/`, in append order: events from several devices
/// and subfolders, a state notification, odd attributes, an empty and a binary
/// payload, publish times out of order. Half go to [`TOPIC`], half to [`ALERTS`].
pub fn v1_fixture_messages() -> Vec<Message> {
    let mut out = Vec::new();
    for i in 0..40u64 {
        let topic = if i % 2 == 0 { TOPIC } else { ALERTS };
        let subfolder = ["", "alerts", "a/b/c", "ünïcode"][(i % 4) as usize];
        let data = format!("v1 message {i:02}").into_bytes();
        // Not monotonic: publish times are stamped by concurrent publishers.
        let time = 1_764_000_000_000_000 + (i as i64 * 7919) % 50_000;
        out.push(Message::event(topic, &device(i % 5), subfolder, data, time));
    }
    out.push(Message::state(
        TOPIC,
        &device(9),
        b"{\"on\":true}".to_vec(),
        1,
    ));
    let mut odd = Message::event(ALERTS, &device(3), "", Vec::new(), -5);
    std::sync::Arc::make_mut(&mut odd.attributes).insert("custom key".into(), String::new());
    std::sync::Arc::make_mut(&mut odd.attributes).insert("deviceNumId".into(), "007".into());
    out.push(odd);
    out.push(Message {
        topic: TOPIC.into(),
        data: (0..=255).collect(),
        attributes: Default::default(),
        publish_time: i64::MAX,
    });
    out
}
