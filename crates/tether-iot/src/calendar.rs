//! Calendar arithmetic: proleptic Gregorian dates to Unix day numbers and back, with
//! no clock and no allocator. RFC 3339 text is built on it in [`crate::rfc3339`].
//!
//! The conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`: whole
//! 400-year eras of 146 097 days, and years that start on 1 March so that the leap
//! day falls last.

/// Days in a 400-year era.
const ERA_DAYS: i64 = 146_097;
/// Days from 0000-03-01 (the start of the era arithmetic) to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

/// A day of the proleptic Gregorian calendar. Year 0 is 1 BC; `month` is 1–12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// The year, e.g. 2024.
    pub year: i64,
    /// The month, 1–12.
    pub month: u8,
    /// The day of the month, 1–31.
    pub day: u8,
}

/// Whether `year` has a 29 February.
#[must_use]
pub const fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` of `year`; 0 for a month outside 1–12.
#[must_use]
pub const fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// The date, if that day exists.
    #[must_use]
    pub const fn new(year: i64, month: u8, day: u8) -> Option<Self> {
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// The date `days` days after 1970-01-01 (before it when negative). Defined for
    /// every `i64`.
    #[must_use]
    pub const fn from_days(days: i64) -> Self {
        // Shifting by EPOCH_SHIFT after the division, not before, cannot overflow.
        let shifted = days.rem_euclid(ERA_DAYS) + EPOCH_SHIFT;
        let era = days.div_euclid(ERA_DAYS) + shifted / ERA_DAYS;
        let day_of_era = shifted % ERA_DAYS; // 0..=146_096
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let march_month = (5 * day_of_year + 2) / 153; // 0 = March … 11 = February
        let day = day_of_year - (153 * march_month + 2) / 5 + 1;
        let month = if march_month < 10 {
            march_month + 3
        } else {
            march_month - 9
        };
        Self {
            year: year_of_era + era * 400 + (month <= 2) as i64,
            // Both are small by construction: 1..=12 and 1..=31.
            month: month as u8,
            day: day as u8,
        }
    }

    /// Days since 1970-01-01 (negative before it), or `None` when the count does not
    /// fit in an `i64` (years beyond about ±2.5 × 10¹⁶). Meant for valid dates; see
    /// [`Date::new`].
    #[must_use]
    pub fn to_days(self) -> Option<i64> {
        let month = i64::from(self.month);
        let year = if month <= 2 {
            self.year.checked_sub(1)?
        } else {
            self.year
        };
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let march_month = if month > 2 { month - 3 } else { month + 9 };
        let day_of_year = (153 * march_month + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era.checked_mul(ERA_DAYS)?
            .checked_add(day_of_era - EPOCH_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Day numbers from Python's `datetime.date.toordinal()` minus 1970-01-01's; year 0
    /// (a leap year) from 0001-01-01 less 366 days.
    const KNOWN: [(i64, i64, u8, u8); 11] = [
        (0, 1970, 1, 1),
        (-1, 1969, 12, 31),
        (10_957, 2000, 1, 1),
        (11_016, 2000, 2, 29),
        (11_017, 2000, 3, 1),
        (19_782, 2024, 2, 29),
        (-25_508, 1900, 3, 1),
        (-719_162, 1, 1, 1),
        (-719_468, 0, 3, 1),
        (-719_528, 0, 1, 1),
        (2_932_896, 9999, 12, 31),
    ];

    #[test]
    fn known_dates() {
        for (days, year, month, day) in KNOWN {
            let date = Date::new(year, month, day).expect("a real date");
            assert_eq!(Date::from_days(days), date, "{days}");
            assert_eq!(date.to_days(), Some(days), "{date:?}");
        }
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(is_leap_year(2000) && is_leap_year(2024) && is_leap_year(0));
        assert!(!is_leap_year(1900) && !is_leap_year(2023) && !is_leap_year(2100));
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2024, 4), 30);
        assert_eq!(days_in_month(2024, 13), 0);
        assert_eq!(Date::new(2023, 2, 29), None);
        assert_eq!(Date::new(2024, 0, 1), None);
        assert_eq!(Date::new(2024, 1, 0), None);
    }

    #[test]
    fn the_ends_of_i64_do_not_overflow() {
        for days in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
            let date = Date::from_days(days);
            assert!((1..=12).contains(&date.month) && (1..=31).contains(&date.day));
            // The way back may not fit, but it never panics.
            let _ = date.to_days();
        }
        assert_eq!(
            Date {
                year: i64::MIN,
                month: 1,
                day: 1
            }
            .to_days(),
            None
        );
    }
}
