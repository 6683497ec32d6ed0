//! The `tether` command's one reading of the wall clock. The libraries take time as an
//! argument; intervals use tokio's monotonic `Instant`.

fn since_epoch() -> std::time::Duration {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whole seconds since 1970-01-01T00:00:00Z (JWT `iat`, certificate validity).
pub fn unix_secs() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Microseconds since 1970-01-01T00:00:00Z (payload send times for end-to-end latency
/// across processes).
pub fn unix_micros() -> u64 {
    u64::try_from(since_epoch().as_micros()).unwrap_or(u64::MAX)
}
