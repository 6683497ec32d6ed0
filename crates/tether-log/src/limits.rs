//! The limits a log runs with: its [`RetentionPolicy`] with the automatic
//! total cap turned into a number once, at open, from the free disk space.

use std::fmt;
use std::path::Path;

use crate::{RetentionPolicy, TotalCap};

/// The limits in force, as [`EmbeddedLog::limits`](crate::EmbeddedLog::limits)
/// reports them. Displayed as the server's banner says them, e.g.
/// `keeps 7 days, at most 10.0 GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Age limit in microseconds; None: none.
    pub max_age_micros: Option<i64>,
    /// Per-topic size limit; None: none.
    pub max_topic_bytes: Option<u64>,
    /// Size cap across all topics; None: none.
    pub max_total_bytes: Option<u64>,
}

impl Limits {
    /// `policy` with its total cap resolved for a log in `root` that already
    /// holds `used` bytes.
    pub(crate) fn resolve(policy: &RetentionPolicy, root: &Path, used: u64) -> Self {
        let max_total_bytes = match policy.max_total_bytes {
            TotalCap::Unlimited => None,
            TotalCap::Bytes(n) => Some(n),
            TotalCap::Auto => Some(auto_cap(free_space(root), used)),
        };
        Self {
            max_age_micros: policy.max_age_micros,
            max_topic_bytes: policy.max_bytes,
            max_total_bytes,
        }
    }
}

/// [`TotalCap::Auto`]: half of what the log could grow to (free space plus
/// what it holds), at most [`TotalCap::AUTO_MAX_BYTES`]. Unknown free space
/// (not a Unix file system) leaves the fixed maximum.
fn auto_cap(free: Option<u64>, used: u64) -> u64 {
    match free {
        Some(free) => (free.saturating_add(used) / 2).min(TotalCap::AUTO_MAX_BYTES),
        None => TotalCap::AUTO_MAX_BYTES,
    }
}

/// Bytes an unprivileged process may still write on the file system of `path`.
#[cfg(unix)]
fn free_space(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_space(_: &Path) -> Option<u64> {
    None
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.max_age_micros, self.max_total_bytes) {
            (Some(age), Some(cap)) => write!(f, "keeps {}, at most {}", Age(age), Size(cap))?,
            (Some(age), None) => write!(f, "keeps {}, with no size cap", Age(age))?,
            (None, Some(cap)) => write!(f, "keeps at most {}, of any age", Size(cap))?,
            (None, None) => f.write_str("keeps everything: no age limit, no size cap")?,
        }
        if let Some(n) = self.max_topic_bytes {
            write!(f, " ({} per topic)", Size(n))?;
        }
        Ok(())
    }
}

/// A duration in microseconds, in the largest whole unit.
struct Age(i64);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(i64, &str); 4] = [
            (86_400_000_000, "day"),
            (3_600_000_000, "hour"),
            (1_000_000, "second"),
            (1, "microsecond"),
        ];
        let (size, unit) = UNITS
            .into_iter()
            .find(|(size, _)| self.0 % size == 0)
            .unwrap_or((1, "microsecond"));
        let n = self.0 / size;
        write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

/// A size in bytes, with one decimal in the largest binary unit it reaches.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            (1u64 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        match units.into_iter().find(|(size, _)| self.0 >= *size) {
            Some((size, unit)) => write!(f, "{:.1} {unit}", self.0 as f64 / size as f64),
            None => write!(f, "{} bytes", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_is_half_of_what_the_log_could_use() {
        const GIB: u64 = 1 << 30;
        assert_eq!(auto_cap(Some(100 * GIB), 0), TotalCap::AUTO_MAX_BYTES);
        assert_eq!(auto_cap(Some(6 * GIB), 2 * GIB), 4 * GIB);
        assert_eq!(auto_cap(Some(0), 0), 0);
        assert_eq!(auto_cap(None, 0), TotalCap::AUTO_MAX_BYTES);
        assert_eq!(auto_cap(Some(u64::MAX), u64::MAX), TotalCap::AUTO_MAX_BYTES);
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits::resolve(&RetentionPolicy::default(), dir.path(), 0);
        assert!(
            limits
                .max_total_bytes
                .is_some_and(|n| n > 0 && n <= TotalCap::AUTO_MAX_BYTES),
            "{limits:?}"
        );
    }

    #[test]
    fn limits_read_as_the_banner_says_them() {
        let limits = Limits {
            max_age_micros: Some(RetentionPolicy::DEFAULT_MAX_AGE_MICROS),
            max_topic_bytes: None,
            max_total_bytes: Some(TotalCap::AUTO_MAX_BYTES),
        };
        assert_eq!(limits.to_string(), "keeps 7 days, at most 10.0 GiB");
        let limits = Limits {
            max_age_micros: Some(3_600_000_000),
            max_topic_bytes: Some(1536 << 20),
            max_total_bytes: None,
        };
        assert_eq!(
            limits.to_string(),
            "keeps 1 hour, with no size cap (1.5 GiB per topic)"
        );
        let limits = Limits {
            max_age_micros: None,
            max_topic_bytes: None,
            max_total_bytes: Some(1000),
        };
        assert_eq!(limits.to_string(), "keeps at most 1000 bytes, of any age");
        let none = Limits {
            max_total_bytes: None,
            ..limits
        };
        assert_eq!(
            none.to_string(),
            "keeps everything: no age limit, no size cap"
        );
        assert_eq!(Age(90_000_000).to_string(), "90 seconds");
    }
}
