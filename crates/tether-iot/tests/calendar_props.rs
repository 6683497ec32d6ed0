//! Property tests for the calendar and RFC 3339: round trips over a wide range, a slow
//! day-counting oracle, and no panics on any input.

use proptest::prelude::*;
use tether_iot::calendar::{Date, days_in_month, is_leap_year};
use tether_iot::{Rfc3339Error, UnixTime};

/// Days since 1970-01-01 by counting whole years and months: slow, obviously right.
fn oracle_days(date: Date) -> i64 {
    let year_days = |y: i64| if is_leap_year(y) { 366 } else { 365 };
    let mut days: i64 = if date.year >= 1970 {
        (1970..date.year).map(year_days).sum()
    } else {
        -(date.year..1970).map(year_days).sum::<i64>()
    };
    days += (1..date.month)
        .map(|m| i64::from(days_in_month(date.year, m)))
        .sum::<i64>();
    days + i64::from(date.day) - 1
}

fn valid_date(years: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Date> {
    (years, 1u8..=12, 1u8..=31).prop_filter_map("no such day", |(y, m, d)| Date::new(y, m, d))
}

/// The widest day count whose date still converts back without overflow (a year of
/// about 9 × 10¹³).
const WIDE: i64 = 1 << 55;

proptest! {
    #[test]
    fn days_round_trip_over_a_wide_range(days in -WIDE..=WIDE) {
        prop_assert_eq!(Date::from_days(days).to_days(), Some(days));
    }

    #[test]
    fn dates_round_trip_over_a_wide_range(date in valid_date(-1_000_000_000..=1_000_000_000)) {
        let days = date.to_days().expect("fits");
        prop_assert_eq!(Date::from_days(days), date);
    }

    #[test]
    fn the_next_day_follows(days in -WIDE..WIDE) {
        let (today, tomorrow) = (Date::from_days(days), Date::from_days(days + 1));
        let expected = if today.day < days_in_month(today.year, today.month) {
            Date { day: today.day + 1, ..today }
        } else if today.month < 12 {
            Date { month: today.month + 1, day: 1, ..today }
        } else {
            Date { year: today.year + 1, month: 1, day: 1 }
        };
        prop_assert_eq!(tomorrow, expected);
    }

    #[test]
    fn agrees_with_counting_days(date in valid_date(1..=4000)) {
        prop_assert_eq!(date.to_days(), Some(oracle_days(date)));
    }

    #[test]
    fn any_day_count_gives_a_real_date(days in any::<i64>()) {
        let date = Date::from_days(days);
        prop_assert_eq!(Date::new(date.year, date.month, date.day), Some(date));
    }

    #[test]
    fn rfc3339_round_trips(
        secs in -62_167_219_200i64..=253_402_300_799, // 0000-01-01 ..= 9999-12-31
        nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
    ) {
        let time = UnixTime { secs, nanos };
        prop_assert_eq!(UnixTime::parse_rfc3339(&time.to_string()), Ok(time));
    }

    #[test]
    fn rfc3339_never_panics(text in "\\PC{0,40}") {
        let _ = UnixTime::parse_rfc3339(&text);
    }

    #[test]
    fn rfc3339_near_misses_never_panic(
        text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2}|.{0,3})"
    ) {
        match UnixTime::parse_rfc3339(&text) {
            Ok(time) => prop_assert!(time.nanos < 1_000_000_000),
            Err(e) => prop_assert!(e != Rfc3339Error::Layout, "{text}: {e}"),
        }
    }
}
