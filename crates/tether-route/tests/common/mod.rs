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
