//! The one place the MQTT bridge reads the wall clock. Everything else takes the time
//! from a [`Clock`], so tests can shift it and protocol code stays sans-io.

use std::fmt::Debug;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// Microseconds since the Unix epoch.
    fn unix_micros(&self) -> i64;

    /// Milliseconds since the Unix epoch (the driver's session timestamps).
    fn unix_millis(&self) -> u64 {
        u64::try_from(self.unix_micros().div_euclid(1000)).unwrap_or(0)
    }

    /// Whole seconds since the Unix epoch (JWT rules).
    fn unix_secs(&self) -> i64 {
        self.unix_micros().div_euclid(1_000_000)
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned clock read.
    fn unix_micros(&self) -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
    }
}

/// The system clock shifted by a fixed offset: tests use it to stand in the future or
/// the past without waiting.
#[derive(Debug, Default, Clone, Copy)]
pub struct OffsetClock {
    /// Added to the system time, in microseconds.
    pub offset_micros: i64,
}

impl Clock for OffsetClock {
    fn unix_micros(&self) -> i64 {
        SystemClock.unix_micros().saturating_add(self.offset_micros)
    }
}
