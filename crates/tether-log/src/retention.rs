//! Which old segments to delete: a pure decision over segment summaries and
//! the time passed in, and the report of what went. The writer thread carries
//! the decision out.

use std::path::PathBuf;

/// How long and how much to keep, per topic. Whole segments are deleted,
/// oldest first, and never the active (last) one, so a topic keeps at least
/// its newest segment whatever the policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Delete a segment once its newest record's `publish_time` is older than
    /// `now - max_age_micros`.
    pub max_age_micros: Option<i64>,
    /// Delete the oldest segments while the topic's total size exceeds this.
    pub max_bytes: Option<u64>,
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
}

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub bytes: u64,
    /// Newest publish time in the segment; None if it is empty.
    pub max_publish_time: Option<i64>,
}

/// How many of the oldest `segments` (oldest first) to delete at `now` (unix µs).
pub(crate) fn segments_to_delete(
    segments: &[SegmentSummary],
    policy: &RetentionPolicy,
    now: i64,
) -> usize {
    // The last segment is the active one: never deleted.
    let deletable = segments.len().saturating_sub(1);
    let mut n = 0;
    if let Some(max_age) = policy.max_age_micros {
        let cutoff = now.saturating_sub(max_age);
        // Age deletes a contiguous prefix: stop at the first segment still young
        // (or empty), so offsets stay contiguous from the earliest one kept.
        n = segments[..deletable]
            .iter()
            .take_while(|s| s.max_publish_time.is_some_and(|t| t < cutoff))
            .count();
    }
    if let Some(max_bytes) = policy.max_bytes {
        let mut total: u64 = segments[n..].iter().map(|s| s.bytes).sum();
        while n < deletable && total > max_bytes {
            total -= segments[n].bytes;
            n += 1;
        }
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
            max_bytes: None,
        };
        // cutoff 90: all but the last are old; the last is active.
        assert_eq!(segments_to_delete(&segs, &p, 100), 3);
        // cutoff 40: segment 2 is young, so it and everything after stay.
        assert_eq!(segments_to_delete(&segs, &p, 50), 2);
        assert_eq!(segments_to_delete(&segs[..1], &p, 1_000), 0);
    }

    #[test]
    fn size_deletes_oldest_until_under_the_limit() {
        let segs = [seg(100, None), seg(100, None), seg(100, None)];
        let p = RetentionPolicy {
            max_age_micros: None,
            max_bytes: Some(150),
        };
        assert_eq!(segments_to_delete(&segs, &p, 0), 2);
        let p = RetentionPolicy {
            max_bytes: Some(0),
            ..p
        };
        assert_eq!(segments_to_delete(&segs, &p, 0), 2, "active segment kept");
        assert_eq!(segments_to_delete(&[], &p, 0), 0);
    }

    #[test]
    fn no_policy_keeps_everything() {
        let segs = [seg(100, Some(0)), seg(100, Some(0))];
        assert_eq!(
            segments_to_delete(&segs, &RetentionPolicy::default(), i64::MAX),
            0
        );
    }
}
