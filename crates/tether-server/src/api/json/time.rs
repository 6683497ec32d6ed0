//! RFC 3339 timestamps as proto3 JSON writes them: UTC, `Z`, and 0, 3 or 6
//! fractional digits (the model keeps microseconds). The calendar and the parser are
//! `tether-iot`'s; this module fixes the API's rules on top of them.

use tether_iot::UnixTime;
use tether_registry::model::Timestamp;

/// `2024-05-01T12:00:00.250Z`.
pub fn format(t: Timestamp) -> String {
    UnixTime::from_micros(t.0).to_string()
}

/// Parses RFC 3339 (`T`, `Z` or an offset, up to 9 fractional digits; digits past the
/// microsecond are dropped). The error says what is expected.
pub fn parse(s: &str) -> Result<Timestamp, String> {
    let bad = || {
        format!(
            "'{s}' is not an RFC 3339 timestamp like 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.5+02:00"
        )
    };
    // proto3 JSON wants the `T`; the space RFC 3339 also allows is for people.
    if s.as_bytes().get(10) == Some(&b' ') {
        return Err(bad());
    }
    let t = UnixTime::parse_rfc3339(s).map_err(|_| bad())?;
    t.to_micros().map(Timestamp).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        for (text, micros) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-02-29T23:59:59.250Z", 1_709_251_199_250_000),
            ("2000-03-01T00:00:00.000001Z", 951_868_800_000_001),
        ] {
            assert_eq!(parse(text), Ok(Timestamp(micros)), "{text}");
            assert_eq!(format(Timestamp(micros)), text);
        }
        assert_eq!(
            parse("2024-05-01T14:00:00.5+02:00").map(format),
            Ok("2024-05-01T12:00:00.500Z".into())
        );
        assert_eq!(
            parse("2024-05-01T12:00:00.123456789Z"),
            parse("2024-05-01T12:00:00.123456Z")
        );
        assert_eq!(format(Timestamp(-1_000_000)), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "１９７０-01-01T00:00:00Z",
            "2024-05-01 12:00:00Z",
        ] {
            assert!(parse(bad).is_err_and(|e| e.contains("RFC 3339")), "{bad}");
        }
    }
}
