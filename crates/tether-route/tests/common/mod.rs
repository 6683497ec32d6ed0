//! Helpers shared by the integration tests: the log's fixtures (topics,
//! devices, messages) plus attributes and the NATS test server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

#[path = "../../../tether-log/tests/common/mod.rs"]
mod log_fixtures;
pub use log_fixtures::*;

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

/// The NATS server for tests, from `TETHER_TEST_NATS_URL`: the test skips without it,
/// or fails under `TETHER_TEST_REQUIRE_ALL=1` (CI).
pub fn nats_url() -> Option<String> {
    tether_testkit::require(
        "NATS JetStream (export TETHER_TEST_NATS_URL=nats://127.0.0.1:4222)",
        tether_testkit::needs::env("TETHER_TEST_NATS_URL"),
    )
}
