//! RFC 3339 timestamps as proto3 JSON writes them: UTC, `Z`, and 0, 3 or 6
//! fractional digits (the model keeps microseconds).

use tether_registry::model::Timestamp;

const MICROS: i64 = 1_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2024-05-01T12:00:00.250Z`.
pub fn format(t: Timestamp) -> String {
    let secs = t.0.div_euclid(MICROS);
    let micros = t.0.rem_euclid(MICROS);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let base = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if micros == 0 {
        format!("{base}Z")
    } else if micros % 1000 == 0 {
        format!("{base}.{:03}Z", micros / 1000)
    } else {
        format!("{base}.{micros:06}Z")
    }
}

fn digits(s: &str, from: usize, n: usize) -> Option<i64> {
    let part = s.get(from..from + n)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Parses RFC 3339 (`Z` or an offset, up to 9 fractional digits; digits past the
/// microsecond are dropped). The error says what is expected.
pub fn parse(s: &str) -> Result<Timestamp, String> {
    let bad = || {
        format!(
            "'{s}' is not an RFC 3339 timestamp like 2024-05-01T12:00:00Z or 2024-05-01T14:00:00.5+02:00"
        )
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d) = (
        digits(s, 0, 4).ok_or_else(bad)?,
        digits(s, 5, 2).ok_or_else(bad)?,
        digits(s, 8, 2).ok_or_else(bad)?,
    );
    let (h, mi, se) = (
        digits(s, 11, 2).ok_or_else(bad)?,
        digits(s, 14, 2).ok_or_else(bad)?,
        digits(s, 17, 2).ok_or_else(bad)?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    if d > month_days[(mo - 1) as usize] {
        return Err(bad());
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() || frac.len() > 9 {
            return Err(bad());
        }
        let six: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        micros = six.parse().map_err(|_| bad())?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let oh = digits(rest, 1, 2).ok_or_else(bad)?;
            let om = digits(rest, 4, 2).ok_or_else(bad)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se.min(59) - offset;
    Ok(Timestamp(secs * MICROS + micros))
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
        ] {
            assert!(parse(bad).is_err_and(|e| e.contains("RFC 3339")), "{bad}");
        }
    }
}
