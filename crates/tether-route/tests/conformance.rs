//! One conformance suite for the `Sink` and `TelemetryReader` traits, run against
//! every implementation: the embedded log and NATS JetStream (the latter needs
//! TETHER_TEST_NATS_URL).
//!
//! Each case is generic over a `Harness`: a fresh sink, read back through its own
//! `TelemetryReader` (the sinks are also the readers), so one suite covers both
//! traits.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{ALERTS, TOPIC, attrs, event, labels};
use tether_log::message::attr;
use tether_log::{EmbeddedLog, LogConfig, Message};
use tether_route::{NatsConfig, NatsSink, ReadLimits, Sink, TelemetryReader};

trait Harness {
    type S: Sink + TelemetryReader + 'static;
    /// Offsets are 0, 1, 2, … per topic (the embedded log), not sequences shared
    /// by every topic (JetStream).
    const GAPLESS: bool;
    fn sink(&self) -> Arc<Self::S>;
    /// Consumers or other reading state the reads left behind (none may stay).
    async fn readers_left(&self) -> usize;
    /// Everything stored for `topic`, oldest first, read back through the sink's
    /// own [`TelemetryReader`].
    async fn read_all(&self, topic: &str) -> Vec<Message> {
        let sink = self.sink();
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let records = sink
                .read(topic, from, ReadLimits::new(100))
                .await
                .expect("read");
            if records.is_empty() {
                return out;
            }
            for r in records {
                if Self::GAPLESS {
                    assert_eq!(r.offset, out.len() as u64, "offsets have no gaps");
                }
                assert!(r.offset >= from, "offsets rise");
                from = r.offset + 1;
                out.push(r.message);
            }
        }
    }
}

// ---- the suite ----

async fn publish_batches_and_read_back<H: Harness>(h: &H) {
    let sink = h.sink();
    sink.publish(vec![event(TOPIC, "m0", 10)])
        .await
        .expect("batch of 1");
    sink.publish(vec![])
        .await
        .expect("an empty batch is accepted");
    let batch: Vec<Message> = (1..=9)
        .map(|i| event(TOPIC, &format!("m{i}"), 10 + i))
        .collect();
    sink.publish(batch).await.expect("batch of 9");

    let got = h.read_all(TOPIC).await;
    let want: Vec<String> = (0..=9).map(|i| format!("m{i}")).collect();
    assert_eq!(labels(&got), want);
    assert!(got.iter().all(|m| m.topic == TOPIC));
    assert!(
        h.read_all(ALERTS).await.is_empty(),
        "nothing leaks to other topics"
    );
}

async fn attributes_payload_and_time_preserved<H: Harness>(h: &H) {
    let device = common::device(7);
    let binary: Vec<u8> = (0..=255).collect();
    let sent = vec![
        Message::event(TOPIC, &device, "alerts/fire", binary, 1_790_000_000_123_456),
        Message::event(TOPIC, &device, "", vec![], -1),
        Message::state(TOPIC, &device, b"{\"on\":true}".to_vec(), 0),
        Message {
            topic: TOPIC.into(),
            data: b"x".to_vec(),
            attributes: attrs(&[("custom", "value with spaces"), ("k", "")]).into(),
            publish_time: 5,
        },
    ];
    h.sink().publish(sent.clone()).await.expect("publish");
    let got = h.read_all(TOPIC).await;
    assert_eq!(got, sent);
    assert_eq!(got[0].attributes[attr::SUB_FOLDER], "alerts/fire");
    assert_eq!(got[0].attributes[attr::DEVICE_NUM_ID], "2800000000007");
    assert!(!got[2].attributes.contains_key(attr::SUB_FOLDER));
}

async fn order_per_topic_with_interleaved_topics<H: Harness>(h: &H) {
    let mut batch = Vec::new();
    for i in 0..20 {
        let topic = if i % 3 == 0 { ALERTS } else { TOPIC };
        batch.push(event(topic, &format!("{i}"), i));
    }
    h.sink().publish(batch).await.expect("publish");
    let want =
        |f: fn(&i64) -> bool| -> Vec<String> { (0..20).filter(f).map(|i| i.to_string()).collect() };
    assert_eq!(labels(&h.read_all(ALERTS).await), want(|i| i % 3 == 0));
    assert_eq!(labels(&h.read_all(TOPIC).await), want(|i| i % 3 != 0));
}

async fn concurrent_publishers_all_stored_exactly_once<H: Harness>(h: &H) {
    const TASKS: usize = 32;
    const EACH: usize = 20;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let sink = h.sink();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while i < EACH {
                // Batches of 1..=3, so batching and single publishes interleave.
                let n = (1 + (t + i) % 3).min(EACH - i);
                let batch = (i..i + n)
                    .map(|j| event(TOPIC, &format!("{t}/{j}"), 0))
                    .collect();
                sink.publish(batch).await.expect("concurrent publish");
                i += n;
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher task");
    }
    let got = labels(&h.read_all(TOPIC).await);
    assert_eq!(got.len(), TASKS * EACH, "every message stored once");
    // Each publisher's messages appear once and in the order it published them.
    let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for label in &got {
        let (t, j) = label.split_once('/').expect("label t/j");
        let (t, j): (usize, usize) = (t.parse().expect("t"), j.parse().expect("j"));
        seen.entry(t).or_default().push(j);
    }
    for t in 0..TASKS {
        assert_eq!(
            seen.get(&t),
            Some(&(0..EACH).collect::<Vec<_>>()),
            "publisher {t}"
        );
    }
}

async fn read_back_by_offset<H: Harness>(h: &H) {
    let sink = h.sink();
    let limits = ReadLimits::new(100);
    assert!(sink.topics().await.expect("topics").is_empty());
    assert_eq!(sink.offsets(TOPIC).await.expect("offsets"), None);
    assert!(sink.read(TOPIC, 0, limits).await.expect("read").is_empty());
    assert!(
        !sink
            .wait(TOPIC, 0, Duration::from_millis(200))
            .await
            .expect("wait"),
        "nothing arrives"
    );
    // Interleaved, so JetStream's offsets have gaps.
    let batch = (0..6)
        .map(|i| event(if i % 2 == 0 { TOPIC } else { ALERTS }, &format!("{i}"), i))
        .collect();
    sink.publish(batch).await.expect("publish");

    let topics = sink.topics().await.expect("topics");
    let names: Vec<&str> = topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, [ALERTS, TOPIC], "sorted");
    let all = sink.read(TOPIC, 0, limits).await.expect("read");
    assert_eq!(all.len(), 3);
    let offsets = sink.offsets(TOPIC).await.expect("offsets").expect("some");
    assert_eq!(offsets, topics[1].offsets);
    assert_eq!(offsets.earliest, all[0].offset);
    assert_eq!(offsets.next, all[2].offset + 1);

    // From the middle (an offset of the topic, or one between two of them).
    for from in [all[1].offset, all[0].offset + 1] {
        let rest = sink.read(TOPIC, from, limits).await.expect("read");
        assert_eq!(rest, all[1..], "from {from}");
    }
    let one = sink.read(TOPIC, 0, ReadLimits::new(1)).await.expect("read");
    assert_eq!(one, all[..1]);
    assert!(
        sink.read(TOPIC, offsets.next, limits)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        sink.read(TOPIC, u64::MAX, limits)
            .await
            .expect("read")
            .is_empty()
    );

    // Waiting: at once when a message is there, else until one arrives.
    let wait = Duration::from_secs(10);
    assert!(sink.wait(TOPIC, all[2].offset, wait).await.expect("wait"));
    let waiter = {
        let sink = h.sink();
        tokio::spawn(async move { sink.wait(TOPIC, offsets.next, wait).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "nothing new yet");
    sink.publish(vec![event(TOPIC, "new", 9)])
        .await
        .expect("publish");
    let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(
        matches!(woke, Ok(Ok(Ok(true)))),
        "woken by the publish: {woke:?}"
    );
    let new = sink.read(TOPIC, offsets.next, limits).await.expect("read");
    assert_eq!(
        labels(&new.into_iter().map(|r| r.message).collect::<Vec<_>>()),
        ["new"]
    );

    assert_eq!(
        h.readers_left().await,
        0,
        "every read cleans up after itself"
    );
}

// ---- harnesses ----

struct LogHarness {
    log: Arc<EmbeddedLog>,
    _dir: tempfile::TempDir,
}

impl LogHarness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EmbeddedLog::open(LogConfig::new(dir.path()))
            .await
            .expect("open");
        Self {
            log: Arc::new(log),
            _dir: dir,
        }
    }
}

impl Harness for LogHarness {
    type S = EmbeddedLog;
    const GAPLESS: bool = true;

    fn sink(&self) -> Arc<EmbeddedLog> {
        Arc::clone(&self.log)
    }

    async fn readers_left(&self) -> usize {
        0
    }
}

struct NatsHarness {
    sink: Arc<NatsSink>,
}

impl NatsHarness {
    /// A sink on its own stream and subject prefix, so tests cannot collide.
    async fn new() -> Option<Self> {
        let url = common::nats_url()?;
        let id = common::unique();
        let client = async_nats::connect(url.as_str())
            .await
            .expect("connect to NATS");
        let config = NatsConfig {
            url,
            stream: format!("TETHER_TEST_{id}"),
            subject_prefix: format!("tethertest.{id}"),
        };
        // Pre-create with a max age so a failed test's stream cleans itself up;
        // the sink then finds and uses it.
        let js = async_nats::jetstream::new(client.clone());
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .expect("create test stream");
        let sink = NatsSink::with_client(client, config).await.expect("sink");
        Some(Self {
            sink: Arc::new(sink),
        })
    }

    async fn cleanup(self) {
        let js = self.sink.jetstream();
        let _ = js.delete_stream(&self.sink.config().stream).await;
    }
}

impl Harness for NatsHarness {
    type S = NatsSink;
    const GAPLESS: bool = false;

    fn sink(&self) -> Arc<NatsSink> {
        Arc::clone(&self.sink)
    }

    /// The stream's consumers, once the deletes sent after each read have landed.
    async fn readers_left(&self) -> usize {
        use futures_util::StreamExt as _;
        let stream = self
            .sink
            .jetstream()
            .get_stream(&self.sink.config().stream)
            .await
            .expect("stream");
        let mut left = 0;
        for _ in 0..50 {
            left = stream.consumer_names().count().await;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        left
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded_log {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = super::LogHarness::new().await;
                    super::$case(&h).await;
                }
            )*
        }
        mod nats_jetstream {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(h) = super::NatsHarness::new().await else { return };
                    super::$case(&h).await;
                    h.cleanup().await;
                }
            )*
        }
    };
}

conformance!(
    publish_batches_and_read_back,
    attributes_payload_and_time_preserved,
    order_per_topic_with_interleaved_topics,
    concurrent_publishers_all_stored_exactly_once,
    read_back_by_offset,
);
