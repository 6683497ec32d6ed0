//! RFC 3339 timestamps, as IoT Core's REST API writes them (`2024-05-01T12:00:00.250Z`)
//! and as people type them (`2024-05-01T14:00:00+02:00`).
//!
//! Parsing needs no allocator. Formatting is [`fmt::Display`], so it writes into any
//! [`fmt::Write`]: a caller's fixed buffer on a device, a `String` with `alloc`.

use core::fmt;

use crate::calendar::Date;

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: u32 = 1_000_000_000;

/// An instant: seconds since 1970-01-01T00:00:00Z and the nanoseconds within that
/// second (`nanos` < 1 000 000 000). Unix time: no leap seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnixTime {
    /// Whole seconds, negative before 1970.
    pub secs: i64,
    /// Nanoseconds after `secs`.
    pub nanos: u32,
}

impl UnixTime {
    /// A whole second.
    #[must_use]
    pub const fn from_secs(secs: i64) -> Self {
        Self { secs, nanos: 0 }
    }

    /// Microseconds since the epoch (how the registry stores times).
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self {
            secs: micros.div_euclid(1_000_000),
            // 0..1_000_000, so the product fits.
            nanos: micros.rem_euclid(1_000_000) as u32 * 1000,
        }
    }

    /// Microseconds since the epoch (sub-microsecond digits dropped), or `None` past
    /// ±292 000 years.
    #[must_use]
    pub const fn to_micros(self) -> Option<i64> {
        match self.secs.checked_mul(1_000_000) {
            Some(micros) => micros.checked_add((self.nanos / 1000) as i64),
            None => None,
        }
    }

    /// Parses RFC 3339 §5.6: `YYYY-MM-DD`, `T` (or `t`, or the space the RFC allows),
    /// `HH:MM:SS`, an optional fraction of 1–9 digits, then `Z` or `±HH:MM`. A leap
    /// second (`:60`) reads as `:59`, since Unix time has none.
    ///
    /// # Errors
    /// [`Rfc3339Error`] saying which part is wrong.
    pub fn parse_rfc3339(text: &str) -> Result<Self, Rfc3339Error> {
        let b = text.as_bytes();
        let layout = b.len() >= 19
            && b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        if !layout {
            return Err(Rfc3339Error::Layout);
        }
        let field = |at: usize, len: usize| number(text, at, len).ok_or(Rfc3339Error::Layout);
        let (year, month, day) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
        let (hour, minute, second) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
        // The fields have at most four digits, so the narrowing casts are exact.
        let date = Date::new(year, month as u8, day as u8).ok_or(Rfc3339Error::Date)?;
        if hour > 23 || minute > 59 || second > 60 {
            return Err(Rfc3339Error::Time);
        }
        let (nanos, rest) = fraction(text.get(19..).ok_or(Rfc3339Error::Layout)?)?;
        let offset = offset_secs(rest)?;
        let days = date.to_days().ok_or(Rfc3339Error::Date)?;
        Ok(Self {
            secs: days * SECS_PER_DAY + hour * 3600 + minute * 60 + second.min(59) - offset,
            nanos,
        })
    }
}

/// `len` ASCII digits at `at`, as a number.
fn number(text: &str, at: usize, len: usize) -> Option<i64> {
    let digits = text.get(at..at + len)?;
    digits.bytes().try_fold(0i64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// An optional `.digits` at the start of `rest`: the nanoseconds and what follows.
fn fraction(rest: &str) -> Result<(u32, &str), Rfc3339Error> {
    let Some(digits_on) = rest.strip_prefix('.') else {
        return Ok((0, rest));
    };
    let len = digits_on.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > 9 {
        return Err(Rfc3339Error::Fraction);
    }
    let (digits, after) = digits_on.split_at(len);
    let value = digits
        .bytes()
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    // Scale to nanoseconds: `.5` is 500 000 000.
    Ok((value * 10u32.pow(9 - len as u32), after))
}

/// `Z` or `±HH:MM`, as seconds east of UTC.
fn offset_secs(rest: &str) -> Result<i64, Rfc3339Error> {
    if rest == "Z" || rest == "z" {
        return Ok(0);
    }
    let sign = match rest.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(Rfc3339Error::Offset),
    };
    if rest.len() != 6 || rest.as_bytes()[3] != b':' {
        return Err(Rfc3339Error::Offset);
    }
    match (number(rest, 1, 2), number(rest, 4, 2)) {
        (Some(hours @ 0..=23), Some(minutes @ 0..=59)) => Ok(sign * (hours * 3600 + minutes * 60)),
        _ => Err(Rfc3339Error::Offset),
    }
}

impl fmt::Display for UnixTime {
    /// UTC with `Z`, and 0, 3, 6 or 9 fractional digits: the fewest that keep the
    /// value (what proto3 JSON writes for a `google.protobuf.Timestamp`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = Date::from_days(self.secs.div_euclid(SECS_PER_DAY));
        let in_day = self.secs.rem_euclid(SECS_PER_DAY);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            date.year,
            date.month,
            date.day,
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60
        )?;
        let nanos = self.nanos % NANOS_PER_SEC;
        match nanos {
            0 => {}
            _ if nanos.is_multiple_of(1_000_000) => write!(f, ".{:03}", nanos / 1_000_000)?,
            _ if nanos.is_multiple_of(1000) => write!(f, ".{:06}", nanos / 1000)?,
            _ => write!(f, ".{nanos:09}")?,
        }
        f.write_str("Z")
    }
}

/// Why text is not an RFC 3339 timestamp.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc3339Error {
    /// Not `YYYY-MM-DDTHH:MM:SS…` with digits where digits belong.
    Layout,
    /// No such day (month 13, 30 February, …).
    Date,
    /// Hour, minute or second out of range.
    Time,
    /// A `.` without 1–9 digits after it.
    Fraction,
    /// Not `Z` or `±HH:MM` at the end.
    Offset,
}

impl fmt::Display for Rfc3339Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Layout => "expected YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or ±HH:MM",
            Self::Date => "no such date",
            Self::Time => "hour, minute or second out of range",
            Self::Fraction => "a fraction needs 1 to 9 digits after the '.'",
            Self::Offset => "expected Z or an offset like +02:00 at the end",
        })
    }
}

impl core::error::Error for Rfc3339Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn parse(text: &str) -> Result<UnixTime, Rfc3339Error> {
        UnixTime::parse_rfc3339(text)
    }

    #[test]
    fn formats_with_the_fewest_digits() {
        assert_eq!(UnixTime::from_secs(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime::from_secs(-1).to_string(), "1969-12-31T23:59:59Z");
        assert_eq!(
            UnixTime::from_micros(1_709_251_199_250_000).to_string(),
            "2024-02-29T23:59:59.250Z"
        );
        assert_eq!(
            UnixTime::from_micros(951_868_800_000_001).to_string(),
            "2000-03-01T00:00:00.000001Z"
        );
        let nanos = UnixTime { secs: 0, nanos: 5 };
        assert_eq!(nanos.to_string(), "1970-01-01T00:00:00.000000005Z");
    }

    #[test]
    fn formats_into_a_caller_buffer() {
        struct Buf<'a>(&'a mut [u8], usize);
        impl fmt::Write for Buf<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let end = self.1 + s.len();
                self.0
                    .get_mut(self.1..end)
                    .ok_or(fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let mut bytes = [0u8; 32];
        let mut buf = Buf(&mut bytes, 0);
        fmt::write(
            &mut buf,
            format_args!("{}", UnixTime::from_secs(1_798_159_815)),
        )
        .expect("fits");
        let len = buf.1;
        assert_eq!(&bytes[..len], b"2026-12-25T00:50:15Z");
    }

    #[test]
    fn parses_offsets_fractions_and_separators() {
        let t = UnixTime::from_secs(1_798_159_815);
        for text in [
            "2026-12-25T00:50:15Z",
            "2026-12-25t00:50:15z",
            "2026-12-25 00:50:15Z",
            "2026-12-25T02:50:15+02:00",
            "2026-12-24T19:50:15-05:00",
        ] {
            assert_eq!(parse(text), Ok(t), "{text}");
        }
        assert_eq!(
            parse("2024-05-01T14:00:00.5+02:00").map(|t| t.to_string()),
            Ok("2024-05-01T12:00:00.500Z".into())
        );
        assert_eq!(
            parse("2024-05-01T12:00:00.123456789Z").map(|t| t.nanos),
            Ok(123_456_789)
        );
        assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2016-12-31T23:59:59Z"));
    }

    #[test]
    fn says_what_is_wrong() {
        use Rfc3339Error::*;
        for (text, error) in [
            ("", Layout),
            ("2024-05-01", Layout),
            ("2024-05-01T12:00:00", Offset),
            ("2024-05-01T12:0a:00Z", Layout),
            ("１９７０-01-01T00:00:00Z", Layout),
            ("2024-13-01T00:00:00Z", Date),
            ("2023-02-29T00:00:00Z", Date),
            ("2024-04-31T00:00:00Z", Date),
            ("2024-05-01T24:00:00Z", Time),
            ("2024-05-01T12:00:61Z", Time),
            ("2024-05-01T12:00:00.Z", Fraction),
            ("2024-05-01T12:00:00.1234567890Z", Fraction),
            ("2024-05-01T12:00:00+2:00", Offset),
            ("2024-05-01T12:00:00+24:00", Offset),
            ("2024-05-01T12:00:00Zjunk", Offset),
        ] {
            assert_eq!(parse(text), Err(error), "{text}");
        }
    }

    #[test]
    fn micros_round_trip() {
        for micros in [0, -1, 1_709_251_199_250_000, -62_135_596_800_000_000] {
            assert_eq!(UnixTime::from_micros(micros).to_micros(), Some(micros));
        }
        assert_eq!(UnixTime::from_secs(i64::MAX).to_micros(), None);
    }
}
