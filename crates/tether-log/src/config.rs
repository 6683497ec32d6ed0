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
    /// attributes). Also the limit a reader trusts in a length prefix.
    pub max_record_bytes: u32,
    /// What retention deletes when [`EmbeddedLog::apply_retention`](crate::EmbeddedLog::apply_retention) runs.
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

    pub(crate) fn validate(&self) -> Result<(), LogError> {
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
