//! The embedded log's one error type.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::record::CorruptReason;

/// What went wrong in the embedded log. `io::Error`s sit behind `Arc` because
/// one failed group commit fails every waiter of the batch with the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The data directory could not be created, listed or locked.
    #[error("cannot open the telemetry log at {path}: {source}")]
    Open {
        /// The directory or file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Another process (or another `EmbeddedLog`) has the directory open.
    #[error(
        "the telemetry log at {path} is already open in another process or instance \
         (its lock file is held)"
    )]
    Locked {
        /// The log's directory.
        path: PathBuf,
    },
    /// The configuration is unusable.
    #[error("invalid log configuration: {0}")]
    Config(String),
    /// The topic name cannot be stored.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message is larger than the configured maximum record size.
    #[error("message for topic {topic} is too large to store: {reason}")]
    RecordTooLarge {
        /// The message's topic.
        topic: String,
        /// Size and limit, or the field that overflows.
        reason: String,
    },
    /// The disk is full (ENOSPC). Nothing of the failed batch stays in the file.
    #[error("disk full while appending to topic {topic} (segment {segment}): {source}")]
    DiskFull {
        /// The topic being appended to.
        topic: String,
        /// The active segment file.
        segment: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Writing, syncing or creating a segment failed.
    #[error("cannot {action} segment {segment} of topic {topic}: {source}")]
    Write {
        /// `append to`, `fsync`, `create`, ...
        action: &'static str,
        /// The topic.
        topic: String,
        /// The segment file.
        segment: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A failed write could not be rolled back; appends to this topic are refused
    /// until restart (recovery then truncates the torn tail).
    #[error("topic {topic} is unavailable until restart: {reason}")]
    TopicUnavailable {
        /// The topic.
        topic: String,
        /// The failure that made it unavailable.
        reason: String,
    },
    /// Reading a segment failed at the OS level.
    #[error("cannot read segment {segment} of topic {topic}: {source}")]
    Read {
        /// The topic.
        topic: String,
        /// The segment file.
        segment: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A stored record failed its checks. Records before it are intact; a
    /// reader can skip past it by reading from a later offset.
    #[error(
        "record at offset {offset} in segment {segment} of topic {topic} is corrupt \
         (byte {position}): {reason}"
    )]
    Corrupt {
        /// The topic.
        topic: String,
        /// The segment file.
        segment: PathBuf,
        /// The offset the record should have had.
        offset: u64,
        /// Byte position of the record in the segment.
        position: u64,
        /// What check failed.
        reason: CorruptReason,
    },
    /// Deleting an expired segment failed.
    #[error("retention could not delete segment {segment}: {source}")]
    Retention {
        /// The segment file.
        segment: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The blocking read task did not complete (runtime shutting down).
    #[error("the read task did not complete: {0}")]
    ReadTask(String),
    /// The writer thread has stopped (the log was closed).
    #[error("the telemetry log writer has stopped")]
    WriterStopped,
}

impl LogError {
    pub(crate) fn open(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Open {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// An append failure: ENOSPC gets its own variant so the operator sees it.
    pub(crate) fn append(
        topic: &str,
        segment: PathBuf,
        action: &'static str,
        e: io::Error,
    ) -> Self {
        if e.kind() == io::ErrorKind::StorageFull {
            Self::DiskFull {
                topic: topic.to_owned(),
                segment,
                source: Arc::new(e),
            }
        } else {
            Self::Write {
                action,
                topic: topic.to_owned(),
                segment,
                source: Arc::new(e),
            }
        }
    }

    pub(crate) fn read(topic: &str, segment: PathBuf, e: io::Error) -> Self {
        Self::Read {
            topic: topic.to_owned(),
            segment,
            source: Arc::new(e),
        }
    }
}
