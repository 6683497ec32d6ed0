//! Consumers that take the simulated devices' telemetry back out, measuring
//! device send → delivery latency from the send time in each payload's first 8
//! bytes (same host, same clock):
//!
//! * `--pubsub ADDR`: a backend on Tether's Pub/Sub API, as IoT Core backends were:
//!   a fresh subscription on the registry's topic, `--pubsub-streams` streaming
//!   pulls, every message acked on its stream.
//! * `--jetstream-consumer URL` (with `tether serve --nats`): the reference, the same
//!   messages read straight from the JetStream stream by an ordered consumer.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use futures_util::StreamExt as _;
use tether_pubsub::grpc::SubscriberClient;
use tether_pubsub::grpc::types as pb;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::stats::Histogram;
use crate::clock::unix_micros;

/// What one consumer saw.
#[derive(Debug, Default, Clone)]
pub struct Consumed {
    /// Messages received (each message once).
    pub received: u64,
    /// Deliveries of a message already received.
    pub duplicates: u64,
    /// Send → delivery.
    pub latency: Histogram,
    /// From the first delivery to the last.
    pub span: Duration,
}

impl Consumed {
    /// Deliveries a second between the first and the last.
    pub fn per_sec(&self) -> f64 {
        let secs = self.span.as_secs_f64();
        if secs > 0.0 {
            self.received as f64 / secs
        } else {
            0.0
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    seen: HashSet<String>,
    consumed: Consumed,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Tally {
    fn record(&mut self, id: String, data: &[u8]) {
        let now = Instant::now();
        if !self.seen.insert(id) {
            self.consumed.duplicates += 1;
            return;
        }
        self.consumed.received += 1;
        self.first.get_or_insert(now);
        self.last = Some(now);
        if let Some(sent) = data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            let age = unix_micros().saturating_sub(u64::from_be_bytes(sent));
            self.consumed.latency.record(Duration::from_micros(age));
        }
    }
}

/// A running consumer.
#[derive(Debug)]
pub struct Consumer {
    tally: Arc<Mutex<Tally>>,
    received: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    cleanup: Option<(SubscriberClient<Channel>, String)>,
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

impl Consumer {
    /// Waits until `expected` messages came, or nothing came for `quiet`; then
    /// stops and reports.
    pub async fn finish(mut self, expected: u64, quiet: Duration) -> Consumed {
        let mut last = (self.received.load(Ordering::Relaxed), Instant::now());
        while last.0 < expected {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.received.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > quiet {
                break;
            }
        }
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        if let Some((mut client, subscription)) = self.cleanup.take() {
            let _ = client
                .delete_subscription(pb::DeleteSubscriptionRequest { subscription })
                .await;
        }
        let t = lock(&self.tally);
        let mut out = t.consumed.clone();
        if let (Some(a), Some(b)) = (t.first, t.last) {
            out.span = b - a;
        }
        out
    }
}

/// Subscribes to `topic` on Tether's Pub/Sub API at `addr` with `streams` streaming pulls.
pub async fn pubsub(
    addr: &str,
    project: &str,
    topic: &str,
    streams: usize,
) -> anyhow::Result<Consumer> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| anyhow!("--pubsub {addr}: {e}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach the Pub/Sub API at {addr}"))?;
    let mut client = SubscriberClient::new(channel);
    let subscription = format!(
        "projects/{project}/subscriptions/simulate-{}-{}",
        std::process::id(),
        unix_micros()
    );
    client
        .create_subscription(pb::Subscription {
            name: subscription.clone(),
            topic: topic.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow!("cannot subscribe to {topic}: {}", s.message()))?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let received = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for _ in 0..streams.max(1) {
        tasks.spawn(pull_stream(
            client.clone(),
            subscription.clone(),
            Arc::clone(&tally),
            Arc::clone(&received),
            stopped.clone(),
        ));
    }
    Ok(Consumer {
        tally,
        received,
        stop,
        tasks,
        cleanup: Some((client, subscription)),
    })
}

async fn pull_stream(
    mut client: SubscriberClient<Channel>,
    subscription: String,
    tally: Arc<Mutex<Tally>>,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, rx) = mpsc::channel(64);
    let first = pb::StreamingPullRequest {
        subscription,
        stream_ack_deadline_seconds: 60,
        max_outstanding_messages: 10_000,
        ..Default::default()
    };
    if tx.send(first).await.is_err() {
        return;
    }
    let Ok(response) = client
        .streaming_pull(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    else {
        return;
    };
    let mut inbound = response.into_inner();
    loop {
        let next = tokio::select! {
            m = inbound.message() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(Some(batch)) = next else { return };
        let mut ack_ids = Vec::with_capacity(batch.received_messages.len());
        {
            let mut t = lock(&tally);
            for r in batch.received_messages {
                if let Some(m) = r.message {
                    t.record(m.message_id, &m.data);
                }
                ack_ids.push(r.ack_id);
            }
            received.store(t.consumed.received, Ordering::Relaxed);
        }
        let ack = pb::StreamingPullRequest {
            ack_ids,
            ..Default::default()
        };
        if tx.send(ack).await.is_err() {
            return;
        }
    }
}

/// Reads `topic`'s new messages straight from Tether's JetStream stream at `url`.
pub async fn jetstream(url: &str, topic: &str) -> anyhow::Result<Consumer> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    let config = tether_route::NatsConfig::new(url.to_owned());
    let subject = tether_route::nats::subject_for(&config.subject_prefix, topic)
        .map_err(|e| anyhow!("{topic}: {e}"))?;
    let client = async_nats::connect(url)
        .await
        .with_context(|| format!("cannot reach NATS at {url}"))?;
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(&config.stream)
        .await
        .with_context(|| format!("no JetStream stream {} at {url}", config.stream))?;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::New,
            filter_subject: subject,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .context("cannot create a JetStream consumer")?;
    let mut messages = consumer
        .messages()
        .await
        .context("cannot read from the JetStream consumer")?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let received = Arc::new(AtomicU64::new(0));
    let (stop, mut stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let (t, r) = (Arc::clone(&tally), Arc::clone(&received));
    tasks.spawn(async move {
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = stopped.wait_for(|s| *s) => return,
            };
            let Some(Ok(m)) = next else { return };
            let id = m
                .info()
                .map(|i| i.stream_sequence.to_string())
                .unwrap_or_default();
            let mut t = lock(&t);
            t.record(id, &m.payload);
            r.store(t.consumed.received, Ordering::Relaxed);
        }
    });
    Ok(Consumer {
        tally,
        received,
        stop,
        tasks,
        cleanup: None,
    })
}
