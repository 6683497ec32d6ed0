//! Embedded-log behaviour beyond the conformance suite: group commit, recovery,
//! retention, corruption, follow.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{ALERTS, TOPIC, TOPIC_DIR, event, labels, segments};
use tether_log::{
    CorruptReason, EmbeddedLog, LogConfig, LogError, Message, RetentionPolicy, TopicOffsets,
};

async fn open(dir: &Path) -> EmbeddedLog {
    open_with(LogConfig::new(dir)).await
}

async fn open_with(config: LogConfig) -> EmbeddedLog {
    EmbeddedLog::open(config).await.expect("open log")
}

/// Segments of a few records each (a record of `append_labels` takes 13 to
/// 60 bytes).
fn small_segments(dir: &Path) -> LogConfig {
    LogConfig {
        segment_bytes: 256,
        ..LogConfig::new(dir)
    }
}

async fn read_labels(log: &EmbeddedLog, topic: &str, from: u64) -> Vec<(u64, String)> {
    let records = log.read(topic, from, 10_000).await.expect("read");
    records
        .into_iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8_lossy(&r.message.data).into_owned(),
            )
        })
        .collect()
}

async fn append_labels(log: &EmbeddedLog, range: std::ops::Range<usize>) -> Vec<u64> {
    let batch = range
        .map(|i| event(TOPIC, &format!("m{i:03}"), i as i64))
        .collect();
    log.append(batch).await.expect("append")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_shares_fsyncs_between_concurrent_publishers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(dir.path()).await);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let log = Arc::clone(&log);
            tokio::spawn(async move { log.append(vec![event(TOPIC, &i.to_string(), 0)]).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    let syncs = log.sync_count();
    eprintln!("1000 concurrent single-message publishes took {syncs} fsyncs");
    assert!(syncs >= 1);
    assert!(
        syncs < 250,
        "group commit should batch: {syncs} fsyncs for 1000 publishes"
    );
    assert_eq!(
        log.offsets(TOPIC),
        Some(TopicOffsets {
            earliest: 0,
            next: 1000
        })
    );
    assert_eq!(log.read(TOPIC, 0, 2000).await.expect("read").len(), 1000);
}

#[tokio::test]
async fn offsets_continue_after_reopen_and_topics_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path()).await;
    assert_eq!(append_labels(&log, 0..3).await, [0, 1, 2]);
    log.append(vec![event(ALERTS, "a", 0)])
        .await
        .expect("alerts");
    log.close().await;

    let log = open(dir.path()).await;
    assert!(log.truncations().is_empty());
    assert_eq!(log.list_topics(), [ALERTS, TOPIC]);
    assert_eq!(append_labels(&log, 3..5).await, [3, 4]);
    let got = read_labels(&log, TOPIC, 0).await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[4], (4, "m004".into()));
}

#[tokio::test]
async fn torn_tail_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path()).await;
    append_labels(&log, 0..10).await;
    let root = log.root().to_path_buf();
    log.close().await;

    // A crash mid-write: half of a new record's header plus some garbage.
    let seg = segments(&root, TOPIC_DIR).pop().expect("segment");
    let good_len = std::fs::metadata(&seg).expect("meta").len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open segment");
    f.write_all(&[0x40, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe])
        .expect("garbage");
    drop(f);

    let log = open(dir.path()).await;
    let [t] = log.truncations() else {
        panic!("expected one truncation, got {:?}", log.truncations());
    };
    assert_eq!(t.position, good_len);
    assert_eq!(t.removed_bytes, 7);
    assert!(
        matches!(t.reason, CorruptReason::Truncated { .. }),
        "{:?}",
        t.reason
    );
    assert_eq!(std::fs::metadata(&seg).expect("meta").len(), good_len);
    assert_eq!(read_labels(&log, TOPIC, 0).await.len(), 10);
    assert_eq!(append_labels(&log, 10..11).await, [10]);
    assert_eq!(read_labels(&log, TOPIC, 10).await, [(10, "m010".into())]);
}

#[tokio::test]
async fn a_cut_last_record_is_dropped_and_its_offset_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path()).await;
    append_labels(&log, 0..5).await;
    let root = log.root().to_path_buf();
    log.close().await;

    let seg = segments(&root, TOPIC_DIR).pop().expect("segment");
    let len = std::fs::metadata(&seg).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open");
    f.set_len(len - 3).expect("cut");
    drop(f);

    let log = open(dir.path()).await;
    assert_eq!(log.truncations().len(), 1);
    assert_eq!(read_labels(&log, TOPIC, 0).await.len(), 4);
    assert_eq!(
        append_labels(&log, 5..6).await,
        [4],
        "offset 4 was never durable"
    );
}

#[tokio::test]
async fn corrupt_record_in_a_sealed_segment_is_a_precise_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_with(small_segments(dir.path())).await;
    append_labels(&log, 0..40).await;
    let root = log.root().to_path_buf();
    log.close().await;

    let segs = segments(&root, TOPIC_DIR);
    assert!(segs.len() >= 3, "small segments roll: {segs:?}");
    // Flip a byte inside the payload of m002 in the first (sealed) segment.
    let first = &segs[0];
    let mut bytes = std::fs::read(first).expect("read");
    let at = bytes
        .windows(4)
        .position(|w| w == b"m002")
        .expect("payload in file");
    bytes[at] ^= 0xff;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .expect("open");
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.write_all(&bytes).expect("write");
    drop(f);

    let log = open_with(small_segments(dir.path())).await;
    assert!(
        log.truncations().is_empty(),
        "sealed segments are not truncated"
    );
    // Records before the damage are returned; the next read hits it.
    let before = log
        .read(TOPIC, 0, 100)
        .await
        .expect("records before the damage");
    let before: Vec<Message> = before.into_iter().map(|r| r.message).collect();
    assert_eq!(labels(&before), ["m000", "m001"]);
    let err = log.read(TOPIC, 2, 100).await.expect_err("corrupt record");
    let LogError::Corrupt {
        offset,
        segment,
        reason,
        ..
    } = &err
    else {
        panic!("expected Corrupt, got {err}");
    };
    assert_eq!(*offset, 2);
    assert_eq!(segment, first);
    assert!(matches!(reason, CorruptReason::ChecksumMismatch { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with("record at offset 2 in segment ") && text.contains("CRC mismatch"),
        "{text}"
    );
    // A reader can skip past the damage to the next segment.
    let next_base: u64 = segs[1]
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("base offset");
    let after = log
        .read(TOPIC, next_base, 1000)
        .await
        .expect("later segments");
    assert_eq!(after.last().map(|r| r.offset), Some(39));
}

#[tokio::test]
async fn garbage_segment_files_never_panic() {
    for garbage in [
        vec![],
        vec![0xff; 3],
        vec![0xff; 64],
        vec![0; 4096],
        (0..=255).collect(),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let topic_dir = dir.path().join("telemetry").join(TOPIC_DIR);
        std::fs::create_dir_all(&topic_dir).expect("mkdir");
        std::fs::write(topic_dir.join("00000000000000000000.log"), &garbage).expect("write");
        std::fs::write(topic_dir.join("00000000000000000007.log"), &garbage).expect("write");
        let log = open(dir.path()).await;
        // Whatever is read is either records or a precise error.
        match log.read(TOPIC, 0, 100).await {
            Ok(records) => assert!(records.is_empty()),
            Err(e) => assert!(matches!(e, LogError::Corrupt { .. }), "{e}"),
        }
        assert_eq!(append_labels(&log, 0..1).await, [7]);
    }
}

#[tokio::test]
async fn retention_deletes_old_segments_by_age_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = small_segments(dir.path());
    config.retention = RetentionPolicy {
        max_age_micros: Some(100),
        ..RetentionPolicy::KEEP_ALL
    };
    let log = open_with(config.clone()).await;
    // publish_time = i, so segment k holds the times of its records.
    append_labels(&log, 0..60).await;
    let root = log.root().to_path_buf();
    let before = segments(&root, TOPIC_DIR);
    assert!(before.len() >= 5, "{before:?}");

    // Nothing is older than 100 µs at now = 60.
    assert!(log.apply_retention(60).await.expect("retention").is_empty());
    // At now = 130 the cutoff is 30: whole segments whose newest record < 30 go.
    let removed = log.apply_retention(130).await.expect("retention");
    assert!(!removed.is_empty());
    let after = segments(&root, TOPIC_DIR);
    assert_eq!(after.len(), before.len() - removed.len());
    for r in &removed {
        assert!(!r.segment.exists(), "{:?} deleted", r.segment);
    }
    let earliest = log.offsets(TOPIC).expect("offsets").earliest;
    assert!(earliest > 0 && earliest <= 30, "earliest {earliest}");
    // Reading from 0 starts at the earliest record kept.
    let got = read_labels(&log, TOPIC, 0).await;
    assert_eq!(got.first().map(|r| r.0), Some(earliest));
    assert_eq!(got.last().map(|r| r.0), Some(59));

    // Far in the future everything but the active segment goes.
    log.apply_retention(i64::MAX).await.expect("retention");
    assert_eq!(segments(&root, TOPIC_DIR).len(), 1);
    assert_eq!(append_labels(&log, 60..61).await, [60]);
    log.close().await;

    // Size retention, after a reopen (segment times rebuilt from the files).
    let mut config = small_segments(dir.path());
    config.retention = RetentionPolicy {
        max_bytes: Some(2048),
        ..RetentionPolicy::KEEP_ALL
    };
    let log = open_with(config).await;
    append_labels(&log, 61..120).await;
    log.apply_retention(0).await.expect("retention");
    let total: u64 = segments(&root, TOPIC_DIR)
        .iter()
        .map(|p| std::fs::metadata(p).expect("meta").len())
        .sum();
    assert!(total <= 2048, "total {total}");
    assert_eq!(log.offsets(TOPIC).map(|o| o.next), Some(120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_notifications_fire_on_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(dir.path()).await);
    // Subscribing works before the topic exists.
    let mut rx = log.subscribe(TOPIC).expect("subscribe");
    let mut other = log.subscribe(ALERTS).expect("subscribe");
    assert_eq!(*rx.borrow_and_update(), 0);

    let writer = Arc::clone(&log);
    tokio::spawn(async move { writer.append(vec![event(TOPIC, "hello", 0)]).await });
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("notified within 10 s")
        .expect("sender alive");
    let next = *rx.borrow_and_update();
    assert_eq!(next, 1);
    assert_eq!(read_labels(&log, TOPIC, 0).await, [(0, "hello".into())]);
    assert!(
        !other.has_changed().expect("alive"),
        "other topics are not notified"
    );

    // A follower that keeps its position sees exactly the new records.
    append_labels(&log, 0..3).await;
    rx.changed().await.expect("changed");
    assert_eq!(*rx.borrow_and_update(), 4);
    assert_eq!(read_labels(&log, TOPIC, next).await.len(), 3);
    other.borrow_and_update();
}

#[tokio::test]
async fn bad_requests_fail_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        open_with(LogConfig {
            max_record_bytes: 1024,
            ..LogConfig::new(dir.path())
        })
        .await,
    );
    let big = Message {
        data: vec![0; 2000],
        ..event(TOPIC, "", 0)
    };
    let err = log
        .append(vec![event(TOPIC, "ok", 0), big])
        .await
        .expect_err("too large");
    assert!(matches!(err, LogError::RecordTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("the maximum is 1024"), "{err}");
    let err = log
        .append(vec![event("", "x", 0)])
        .await
        .expect_err("empty topic");
    assert!(matches!(err, LogError::InvalidTopic { .. }), "{err}");
    // Nothing of the refused request was written; good requests go on.
    assert_eq!(
        log.append(vec![event(TOPIC, "ok", 0)])
            .await
            .expect("append"),
        [0]
    );
}

#[tokio::test]
async fn a_second_instance_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path()).await;
    let err = EmbeddedLog::open(LogConfig::new(dir.path()))
        .await
        .expect_err("locked");
    assert!(matches!(err, LogError::Locked { .. }), "{err}");
    log.close().await;
    open(dir.path()).await.close().await;
}
