//! Day and second counts since the Unix epoch, written as ISO 8601 text.
//!
//! The generator samples dates and timestamps as plain integers, so turning one into text
//! must not fail or allocate more than its string: this is Howard Hinnant's `civil_from_days`,
//! which is exact over the whole proleptic Gregorian calendar.

use time::Date;

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
const SECONDS_PER_DAY: i64 = 86_400;

/// Days from 1970-01-01 to `date` (negative before it).
pub fn days_since_epoch(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
}

/// `YYYY-MM-DD` for a day count since 1970-01-01.
pub fn date(days: i64) -> String {
    let mut out = String::with_capacity(10);
    push_date(&mut out, days);
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC) for a second count since the Unix epoch.
pub fn timestamp(seconds: i64) -> String {
    let mut out = String::with_capacity(20);
    push_date(&mut out, seconds.div_euclid(SECONDS_PER_DAY));
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    out.push('T');
    push_digits(&mut out, of_day / 3600, 2);
    out.push(':');
    push_digits(&mut out, of_day / 60 % 60, 2);
    out.push(':');
    push_digits(&mut out, of_day % 60, 2);
    out.push('Z');
    out
}

/// Years outside 0000..=9999 get a sign and as many digits as they need.
fn push_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    if year < 0 {
        out.push('-');
    }
    let year = year.abs();
    push_digits(out, year, if year > 9999 { 5 } else { 4 });
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
}

/// Appends the last `width` decimal digits of a non-negative `value`, zero-padded.
fn push_digits(out: &mut String, value: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10_i64.pow(place) % 10) as u8;
        out.push(char::from(b'0' + digit));
    }
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, macros::date};

    #[test]
    fn the_epoch_and_leap_days_are_written_exactly() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(days_since_epoch(date!(2024 - 02 - 29))), "2024-02-29");
        assert_eq!(date(days_since_epoch(date!(2000 - 03 - 01))), "2000-03-01");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(-1), "1969-12-31T23:59:59Z");
        assert_eq!(timestamp(1_709_296_496), "2024-03-01T12:34:56Z");
    }

    #[test]
    fn years_beyond_four_digits_keep_their_sign_and_digits() {
        assert_eq!(
            civil_from_days(days_since_epoch(date!(-0001 - 12 - 31))),
            (-1, 12, 31)
        );
        assert_eq!(
            date(days_since_epoch(date!(-0001 - 12 - 31))),
            "-0001-12-31"
        );
    }

    #[test]
    fn any_day_in_times_range_matches_the_time_crate() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (min, max) = (Date::MIN.to_julian_day(), Date::MAX.to_julian_day());
        for _ in 0..20_000 {
            let expected = Date::from_julian_day(rng.random_range(min..=max)).unwrap();
            let (year, month, day) = civil_from_days(days_since_epoch(expected));
            assert_eq!(
                (year, month, day),
                (
                    i64::from(expected.year()),
                    i64::from(u8::from(expected.month())),
                    i64::from(expected.day())
                ),
                "{expected}"
            );
        }
    }

    #[test]
    fn any_second_between_years_0_and_9999_parses_back_as_itself() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let (min, max) = (-62_167_219_200_i64, 253_402_300_799_i64);
        for _ in 0..20_000 {
            let seconds = rng.random_range(min..=max);
            let text = timestamp(seconds);
            let parsed = OffsetDateTime::parse(&text, &Rfc3339).unwrap();
            assert_eq!(parsed.unix_timestamp(), seconds, "{text}");
        }
    }
}
