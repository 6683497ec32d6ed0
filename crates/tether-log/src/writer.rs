//! The single writer thread: group commit, segment rolling, retention.
//!
//! A plain OS thread, not a tokio task: `write` and `fsync` block, and one
//! thread owning every file needs no locking around appends.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use crate::record::{self, EncodeError};
use crate::retention::{self, SegmentSummary};
use crate::segment::{self, INDEX_INTERVAL, SegmentMeta};
use crate::state::{Shared, TopicState, check_topic};
use crate::{LogConfig, LogError, Message, RemovedSegment, Truncation, recovery};

/// What the handle asks of the writer.
#[derive(Debug)]
pub(crate) enum Command {
    Append {
        messages: Vec<Message>,
        reply: oneshot::Sender<Result<Vec<u64>, LogError>>,
    },
    Retain {
        now: i64,
        reply: oneshot::Sender<Result<Vec<RemovedSegment>, LogError>>,
    },
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub file: File,
    pub path: PathBuf,
    /// Bytes fsynced (and visible to readers).
    pub durable_len: u64,
    /// Position of the last index entry that is durable.
    pub durable_last_indexed: Option<u64>,
}

/// The writer's view of one topic: the visible state plus what is staged.
#[derive(Debug)]
pub(crate) struct TopicWriter {
    pub state: Arc<TopicState>,
    /// None until the first append creates a segment.
    pub active: Option<Active>,
    /// The next offset that is durable.
    pub durable_next: u64,
    /// The next offset to assign (durable_next + staged records).
    next_offset: u64,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    pending_index: Vec<(u64, u64)>,
    pending_max_time: Option<i64>,
    last_indexed: Option<u64>,
    /// Set when a failed write could not be rolled back.
    unavailable: Option<String>,
}

impl TopicWriter {
    pub(crate) fn new(state: Arc<TopicState>, active: Option<Active>, next: u64) -> Self {
        let last_indexed = active.as_ref().and_then(|a| a.durable_last_indexed);
        Self {
            state,
            active,
            durable_next: next,
            next_offset: next,
            pending: Vec::new(),
            pending_index: Vec::new(),
            pending_max_time: None,
            last_indexed,
            unavailable: None,
        }
    }

    fn written_len(&self) -> u64 {
        self.active.as_ref().map_or(0, |a| a.durable_len) + self.pending.len() as u64
    }

    /// Encodes one record into the pending buffer, rolling first if it would
    /// overflow the active segment. Returns its offset.
    fn stage(
        &mut self,
        message: &Message,
        frame_len: u64,
        config: &LogConfig,
        shared: &Shared,
    ) -> Result<u64, LogError> {
        if let Some(reason) = &self.unavailable {
            return Err(LogError::TopicUnavailable {
                topic: self.state.name.clone(),
                reason: reason.clone(),
            });
        }
        let written = self.written_len();
        if self.active.is_none() {
            self.create_segment(shared)?;
        } else if written > 0 && written + frame_len > config.segment_bytes {
            // Seal the full segment: what is staged for it becomes durable first.
            self.commit(shared)?;
            self.create_segment(shared)?;
        }
        let pos = self.written_len();
        if self.last_indexed.is_none_or(|p| pos >= p + INDEX_INTERVAL) {
            self.pending_index.push((self.next_offset, pos));
            self.last_indexed = Some(pos);
        }
        record::encode(self.next_offset, message, &mut self.pending);
        self.pending_max_time = Some(
            self.pending_max_time
                .map_or(message.publish_time, |t| t.max(message.publish_time)),
        );
        let offset = self.next_offset;
        self.next_offset += 1;
        Ok(offset)
    }

    /// Creates the segment starting at the next offset and makes it active.
    fn create_segment(&mut self, shared: &Shared) -> Result<(), LogError> {
        let base = self.next_offset;
        let dir = &self.state.dir;
        let path = dir.join(segment::file_name(base));
        let fail = |action, e| LogError::append(&self.state.name, path.clone(), action, e);
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
            sync_dir(&shared.root).map_err(|e| fail("sync the directory entry of", e))?;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| fail("create", e))?;
        // The new file's directory entry must be durable before records in it are acked.
        sync_dir(dir).map_err(|e| fail("sync the directory entry of", e))?;
        self.state
            .write_segments()
            .push(SegmentMeta::empty(base, path.clone()));
        self.active = Some(Active {
            file,
            path,
            durable_len: 0,
            durable_last_indexed: None,
        });
        self.last_indexed = None;
        Ok(())
    }

    /// Writes and fsyncs what is staged, then publishes it to readers. On
    /// failure the file is cut back to its durable length, so a failed batch
    /// leaves nothing behind.
    fn commit(&mut self, shared: &Shared) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let result = active
            .file
            .write_all(&self.pending)
            .map_err(|e| ("append to", e))
            .and_then(|()| {
                shared.syncs.fetch_add(1, Ordering::Relaxed);
                active.file.sync_data().map_err(|e| ("fsync", e))
            });
        if let Err((action, e)) = result {
            let err = LogError::append(&self.state.name, active.path.clone(), action, e);
            self.roll_back(&err);
            return Err(err);
        }
        active.durable_len += self.pending.len() as u64;
        active.durable_last_indexed = self.last_indexed;
        if let Some(meta) = self.state.write_segments().last_mut() {
            meta.len = active.durable_len;
            meta.next = self.next_offset;
            meta.index.append(&mut self.pending_index);
            meta.max_publish_time = match (meta.max_publish_time, self.pending_max_time) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        self.pending.clear();
        self.pending_index.clear();
        self.pending_max_time = None;
        self.durable_next = self.next_offset;
        self.state.next.send_replace(self.durable_next);
        Ok(())
    }

    fn roll_back(&mut self, err: &LogError) {
        self.pending.clear();
        self.pending_index.clear();
        self.pending_max_time = None;
        self.next_offset = self.durable_next;
        if let Some(active) = &self.active {
            self.last_indexed = active.durable_last_indexed;
            // After a failed fsync the page cache is untrustworthy: cut the file
            // back to what was synced; if even that fails, stop using the topic.
            if let Err(e) = active.file.set_len(active.durable_len) {
                self.unavailable = Some(format!("{err}; truncating back failed too: {e}"));
            }
        }
    }
}

/// The thread body: recover, report readiness, then serve commands until every
/// handle is gone.
pub(crate) fn run(
    shared: Arc<Shared>,
    config: LogConfig,
    mut rx: mpsc::Receiver<Command>,
    ready: oneshot::Sender<Result<Vec<Truncation>, LogError>>,
) {
    let (mut topics, _lock) = match recovery::recover(&shared, &config) {
        Ok(r) => {
            let _ = ready.send(Ok(r.truncations));
            (r.topics, r.lock)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Some(first) = rx.blocking_recv() {
        let mut appends = Vec::new();
        let mut queued = 0;
        let mut next = Some(first);
        // Drain everything already waiting (up to the batch cap): that is the group.
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append { messages, reply } => {
                    queued += messages.len();
                    appends.push((messages, reply));
                }
                Command::Retain { now, reply } => {
                    let _ = reply.send(apply_retention(&mut topics, &config, now));
                }
            }
            if queued < config.max_batch_messages {
                next = rx.try_recv().ok();
            }
        }
        group_commit(&mut topics, &config, &shared, appends);
    }
}

type Reply = oneshot::Sender<Result<Vec<u64>, LogError>>;

/// Stages every request, commits each touched topic once, then answers.
fn group_commit(
    topics: &mut HashMap<String, TopicWriter>,
    config: &LogConfig,
    shared: &Shared,
    appends: Vec<(Vec<Message>, Reply)>,
) {
    let max_body = u64::from(config.max_record_bytes);
    // Per request: its offsets so far, or the error that already failed it.
    let mut outcomes: Vec<Result<Vec<u64>, LogError>> = Vec::with_capacity(appends.len());
    let mut touched: Vec<Vec<String>> = Vec::with_capacity(appends.len());
    let mut failed: BTreeMap<String, LogError> = BTreeMap::new();

    for (messages, _) in &appends {
        let mut names: Vec<String> = Vec::new();
        let outcome = validate(messages, max_body).and_then(|lens| {
            let mut offsets = Vec::with_capacity(messages.len());
            for (m, len) in messages.iter().zip(lens) {
                if !names.contains(&m.topic) {
                    names.push(m.topic.clone());
                }
                let writer = topic_writer(topics, shared, &m.topic);
                match writer.stage(m, len, config, shared) {
                    Ok(o) => offsets.push(o),
                    Err(e) => {
                        failed.entry(m.topic.clone()).or_insert_with(|| e.clone());
                        return Err(e);
                    }
                }
            }
            Ok(offsets)
        });
        outcomes.push(outcome);
        touched.push(names);
    }

    for (name, writer) in topics.iter_mut() {
        if let Err(e) = writer.commit(shared) {
            failed.entry(name.clone()).or_insert(e);
        }
    }

    for (((_, reply), outcome), names) in appends.into_iter().zip(outcomes).zip(touched) {
        let outcome = outcome.and_then(|offsets| match names.iter().find_map(|n| failed.get(n)) {
            Some(e) => Err(e.clone()),
            None => Ok(offsets),
        });
        let _ = reply.send(outcome);
    }
}

/// Checks a whole request before anything of it is staged: a bad message
/// fails only its own request, and nothing of that request is written.
fn validate(messages: &[Message], max_body: u64) -> Result<Vec<u64>, LogError> {
    messages
        .iter()
        .map(|m| {
            check_topic(&m.topic)?;
            record::frame_len(m, max_body).map_err(|e| LogError::RecordTooLarge {
                topic: m.topic.clone(),
                reason: match e {
                    EncodeError::FieldTooLong(what) => what.to_owned(),
                    EncodeError::TooLarge(n) => {
                        format!("record body is {n} bytes, the maximum is {max_body}")
                    }
                },
            })
        })
        .collect()
}

fn topic_writer<'a>(
    topics: &'a mut HashMap<String, TopicWriter>,
    shared: &Shared,
    name: &str,
) -> &'a mut TopicWriter {
    topics.entry(name.to_owned()).or_insert_with(|| {
        let state = shared.topic(name);
        // A topic known only through subscribe() has no files yet.
        let next = *state.next.borrow();
        TopicWriter::new(state, None, next)
    })
}

/// Deletes expired segments of every topic. Readers stop seeing a segment
/// before its file goes; one already reading it keeps its open handle.
fn apply_retention(
    topics: &mut HashMap<String, TopicWriter>,
    config: &LogConfig,
    now: i64,
) -> Result<Vec<RemovedSegment>, LogError> {
    let mut removed = Vec::new();
    for writer in topics.values() {
        let doomed: Vec<SegmentMeta> = {
            let mut segments = writer.state.write_segments();
            let summaries: Vec<SegmentSummary> = segments
                .iter()
                .map(|s| SegmentSummary {
                    bytes: s.len,
                    max_publish_time: s.max_publish_time,
                })
                .collect();
            let n = retention::segments_to_delete(&summaries, &config.retention, now);
            segments.drain(..n).collect()
        };
        for seg in doomed {
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(LogError::Retention {
                        segment: seg.path,
                        source: Arc::new(e),
                    });
                }
            }
            removed.push(RemovedSegment {
                topic: writer.state.name.clone(),
                segment: seg.path,
                bytes: seg.len,
            });
        }
        if !removed.is_empty() {
            let _ = sync_dir(&writer.state.dir);
        }
    }
    Ok(removed)
}

/// Makes a directory's entries (new or deleted files) durable.
pub(crate) fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
