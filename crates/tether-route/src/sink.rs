//! The one trait every telemetry destination implements, and the embedded
//! log's implementation of it (here, because the log crate does not know sinks).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tether_log::{Appending, EmbeddedLog, LogError, Message};
use tokio::sync::oneshot;

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

    /// Hands a batch over without waiting, when the sink can take it without a task
    /// of its own (the embedded log: a queue to its writer thread). The [`Receipt`]
    /// resolves as [`publish`](Self::publish) would; the caller enforces its own
    /// timeout. `Err` gives the batch back when the sink cannot take it this way now
    /// (NATS, a full queue): call [`publish`](Self::publish).
    ///
    /// # Errors
    /// The batch, untouched.
    fn submit(&self, batch: Vec<Message>) -> Result<Receipt, Vec<Message>> {
        Err(batch)
    }

    /// A short name for logs and metrics, e.g. `embedded-log`.
    fn name(&self) -> &str;
}

/// Told when a submitted batch settles: a wrapping sink's metrics.
pub trait SettleObserver: Send + Sync + std::fmt::Debug {
    /// `messages` were made durable (`ok`) or not, `started` being when they were
    /// submitted.
    fn settled(&self, messages: usize, started: tokio::time::Instant, ok: bool);
}

/// A batch given to [`Sink::submit`], on its way to being durable: resolves to `Ok`
/// once it is. Dropping it does not withdraw the batch (nor tell the observer).
#[derive(Debug)]
pub struct Receipt {
    outcome: Outcome,
    messages: usize,
    observer: Option<(Arc<dyn SettleObserver>, tokio::time::Instant)>,
}

#[derive(Debug)]
enum Outcome {
    Log(Appending),
    Told(oneshot::Receiver<Result<(), SinkError>>),
}

impl Receipt {
    /// A receipt for `messages` that a sink of its own making settles through the
    /// sender (a sink whose work is done by a thread or a task it already runs).
    /// Dropping the sender unanswered settles it with [`SinkError::Dropped`].
    pub fn channel(messages: usize) -> (oneshot::Sender<Result<(), SinkError>>, Self) {
        let (tx, rx) = oneshot::channel();
        let receipt = Self {
            outcome: Outcome::Told(rx),
            messages,
            observer: None,
        };
        (tx, receipt)
    }

    /// Tells `observer` how the batch settles (once, when this resolves).
    #[must_use]
    pub fn observed(
        mut self,
        observer: Arc<dyn SettleObserver>,
        started: tokio::time::Instant,
    ) -> Self {
        self.observer = Some((observer, started));
        self
    }
}

impl Future for Receipt {
    type Output = Result<(), SinkError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = match &mut self.outcome {
            Outcome::Log(appending) => Pin::new(appending)
                .poll(cx)
                .map(|r| r.map(|_| ()).map_err(SinkError::from)),
            Outcome::Told(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(SinkError::Dropped))),
        };
        let Poll::Ready(result) = polled else {
            return Poll::Pending;
        };
        if let Some((observer, started)) = self.observer.take() {
            observer.settled(self.messages, started, result.is_ok());
        }
        Poll::Ready(result)
    }
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
    /// The sink dropped a submitted batch without saying how it went.
    #[error("the sink dropped the batch without an answer")]
    Dropped,
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

    fn submit(&self, batch: Vec<Message>) -> Result<Receipt, Vec<Message>> {
        let messages = batch.len();
        let appending = EmbeddedLog::submit(self, batch)?;
        Ok(Receipt {
            outcome: Outcome::Log(appending),
            messages,
            observer: None,
        })
    }

    fn name(&self) -> &str {
        "embedded-log"
    }
}
