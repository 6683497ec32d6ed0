//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use tether_route::{DeviceCoordinates, Message};

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

pub fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A random token for names that must not collide between test runs.
pub fn unique() -> String {
    let h = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{:x}{:x}", std::process::id(), h)
}

/// The NATS server for tests, from `TETHER_TEST_NATS_URL`. Unset: the test is
/// skipped with a notice, except in CI (`CI` set), where that is a failure.
pub fn nats_url() -> Option<String> {
    match std::env::var("TETHER_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but TETHER_TEST_NATS_URL is not: NATS tests must not be skipped in CI \
             (start `nats-server -js` and export TETHER_TEST_NATS_URL=nats://127.0.0.1:4222)"
        ),
        _ => {
            eprintln!(
                "notice: skipping NATS test because TETHER_TEST_NATS_URL is not set \
                 (export TETHER_TEST_NATS_URL=nats://127.0.0.1:4222 to run it)"
            );
            None
        }
    }
}
