//! Counters shared by every connection, and a small log-linear latency histogram
//! (32 sub-buckets per power of two: about 3 % resolution, microseconds up to hours).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two (2^5).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above the linear part (2^5 µs … 2^40 µs).
const POWERS: usize = 36;
const BUCKETS: usize = SUB as usize * (POWERS + 1);

/// Latencies in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            sum: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let power = 63 - v.leading_zeros(); // ≥ SUB_BITS
    let shift = power - SUB_BITS;
    let sub = (v >> shift) - SUB; // 0..SUB
    let index = (u64::from(shift) + 1) * SUB + sub;
    usize::try_from(index)
        .unwrap_or(BUCKETS - 1)
        .min(BUCKETS - 1)
}

/// The largest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB + SUB;
    ((sub + 1) << shift) - 1
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
        self.sum += u128::from(us);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile (0..=1) in microseconds (upper edge of its bucket, at most the max).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Largest value in microseconds.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// Mean in microseconds.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }
}

/// Live counters, updated by every connection task.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connection attempts started.
    pub attempts: AtomicU64,
    /// CONNACK 0 received.
    pub connected: AtomicU64,
    /// CONNACK ≠ 0 received.
    pub refused: AtomicU64,
    /// TCP, TLS or protocol failures, or no CONNACK in time.
    pub failed: AtomicU64,
    /// Connections lost after CONNACK before the end.
    pub dropped: AtomicU64,
    /// PUBLISH packets sent.
    pub sent: AtomicU64,
    /// PUBACKs received.
    pub acked: AtomicU64,
    /// Sends skipped because the in-flight window was full.
    pub backlogged: AtomicU64,
    /// Messages received (config, commands, or the e2e consumer).
    pub received: AtomicU64,
    /// MQTT bytes written (before TLS).
    pub bytes_out: AtomicU64,
    /// MQTT bytes read (after TLS).
    pub bytes_in: AtomicU64,
    /// MQTT 5 re-authentications the server accepted.
    pub reauthed: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What one connection measured, merged at the end.
#[derive(Debug, Default, Clone)]
pub struct ConnResult {
    /// Start of TCP connect to CONNACK.
    pub connect: Option<Duration>,
    /// PUBLISH → PUBACK.
    pub puback: Option<Box<Histogram>>,
    /// PUBLISH → PUBACK of the messages sent inside `--latency-window`.
    pub puback_in_window: Option<Box<Histogram>>,
    /// PUBLISH → PUBACK of the messages sent outside it.
    pub puback_outside_window: Option<Box<Histogram>>,
    /// Publish → delivery to the e2e consumer.
    pub e2e: Option<Box<Histogram>>,
    /// The first refusal or failure, for the report.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1000,
            12_345,
            1 << 30,
            1 << 39,
        ] {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
            assert!(upper(b) >= v, "{v} above its bucket {b} ({})", upper(b));
            assert!(
                upper(b) as f64 <= v as f64 * 1.04 + 1.0,
                "{v} bucket too wide"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).unwrap_or(0);
        assert!((490..=520).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).unwrap_or(0);
        assert!((980..=1000).contains(&p99), "{p99}");
        assert_eq!(h.max(), Some(1000));
        let mut g = Histogram::default();
        g.merge(&h);
        assert_eq!(g.count(), 1000);
    }
}
