//! The embedded log as a [`TelemetryReader`]: offsets 0, 1, 2, … per topic, read
//! in chunks from its segment files, and waited for through its commit watch.

use std::time::Duration;

use async_trait::async_trait;
use tether_log::{EmbeddedLog, Record, TopicOffsets};

use super::{Batch, ReadError, ReadLimits, TelemetryReader, TopicInfo};

/// Records read from the log at a time while filling a read: small enough that a
/// read stopped by the byte cap has not read much it throws away.
const CHUNK: usize = 64;

#[async_trait]
impl TelemetryReader for EmbeddedLog {
    async fn topics(&self) -> Result<Vec<TopicInfo>, ReadError> {
        Ok(self
            .list_topics()
            .into_iter()
            .filter_map(|topic| {
                let offsets = EmbeddedLog::offsets(self, &topic)?;
                Some(TopicInfo { topic, offsets })
            })
            .collect())
    }

    async fn offsets(&self, topic: &str) -> Result<Option<TopicOffsets>, ReadError> {
        Ok(EmbeddedLog::offsets(self, topic))
    }

    async fn read(
        &self,
        topic: &str,
        from: u64,
        limits: ReadLimits,
    ) -> Result<Vec<Record>, ReadError> {
        let mut batch = Batch::new(limits);
        let mut next = from;
        loop {
            // Nothing durable at or past `next`: done, without a read that finds
            // nothing (a follower at the head asked for what is there, not more).
            if EmbeddedLog::offsets(self, topic).is_none_or(|o| next >= o.next) {
                return Ok(batch.into_records());
            }
            let chunk = EmbeddedLog::read(self, topic, next, batch.room().min(CHUNK)).await?;
            if chunk.is_empty() {
                return Ok(batch.into_records());
            }
            for record in chunk {
                next = record.offset + 1;
                if !batch.push(record) {
                    return Ok(batch.into_records());
                }
            }
        }
    }

    async fn wait(&self, topic: &str, from: u64, timeout: Duration) -> Result<bool, ReadError> {
        let mut next = self.subscribe(topic)?;
        let arrived = tokio::time::timeout(timeout, next.wait_for(|n| *n > from)).await;
        Ok(matches!(arrived, Ok(Ok(_))))
    }
}
