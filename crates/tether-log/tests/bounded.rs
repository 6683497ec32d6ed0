//! The log bounded by default: its total cap across topics holds as it
//! grows (within one segment, checked after every append), the newest data
//! is kept and readable, the age limit applies as segments roll, and the
//! limits and usage are reported.

mod common;

use std::path::Path;

use common::{ALERTS, TOPIC, event};
use tether_log::{EmbeddedLog, LogConfig, Message, RetentionPolicy, TotalCap};

const THIRD: &str = "projects/acme/topics/third";
const SEGMENT: u64 = 4096;

/// The default limits scaled down: small segments and a 64 KiB total cap
/// (the default age limit stays). No zeros written ahead: usage, the bytes of
/// records, is compared with the bytes on disk.
fn scaled_down(dir: &Path, cap: u64) -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT,
        write_ahead_bytes: 0,
        retention: RetentionPolicy {
            max_total_bytes: TotalCap::Bytes(cap),
            ..RetentionPolicy::default()
        },
        ..LogConfig::new(dir)
    }
}

/// Bytes of every segment file on disk.
fn disk_bytes(root: &Path) -> u64 {
    let mut total = 0;
    for topic in std::fs::read_dir(root).expect("log dir").flatten() {
        if topic.path().is_dir() {
            for file in std::fs::read_dir(topic.path()).expect("topic").flatten() {
                total += file.metadata().expect("metadata").len();
            }
        }
    }
    total
}

/// Message `i` of `topic`: a 100-byte payload starting with its number, from
/// one of 50 devices, 500 µs after the previous.
fn numbered(topic: &str, i: u64) -> Message {
    let mut data = format!("{i:08}").into_bytes();
    data.resize(100, b'.');
    Message::event(
        topic,
        &common::device(i % 50),
        "",
        data,
        1_764_000_000_000_000 + i as i64 * 500,
    )
}

#[tokio::test]
async fn filling_the_log_past_its_cap_keeps_the_newest_within_the_cap_plus_one_segment() {
    const CAP: u64 = 64 * 1024;
    const PER_TOPIC: u64 = 1500;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(scaled_down(dir.path(), CAP))
        .await
        .expect("open");
    assert_eq!(log.limits().max_total_bytes, Some(CAP));
    let root = log.root().to_path_buf();
    let topics = [TOPIC, ALERTS, THIRD];
    // About 350 KB in all, five times the cap, in small interleaved batches.
    for start in (0..PER_TOPIC).step_by(10) {
        for topic in topics {
            let batch = (start..start + 10).map(|i| numbered(topic, i)).collect();
            log.append(batch).await.expect("append");
            let disk = disk_bytes(&root);
            assert!(disk <= CAP + SEGMENT, "{disk} bytes on disk, cap {CAP}");
            assert_eq!(log.usage().bytes, disk);
        }
    }
    let usage = log.usage();
    assert!(usage.removed_segments > 0, "{usage:?}");
    let mut removed = 0;
    for topic in topics {
        let offsets = log.offsets(topic).expect("offsets");
        assert_eq!(offsets.next, PER_TOPIC);
        assert!(offsets.earliest > 0, "{topic}: the oldest went");
        removed += offsets.earliest;
        // Readers see exactly the newest records, contiguous, from 0 on too.
        let records = log.read(topic, 0, 10_000).await.expect("read");
        assert_eq!(records.first().map(|r| r.offset), Some(offsets.earliest));
        assert_eq!(records.len() as u64, PER_TOPIC - offsets.earliest);
        for r in &records {
            assert_eq!(r.message, numbered(topic, r.offset));
        }
        // Oldest first across topics: each keeps about a third of the cap.
        assert!(records.len() > 100, "{topic} keeps {}", records.len());
    }
    assert_eq!(usage.removed_messages, removed);
    log.close().await;

    // Reopened with a lower cap, the log shrinks at once.
    let log = EmbeddedLog::open(scaled_down(dir.path(), CAP / 2))
        .await
        .expect("reopen");
    let disk = disk_bytes(&root);
    assert!(disk <= CAP / 2, "{disk}");
    assert_eq!(log.usage().bytes, disk);
    let last = log.read(TOPIC, PER_TOPIC - 1, 1).await.expect("read");
    assert_eq!(last[0].message, numbered(TOPIC, PER_TOPIC - 1));
}

#[tokio::test]
async fn the_age_limit_applies_as_segments_roll() {
    const MAX_AGE: i64 = 50_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1024,
        retention: RetentionPolicy {
            max_age_micros: Some(MAX_AGE),
            ..RetentionPolicy::KEEP_ALL
        },
        ..LogConfig::new(dir.path())
    };
    let log = EmbeddedLog::open(config).await.expect("open");
    // Message i is published at i ms; nobody calls apply_retention.
    for i in 0..400u64 {
        log.append(vec![event(TOPIC, &format!("m{i:03}"), i as i64 * 1000)])
            .await
            .expect("append");
    }
    let earliest = log.offsets(TOPIC).expect("offsets").earliest;
    assert!(earliest > 0, "old segments went as new ones rolled");
    // The oldest segment kept ends inside the last 50 ms written.
    let segments: Vec<u64> = {
        let dir = log.root().join("projects%2Facme%2Ftopics%2Ftelemetry");
        let mut bases: Vec<u64> = std::fs::read_dir(dir)
            .expect("topic dir")
            .flatten()
            .filter_map(|f| f.path().file_stem()?.to_str()?.parse().ok())
            .collect();
        bases.sort();
        bases
    };
    assert_eq!(segments.first(), Some(&earliest));
    let last_of_oldest = segments[1] - 1;
    let newest = 399 * 1000;
    assert!(last_of_oldest as i64 * 1000 >= newest - MAX_AGE - 1000 * 60);
    assert_eq!(log.usage().removed_messages, earliest);
}

#[tokio::test]
async fn the_defaults_keep_7_days_and_a_bounded_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(LogConfig::new(dir.path()))
        .await
        .expect("open");
    let limits = log.limits();
    assert_eq!(limits.max_age_micros, Some(7 * 24 * 3600 * 1_000_000));
    assert!(
        limits
            .max_total_bytes
            .is_some_and(|n| n > 0 && n <= TotalCap::AUTO_MAX_BYTES),
        "{limits:?}"
    );
    assert!(
        limits.to_string().starts_with("keeps 7 days, at most "),
        "{limits}"
    );
    log.close().await;

    let config = LogConfig {
        retention: RetentionPolicy::KEEP_ALL,
        ..LogConfig::new(dir.path())
    };
    let log = EmbeddedLog::open(config).await.expect("open");
    assert_eq!(
        log.limits().to_string(),
        "keeps everything: no age limit, no size cap"
    );
}
