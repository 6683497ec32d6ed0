//! Per-device limits (spec §1.8): message rates as token buckets and payload sizes.
//!
//! Rates are enforced by back-pressure: a message over the rate waits, and while it
//! waits the driver reads nothing more from the socket, so TCP slows the device down.
//! Nothing is dropped and nobody is disconnected for a burst.

use std::time::Duration;

use tether_mqtt::Timestamp;

/// The limits of one MQTT connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Incoming messages (telemetry and state) per second.
    pub messages_per_sec: u32,
    /// State messages per second.
    pub state_per_sec: u32,
    /// Config versions sent per second (newer versions supersede waiting ones).
    pub config_per_sec: u32,
    /// Largest telemetry payload.
    pub telemetry_bytes: usize,
    /// Largest state payload.
    pub state_bytes: usize,
    /// Largest command payload.
    pub command_bytes: usize,
    /// Devices attached at once through one gateway connection (IoT Core: 1,000).
    pub attached_per_gateway: usize,
    /// Topic filters in one SUBSCRIBE (a device needs two; a gateway two per attached
    /// device, spread over several packets).
    pub filters_per_subscribe: usize,
}

impl Default for Limits {
    /// IoT Core's quotas: 100 msg/s (SUBSCRIBE packets count too), state and config
    /// 1/s, 256 KB telemetry and commands, 64 KB state, 1,000 devices attached per
    /// gateway; and 128 filters per SUBSCRIBE.
    fn default() -> Self {
        Self {
            messages_per_sec: 100,
            state_per_sec: 1,
            config_per_sec: 1,
            telemetry_bytes: 256 * 1024,
            state_bytes: 64 * 1024,
            command_bytes: 256 * 1024,
            attached_per_gateway: 1000,
            filters_per_subscribe: 128,
        }
    }
}

impl Limits {
    /// The largest MQTT packet a device may send: a full telemetry payload plus its
    /// topic and header.
    pub fn max_packet_size(&self) -> usize {
        self.telemetry_bytes.max(self.state_bytes) + 1024
    }

    /// The shortest time between two config sends.
    pub fn config_interval(&self) -> Duration {
        Duration::from_millis(1000 / u64::from(self.config_per_sec.max(1)))
    }
}

/// A token bucket holding up to one second's worth of tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_sec: u64,
    /// Tokens in thousandths, so refill needs no floating point.
    milli_tokens: u64,
    last: Timestamp,
}

impl TokenBucket {
    /// A full bucket refilling `per_sec` tokens a second (0 means unlimited).
    pub fn new(per_sec: u32, now: Timestamp) -> Self {
        let per_sec = u64::from(per_sec);
        Self {
            per_sec,
            milli_tokens: per_sec * 1000,
            last: now,
        }
    }

    /// Takes a token at `now`, or says when one will be there.
    ///
    /// # Errors
    /// The time at which to try again.
    pub fn take(&mut self, now: Timestamp) -> Result<(), Timestamp> {
        if self.per_sec == 0 {
            return Ok(());
        }
        let elapsed = now.as_millis().saturating_sub(self.last.as_millis());
        self.last = self.last.max(now);
        // elapsed ms × per_sec tokens/s = elapsed × per_sec milli-tokens.
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(self.per_sec))
            .min(self.per_sec * 1000);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            Ok(())
        } else {
            let missing = 1000 - self.milli_tokens;
            let wait_ms = missing.div_ceil(self.per_sec);
            Err(now.saturating_add(Duration::from_millis(wait_ms)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn one_per_second() {
        let mut b = TokenBucket::new(1, t(0));
        assert_eq!(b.take(t(0)), Ok(()));
        assert_eq!(b.take(t(300)), Err(t(1000)));
        assert_eq!(b.take(t(1000)), Ok(()));
        assert_eq!(b.take(t(1000)), Err(t(2000)));
    }

    #[test]
    fn a_second_of_burst_then_the_rate() {
        let mut b = TokenBucket::new(100, t(0));
        for _ in 0..100 {
            assert_eq!(b.take(t(0)), Ok(()));
        }
        assert_eq!(b.take(t(0)), Err(t(10)));
        assert_eq!(b.take(t(10)), Ok(()));
        // Idle time refills only up to one second's worth.
        for _ in 0..100 {
            assert_eq!(b.take(t(60_000)), Ok(()));
        }
        assert!(b.take(t(60_000)).is_err());
    }

    #[test]
    fn zero_is_unlimited() {
        let mut b = TokenBucket::new(0, t(0));
        for _ in 0..10_000 {
            assert_eq!(b.take(t(0)), Ok(()));
        }
    }
}
