//! Calendar fields read from a value — by the ISO 8601 reader or a spec format — and the
//! checks that make them a real date, time of day and UTC offset, with the reasons when not.

use time::{Date, Month, Time, UtcOffset};

/// The earliest and latest years accepted: four digits, no year 0 (PostgreSQL has none).
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;
/// Fraction digits PostgreSQL keeps; more are accepted only when they are zeros.
const MICRO_DIGITS: u32 = 6;

/// What a reader found, before any of it is known to be valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Fields {
    /// The year.
    pub year: u32,
    /// The month, 1-based.
    pub month: u32,
    /// The day of the month.
    pub day: u32,
    /// Hour of the day (0–23), or on a 12-hour clock when `pm` is set.
    pub hour: u32,
    /// `Some(true)` for PM, `Some(false)` for AM: `hour` is then 1–12.
    pub pm: Option<bool>,
    /// Minutes.
    pub minute: u32,
    /// Seconds.
    pub second: u32,
    /// The fraction of a second: its digits as a number, and how many digits were written.
    pub fraction: (u32, u32),
    /// A UTC offset, when one was written.
    pub offset: Option<Offset>,
}

/// A UTC offset as written: `Z` is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Offset {
    /// West of UTC.
    pub negative: bool,
    /// Hours.
    pub hours: u32,
    /// Minutes.
    pub minutes: u32,
}

impl Fields {
    /// The calendar date, or why it is none: `31 February 2023 is not a date`.
    pub(super) fn date(&self) -> Result<Date, String> {
        let year = i32::try_from(self.year).unwrap_or(i32::MAX);
        if !YEARS.contains(&year) {
            return Err(format!("year {year} is out of range (0001 to 9999)"));
        }
        let month = u8::try_from(self.month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(|| format!("month {} does not exist", self.month))?;
        let day = u8::try_from(self.day).unwrap_or(0);
        if day == 0 || day > month.length(year) {
            return Err(format!("{} {month} {year} is not a date", self.day));
        }
        Date::from_calendar_date(year, month, day).map_err(|e| e.to_string())
    }

    /// The time of day to the microsecond, or why it is none: `25:00:00 is not a time of day`.
    pub(super) fn time(&self) -> Result<Time, String> {
        let not_a_time = || {
            let am_pm = match self.pm {
                Some(true) => " PM",
                Some(false) => " AM",
                None => "",
            };
            let (h, m, s) = (self.hour, self.minute, self.second);
            format!("{h:02}:{m:02}:{s:02}{am_pm} is not a time of day")
        };
        let hour = match self.pm {
            Some(pm) if (1..=12).contains(&self.hour) => self.hour % 12 + if pm { 12 } else { 0 },
            Some(_) => return Err(not_a_time()),
            None => self.hour,
        };
        let micro = self.micros()?;
        let small = |n: u32| u8::try_from(n).unwrap_or(u8::MAX);
        Time::from_hms_micro(small(hour), small(self.minute), small(self.second), micro)
            .map_err(|_| not_a_time())
    }

    /// The fraction in microseconds; refused when digits beyond the sixth are not zeros.
    fn micros(&self) -> Result<u32, String> {
        let (value, digits) = self.fraction;
        if digits <= MICRO_DIGITS {
            return Ok(value * 10_u32.pow(MICRO_DIGITS - digits));
        }
        let excess = 10_u32.pow(digits - MICRO_DIGITS);
        if value.is_multiple_of(excess) {
            Ok(value / excess)
        } else {
            Err("more precise than microseconds".to_owned())
        }
    }

    /// The written offset, if any, or why it is none: `offset +24:00 is out of range`.
    pub(super) fn offset(&self) -> Result<Option<UtcOffset>, String> {
        let Some(o) = self.offset else {
            return Ok(None);
        };
        let sign = if o.negative { -1 } else { 1 };
        let out_of_range = || {
            let s = if o.negative { '-' } else { '+' };
            format!("offset {s}{:02}:{:02} is out of range", o.hours, o.minutes)
        };
        if o.hours > 23 || o.minutes > 59 {
            return Err(out_of_range());
        }
        let part = |n: u32| sign * i8::try_from(n).unwrap_or(i8::MAX);
        UtcOffset::from_hms(part(o.hours), part(o.minutes), 0)
            .map(Some)
            .map_err(|_| out_of_range())
    }
}

/// Reads a value byte by byte, for the ISO reader and the format reader alike.
pub(super) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `value`.
    pub(super) fn new(value: &'a str) -> Self {
        Self {
            rest: value.as_bytes(),
        }
    }

    /// Whether everything has been read.
    pub(super) fn is_done(&self) -> bool {
        self.rest.is_empty()
    }

    /// Consumes `byte` if it comes next.
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        self.eat_any(&[byte])
    }

    /// Consumes one of `bytes` if it comes next.
    pub(super) fn eat_any(&mut self, bytes: &[u8]) -> bool {
        match self.rest.split_first() {
            Some((b, tail)) if bytes.contains(b) => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    /// Consumes `text` if it comes next, exactly.
    pub(super) fn eat_exact(&mut self, text: &str) -> bool {
        match self.rest.strip_prefix(text.as_bytes()) {
            Some(tail) => {
                self.rest = tail;
                true
            }
            None => false,
        }
    }

    /// Consumes `word` if it comes next, ignoring ASCII case.
    pub(super) fn eat_word(&mut self, word: &str) -> bool {
        match self.rest.split_at_checked(word.len()) {
            Some((head, tail)) if head.eq_ignore_ascii_case(word.as_bytes()) => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    /// Consumes `min` to `max` (at most 9) digits, as many as there are.
    pub(super) fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self
            .rest
            .iter()
            .take(max.min(9))
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return None;
        }
        let (digits, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    }

    /// Consumes 1 to 9 fraction digits: (their value, how many).
    pub(super) fn fraction(&mut self) -> Option<(u32, u32)> {
        let before = self.rest.len();
        let value = self.number(1, 9)?;
        let digits = u32::try_from(before - self.rest.len()).unwrap_or(9);
        Some((value, digits))
    }

    /// Consumes `Z`, `±HH`, `±HHMM` or `±HH:MM`.
    pub(super) fn offset(&mut self) -> Option<Offset> {
        if self.eat_any(b"Zz") {
            return Some(Offset::default());
        }
        let negative = match self.rest.split_first() {
            Some((b'+', tail)) => {
                self.rest = tail;
                false
            }
            Some((b'-', tail)) => {
                self.rest = tail;
                true
            }
            _ => return None,
        };
        let hours = self.number(2, 2)?;
        let minutes = if self.eat(b':') {
            self.number(2, 2)?
        } else {
            self.number(2, 2).unwrap_or(0)
        };
        Some(Offset {
            negative,
            hours,
            minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Cursor, Fields, Offset};

    fn day(year: u32, month: u32, day: u32) -> Fields {
        Fields {
            year,
            month,
            day,
            ..Fields::default()
        }
    }

    #[test]
    fn impossible_dates_are_named_in_the_reason() {
        assert!(day(2024, 2, 29).date().is_ok());
        let cases = [
            (day(2023, 2, 29), "29 February 2023 is not a date"),
            (day(2024, 2, 31), "31 February 2024 is not a date"),
            (day(2024, 4, 0), "0 April 2024 is not a date"),
            (day(2024, 13, 1), "month 13 does not exist"),
            (day(0, 1, 1), "year 0 is out of range (0001 to 9999)"),
        ];
        for (fields, reason) in cases {
            assert_eq!(fields.date(), Err(reason.to_owned()));
        }
    }

    #[test]
    fn times_take_a_12_hour_clock_and_refuse_lost_precision() {
        let at = |hour, pm, fraction| Fields {
            hour,
            pm,
            fraction,
            ..Fields::default()
        };
        assert_eq!(at(12, Some(false), (0, 0)).time().map(|t| t.hour()), Ok(0));
        assert_eq!(at(12, Some(true), (0, 0)).time().map(|t| t.hour()), Ok(12));
        assert_eq!(at(1, Some(true), (0, 0)).time().map(|t| t.hour()), Ok(13));
        assert_eq!(
            at(13, Some(true), (0, 0)).time(),
            Err("13:00:00 PM is not a time of day".to_owned())
        );
        assert_eq!(
            at(24, None, (0, 0)).time(),
            Err("24:00:00 is not a time of day".to_owned())
        );
        assert_eq!(
            at(1, None, (5, 1)).time().map(|t| t.microsecond()),
            Ok(500_000)
        );
        assert_eq!(
            at(1, None, (123_456_000, 9))
                .time()
                .map(|t| t.microsecond()),
            Ok(123_456)
        );
        assert_eq!(
            at(1, None, (123_456_789, 9)).time(),
            Err("more precise than microseconds".to_owned())
        );
    }

    #[test]
    fn cursor_reads_offsets_in_every_iso_spelling() {
        let read = |s| Cursor::new(s).offset();
        let east = |hours, minutes| {
            Some(Offset {
                negative: false,
                hours,
                minutes,
            })
        };
        assert_eq!(read("Z"), Some(Offset::default()));
        assert_eq!(read("+05:30"), east(5, 30));
        assert_eq!(read("+0530"), east(5, 30));
        assert_eq!(read("+05"), east(5, 0));
        assert_eq!(read("-08:00").map(|o| o.negative), Some(true));
        assert_eq!(read("+5"), None);
        assert_eq!(read("05:00"), None);
    }

    #[test]
    fn out_of_range_offsets_are_refused() {
        let fields = Fields {
            offset: Some(Offset {
                negative: false,
                hours: 24,
                minutes: 0,
            }),
            ..Fields::default()
        };
        assert_eq!(
            fields.offset(),
            Err("offset +24:00 is out of range".to_owned())
        );
    }
}
