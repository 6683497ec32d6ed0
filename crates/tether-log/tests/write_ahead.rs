//! Zeros written ahead of the active segment (appends overwrite them, so an
//! fsync writes no inode) and the commit interval (appends that arrive within
//! it share one fsync). A crash leaves the zeros behind: recovery cuts them
//! without calling them a torn write, and still reports a real one.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{TOPIC, TOPIC_DIR, event};
use tether_log::{EmbeddedLog, LogConfig, LogError};

const AHEAD: u64 = 4096;

/// The log at `dir` with zeros written ahead and `segment_bytes` segments.
async fn open(dir: &Path, segment_bytes: u64) -> EmbeddedLog {
    EmbeddedLog::open(LogConfig {
        segment_bytes,
        write_ahead_bytes: AHEAD,
        ..LogConfig::new(dir)
    })
    .await
    .expect("open the log")
}

async fn append(log: &EmbeddedLog, range: std::ops::Range<usize>) -> Vec<u64> {
    let batch = range
        .map(|i| event(TOPIC, &format!("m{i:03}"), i as i64))
        .collect();
    log.append(batch).await.expect("append")
}

async fn labels(log: &EmbeddedLog) -> Vec<String> {
    let records = log.read(TOPIC, 0, 10_000).await.expect("read");
    records
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.message.data).into_owned())
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i:03}")).collect()
}

fn segments(root: &Path) -> Vec<PathBuf> {
    common::segments(root, TOPIC_DIR)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

/// A copy of the open log's files, as a crash would leave them (the copy has
/// no lock held).
fn crash_copy(root: &Path, to: &Path) -> PathBuf {
    let copy = to.join("telemetry");
    std::fs::create_dir_all(copy.join(TOPIC_DIR)).expect("mkdir");
    for seg in segments(root) {
        let name = seg.file_name().expect("name");
        std::fs::copy(&seg, copy.join(TOPIC_DIR).join(name)).expect("copy");
    }
    to.to_path_buf()
}

#[tokio::test]
async fn appends_overwrite_the_zeros_written_ahead_and_the_file_keeps_its_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 1 << 20).await;
    append(&log, 0..1).await;
    let seg = segments(log.root()).pop().expect("segment");
    let first = file_len(&seg);
    let data = log.usage().bytes;
    assert_eq!(first, data + AHEAD, "one chunk of zeros after the data");
    let tail = std::fs::read(&seg).expect("read");
    assert!(tail[data as usize..].iter().all(|&b| b == 0));

    // Appends that fit in the zeros do not change the file's length.
    for i in 1..20 {
        append(&log, i..i + 1).await;
    }
    assert!(log.usage().bytes < first, "still within the zeros");
    assert_eq!(file_len(&seg), first);
    assert_eq!(labels(&log).await, expected(0..20));

    // Past them, another chunk.
    for i in 20..200 {
        append(&log, i..i + 1).await;
    }
    let bytes = log.usage().bytes;
    assert!(file_len(&seg) > bytes && file_len(&seg) <= bytes + AHEAD);
    assert_eq!(labels(&log).await, expected(0..200));

    // A clean close ends the file at its data.
    let root = log.root().to_path_buf();
    log.close().await;
    assert_eq!(file_len(&segments(&root)[0]), bytes);
}

#[tokio::test]
async fn sealed_segments_end_at_their_data_and_read_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Segments of 1 KiB, so each is sealed with zeros still ahead of it.
    let log = open(dir.path(), 1024).await;
    for i in 0..300 {
        append(&log, i..i + 1).await;
    }
    let segs = segments(log.root());
    assert!(segs.len() >= 3, "rolled: {segs:?}");
    for sealed in &segs[..segs.len() - 1] {
        let bytes = std::fs::read(sealed).expect("read");
        assert_ne!(bytes.last(), Some(&0), "{sealed:?} ends in zeros");
    }
    let last = segs.last().expect("last");
    assert!(file_len(last) <= 1024, "zeros stop at the segment size");
    assert_eq!(labels(&log).await, expected(0..300));
    log.close().await;

    let log = open(dir.path(), 1024).await;
    assert!(log.truncations().is_empty(), "{:?}", log.truncations());
    assert_eq!(labels(&log).await, expected(0..300));
}

#[tokio::test]
async fn after_a_crash_the_zeros_are_cut_without_a_truncation_and_appends_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 1 << 20).await;
    append(&log, 0..10).await;
    let crashed = tempfile::tempdir().expect("tempdir");
    let copy = crash_copy(log.root(), crashed.path());
    let seg = segments(&copy.join("telemetry")).pop().expect("segment");
    assert!(
        file_len(&seg) > log.usage().bytes,
        "the copy holds the zeros"
    );

    let recovered = open(&copy, 1 << 20).await;
    assert!(
        recovered.truncations().is_empty(),
        "zeros are not a torn write: {:?}",
        recovered.truncations()
    );
    assert_eq!(recovered.usage().bytes, log.usage().bytes);
    assert_eq!(labels(&recovered).await, expected(0..10));
    assert_eq!(append(&recovered, 10..12).await, [10, 11]);
    assert_eq!(labels(&recovered).await, expected(0..12));
}

#[tokio::test]
async fn a_torn_record_in_the_zeros_is_still_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), 1 << 20).await;
    append(&log, 0..10).await;
    let data = log.usage().bytes;
    let crashed = tempfile::tempdir().expect("tempdir");
    let copy = crash_copy(log.root(), crashed.path());
    // Half a record written over the zeros, the rest never reached the disk.
    let seg = segments(&copy.join("telemetry")).pop().expect("segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[data as usize..data as usize + 6].copy_from_slice(&[0x20, 0x11, 0x22, 0x33, 0x44, 0x01]);
    std::fs::write(&seg, &bytes).expect("write");

    let recovered = open(&copy, 1 << 20).await;
    let truncations = recovered.truncations();
    assert_eq!(truncations.len(), 1, "{truncations:?}");
    assert_eq!(truncations[0].position, data);
    assert_eq!(labels(&recovered).await, expected(0..10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_within_the_commit_interval_share_one_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(LogConfig {
            commit_interval: Duration::from_millis(100),
            ..LogConfig::new(dir.path())
        })
        .await
        .expect("open"),
    );
    append(&log, 0..1).await;
    let before = log.sync_count();
    // Fifty appends one after another from their own tasks, all within the
    // 100 ms that follow the first commit: one more fsync, not fifty.
    let tasks: Vec<_> = (1..51)
        .map(|i| {
            let log = Arc::clone(&log);
            tokio::spawn(
                async move { log.append(vec![event(TOPIC, &format!("m{i:03}"), i)]).await },
            )
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    let syncs = log.sync_count() - before;
    assert!(syncs <= 2, "{syncs} fsyncs for 50 appends");
    let mut got = labels(&log).await;
    got.sort();
    assert_eq!(got, expected(0..51));
}

/// While a thread that appends is busy, a group commit waits for it (at most
/// `busy_wait`): what arrives meanwhile shares the fsync. Once the thread parks, the
/// commit goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_while_the_appending_threads_are_busy_share_one_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(
        EmbeddedLog::open(LogConfig {
            busy_wait: Duration::from_millis(100),
            ..LogConfig::new(dir.path())
        })
        .await
        .expect("open"),
    );
    append(&log, 0..1).await;
    let before = log.sync_count();
    // A device thread at work (this runtime has no hooks: one stands in for it).
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let busy = std::thread::spawn(move || {
        tether_log::appenders::unparked();
        ready.send(()).expect("ready");
        let _ = released.recv();
        tether_log::appenders::parking();
    });
    is_ready.recv().expect("busy thread");
    // Twenty appends a millisecond apart: committed as they come, each would have an
    // fsync of its own.
    let mut tasks = Vec::new();
    for i in 1..21 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            log.append(vec![event(TOPIC, &format!("m{i:03}"), i)]).await
        }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    release.send(()).expect("release");
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    busy.join().expect("busy thread");
    let syncs = log.sync_count() - before;
    assert!(syncs <= 3, "{syncs} fsyncs for 20 appends");
    let mut got = labels(&log).await;
    got.sort();
    assert_eq!(got, expected(0..21));
}

#[tokio::test]
async fn a_busy_wait_over_100_ms_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = EmbeddedLog::open(LogConfig {
        busy_wait: Duration::from_millis(101),
        ..LogConfig::new(dir.path())
    })
    .await
    .expect_err("refused");
    assert!(
        matches!(err, LogError::Config(ref m) if m.contains("busy_wait")),
        "{err}"
    );
}

#[tokio::test]
async fn a_commit_interval_over_100_ms_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = EmbeddedLog::open(LogConfig {
        commit_interval: Duration::from_millis(101),
        ..LogConfig::new(dir.path())
    })
    .await
    .expect_err("refused");
    assert!(
        matches!(err, LogError::Config(ref m) if m.contains("commit_interval")),
        "{err}"
    );
}
