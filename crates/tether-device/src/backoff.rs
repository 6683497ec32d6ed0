//! Exponential backoff with full jitter (the "Exponential Backoff And Jitter" scheme:
//! sleep a uniform random time in `[0, min(cap, base · 2^attempt)]`). A fleet that lost
//! its gateway then spreads its reconnects instead of arriving all at once. Defaults match
//! Google's embedded SDK: from 1 s up to about 15 minutes.

use std::time::Duration;

/// The policy and the count of failures so far.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(15 * 60))
    }
}

impl Backoff {
    /// A policy starting at `base` and never waiting longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base: base.max(Duration::from_millis(1)),
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The ceiling of the next wait: `min(cap, base · 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before the next attempt after a failure, given a uniform random number
    /// in `[0, 1)` (the caller's RNG, so tests are exact). Counts the failure.
    pub fn next_delay(&mut self, uniform: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(uniform.clamp(0.0, 1.0))
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection succeeded: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let mut b = Backoff::default();
        let ceilings: Vec<u64> = (0..13)
            .map(|_| {
                let c = b.ceiling().as_secs();
                b.next_delay(0.5);
                c
            })
            .collect();
        assert_eq!(
            ceilings,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
        );
        assert_eq!(b.attempts(), 13);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn delay_is_the_uniform_share_of_the_ceiling() {
        let mut b = Backoff::default();
        for _ in 0..4 {
            b.next_delay(0.0);
        }
        assert_eq!(b.next_delay(0.25), Duration::from_secs(4)); // ceiling 16 s
        assert_eq!(b.next_delay(0.0), Duration::ZERO);
        assert_eq!(
            b.next_delay(1.5),
            Duration::from_secs(64),
            "clamped to the ceiling"
        );
        for _ in 0..100 {
            b.next_delay(0.9);
        }
        assert_eq!(
            b.next_delay(0.5),
            Duration::from_secs(450),
            "never beyond the cap"
        );
    }
}
