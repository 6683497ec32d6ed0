//! The one place the server reads the wall clock. Everything else takes the time
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

    /// Now as the registry stamps it (microseconds).
    fn timestamp(&self) -> tether_registry::model::Timestamp {
        tether_registry::model::Timestamp(self.unix_micros())
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

/// A clock that always reads the same instant: API tests use it for stable
/// timestamps.
#[derive(Debug, Default, Clone, Copy)]
pub struct FixedClock {
    /// The instant, in microseconds since the Unix epoch.
    pub unix_micros: i64,
}

impl FixedClock {
    /// A clock stopped at `secs` seconds since the Unix epoch.
    pub fn at_secs(secs: i64) -> Self {
        Self {
            unix_micros: secs.saturating_mul(1_000_000),
        }
    }
}

impl Clock for FixedClock {
    fn unix_micros(&self) -> i64 {
        self.unix_micros
    }
}
