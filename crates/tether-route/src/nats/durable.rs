//! Durable pull consumers on the telemetry stream: what a Pub/Sub subscription is
//! with `--nats` (tether-pubsub decides the semantics; this is the JetStream side).
//!
//! * A subscription is one durable consumer, filtered on its topic's subject, with
//!   explicit acks and the ack deadline as its `AckWait`. JetStream keeps the leases
//!   and the ack state, so any node connected to the same NATS serves it, and
//!   nothing of it lives in a node's data directory.
//! * The caller's description of the subscription travels in the consumer's
//!   `description` (JetStream 2.9 has no consumer metadata), so listing the
//!   consumers lists the subscriptions.
//! * An ack id is the delivery's ack subject (`$JS.ACK.{stream}.{consumer}.…`):
//!   any node can settle it, and one that names another consumer is refused before
//!   anything is sent.

use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures_util::{StreamExt as _, TryStreamExt as _};
use tether_log::Record;

use super::{NatsSink, message_from_nats};
use crate::reader::ReadError;

/// Longest consumer description JetStream keeps.
pub const MAX_DESCRIPTION: usize = 4096;
/// Unacked messages one consumer may have out, over every node and stream: the
/// bound behind the streams' own flow control.
const MAX_ACK_PENDING: i64 = 20_000;
/// Pull requests one consumer may hold waiting at once (one per open pull).
const MAX_WAITING: i64 = 4096;

/// Where a new consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With the next message published: what a new subscription receives.
    New,
    /// At this stream sequence (a seek).
    At(u64),
}

/// What a durable consumer is made of.
#[derive(Debug, Clone, Copy)]
pub struct DurableSpec<'a> {
    /// The consumer's name.
    pub name: &'a str,
    /// The caller's description of it (at most [`MAX_DESCRIPTION`] bytes).
    pub description: &'a str,
    /// The topic it reads.
    pub topic: &'a str,
    /// Its `AckWait`.
    pub ack_wait: Duration,
}

/// A durable consumer as listed: its name and the caller's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableInfo {
    /// The consumer's name.
    pub name: String,
    /// What the caller stored in its description.
    pub description: String,
    /// Its `AckWait`.
    pub ack_wait: Duration,
}

/// One message fetched from a durable consumer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The message; its offset is the stream sequence.
    pub record: Record,
    /// The subject that settles this delivery (the ack id).
    pub ack: String,
    /// How many times JetStream has delivered it, this time included.
    pub delivered: u64,
}

/// How to settle a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done with: never delivered again.
    Ack,
    /// Deliver again after this long (zero: at once). Until then an ack still
    /// applies, so this is how a lease is extended or cut short.
    Redeliver(Duration),
}

/// A handle on one durable consumer, cheap to keep: fetching needs no lookup.
#[derive(Debug, Clone)]
pub struct Durable {
    consumer: PullConsumer,
    name: String,
    prefix: String,
    stream: String,
}

impl NatsSink {
    fn durable_config(
        &self,
        spec: DurableSpec<'_>,
        start: Start,
    ) -> Result<pull::Config, ReadError> {
        let deliver_policy = match start {
            Start::New => DeliverPolicy::New,
            Start::At(0 | 1) => DeliverPolicy::All,
            Start::At(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        };
        Ok(pull::Config {
            durable_name: Some(spec.name.to_owned()),
            description: Some(spec.description.to_owned()),
            filter_subject: self.subject_for(spec.topic)?,
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_deliver: -1,
            max_ack_pending: MAX_ACK_PENDING,
            max_waiting: MAX_WAITING,
            ..Default::default()
        })
    }

    /// Creates durable consumer `name` on `topic`; `false` when one of that name
    /// exists already (it is left as it is).
    pub async fn create_durable(
        &self,
        spec: DurableSpec<'_>,
        start: Start,
    ) -> Result<bool, ReadError> {
        if self.durable_info(spec.name).await?.is_some() {
            return Ok(false);
        }
        let config = self.durable_config(spec, start)?;
        self.stream
            .create_consumer(config)
            .await
            .map_err(self.failed("create a durable consumer on stream"))?;
        Ok(true)
    }

    /// Changes a durable consumer's description and `AckWait` (JetStream lets both
    /// change in place, leases and acks kept).
    pub async fn update_durable(&self, spec: DurableSpec<'_>) -> Result<(), ReadError> {
        let name = spec.name;
        let Some(info) = self.durable_info_raw(name).await? else {
            return Err(ReadError::Nats {
                action: format!("update consumer {name} on stream {}", self.config.stream),
                source: "the consumer does not exist".into(),
            });
        };
        let mut config = self.durable_config(spec, Start::New)?;
        // What cannot change in place is kept as it was created.
        config.deliver_policy = info.config.deliver_policy;
        self.stream
            .update_consumer(config)
            .await
            .map_err(self.failed("update a durable consumer on stream"))?;
        Ok(())
    }

    /// Starts durable consumer `name` again at `start`, with the same description,
    /// topic and `AckWait`: every lease and ack is dropped (a seek).
    pub async fn restart_durable(
        &self,
        spec: DurableSpec<'_>,
        start: Start,
    ) -> Result<(), ReadError> {
        self.delete_durable(spec.name).await?;
        let config = self.durable_config(spec, start)?;
        self.stream
            .create_consumer(config)
            .await
            .map_err(self.failed("create a durable consumer on stream"))?;
        Ok(())
    }

    async fn durable_info_raw(
        &self,
        name: &str,
    ) -> Result<Option<async_nats::jetstream::consumer::Info>, ReadError> {
        match self.stream.consumer_info(name).await {
            Ok(info) => Ok(Some(info)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.failed("look up a consumer of stream")(e)),
        }
    }

    /// The durable consumer `name`, if it exists.
    pub async fn durable_info(&self, name: &str) -> Result<Option<DurableInfo>, ReadError> {
        Ok(self.durable_info_raw(name).await?.map(|i| DurableInfo {
            name: i.name,
            description: i.config.description.unwrap_or_default(),
            ack_wait: i.config.ack_wait,
        }))
    }

    /// Every durable consumer of the stream (readers' ephemeral ones are left out).
    pub async fn durables(&self) -> Result<Vec<DurableInfo>, ReadError> {
        let mut all = self.stream.consumers();
        let mut out = Vec::new();
        while let Some(info) = all
            .try_next()
            .await
            .map_err(self.failed("list the consumers of stream"))?
        {
            if info.config.durable_name.is_some() {
                out.push(DurableInfo {
                    name: info.name,
                    description: info.config.description.unwrap_or_default(),
                    ack_wait: info.config.ack_wait,
                });
            }
        }
        Ok(out)
    }

    /// Deletes durable consumer `name`; `false` when there was none.
    pub async fn delete_durable(&self, name: &str) -> Result<bool, ReadError> {
        match self.stream.delete_consumer(name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.failed("delete a consumer of stream")(e)),
        }
    }

    /// A handle on durable consumer `name` (one lookup; keep it).
    pub async fn durable(&self, name: &str) -> Result<Durable, ReadError> {
        let consumer = self
            .stream
            .get_consumer(name)
            .await
            .map_err(self.failed("look up a consumer of stream"))?;
        Ok(Durable {
            consumer,
            name: name.to_owned(),
            prefix: self.config.subject_prefix.clone(),
            stream: self.config.stream.clone(),
        })
    }

    /// Settles deliveries by their ack subjects, then waits until NATS has them
    /// (JetStream handles acks in the order they arrive, before that answer). An
    /// ack subject of another consumer than `durable` is skipped, and returned.
    pub async fn settle(
        &self,
        durable: &Durable,
        deliveries: &[(&str, Settle)],
    ) -> Result<Vec<usize>, ReadError> {
        let client = self.js.client();
        let mut refused = Vec::new();
        let mut sent = false;
        for (i, (ack, how)) in deliveries.iter().enumerate() {
            if !durable.issued(ack) {
                refused.push(i);
                continue;
            }
            let body = match how {
                Settle::Ack => AckKind::Ack,
                Settle::Redeliver(d) if d.is_zero() => AckKind::Nak(None),
                Settle::Redeliver(d) => AckKind::Nak(Some(*d)),
            };
            client
                .publish((*ack).to_owned(), body.into())
                .await
                .map_err(self.failed("settle a delivery of stream"))?;
            sent = true;
        }
        if sent {
            client
                .flush()
                .await
                .map_err(self.failed("settle deliveries of stream"))?;
        }
        Ok(refused)
    }
}

impl Durable {
    /// Whether `ack` is an ack subject of this consumer: `$JS.ACK.{stream}.{consumer}.`
    /// then five numbers (delivered, stream and consumer sequence, time, pending).
    pub fn issued(&self, ack: &str) -> bool {
        let Some(rest) = ack
            .strip_prefix("$JS.ACK.")
            .and_then(|r| r.strip_prefix(self.stream.as_str()))
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|r| r.strip_prefix(self.name()))
            .and_then(|r| r.strip_prefix('.'))
        else {
            return false;
        };
        let numbers: Vec<&str> = rest.split('.').collect();
        numbers.len() == 5
            && numbers
                .iter()
                .all(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `max` messages: those ready now, or, when none is and `wait` is not
    /// zero, the first to arrive within `wait` and what is ready with it.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Fetched>, ReadError> {
        let max = max.max(1);
        let mut out = self.fetch_ready(max).await?;
        if out.is_empty() && !wait.is_zero() {
            // The server holds this request until a message arrives or `wait` ends.
            let mut first = self
                .consumer
                .batch()
                .max_messages(1)
                .expires(wait)
                .messages()
                .await
                .map_err(self.failed("wait on a consumer of stream"))?;
            while let Some(m) = first.next().await {
                out.push(self.fetched(&m.map_err(self.failed("wait on a consumer of stream"))?)?);
            }
            if !out.is_empty() && max > 1 {
                out.extend(self.fetch_ready(max - 1).await?);
            }
        }
        Ok(out)
    }

    async fn fetch_ready(&self, max: usize) -> Result<Vec<Fetched>, ReadError> {
        let mut ready = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(self.failed("fetch from a consumer of stream"))?;
        let mut out = Vec::new();
        while let Some(m) = ready.next().await {
            out.push(self.fetched(&m.map_err(self.failed("fetch from a consumer of stream"))?)?);
        }
        Ok(out)
    }

    fn fetched(&self, m: &async_nats::jetstream::Message) -> Result<Fetched, ReadError> {
        let info = m
            .info()
            .map_err(self.failed("read the sequence from a consumer of stream"))?;
        let (offset, delivered) = (
            info.stream_sequence,
            u64::try_from(info.delivered).unwrap_or(1).max(1),
        );
        let ack = m
            .message
            .reply
            .as_ref()
            .map(|r| r.to_string())
            .ok_or_else(|| ReadError::Nats {
                action: format!("fetch from consumer {}", self.name()),
                source: "a message came without its ack subject".into(),
            })?;
        let message = message_from_nats(&self.prefix, &m.message)?;
        Ok(Fetched {
            record: Record { offset, message },
            ack,
            delivered,
        })
    }

    fn failed<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        &self,
        action: &str,
    ) -> impl FnOnce(E) -> ReadError {
        super::reader::failed_on(&self.stream, action)
    }
}

fn is_not_found<E: std::fmt::Display>(e: &E) -> bool {
    // JetStream's code 10014 ("consumer not found"); the client's error kinds differ
    // per call, its text does not.
    let text = e.to_string();
    text.contains("10014") || text.contains("consumer not found")
}
