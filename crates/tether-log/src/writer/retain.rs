//! Retention as the writer thread carries it out: the segments that
//! `retention.rs` chose leave the readers' view, their files are deleted, and
//! the log's size and removal counts are updated and published as metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::TopicWriter;
use super::sync_dir;
use crate::retention::{self, RemovalReason, SegmentSummary};
use crate::segment::SegmentMeta;
use crate::state::Shared;
use crate::{Limits, LogError, RemovedSegment, RetentionPolicy, TotalCap};

/// Applies every limit: age and the per-topic size at `now` (unix µs) when
/// given, then the total cap. Returns what was deleted.
pub(crate) fn apply(
    topics: &HashMap<String, TopicWriter>,
    shared: &Shared,
    limits: &Limits,
    now: Option<i64>,
) -> Result<Vec<RemovedSegment>, LogError> {
    let mut removed = Vec::new();
    if let Some(now) = now {
        let policy = RetentionPolicy {
            max_age_micros: limits.max_age_micros,
            max_bytes: limits.max_topic_bytes,
            max_total_bytes: TotalCap::Unlimited,
        };
        for writer in topics.values() {
            let summaries = summaries(&writer.state.read_segments());
            let (by_age, by_size) = retention::segments_to_delete(&summaries, &policy, now);
            remove_oldest(writer, shared, by_age, RemovalReason::Age, &mut removed)?;
            remove_oldest(
                writer,
                shared,
                by_size,
                RemovalReason::TopicBytes,
                &mut removed,
            )?;
        }
    }
    if let Some(cap) = limits.max_total_bytes
        && shared.bytes.load(Ordering::Relaxed) > cap
    {
        let writers: Vec<&TopicWriter> = topics.values().collect();
        let all: Vec<Vec<SegmentSummary>> = writers
            .iter()
            .map(|w| summaries(&w.state.read_segments()))
            .collect();
        let total = shared.bytes.load(Ordering::Relaxed);
        for (writer, n) in writers
            .into_iter()
            .zip(retention::over_cap(&all, total, cap))
        {
            remove_oldest(writer, shared, n, RemovalReason::TotalBytes, &mut removed)?;
        }
    }
    Ok(removed)
}

/// True when the log is over its total cap.
pub(crate) fn over_cap(shared: &Shared, limits: &Limits) -> bool {
    limits
        .max_total_bytes
        .is_some_and(|cap| shared.bytes.load(Ordering::Relaxed) > cap)
}

/// Publishes the log's size and its cap as gauges.
pub(crate) fn publish_size(shared: &Shared, limits: &Limits) {
    metrics::gauge!("tether_log_bytes").set(shared.bytes.load(Ordering::Relaxed) as f64);
    if let Some(cap) = limits.max_total_bytes {
        metrics::gauge!("tether_log_bytes_limit").set(cap as f64);
    }
}

fn summaries(segments: &[SegmentMeta]) -> Vec<SegmentSummary> {
    segments
        .iter()
        .map(|s| SegmentSummary {
            bytes: s.len,
            max_publish_time: s.max_publish_time,
        })
        .collect()
}

/// Deletes the `n` oldest segments of a topic. Readers stop seeing them
/// before the files go; one already reading keeps its open handle.
fn remove_oldest(
    writer: &TopicWriter,
    shared: &Shared,
    n: usize,
    reason: RemovalReason,
    removed: &mut Vec<RemovedSegment>,
) -> Result<(), LogError> {
    if n == 0 {
        return Ok(());
    }
    let doomed: Vec<SegmentMeta> = {
        let mut segments = writer.state.write_segments();
        let n = n.min(segments.len());
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
        let messages = seg.next.saturating_sub(seg.base);
        let _ = shared
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(seg.len))
            });
        shared.removed_segments.fetch_add(1, Ordering::Relaxed);
        shared
            .removed_messages
            .fetch_add(messages, Ordering::Relaxed);
        metrics::counter!("tether_log_evicted_segments_total", "reason" => reason.as_str())
            .increment(1);
        metrics::counter!("tether_log_evicted_messages_total", "reason" => reason.as_str())
            .increment(messages);
        removed.push(RemovedSegment {
            topic: writer.state.name.clone(),
            segment: seg.path,
            bytes: seg.len,
            messages,
            reason,
        });
    }
    // A deletion lost in a crash is only repeated at the next check.
    let _ = sync_dir(&writer.state.dir);
    Ok(())
}
