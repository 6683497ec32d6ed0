//! One conformance suite for the `Sink` trait, run against every implementation:
//! the embedded log and NATS JetStream (the latter needs TETHER_TEST_NATS_URL).
//!
//! Each case is generic over a `Harness`: a fresh sink plus a way to read back
//! everything stored for a topic, in order.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{ALERTS, TOPIC, attrs, event, labels};
use futures_util::StreamExt;
use tether_log::message::attr;
use tether_log::{EmbeddedLog, LogConfig, Message};
use tether_route::{NatsConfig, NatsSink, Sink};

trait Harness {
    type S: Sink + 'static;
    fn sink(&self) -> Arc<Self::S>;
    /// Everything stored for `topic`, oldest first.
    async fn read_all(&self, topic: &str) -> Vec<Message>;
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
            attributes: attrs(&[("custom", "value with spaces"), ("k", "")]),
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

    fn sink(&self) -> Arc<EmbeddedLog> {
        Arc::clone(&self.log)
    }

    async fn read_all(&self, topic: &str) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::new();
        loop {
            let records = self
                .log
                .read(topic, out.len() as u64, 100)
                .await
                .expect("read");
            if records.is_empty() {
                return out;
            }
            for r in records {
                assert_eq!(r.offset, out.len() as u64, "offsets have no gaps");
                out.push(r.message);
            }
        }
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

    fn sink(&self) -> Arc<NatsSink> {
        Arc::clone(&self.sink)
    }

    async fn read_all(&self, topic: &str) -> Vec<Message> {
        use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
        let js = self.sink.jetstream();
        let subject = self.sink.subject_for(topic).expect("subject");
        let stream = js
            .get_stream(&self.sink.config().stream)
            .await
            .expect("stream");
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: subject,
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("pull consumer");
        let pending = consumer.cached_info().num_pending as usize;
        let mut out = Vec::new();
        while out.len() < pending {
            let mut batch = consumer
                .batch()
                .max_messages(pending - out.len())
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .expect("fetch");
            let before = out.len();
            while let Some(m) = batch.next().await {
                let m = m.expect("message");
                let prefix = &self.sink.config().subject_prefix;
                out.push(tether_route::nats::message_from_nats(prefix, &m).expect("decode"));
            }
            assert!(out.len() > before, "JetStream returned nothing within 5 s");
        }
        out
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
);
