//! The one trait every telemetry destination implements, and the embedded
//! log's implementation of it (here, because the log crate does not know sinks).

use async_trait::async_trait;
use tether_log::{EmbeddedLog, LogError, Message};

use crate::nats::NatsError;

/// A destination for routed messages: the embedded log, NATS JetStream, later
/// a webhook in Pub/Sub push format.
///
/// Object-safe, so the server holds an `Arc<dyn Sink>` chosen at start-up.
#[async_trait]
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// Publishes a batch, each message to its own `topic`.
    ///
    /// `Ok` means **durably accepted**: the gateway sends the QoS 1 PUBACK (or
    /// HTTP 200) only after this returns `Ok`. On `Err` some messages of the
    /// batch may still have been stored; the device resends, so delivery is
    /// at-least-once, as with IoT Core.
    async fn publish(&self, batch: Vec<Message>) -> Result<(), SinkError>;

    /// Publishes a batch like [`publish`](Self::publish) and returns each message's
    /// offset in its topic, in batch order (what a reader reads it back at, and
    /// the Pub/Sub `messageId`). A sink that cannot tell returns an empty list.
    async fn append(&self, batch: Vec<Message>) -> Result<Vec<u64>, SinkError> {
        self.publish(batch).await.map(|()| Vec::new())
    }

    /// A short name for logs and metrics, e.g. `embedded-log`.
    fn name(&self) -> &str;
}

/// Why a sink did not accept a batch. The gateway treats every variant the
/// same way (no PUBACK; the device resends), but the message says what broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The embedded log failed.
    #[error("embedded log: {0}")]
    Log(#[from] LogError),
    /// NATS JetStream failed.
    #[error("NATS JetStream: {0}")]
    Nats(#[from] NatsError),
}

#[async_trait]
impl Sink for EmbeddedLog {
    async fn publish(&self, batch: Vec<Message>) -> Result<(), SinkError> {
        EmbeddedLog::append(self, batch).await?;
        Ok(())
    }

    async fn append(&self, batch: Vec<Message>) -> Result<Vec<u64>, SinkError> {
        Ok(EmbeddedLog::append(self, batch).await?)
    }

    fn name(&self) -> &str {
        "embedded-log"
    }
}
