//! Which old segments to delete: pure decisions over segment summaries and
//! the time passed in, and the report of what went. The writer thread carries
//! the decisions out (`writer/retain.rs`).

use std::path::PathBuf;

/// How long and how much to keep. Whole segments are deleted, oldest first,
/// and never a topic's active (last) one, so a topic keeps at least its
/// newest segment whatever the policy says.
///
/// The default bounds the disk: 7 days (Pub/Sub's default retention) and
/// [`TotalCap::Auto`] across all topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete a segment once its newest record's `publish_time` is older than
    /// `now - max_age_micros`. None: no age limit.
    pub max_age_micros: Option<i64>,
    /// Per topic: delete a topic's oldest segments while its size exceeds this.
    pub max_bytes: Option<u64>,
    /// Across all topics: delete the log's oldest segments while its size
    /// exceeds this. Checked after every group commit.
    pub max_total_bytes: TotalCap,
}

impl RetentionPolicy {
    /// Pub/Sub's default message retention, 7 days, in microseconds.
    pub const DEFAULT_MAX_AGE_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

    /// Keeps everything: no age limit, no size limit.
    pub const KEEP_ALL: Self = Self {
        max_age_micros: None,
        max_bytes: None,
        max_total_bytes: TotalCap::Unlimited,
    };
}

impl Default for RetentionPolicy {
    /// 7 days and [`TotalCap::Auto`]; no per-topic limit.
    fn default() -> Self {
        Self {
            max_age_micros: Some(Self::DEFAULT_MAX_AGE_MICROS),
            max_bytes: None,
            max_total_bytes: TotalCap::Auto,
        }
    }
}

/// The size cap of the whole log, across all topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalCap {
    /// No cap.
    Unlimited,
    /// At most this many bytes.
    Bytes(u64),
    /// [`TotalCap::AUTO_MAX_BYTES`], or half of what the log could use when it
    /// is opened (the free space of its file system plus its own bytes) if
    /// that is less, so the log never takes more than half of a small disk.
    Auto,
}

impl TotalCap {
    /// The most [`TotalCap::Auto`] allows: 10 GiB, about 7 days of 100-byte
    /// events at 130 messages a second (about 130 bytes each on disk).
    pub const AUTO_MAX_BYTES: u64 = 10 << 30;
}

/// Why a segment was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalReason {
    /// Its newest record was older than the age limit.
    Age,
    /// Its topic was over the per-topic limit.
    TopicBytes,
    /// The whole log was over its cap, and it was the oldest segment.
    TotalBytes,
}

impl RemovalReason {
    /// The name used in metrics labels: `age`, `topic_bytes`, `total_bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Age => "age",
            Self::TopicBytes => "topic_bytes",
            Self::TotalBytes => "total_bytes",
        }
    }
}

/// A segment retention deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedSegment {
    /// The topic.
    pub topic: String,
    /// The deleted file.
    pub segment: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// How many messages it held.
    pub messages: u64,
    /// Which limit removed it.
    pub reason: RemovalReason,
}

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub bytes: u64,
    /// Newest publish time in the segment; None if it is empty.
    pub max_publish_time: Option<i64>,
}

/// How many of a topic's oldest `segments` (oldest first) to delete at `now`
/// (unix µs): (past the age limit, then over the per-topic size limit).
pub(crate) fn segments_to_delete(
    segments: &[SegmentSummary],
    policy: &RetentionPolicy,
    now: i64,
) -> (usize, usize) {
    // The last segment is the active one: never deleted.
    let deletable = segments.len().saturating_sub(1);
    let mut by_age = 0;
    if let Some(max_age) = policy.max_age_micros {
        let cutoff = now.saturating_sub(max_age);
        // Age deletes a contiguous prefix: stop at the first segment still young
        // (or empty), so offsets stay contiguous from the earliest one kept.
        by_age = segments[..deletable]
            .iter()
            .take_while(|s| s.max_publish_time.is_some_and(|t| t < cutoff))
            .count();
    }
    let mut n = by_age;
    if let Some(max_bytes) = policy.max_bytes {
        let mut total: u64 = segments[n..].iter().map(|s| s.bytes).sum();
        while n < deletable && total > max_bytes {
            total -= segments[n].bytes;
            n += 1;
        }
    }
    (by_age, n - by_age)
}

/// How many of each topic's oldest segments to delete to bring the log's
/// `total` down to `cap`: always the oldest sealed segment of the whole log
/// next (the one whose newest record is oldest; empty ones first), and never
/// a topic's last segment.
pub(crate) fn over_cap(topics: &[Vec<SegmentSummary>], mut total: u64, cap: u64) -> Vec<usize> {
    let mut n = vec![0; topics.len()];
    while total > cap {
        let oldest = topics
            .iter()
            .enumerate()
            .filter_map(|(t, segments)| {
                let next = segments.get(n[t])?;
                (n[t] + 1 < segments.len()).then_some((next.max_publish_time, t, next.bytes))
            })
            .min();
        let Some((_, t, bytes)) = oldest else { break };
        total = total.saturating_sub(bytes);
        n[t] += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(bytes: u64, t: Option<i64>) -> SegmentSummary {
        SegmentSummary {
            bytes,
            max_publish_time: t,
        }
    }

    #[test]
    fn age_deletes_old_prefix_but_never_the_active_segment() {
        let segs = [
            seg(10, Some(1)),
            seg(10, Some(2)),
            seg(10, Some(50)),
            seg(10, Some(3)),
        ];
        let p = RetentionPolicy {
            max_age_micros: Some(10),
            ..RetentionPolicy::KEEP_ALL
        };
        // cutoff 90: all but the last are old; the last is active.
        assert_eq!(segments_to_delete(&segs, &p, 100), (3, 0));
        // cutoff 40: segment 2 is young, so it and everything after stay.
        assert_eq!(segments_to_delete(&segs, &p, 50), (2, 0));
        assert_eq!(segments_to_delete(&segs[..1], &p, 1_000), (0, 0));
    }

    #[test]
    fn size_deletes_oldest_until_under_the_limit() {
        let segs = [seg(100, None), seg(100, None), seg(100, None)];
        let p = RetentionPolicy {
            max_bytes: Some(150),
            ..RetentionPolicy::KEEP_ALL
        };
        assert_eq!(segments_to_delete(&segs, &p, 0), (0, 2));
        let p = RetentionPolicy {
            max_bytes: Some(0),
            ..p
        };
        assert_eq!(
            segments_to_delete(&segs, &p, 0),
            (0, 2),
            "active segment kept"
        );
        assert_eq!(segments_to_delete(&[], &p, 0), (0, 0));
    }

    #[test]
    fn no_policy_keeps_everything() {
        let segs = [seg(100, Some(0)), seg(100, Some(0))];
        assert_eq!(
            segments_to_delete(&segs, &RetentionPolicy::KEEP_ALL, i64::MAX),
            (0, 0)
        );
    }

    #[test]
    fn age_then_topic_size_are_told_apart() {
        let segs = [
            seg(100, Some(1)),
            seg(100, Some(50)),
            seg(100, Some(60)),
            seg(100, None),
        ];
        let p = RetentionPolicy {
            max_age_micros: Some(10),
            max_bytes: Some(250),
            ..RetentionPolicy::KEEP_ALL
        };
        assert_eq!(segments_to_delete(&segs, &p, 20), (1, 1));
    }

    #[test]
    fn the_cap_takes_the_oldest_segment_of_any_topic_first() {
        let a = vec![seg(100, Some(10)), seg(100, Some(30)), seg(100, Some(50))];
        let b = vec![seg(100, Some(20)), seg(100, Some(40)), seg(100, None)];
        let c = vec![seg(100, Some(0))];
        let topics = [a, b, c];
        // 700 bytes; down to 400: times 10, 20 and 30 go.
        assert_eq!(over_cap(&topics, 700, 400), [2, 1, 0]);
        assert_eq!(over_cap(&topics, 700, 700), [0, 0, 0]);
        // Only the active segments are left: the cap cannot be met.
        assert_eq!(over_cap(&topics, 700, 0), [2, 2, 0]);
        // A segment with no records has no time: it goes first.
        let empty_first = [
            vec![seg(100, Some(5)), seg(1, None)],
            vec![seg(10, None), seg(1, None)],
        ];
        assert_eq!(over_cap(&empty_first, 112, 102), [0, 1]);
    }
}
