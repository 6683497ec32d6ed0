//! The public handle, [`EmbeddedLog`]: append, read, follow, retention, close.
//! Every call is a message to the writer thread or a read of shared state.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::sync::{oneshot, watch};

use crate::state::{Shared, check_topic};
use crate::{
    Limits, LogConfig, LogError, Message, RemovedSegment, Truncation, reader, recovery, writer,
};

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

/// How much the log holds and what retention has removed since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogUsage {
    /// Bytes in all segment files (durable records and segment headers).
    pub bytes: u64,
    /// Segments deleted by any limit since open.
    pub removed_segments: u64,
    /// Messages in those segments.
    pub removed_messages: u64,
}

/// An append queued by [`EmbeddedLog::submit`]: resolves to the offsets once the
/// batch is durable. Dropping it does not withdraw the batch.
#[derive(Debug)]
pub struct Appending {
    rx: oneshot::Receiver<Result<Vec<u64>, LogError>>,
}

impl Future for Appending {
    type Output = Result<Vec<u64>, LogError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|reply| reply.map_err(|_| LogError::WriterStopped)?)
    }
}

/// The embedded durable log. Cheap to share behind an `Arc`; dropping the last
/// handle lets the writer finish queued batches and stop (use
/// [`close`](Self::close) to wait for that).
#[derive(Debug)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    tx: writer::queue::Sender,
    stopped: oneshot::Receiver<()>,
    truncations: Vec<Truncation>,
    limits: Limits,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log under `config.data_dir/telemetry`,
    /// recovers every topic, resolves the limits (deleting what is already
    /// past them), and starts the writer thread.
    pub async fn open(config: LogConfig) -> Result<Self, LogError> {
        config.validate()?;
        let root = config.data_dir.join("telemetry");
        let shared = Arc::new(Shared::new(root, u64::from(config.max_record_bytes)));
        // Bounded: publishers wait here when the disk cannot keep up.
        let (tx, rx) = writer::queue::channel(4096);
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stopped_tx, stopped) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tether-log-writer".into())
            .spawn(move || {
                writer::priority::yield_to_appenders();
                match recovery::recover(&thread_shared, &config) {
                    Ok(recovered) => writer::run(thread_shared, config, recovered, rx, ready_tx),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
                let _ = stopped_tx.send(());
            })
            .map_err(|e| LogError::open(shared.root.clone(), e))?;
        let opened = ready_rx.await.map_err(|_| LogError::WriterStopped)??;
        Ok(Self {
            shared,
            tx,
            stopped,
            truncations: opened.truncations,
            limits: opened.limits,
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

    /// Queues a batch for the writer without waiting, when its queue has room: what
    /// comes back resolves like [`append`](Self::append). A caller with many appends
    /// in flight (a device connection) holds these instead of a task per append.
    ///
    /// # Errors
    /// The batch back when the queue is full or the writer has stopped:
    /// [`append`](Self::append) waits for room, or says why.
    pub fn submit(&self, messages: Vec<Message>) -> Result<Appending, Vec<Message>> {
        let (reply, rx) = oneshot::channel();
        if messages.is_empty() {
            let _ = reply.send(Ok(Vec::new()));
            return Ok(Appending { rx });
        }
        if !self.tx.try_reserve() {
            return Err(messages);
        }
        self.tx
            .send_reserved(writer::Command::Append { messages, reply });
        Ok(Appending { rx })
    }

    /// Up to `max` records of `topic` from `from` on. If `from` was deleted by
    /// retention, reading starts at the earliest offset kept (check the
    /// returned offsets). Empty when there is nothing at or after `from` yet.
    pub async fn read(&self, topic: &str, from: u64, max: usize) -> Result<Vec<Record>, LogError> {
        // A reader following the head reads what was just written from the page
        // cache, here: a hand-off to the blocking pool and back was most of such a
        // read's latency.
        if let Some(records) = reader::read_cached(&self.shared, topic, from, max) {
            metrics::counter!("tether_log_reads_total", "path" => "cached").increment(1);
            // The read ran without an await: give the thread back to the tasks
            // waiting for it (a follower reading chunk after chunk would hold it).
            tokio::task::yield_now().await;
            return Ok(records);
        }
        metrics::counter!("tether_log_reads_total", "path" => "blocking").increment(1);
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

    /// Deletes whole segments that the limits no longer keep, as of `now`
    /// (unix microseconds, from the caller's clock). The writer enforces the
    /// limits as the log grows; this is the backstop for a log that has
    /// stopped growing while its data ages.
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

    /// The limits in force, with the automatic total cap resolved at open.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The log's size and what retention has removed since open.
    pub fn usage(&self) -> LogUsage {
        LogUsage {
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            removed_segments: self.shared.removed_segments.load(Ordering::Relaxed),
            removed_messages: self.shared.removed_messages.load(Ordering::Relaxed),
        }
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

#[cfg(test)]
mod cached_reads {
    use super::*;
    use crate::{DeviceCoordinates, LogConfig, reader};

    const TOPIC: &str = "projects/p/topics/t";

    fn message(i: usize) -> Message {
        let device = DeviceCoordinates {
            project_id: "p".into(),
            location: "l".into(),
            registry_id: "r".into(),
            device_id: "d".into(),
            device_num_id: 1,
        };
        Message::event(TOPIC, &device, "", format!("m{i}").into_bytes(), i as i64)
    }

    fn labels(records: &[Record]) -> Vec<(u64, Vec<u8>)> {
        records
            .iter()
            .map(|r| (r.offset, r.message.data.clone()))
            .collect()
    }

    /// A read of `path` at `pos` that must not wait for the disk: Ok(true) when the
    /// page cache held the byte, Ok(false) when it did not, Err when the file system
    /// does not support such reads (tmpfs).
    fn cached_byte(path: &std::path::Path, pos: u64) -> Result<bool, rustix::io::Errno> {
        let file = std::fs::File::open(path).expect("open");
        let mut byte = [0u8; 1];
        match rustix::io::preadv2(
            &file,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            pos,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::AGAIN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    #[tokio::test]
    async fn a_reader_at_the_head_reads_the_page_cache_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            segment_bytes: 8 * 1024,
            ..LogConfig::new(dir.path())
        };
        let log = EmbeddedLog::open(config).await.expect("open");
        // Several segments; the last one is being appended to.
        for chunk in 0..40 {
            let batch = (chunk * 100..(chunk + 1) * 100).map(message).collect();
            log.append(batch).await.expect("append");
        }
        let shared = &log.shared;
        let last = {
            let state = shared.existing_topic(TOPIC).expect("topic");
            let segments = state.read_segments();
            assert!(segments.len() > 2, "{} segments", segments.len());
            let last = segments.last().expect("last");
            (last.base, last.next, last.path.clone())
        };
        let (base, next, path) = last;
        if cached_byte(&path, 0).is_err() {
            // tmpfs: such reads are refused, and the log stops trying them.
            assert!(reader::read_cached(shared, TOPIC, next - 10, 1000).is_none());
            assert!(
                shared
                    .no_cached_reads
                    .load(std::sync::atomic::Ordering::Relaxed)
            );
            let read = log.read(TOPIC, next - 10, 1000).await.expect("read");
            assert_eq!(read.len(), 10);
            log.close().await;
            return;
        }

        // At the head: the same records as the ordinary read, on this thread.
        let from = next - 10;
        let cached = reader::read_cached(shared, TOPIC, from, 1000).expect("cached");
        let ordinary = reader::read(shared, TOPIC, from, 1000).expect("read");
        assert_eq!(labels(&cached), labels(&ordinary));
        assert_eq!(cached.len(), 10);
        assert!(
            reader::read_cached(shared, TOPIC, next, 10).is_some_and(|r| r.is_empty()),
            "nothing new yet"
        );
        // Older segments go to the blocking pool.
        assert!(reader::read_cached(shared, TOPIC, base - 1, 10).is_none());

        // Pages the cache dropped are not waited for here.
        let file = std::fs::File::open(&path).expect("open");
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
        if cached_byte(&path, 0) == Ok(false) {
            assert!(reader::read_cached(shared, TOPIC, from, 1000).is_none());
        }
        // The public read still answers, from the disk.
        let again = log.read(TOPIC, from, 1000).await.expect("read");
        assert_eq!(labels(&again), labels(&ordinary));
        log.close().await;
    }

    #[tokio::test]
    async fn a_reader_far_behind_the_head_is_not_read_on_the_async_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EmbeddedLog::open(LogConfig::new(dir.path()))
            .await
            .expect("open");
        // One segment holding more than a cached read may cover.
        let big = |i: usize| {
            let mut m = message(i);
            m.data = vec![b'x'; 4096];
            m
        };
        let n = (reader::CACHED_READ_MAX_BYTES / 4096 + 16) as usize;
        log.append((0..n).map(big).collect()).await.expect("append");
        let shared = &log.shared;
        let path = {
            let state = shared.existing_topic(TOPIC).expect("topic");
            let segments = state.read_segments();
            segments.last().expect("segment").path.clone()
        };
        assert!(reader::read_cached(shared, TOPIC, 0, 10).is_none());
        if cached_byte(&path, 0).is_ok() {
            assert!(reader::read_cached(shared, TOPIC, (n - 2) as u64, 10).is_some());
        }
        log.close().await;
    }
}
