//! A log written in record format 1 (before the compact format) reads back
//! exactly as written, and appends continue after it in format 2.

mod common;

use std::path::Path;

use common::{ALERTS, TOPIC, v1_fixture_messages};
use tether_log::{EmbeddedLog, LogConfig, Message, RetentionPolicy};

/// A copy of `tests/fixtures/v1` (the log opens it for writing).
fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/telemetry");
    for topic in std::fs::read_dir(from).expect("fixture") {
        let topic = topic.expect("entry").path();
        let dir = to.join("telemetry").join(topic.file_name().expect("name"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for file in std::fs::read_dir(&topic).expect("topic") {
            let file = file.expect("entry").path();
            std::fs::copy(&file, dir.join(file.file_name().expect("name"))).expect("copy");
        }
    }
}

/// The log's config for the fixture: its publish times run from -5 to
/// i64::MAX on purpose, which an age limit would treat as expired.
fn config(dir: &Path) -> LogConfig {
    LogConfig {
        retention: RetentionPolicy::KEEP_ALL,
        ..LogConfig::new(dir)
    }
}

fn written_to(topic: &str) -> Vec<Message> {
    v1_fixture_messages()
        .into_iter()
        .filter(|m| m.topic == topic)
        .collect()
}

async fn read_all(log: &EmbeddedLog, topic: &str, from: u64) -> Vec<(u64, Message)> {
    let records = log.read(topic, from, 1000).await.expect("read");
    records.into_iter().map(|r| (r.offset, r.message)).collect()
}

#[tokio::test]
async fn format_1_segments_read_back_exactly_and_appends_continue_in_format_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture(dir.path());
    let log = EmbeddedLog::open(config(dir.path())).await.expect("open");
    assert!(log.truncations().is_empty(), "{:?}", log.truncations());
    assert_eq!(log.list_topics(), [ALERTS, TOPIC]);
    for topic in [TOPIC, ALERTS] {
        let want = written_to(topic);
        let got = read_all(&log, topic, 0).await;
        assert_eq!(got.len(), want.len(), "{topic}");
        for (i, ((offset, got), want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(*offset, i as u64);
            assert_eq!(got, want, "{topic} offset {i}");
        }
        // From the middle of a sealed segment too.
        let tail = read_all(&log, topic, 7).await;
        assert_eq!(tail.first().map(|(o, m)| (*o, m)), Some((7, &want[7])));
    }

    // The last format-1 segment is sealed as it is; new records go to a new
    // format-2 segment after it.
    let old = written_to(TOPIC);
    let next = old.len() as u64;
    let new: Vec<Message> = (0..3)
        .map(|i| common::event(TOPIC, &format!("new {i}"), 1_764_000_100_000_000 + i))
        .collect();
    let offsets = log.append(new.clone()).await.expect("append");
    assert_eq!(offsets, [next, next + 1, next + 2]);
    let newest = log
        .root()
        .join("projects%2Facme%2Ftopics%2Ftelemetry")
        .join(format!("{next:020}.log"));
    let bytes = std::fs::read(&newest).expect("new segment");
    assert_eq!(bytes[..5], [0xFF, b't', b'l', b'g', 2], "a format-2 header");
    log.close().await;

    let log = EmbeddedLog::open(config(dir.path())).await.expect("reopen");
    assert!(log.truncations().is_empty(), "{:?}", log.truncations());
    let got: Vec<Message> = read_all(&log, TOPIC, 0)
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got, [old, new].concat());
    assert_eq!(
        read_all(&log, ALERTS, 0).await.len(),
        written_to(ALERTS).len()
    );
}
