//! The embedded durable log: the default sink on a single machine.
//!
//! ```text
//!  publish() ─┐                         ┌─ writer thread ───────────────────────┐
//!  publish() ─┼─▶ mpsc ─ drain all ────▶│ append each topic's records,          │
//!  publish() ─┘   (one batch)           │ fsync each touched segment once,      │
//!      ▲                                │ then answer every waiter of the batch │
//!      └───── oneshot Ok(offsets) ──────┴───────────────┬───────────────────────┘
//!                                                       ▼ committed length / offset
//!  read(topic, from, max) ◀── segment files ◀── shared per-topic state ──▶ subscribe(): watch
//! ```
//!
//! * One directory per notification topic under `DATA_DIR/telemetry/`, holding
//!   segment files named by their first offset (formats in `segment.rs` and `record.rs`).
//! * **Group commit**: one writer thread owns every file. It takes all requests
//!   waiting in the channel, appends them and calls `sync_data` once per touched
//!   file, so many concurrent publishers share one fsync.
//! * Readers never see bytes that are not yet durable: the writer publishes a
//!   segment's length and the topic's next offset only after the fsync.
//! * Recovery on open: the last segment of each topic is checked record by
//!   record, and a torn tail is truncated; older segments are indexed by their
//!   headers only and checked (CRC) when read.

mod error;
mod reader;
pub(crate) mod record;
mod recovery;
mod retention;
pub(crate) mod segment;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

pub use error::LogError;
pub use record::CorruptReason;
pub use retention::RetentionPolicy;

use crate::{Message, Sink, SinkError};
use segment::SegmentMeta;

/// Settings of the embedded log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The server's data directory; the log lives in `data_dir/telemetry`.
    pub data_dir: PathBuf,
    /// A segment is rolled once the next record would take it past this size.
    pub segment_bytes: u64,
    /// Largest record body accepted (IoT Core telemetry is ≤256 KB, plus
    /// attributes). Also the limit a reader trusts in a length prefix.
    pub max_record_bytes: u32,
    /// What retention deletes when [`EmbeddedLog::apply_retention`] runs.
    pub retention: RetentionPolicy,
    /// Most messages one group commit takes before it fsyncs.
    pub max_batch_messages: usize,
}

impl LogConfig {
    /// Defaults: 64 MiB segments, 1 MiB records, keep everything, 8192
    /// messages per group commit.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            retention: RetentionPolicy::default(),
            max_batch_messages: 8192,
        }
    }

    fn validate(&self) -> Result<(), LogError> {
        if self.segment_bytes == 0 {
            return Err(LogError::Config(
                "segment_bytes must be greater than 0".into(),
            ));
        }
        if self.max_record_bytes < 64 {
            return Err(LogError::Config(
                "max_record_bytes must be at least 64".into(),
            ));
        }
        if self.max_batch_messages == 0 {
            return Err(LogError::Config(
                "max_batch_messages must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

/// One stored message and its offset in its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the topic: 0, 1, 2, ... with no gaps.
    pub offset: u64,
    /// The message as published.
    pub message: Message,
}

/// The offsets a topic holds: `earliest..next` (empty when equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicOffsets {
    /// The oldest offset still stored (retention moves it forward).
    pub earliest: u64,
    /// The offset the next message will get.
    pub next: u64,
}

/// A torn tail found and cut off at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The topic.
    pub topic: String,
    /// The segment that was truncated.
    pub segment: PathBuf,
    /// Where the first bad record started (the new file length).
    pub position: u64,
    /// How many bytes were removed.
    pub removed_bytes: u64,
    /// Why the record was bad.
    pub reason: CorruptReason,
}

/// A segment retention deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedSegment {
    /// The topic.
    pub topic: String,
    /// The deleted file.
    pub segment: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// State shared by the writer thread and readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub root: PathBuf,
    pub max_body: u64,
    topics: Mutex<HashMap<String, Arc<TopicState>>>,
    /// Segment `sync_data` calls so far (group-commit tests, metrics).
    pub syncs: AtomicU64,
}

/// One topic as readers see it: only durable data.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub name: String,
    pub dir: PathBuf,
    /// Oldest first; the last one is the active segment.
    pub segments: RwLock<Vec<SegmentMeta>>,
    /// The next offset; changes after every commit (the follow API).
    pub next: watch::Sender<u64>,
}

impl Shared {
    /// The topic's state, created (in memory only) if unknown.
    pub(crate) fn topic(&self, name: &str) -> Arc<TopicState> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let state = topics.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(TopicState {
                name: name.to_owned(),
                dir: self.root.join(segment::dir_name(name)),
                segments: RwLock::new(Vec::new()),
                next: watch::Sender::new(0),
            })
        });
        Arc::clone(state)
    }

    fn existing_topic(&self, name: &str) -> Option<Arc<TopicState>> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.get(name).cloned()
    }

    fn all_topics(&self) -> Vec<Arc<TopicState>> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.values().cloned().collect()
    }
}

impl TopicState {
    pub(crate) fn read_segments(&self) -> std::sync::RwLockReadGuard<'_, Vec<SegmentMeta>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_segments(&self) -> std::sync::RwLockWriteGuard<'_, Vec<SegmentMeta>> {
        self.segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Checks that a topic name can become a directory name.
pub(crate) fn check_topic(topic: &str) -> Result<(), LogError> {
    let reason = if topic.is_empty() {
        "the topic name is empty"
    } else if segment::dir_name(topic).len() > 255 {
        "the topic name is too long to be a directory name once escaped (255 bytes)"
    } else {
        return Ok(());
    };
    Err(LogError::InvalidTopic {
        topic: topic.to_owned(),
        reason,
    })
}

/// The embedded durable log. Cheap to share behind an `Arc`; dropping the last
/// handle lets the writer finish queued batches and stop (use
/// [`close`](Self::close) to wait for that).
#[derive(Debug)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    tx: mpsc::Sender<writer::Command>,
    stopped: oneshot::Receiver<()>,
    truncations: Vec<Truncation>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log under `config.data_dir/telemetry`,
    /// recovers every topic, and starts the writer thread.
    pub async fn open(config: LogConfig) -> Result<Self, LogError> {
        config.validate()?;
        let root = config.data_dir.join("telemetry");
        let shared = Arc::new(Shared {
            root,
            max_body: u64::from(config.max_record_bytes),
            topics: Mutex::new(HashMap::new()),
            syncs: AtomicU64::new(0),
        });
        // Bounded: publishers wait here when the disk cannot keep up.
        let (tx, rx) = mpsc::channel(4096);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tether-log-writer".into())
            .spawn(move || {
                writer::run(thread_shared, config, rx, ready_tx);
                let _ = stopped_tx.send(());
            })
            .map_err(|e| LogError::open(shared.root.clone(), e))?;
        let truncations = ready_rx.await.map_err(|_| LogError::WriterStopped)??;
        Ok(Self {
            shared,
            tx,
            stopped,
            truncations,
        })
    }

    /// Appends a batch and returns once it is durable (fsynced): the offsets
    /// assigned, in the batch's order.
    pub async fn append(&self, messages: Vec<Message>) -> Result<Vec<u64>, LogError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(writer::Command::Append { messages, reply })
            .await
            .map_err(|_| LogError::WriterStopped)?;
        rx.await.map_err(|_| LogError::WriterStopped)?
    }

    /// Up to `max` records of `topic` from `from` on. If `from` was deleted by
    /// retention, reading starts at the earliest offset kept (check the
    /// returned offsets). Empty when there is nothing at or after `from` yet.
    pub async fn read(&self, topic: &str, from: u64, max: usize) -> Result<Vec<Record>, LogError> {
        let shared = Arc::clone(&self.shared);
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || reader::read(&shared, &topic, from, max))
            .await
            .map_err(|e| LogError::ReadTask(e.to_string()))?
    }

    /// Topics that have at least one segment, sorted.
    pub fn list_topics(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .shared
            .all_topics()
            .into_iter()
            .filter(|t| !t.read_segments().is_empty())
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The offsets `topic` holds, or None if it has never been written.
    pub fn offsets(&self, topic: &str) -> Option<TopicOffsets> {
        let state = self.shared.existing_topic(topic)?;
        let earliest = state.read_segments().first()?.base;
        Some(TopicOffsets {
            earliest,
            next: *state.next.borrow(),
        })
    }

    /// Follow a topic: the receiver holds the topic's next offset and is marked
    /// changed after every commit that adds records. Works for topics not yet
    /// written. Use with [`read`](Self::read) for `tail --follow`.
    pub fn subscribe(&self, topic: &str) -> Result<watch::Receiver<u64>, LogError> {
        check_topic(topic)?;
        Ok(self.shared.topic(topic).next.subscribe())
    }

    /// Deletes whole segments that the configured retention policy no longer
    /// keeps, as of `now` (unix microseconds, from the caller's clock).
    pub async fn apply_retention(&self, now: i64) -> Result<Vec<RemovedSegment>, LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(writer::Command::Retain { now, reply })
            .await
            .map_err(|_| LogError::WriterStopped)?;
        rx.await.map_err(|_| LogError::WriterStopped)?
    }

    /// Torn tails cut off when this log was opened.
    pub fn truncations(&self) -> &[Truncation] {
        &self.truncations
    }

    /// How many segment fsyncs the writer has done (for metrics and the
    /// group-commit tests).
    pub fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// The log's directory (`data_dir/telemetry`).
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Stops accepting appends, lets the writer finish queued batches, and
    /// waits until it has released its files and the directory lock.
    pub async fn close(self) {
        let Self { tx, stopped, .. } = self;
        drop(tx);
        let _ = stopped.await;
    }
}

#[async_trait]
impl Sink for EmbeddedLog {
    async fn publish(&self, batch: Vec<Message>) -> Result<(), SinkError> {
        self.append(batch).await?;
        Ok(())
    }

    fn name(&self) -> &str {
        "embedded-log"
    }
}
