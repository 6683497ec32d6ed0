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
}

impl LogConfig {
    /// The largest `max_record_bytes`: 1 GiB. A format-1 segment starts with a
    /// record length, so one below the format-2 magic read as a number
    /// (`FF 74 6C 67`, about 1.7 GB) tells the formats apart.
    pub const MAX_RECORD_BYTES: u32 = 1 << 30;

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
        if self.max_batch_messages == 0 {
            return Err(LogError::Config(
                "max_batch_messages must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}
