//! The wall clock, behind a trait so tests and simulations can run on tokio's paused
//! time. Token `iat`/`exp` come from here; intervals (refresh, backoff, keep-alive)
//! use `tokio::time`, which tests pause and advance.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as the device believes them.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time in seconds since 1970-01-01T00:00:00Z.
    fn unix_now(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the SDK reads the system clock.
    #[allow(clippy::disallowed_methods)]
    fn unix_now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A wall clock that starts at a given time and then follows `tokio::time`, so that
/// `tokio::time::pause`/`advance` move tokens' `iat`/`exp` along with every timer.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_unix: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start_unix` now.
    pub fn starting_at(start_unix: u64) -> Self {
        TokioClock {
            start_unix,
            start: tokio::time::Instant::now(),
        }
    }

    /// A clock reading the system time now, then following tokio's time.
    pub fn from_system() -> Self {
        Self::starting_at(SystemClock.unix_now())
    }
}

impl Clock for TokioClock {
    fn unix_now(&self) -> u64 {
        self.start_unix + self.start.elapsed().as_secs()
    }
}

/// The `tokio::time` instant at which a clock will read `unix` (now if that is past).
pub fn instant_at(clock: &dyn Clock, unix: u64) -> tokio::time::Instant {
    let wait = unix.saturating_sub(clock.unix_now());
    tokio::time::Instant::now() + Duration::from_secs(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = TokioClock::starting_at(1_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.unix_now(), 1_090);
        assert!(SystemClock.unix_now() > 1_700_000_000);
    }
}
