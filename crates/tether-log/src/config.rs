//! The log's settings and their one validation at open.

use std::path::PathBuf;

use crate::{LogError, RetentionPolicy};

/// Settings of the embedded log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The server's data directory; the log lives in `data_dir/telemetry`.
    pub data_dir: PathBuf,
    /// A segment is rolled once the next record would take it past this size.
    pub segment_bytes: u64,
    /// Largest record body accepted (IoT Core telemetry is ≤256 KB, plus
    /// attributes), at most [`LogConfig::MAX_RECORD_BYTES`]. Also the limit a
    /// reader trusts in a length prefix.
    pub max_record_bytes: u32,
    /// The age and size limits, enforced by the writer as the log grows and
    /// by [`EmbeddedLog::apply_retention`](crate::EmbeddedLog::apply_retention).
    pub retention: RetentionPolicy,
    /// Most messages one group commit takes before it fsyncs.
    pub max_batch_messages: usize,
    /// Zeros written ahead of the active segment's data (at most up to the
    /// segment size), so that an append overwrites them instead of growing the
    /// file: the fsync then writes the data and no inode. On ext4 that halves
    /// an fsync's CPU and wall time (BENCHMARKS.md). 0 turns it off. The
    /// zeros are on disk but not in [`LogUsage::bytes`](crate::LogUsage);
    /// a sealed segment is cut to its data.
    pub write_ahead_bytes: u64,
    /// The writer's pause after each group commit. Appends that arrive
    /// meanwhile wait and share the next fsync, so a steady stream pays one
    /// fsync per interval (plus the fsync's own time) instead of one per append
    /// or two; an append after a quiet spell is committed at once. Zero: the
    /// next group starts as soon as the last fsync is done.
    pub commit_interval: std::time::Duration,
    /// How long a group commit may wait for the threads that append while any of
    /// them is awake (see [`appenders`](crate::appenders)): under load one fsync then
    /// covers what they were about to append instead of a few messages. Zero, or no
    /// thread reporting to [`appenders`](crate::appenders): commit at once.
    pub busy_wait: std::time::Duration,
}

impl LogConfig {
    /// The largest `max_record_bytes`: 1 GiB. A format-1 segment starts with a
    /// record length, so one below the format-2 magic read as a number
    /// (`FF 74 6C 67`, about 1.7 GB) tells the formats apart.
    pub const MAX_RECORD_BYTES: u32 = 1 << 30;

    /// The default [`LogConfig::write_ahead_bytes`]: 1 MiB per topic.
    pub const DEFAULT_WRITE_AHEAD_BYTES: u64 = 1024 * 1024;

    /// The longest [`LogConfig::commit_interval`]: 100 ms (every QoS 1
    /// PUBACK may wait that long).
    pub const MAX_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

    /// Defaults: 64 MiB segments, 1 MiB records, 8192 messages per group
    /// commit, and the default [`RetentionPolicy`]: 7 days and a total cap of
    /// at most 10 GiB (less on a small disk).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            retention: RetentionPolicy::default(),
            max_batch_messages: 8192,
            write_ahead_bytes: Self::DEFAULT_WRITE_AHEAD_BYTES,
            commit_interval: std::time::Duration::ZERO,
            busy_wait: std::time::Duration::ZERO,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), LogError> {
        if self.segment_bytes == 0 {
            return Err(LogError::Config(
                "segment_bytes must be greater than 0".into(),
            ));
        }
        if !(64..=Self::MAX_RECORD_BYTES).contains(&self.max_record_bytes) {
            return Err(LogError::Config(format!(
                "max_record_bytes must be between 64 and {}",
                Self::MAX_RECORD_BYTES
            )));
        }
        if self.commit_interval > Self::MAX_COMMIT_INTERVAL {
            return Err(LogError::Config(format!(
                "commit_interval must be at most {} ms",
                Self::MAX_COMMIT_INTERVAL.as_millis()
            )));
        }
        if self.busy_wait > Self::MAX_COMMIT_INTERVAL {
            return Err(LogError::Config(format!(
                "busy_wait must be at most {} ms",
                Self::MAX_COMMIT_INTERVAL.as_millis()
            )));
        }
        if self.max_batch_messages == 0 {
            return Err(LogError::Config(
                "max_batch_messages must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}
