//! The simulator's one reading of the wall clock (payload send times for end-to-end
//! latency across processes); intervals use tokio's monotonic `Instant`.

/// Microseconds since 1970-01-01T00:00:00Z.
#[allow(clippy::disallowed_methods)]
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
