//! Formatting Unix times and durations for people, without a clock or a time crate.
//! The calendar and RFC 3339 are `tether-iot`'s; this module fixes how tokens show them.

use core::fmt;

use tether_iot::UnixTime;

/// Seconds since the Unix epoch shown as RFC 3339 UTC (`2026-11-26T01:10:15Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc(pub i64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&UnixTime::from_secs(self.0), f)
    }
}

/// Parses RFC 3339 (`2026-11-26T01:10:15Z`, `…+02:00`, up to 9 fractional digits,
/// ignored) or plain epoch seconds, with surrounding spaces.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    UnixTime::parse_rfc3339(s).ok().map(|t| t.secs)
}

/// A duration in seconds shown compactly: `45 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub u64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            0..60 => write!(f, "{s} s"),
            60..3600 if s.is_multiple_of(60) => write!(f, "{} min", s / 60),
            60..3600 => write!(f, "{} min {} s", s / 60, s % 60),
            3600..86_400 if s % 3600 / 60 == 0 => write!(f, "{} h", s / 3600),
            3600..86_400 => write!(f, "{} h {} min", s / 3600, s % 3600 / 60),
            _ if s % 86_400 / 3600 == 0 => write!(f, "{} d", s / 86_400),
            _ => write!(f, "{} d {} h", s / 86_400, s % 86_400 / 3600),
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn formats_and_parses_utc() {
        assert_eq!(Utc(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Utc(1_798_159_815).to_string(), "2026-12-25T00:50:15Z");
        assert_eq!(Utc(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Utc(-1).to_string(), "1969-12-31T23:59:59Z");
        for t in [0, 951_782_400, 1_798_159_815, 4_102_444_800, -86_401] {
            assert_eq!(parse_time(&Utc(t).to_string()), Some(t));
        }
        assert_eq!(
            parse_time("2026-12-25T02:50:15.25+02:00"),
            Some(1_798_159_815)
        );
        assert_eq!(parse_time("1798159815"), Some(1_798_159_815));
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-12-25",
            "2026-12-25T01:30:15",
            "soon",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(Span(45).to_string(), "45 s");
        assert_eq!(Span(600).to_string(), "10 min");
        assert_eq!(Span(725).to_string(), "12 min 5 s");
        assert_eq!(Span(12_000).to_string(), "3 h 20 min");
        assert_eq!(Span(86_400 * 2 + 3600 * 4).to_string(), "2 d 4 h");
    }
}
