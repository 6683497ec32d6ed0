//! The telemetry sink `tether serve` runs with: the embedded durable log (the default)
//! or NATS JetStream, wrapped so every append is timed and counted for `/metrics`; the
//! reader that reads it back for `/v1/telemetry/*`; and the embedded log's hourly
//! retention (a backstop: the log enforces its limits itself as it grows, and
//! publishes `tether_log_bytes`, `tether_log_bytes_limit` and
//! `tether_log_evicted_*_total`).

use std::sync::Arc;
use std::time::Duration;

use tether_log::{EmbeddedLog, LogConfig};
use tether_route::{NatsConfig, NatsSink, SettleObserver, Sink, TelemetryReader};
use tokio::task::JoinHandle;

use super::ServeError;
use super::settings::Settings;
use crate::api::histogram::{Histogram, histogram};
use crate::api::telemetry::LATENCY_BUCKETS;
use crate::bridge::Clock;

/// How often the age limit is checked against the clock, for a log that stopped growing.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Where telemetry and state notifications go.
#[derive(Debug, Clone)]
pub enum TelemetrySink {
    /// The embedded durable log in the data directory (the default).
    Embedded(Arc<EmbeddedLog>),
    /// NATS JetStream (`--nats`).
    Nats(Arc<NatsSink>),
}

impl TelemetrySink {
    /// The sink as the bridges use it: timed and counted for `/metrics`.
    pub fn measured(&self) -> Arc<dyn Sink> {
        let inner = match self {
            TelemetrySink::Embedded(log) => Arc::clone(log) as Arc<dyn Sink>,
            TelemetrySink::Nats(nats) => Arc::clone(nats) as Arc<dyn Sink>,
        };
        let name = inner.name().to_owned();
        Arc::new(MeasuredSink {
            metrics: Arc::new(SinkMetrics {
                seconds: histogram(
                    "tether_sink_publish_seconds",
                    &[("sink", &name)],
                    LATENCY_BUCKETS,
                ),
                ok: metrics::counter!("tether_sink_messages_total", "sink" => name.clone(), "outcome" => "ok"),
                failed: metrics::counter!("tether_sink_messages_total", "sink" => name.clone(), "outcome" => "error"),
            }),
            name,
            inner,
        })
    }

    /// What reads the stored telemetry back (`/v1/telemetry/*`): the sink itself.
    pub fn reader(&self) -> Arc<dyn TelemetryReader> {
        match self {
            TelemetrySink::Embedded(log) => Arc::clone(log) as Arc<dyn TelemetryReader>,
            TelemetrySink::Nats(nats) => Arc::clone(nats) as Arc<dyn TelemetryReader>,
        }
    }

    /// The embedded log (for its retention); `None` with NATS.
    pub fn embedded(&self) -> Option<Arc<EmbeddedLog>> {
        match self {
            TelemetrySink::Embedded(log) => Some(Arc::clone(log)),
            TelemetrySink::Nats(_) => None,
        }
    }

    /// Closes the embedded log if nothing else holds it (every append was already
    /// synced before it was acknowledged, so nothing is lost either way).
    pub async fn close(self) {
        if let TelemetrySink::Embedded(log) = self
            && let Ok(log) = Arc::try_unwrap(log)
        {
            log.close().await;
        }
    }
}

/// Counts and times every batch a sink accepts: `tether_sink_publish_seconds` (the
/// durability wait a QoS 1 PUBACK includes) and `tether_sink_messages_total`.
///
/// The series are looked up once, here: by name and labels per message, the lookup
/// (two label strings cloned, two keys hashed and compared) cost more than the rest
/// of the measuring. The histogram is one of fixed buckets in atomics
/// ([`crate::api::histogram`]): the recorder's own stores every sample until its
/// upkeep.
#[derive(Debug)]
struct MeasuredSink {
    inner: Arc<dyn Sink>,
    name: String,
    metrics: Arc<SinkMetrics>,
}

/// The series a [`MeasuredSink`] feeds, shared with the batches it submitted.
#[derive(Debug)]
struct SinkMetrics {
    seconds: Arc<Histogram>,
    ok: metrics::Counter,
    failed: metrics::Counter,
}

impl SettleObserver for SinkMetrics {
    fn settled(&self, messages: usize, started: tokio::time::Instant, ok: bool) {
        self.seconds.record(started.elapsed());
        let outcome = if ok { &self.ok } else { &self.failed };
        outcome.increment(messages as u64);
    }
}

#[async_trait::async_trait]
impl Sink for MeasuredSink {
    async fn publish(
        &self,
        batch: Vec<tether_log::Message>,
    ) -> Result<(), tether_route::SinkError> {
        let n = batch.len();
        let start = tokio::time::Instant::now();
        let result = self.inner.publish(batch).await;
        self.metrics.settled(n, start, result.is_ok());
        result
    }

    async fn append(
        &self,
        batch: Vec<tether_log::Message>,
    ) -> Result<Vec<u64>, tether_route::SinkError> {
        let n = batch.len();
        let start = tokio::time::Instant::now();
        let result = self.inner.append(batch).await;
        self.metrics.settled(n, start, result.is_ok());
        result
    }

    fn submit(
        &self,
        batch: Vec<tether_log::Message>,
    ) -> Result<tether_route::Receipt, Vec<tether_log::Message>> {
        let start = tokio::time::Instant::now();
        let receipt = self.inner.submit(batch)?;
        Ok(receipt.observed(Arc::clone(&self.metrics) as Arc<dyn SettleObserver>, start))
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Opens NATS when configured, else the embedded log under `DATA_DIR/telemetry`.
///
/// # Errors
/// [`ServeError::Sink`] when NATS cannot be reached or the log cannot be opened.
pub async fn open_sink(settings: &Settings) -> Result<TelemetrySink, ServeError> {
    if let Some(url) = &settings.nats {
        let sink = NatsSink::connect(NatsConfig::new(url.clone()))
            .await
            .map_err(|e| ServeError::Sink(format!("NATS at {url}: {e}")))?;
        return Ok(TelemetrySink::Nats(Arc::new(sink)));
    }
    let mut config = LogConfig::new(settings.data_dir.clone());
    config.retention = settings.retention;
    config.commit_interval = settings.telemetry_commit_interval;
    config.busy_wait = settings.telemetry_busy_wait;
    let log = EmbeddedLog::open(config)
        .await
        .map_err(|e| ServeError::Sink(e.to_string()))?;
    for t in log.truncations() {
        tracing::warn!(
            ?t,
            "telemetry log: a torn record at the end was cut off on recovery"
        );
    }
    Ok(TelemetrySink::Embedded(Arc::new(log)))
}

/// Applies the embedded log's limits every hour at the clock's time (nothing with
/// NATS): data ages out even when no new segment rolls.
pub fn spawn_retention(sink: &TelemetrySink, clock: Arc<dyn Clock>) -> JoinHandle<()> {
    let log = sink.embedded();
    tokio::spawn(async move {
        let Some(log) = log else { return };
        loop {
            match log.apply_retention(clock.unix_micros()).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(
                        segments = removed.len(),
                        "telemetry retention removed old segments"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "telemetry retention failed"),
            }
            tokio::time::sleep(RETENTION_EVERY).await;
        }
    })
}
