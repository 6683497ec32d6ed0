//! A connect-rate limit per source address, checked right after `accept` and before
//! any TLS or JWT work: a client that opens connections faster than a device ever
//! needs gets them closed at once, at the cost of an accept and a close, while the
//! devices already connected keep their CPU.
//!
//! A token bucket per address: `per_sec` tokens a second, up to `burst`. The table is
//! bounded: past [`MAX_TRACKED`] addresses it starts afresh (everyone gets a full
//! bucket), so a spoofing flood cannot grow it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

/// Addresses remembered at once.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Connects allowed per source address.
#[derive(Debug)]
pub struct ConnectRate {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl ConnectRate {
    /// `per_sec` connects a second from one address, bursts of up to twice that.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            per_sec,
            burst: per_sec * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a connect from `ip` at `now` is within its rate (and takes a token).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            buckets.clear();
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_address_gets_its_burst_then_its_rate_and_others_are_not_affected() {
        let limit = ConnectRate::new(5);
        let t0 = Instant::now();
        let a: IpAddr = "127.0.0.2".parse().expect("ip");
        let b: IpAddr = "127.0.0.3".parse().expect("ip");
        let allowed = (0..20).filter(|_| limit.allow(a, t0)).count();
        assert_eq!(allowed, 10, "a burst of twice the rate");
        assert!(limit.allow(b, t0), "another address has its own bucket");
        assert!(
            !limit.allow(a, t0 + Duration::from_millis(100)),
            "half a token"
        );
        assert!(
            limit.allow(a, t0 + Duration::from_millis(250)),
            "one token after 200 ms"
        );
    }
}
