//! What the writer thread and readers share: per-topic segment lists and next
//! offsets, holding only durable data (the writer updates them after fsync).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::watch;

use crate::LogError;
use crate::segment::{self, SegmentMeta};

/// State shared by the writer thread and readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub root: PathBuf,
    pub max_body: u64,
    topics: Mutex<HashMap<String, Arc<TopicState>>>,
    /// Segment `sync_data` calls so far (group-commit tests, metrics).
    pub syncs: AtomicU64,
    /// Durable bytes in all segment files (what the total cap limits).
    pub bytes: AtomicU64,
    /// Segments and messages retention has deleted since open.
    pub removed_segments: AtomicU64,
    pub removed_messages: AtomicU64,
    /// Set when the log's file system refused a read that must not wait for the
    /// disk (tmpfs answers `EOPNOTSUPP`): reads then go straight to the blocking pool.
    pub no_cached_reads: AtomicBool,
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
    pub(crate) fn new(root: PathBuf, max_body: u64) -> Self {
        Self {
            root,
            max_body,
            topics: Mutex::new(HashMap::new()),
            syncs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            removed_segments: AtomicU64::new(0),
            removed_messages: AtomicU64::new(0),
            no_cached_reads: AtomicBool::new(false),
        }
    }

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

    pub(crate) fn existing_topic(&self, name: &str) -> Option<Arc<TopicState>> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.get(name).cloned()
    }

    pub(crate) fn all_topics(&self) -> Vec<Arc<TopicState>> {
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
