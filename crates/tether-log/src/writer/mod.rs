//! The single writer thread: group commit, segment rolling, retention.
//!
//! A plain OS thread, not a tokio task: `write` and `fsync` block, and one
//! thread owning every file needs no locking around appends.
//!
//! Limits are enforced here as the log grows, not on a timer: the total cap
//! is checked after every group commit (a comparison; segments are deleted
//! only when over) and whenever a segment is sealed, and the age and
//! per-topic limits are applied when a segment is sealed, at the newest
//! publish time written so far. This crate never reads the clock:
//! [`EmbeddedLog::apply_retention`](crate::EmbeddedLog::apply_retention) is
//! the caller's backstop for a log that stops growing while its data ages.

pub(crate) mod priority;
pub(crate) mod queue;
mod retain;
mod topic;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::Arc;

use tokio::sync::oneshot;

use topic::Staged;
pub(crate) use topic::{Active, TopicWriter};

use crate::appenders;
use crate::record::v2;
use crate::state::{Shared, check_topic};
use crate::{Limits, LogConfig, LogError, Message, RemovedSegment, Truncation};

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

/// What the writer starts with: what recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub topics: HashMap<String, TopicWriter>,
    pub truncations: Vec<Truncation>,
    /// Held (locked) for as long as the writer runs.
    pub lock: File,
}

/// What the handle learns once the writer has recovered the log.
#[derive(Debug)]
pub(crate) struct Opened {
    pub truncations: Vec<Truncation>,
    pub limits: Limits,
}

/// The thread body once recovery is done: apply the limits, report
/// readiness, then serve commands until every handle is gone.
pub(crate) fn run(
    shared: Arc<Shared>,
    config: LogConfig,
    recovered: Recovered,
    mut rx: queue::Receiver,
    ready: oneshot::Sender<Result<Opened, LogError>>,
) {
    let _lock = recovered.lock;
    let used = shared.bytes.load(std::sync::atomic::Ordering::Relaxed);
    let limits = Limits::resolve(&config.retention, &shared.root, used);
    // Only last segments were read with their CRCs checked: a flipped bit in
    // a sealed segment's time must not make everything else look old.
    let newest = recovered
        .topics
        .values()
        .filter_map(|t| t.state.read_segments().last()?.max_publish_time)
        .max();
    let mut writer = Writer {
        topics: recovered.topics,
        config,
        shared,
        limits,
        newest,
    };
    // Limits lowered since the last run apply at once.
    writer.enforce(writer.newest);
    let _ = ready.send(Ok(Opened {
        truncations: recovered.truncations,
        limits,
    }));

    while let Some(first) = rx.blocking_recv() {
        let mut appends = Vec::new();
        let mut queued = 0;
        // Everything already waiting (up to the batch cap) is the group; while the
        // threads that append are busy, what they are about to append joins it.
        writer.drain(first, &mut rx, &mut appends, &mut queued);
        if !appends.is_empty()
            && queued < writer.config.max_batch_messages
            && appenders::wait_until_idle(writer.config.busy_wait)
            && let Some(next) = rx.try_recv()
        {
            writer.drain(next, &mut rx, &mut appends, &mut queued);
        }
        if !appends.is_empty() {
            writer.group_commit(appends);
            // The commit interval: what arrives meanwhile waits and shares the
            // next group's fsync. (A pause, not a clock: this crate reads none.)
            if !writer.config.commit_interval.is_zero() {
                std::thread::sleep(writer.config.commit_interval);
            }
        }
    }
    // Closed: a cleanly closed log ends in data, not in zeros written ahead.
    for topic in writer.topics.values_mut() {
        if let Err(e) = topic.seal() {
            tracing::warn!(error = %e, "telemetry log: could not cut the zeros written ahead");
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<u64>, LogError>>;

/// Everything the writer thread owns.
struct Writer {
    topics: HashMap<String, TopicWriter>,
    config: LogConfig,
    shared: Arc<Shared>,
    limits: Limits,
    /// The newest publish time written: the writer's "now" for the age limit.
    newest: Option<i64>,
}

impl Writer {
    /// Takes `first` and whatever else is queued, up to the batch cap: appends join
    /// the group, retention runs at once.
    fn drain(
        &mut self,
        first: Command,
        rx: &mut queue::Receiver,
        appends: &mut Vec<(Vec<Message>, Reply)>,
        queued: &mut usize,
    ) {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append { messages, reply } => {
                    *queued += messages.len();
                    appends.push((messages, reply));
                }
                Command::Retain { now, reply } => {
                    let _ = reply.send(retain::apply(
                        &self.topics,
                        &self.shared,
                        &self.limits,
                        Some(now),
                    ));
                    retain::publish_size(&self.shared, &self.limits);
                }
            }
            if *queued < self.config.max_batch_messages {
                next = rx.try_recv();
            }
        }
    }

    /// Stages every request, commits each touched topic once, keeps the log
    /// within its limits, then answers: once an append returns, the log is
    /// within its limits again.
    fn group_commit(&mut self, appends: Vec<(Vec<Message>, Reply)>) {
        let max_body = u64::from(self.config.max_record_bytes);
        // Per request: its offsets so far, or the error that already failed it.
        let mut outcomes: Vec<Result<Vec<u64>, LogError>> = Vec::with_capacity(appends.len());
        let mut touched: Vec<Vec<String>> = Vec::with_capacity(appends.len());

        let mut failed: BTreeMap<String, LogError> = BTreeMap::new();

        // The writer owns the messages: staging moves their attributes into
        // the dictionary instead of copying them.
        let (batches, replies): (Vec<Vec<Message>>, Vec<Reply>) = appends.into_iter().unzip();
        for messages in batches {
            let mut names: Vec<String> = Vec::new();
            let outcome = validate(&messages, max_body).and_then(|lens| {
                let mut offsets = Vec::with_capacity(messages.len());
                for (m, len) in messages.into_iter().zip(lens) {
                    let t = match names.iter().position(|n| *n == m.topic) {
                        Some(t) => t,
                        None => {
                            names.push(m.topic.clone());
                            names.len() - 1
                        }
                    };
                    let time = m.publish_time;
                    match self.stage(m, len) {
                        Ok(staged) => {
                            offsets.push(staged.offset);
                            self.newest = self.newest.max(Some(time));
                            // A segment was sealed: the age and per-topic limits
                            // apply now, and the cap before the next one fills.
                            if staged.rolled {
                                self.enforce(self.newest);
                            }
                        }
                        Err(e) => {
                            failed.entry(names[t].clone()).or_insert_with(|| e.clone());
                            return Err(e);
                        }
                    }
                }
                Ok(offsets)
            });
            outcomes.push(outcome);
            touched.push(names);
        }

        for (name, writer) in self.topics.iter_mut() {
            if let Err(e) = writer.commit(&self.shared, &self.config) {
                failed.entry(name.clone()).or_insert(e);
            }
        }
        if retain::over_cap(&self.shared, &self.limits) {
            self.enforce(None);
        } else {
            retain::publish_size(&self.shared, &self.limits);
        }

        for ((reply, outcome), names) in replies.into_iter().zip(outcomes).zip(touched) {
            let outcome =
                outcome.and_then(|offsets| match names.iter().find_map(|n| failed.get(n)) {
                    Some(e) => Err(e.clone()),
                    None => Ok(offsets),
                });
            let _ = reply.send(outcome);
        }
    }

    /// Applies the limits (age and per topic only with a `now`) where no
    /// caller waits for the outcome: failures are logged, not returned.
    fn enforce(&self, now: Option<i64>) {
        match retain::apply(&self.topics, &self.shared, &self.limits, now) {
            Ok(removed) if !removed.is_empty() => {
                let bytes: u64 = removed.iter().map(|r| r.bytes).sum();
                tracing::debug!(
                    segments = removed.len(),
                    bytes,
                    "telemetry log: removed its oldest segments to stay within its limits"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "telemetry log: retention failed"),
        }
        retain::publish_size(&self.shared, &self.limits);
    }

    /// Stages one checked message in its topic; `frame_len` is its largest frame.
    fn stage(&mut self, message: Message, frame_len: u64) -> Result<Staged, LogError> {
        let Self {
            topics,
            config,
            shared,
            ..
        } = self;
        let writer = topics.entry(message.topic.clone()).or_insert_with(|| {
            let state = shared.topic(&message.topic);
            // A topic known only through subscribe() has no files yet.
            let next = *state.next.borrow();
            TopicWriter::new(state, None, next)
        });
        writer.stage(message, frame_len, config, shared)
    }
}

/// Checks a whole request before anything of it is staged: a bad message
/// fails only its own request, and nothing of that request is written.
/// Returns each message's largest frame, which the roll decision uses.
fn validate(messages: &[Message], max_body: u64) -> Result<Vec<u64>, LogError> {
    messages
        .iter()
        .map(|m| {
            check_topic(&m.topic)?;
            let body = v2::max_body_len(m);
            if body > max_body {
                return Err(LogError::RecordTooLarge {
                    topic: m.topic.clone(),
                    reason: format!("record body may take {body} bytes, the maximum is {max_body}"),
                });
            }
            Ok(v2::max_frame_len(body))
        })
        .collect()
}

/// Makes a directory's entries (new or deleted files) durable.
pub(crate) fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
