//! Reading stored telemetry back, whichever sink stored it: the
//! [`TelemetryReader`] trait, the caps every read keeps, and its one error type.
//!
//! ```text
//!  GET /v1/telemetry/*  ─┐                        ┌─ EmbeddedLog   offsets 0, 1, 2, … per topic
//!  (later: Pub/Sub pull) ┴▶ Arc<dyn TelemetryReader> ┤
//!                                                 └─ NatsSink      offsets = stream sequences
//! ```
//!
//! An **offset** is a position in one topic: every message of a topic has a larger
//! offset than the ones stored before it, and reading "from N" returns the messages
//! at offsets ≥ N. The embedded log numbers each topic 0, 1, 2, … without gaps;
//! JetStream uses its stream sequence, shared by all topics of the stream, so a
//! topic's offsets start at 1 and have gaps where other topics' messages sit. A
//! reader never needs to know which: it continues from the last offset it got + 1.

mod embedded;

use std::time::Duration;

use async_trait::async_trait;
pub use tether_log::{Record, TopicOffsets};

/// Most messages one read returns.
pub const MAX_MESSAGES: usize = 1000;
/// Most payload bytes one read returns, past its first message (which always goes,
/// and is at most 256 KiB): 1,000 large messages would otherwise make a 340 MB answer.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024 * 1024;

/// Reads telemetry back by topic and offset.
///
/// Object-safe: the API holds an `Arc<dyn TelemetryReader>` for the sink chosen at
/// start-up. An unknown topic is not an error: it holds nothing yet.
#[async_trait]
pub trait TelemetryReader: Send + Sync + std::fmt::Debug {
    /// The topics holding at least one message, sorted by name, with their offsets.
    async fn topics(&self) -> Result<Vec<TopicInfo>, ReadError>;

    /// The offsets `topic` holds, or `None` when it holds nothing.
    async fn offsets(&self, topic: &str) -> Result<Option<TopicOffsets>, ReadError>;

    /// The messages of `topic` at offsets ≥ `from`, oldest first, within `limits`.
    /// If retention removed `from`, the read starts at the earliest offset kept
    /// (check the offsets returned). Empty when there is nothing at or after `from`.
    async fn read(
        &self,
        topic: &str,
        from: u64,
        limits: ReadLimits,
    ) -> Result<Vec<Record>, ReadError>;

    /// Waits, at most `timeout`, until `topic` holds a message at an offset ≥
    /// `from`; at once if it already does. `Ok(true)` when there is one.
    ///
    /// # Errors
    /// [`ReadError::InvalidTopic`] for a name the backend can never store.
    async fn wait(&self, topic: &str, from: u64, timeout: Duration) -> Result<bool, ReadError>;
}

/// A topic and the offsets it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The notification topic, `projects/{p}/topics/{t}`.
    pub topic: String,
    /// `earliest..next`: the oldest offset kept, and one past the newest.
    pub offsets: TopicOffsets,
}

/// How much one read may return. The caps [`MAX_MESSAGES`] and
/// [`MAX_PAYLOAD_BYTES`] always hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    max_messages: usize,
    max_payload_bytes: usize,
}

impl ReadLimits {
    /// Up to `max_messages` (1 to [`MAX_MESSAGES`]) and [`MAX_PAYLOAD_BYTES`].
    pub fn new(max_messages: usize) -> Self {
        Self {
            max_messages: max_messages.clamp(1, MAX_MESSAGES),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
        }
    }

    /// The message cap.
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }
}

/// One read being filled: it takes messages until the message cap, or until the
/// next message would take its payload past the byte cap (the first message always
/// goes, so a read never comes back empty while messages exist).
#[derive(Debug)]
pub(crate) struct Batch {
    limits: ReadLimits,
    records: Vec<Record>,
    bytes: usize,
}

impl Batch {
    pub(crate) fn new(limits: ReadLimits) -> Self {
        Self {
            limits,
            records: Vec::new(),
            bytes: 0,
        }
    }

    /// How many more messages the batch can take.
    pub(crate) fn room(&self) -> usize {
        self.limits.max_messages.saturating_sub(self.records.len())
    }

    /// Offers the next record; `false` once the batch is full (the record may or
    /// may not have been taken: the offsets returned say).
    pub(crate) fn push(&mut self, record: Record) -> bool {
        let bytes = self.bytes.saturating_add(record.message.data.len());
        if !self.records.is_empty() && bytes > self.limits.max_payload_bytes {
            return false;
        }
        self.bytes = bytes;
        self.records.push(record);
        self.room() > 0
    }

    pub(crate) fn into_records(self) -> Vec<Record> {
        self.records
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The topic name can never be stored by this backend (the caller's fault).
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The embedded log failed to read (a corrupt record, an I/O error).
    #[error("embedded log: {0}")]
    Log(#[source] tether_log::LogError),
    /// NATS JetStream did not answer, or answered with an error.
    #[error("NATS JetStream: cannot {action}: {source}")]
    Nats {
        /// What was being done, e.g. `create a consumer on stream S`.
        action: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<tether_log::LogError> for ReadError {
    fn from(e: tether_log::LogError) -> Self {
        match e {
            tether_log::LogError::InvalidTopic { topic, reason } => {
                ReadError::InvalidTopic { topic, reason }
            }
            other => ReadError::Log(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_log::Message;

    fn record(offset: u64, size: usize) -> Record {
        Record {
            offset,
            message: Message {
                topic: "projects/p/topics/t".into(),
                data: vec![0; size],
                attributes: Default::default(),
                publish_time: 0,
            },
        }
    }

    #[test]
    fn limits_stay_within_the_caps() {
        assert_eq!(ReadLimits::new(0).max_messages(), 1);
        assert_eq!(ReadLimits::new(5).max_messages(), 5);
        assert_eq!(ReadLimits::new(usize::MAX).max_messages(), MAX_MESSAGES);
    }

    #[test]
    fn a_batch_stops_at_the_message_cap() {
        let mut b = Batch::new(ReadLimits::new(2));
        assert!(b.push(record(0, 1)));
        assert!(!b.push(record(1, 1)), "full after the second");
        assert_eq!(b.room(), 0);
        assert_eq!(b.into_records().len(), 2);
    }

    #[test]
    fn a_batch_stops_before_the_byte_cap_but_always_takes_one() {
        let mut b = Batch::new(ReadLimits::new(MAX_MESSAGES));
        assert!(
            b.push(record(0, MAX_PAYLOAD_BYTES + 1)),
            "the first always goes"
        );
        assert!(!b.push(record(1, 1)), "then nothing fits");
        assert_eq!(b.into_records().len(), 1);

        let mut b = Batch::new(ReadLimits::new(MAX_MESSAGES));
        assert!(b.push(record(0, MAX_PAYLOAD_BYTES - 1)));
        assert!(!b.push(record(1, 2)), "one byte over");
        assert_eq!(b.into_records().len(), 1);
    }
}
