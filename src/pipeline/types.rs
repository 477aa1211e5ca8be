//! Column types: what a source says each column holds, so that typed formats (Parquet, XLSX)
//! write numbers as numbers and dates as dates instead of text.
//!
//! Rows stay [`serde_json::Value`]s (one representation for every source and codec); a
//! column's [`ColumnType`] says how to read its values. The accessors below accept the forms
//! sources give:
//!
//! * integers and floats: JSON numbers, or their text (`"NaN"`, `"Infinity"`, `"-Infinity"`
//!   for the floats JSON cannot hold);
//! * booleans: JSON booleans, or `0`/`1` and `t`/`f`/`true`/`false` (SQLite has no boolean);
//! * decimals: their exact text (`"-12.50"`) — never a float, which would round them;
//! * dates: `YYYY-MM-DD` text, or a JSON integer of days since 1970-01-01 (PostgreSQL's binary
//!   path gives that and saves a round trip through text);
//! * timestamps: RFC 3339 / ISO 8601 text (`T` or a space between date and time, an optional
//!   fraction and offset; no offset means UTC), or a JSON integer of microseconds since the
//!   Unix epoch;
//! * text: any value; numbers and booleans as their JSON text, arrays and objects as compact
//!   JSON.
//!
//! A value that does not fit its column's type (a SQLite column declared `INTEGER` holding
//! `'abc'`) is an error that names the column: a typed file never silently changes a value.

use serde_json::Value;
use std::borrow::Cow;

/// What a column holds, as far as file formats care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `true` / `false`.
    Bool,
    /// A 16-bit integer (`smallint`).
    Int16,
    /// A 32-bit integer (`integer`).
    Int32,
    /// A 64-bit integer (`bigint`, SQLite `INTEGER`, the generator's `int`).
    Int64,
    /// A 32-bit float (`real`).
    Float32,
    /// A 64-bit float (`double precision`, SQLite `REAL`, the generator's `float`).
    Float64,
    /// An exact decimal with `precision` digits, `scale` of them after the point
    /// (`numeric(p,s)`; precision at most 38).
    Decimal { precision: u8, scale: u8 },
    /// A calendar date.
    Date,
    /// A date and time without a zone (`timestamp`), microsecond precision.
    Timestamp,
    /// An instant (`timestamptz`), written in UTC, microsecond precision.
    Timestamptz,
    /// A UUID, written as its text.
    Uuid,
    /// JSON, written as its text.
    Json,
    /// Anything else, written as text.
    Text,
}

/// A column of a source: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The name, as the header shows it.
    pub name: String,
    /// What it holds.
    pub kind: ColumnType,
}

impl Column {
    /// A column named `name` of type `kind`.
    pub fn new(name: impl Into<String>, kind: ColumnType) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }

    /// A text column (for sources that know no types, such as the rows of a rejects report).
    pub fn text(name: impl Into<String>) -> Self {
        Self::new(name, ColumnType::Text)
    }
}

/// The largest decimal precision typed formats take (Parquet's and Arrow's 128-bit decimals).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// A value that does not fit its column's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}: {value} is not a valid {expected}")]
pub struct Mismatch {
    pub column: String,
    pub value: String,
    pub expected: &'static str,
}

impl Mismatch {
    /// The mismatch of `value` in `column`, which should have been `expected`. Long values are
    /// cut in the message.
    pub fn new(column: &Column, value: &Value, expected: &'static str) -> Self {
        let mut value = value.to_string();
        if value.len() > 64 {
            let cut = (0..=64).rev().find(|&i| value.is_char_boundary(i));
            value.truncate(cut.unwrap_or(0));
            value.push('…');
        }
        Self {
            column: column.name.clone(),
            value,
            expected,
        }
    }
}

impl From<Mismatch> for std::io::Error {
    fn from(mismatch: Mismatch) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, mismatch)
    }
}

/// An integer value.
pub fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A float value; the text forms `NaN`, `Infinity` and `-Infinity` included.
pub fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// A boolean value.
pub fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" => Some(true),
            "f" | "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A decimal value as an integer of `scale` fractional digits (`"12.5"` at scale 2 is 1250).
/// Digits beyond the scale are rounded half away from zero, as PostgreSQL rounds into
/// `numeric(p,s)`.
pub fn as_decimal(value: &Value, scale: u8) -> Option<i128> {
    let text: Cow<str> = match value {
        Value::String(s) => Cow::Borrowed(s.trim()),
        Value::Number(n) => Cow::Owned(n.to_string()),
        _ => return None,
    };
    parse_decimal(&text, scale)
}

fn parse_decimal(text: &str, scale: u8) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut unscaled: i128 = 0;
    for b in whole.bytes() {
        unscaled = push_digit(unscaled, b)?;
    }
    let mut fraction = fraction.bytes();
    for _ in 0..scale {
        unscaled = push_digit(unscaled, fraction.next().unwrap_or(b'0'))?;
    }
    match fraction.next() {
        Some(b @ b'5'..=b'9') if fraction.all(|d| d.is_ascii_digit()) && b.is_ascii_digit() => {
            unscaled = unscaled.checked_add(1)?;
        }
        Some(b'0'..=b'4') if fraction.all(|d| d.is_ascii_digit()) => {}
        Some(_) => return None,
        None => {}
    }
    Some(if negative { -unscaled } else { unscaled })
}

fn push_digit(acc: i128, digit: u8) -> Option<i128> {
    if !digit.is_ascii_digit() {
        return None;
    }
    acc.checked_mul(10)?.checked_add(i128::from(digit - b'0'))
}

/// A date value as days since 1970-01-01. Text may carry a time after the date (SQLite
/// `DATE` columns sometimes do); it is ignored.
pub fn as_days(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            let (days, rest) = parse_date(s)?;
            (rest.is_empty() || rest.starts_with(['T', ' '])).then_some(days)
        }
        _ => None,
    }
}

/// A timestamp value as microseconds since the Unix epoch (UTC when the text has an offset;
/// the wall-clock time as it is when it has none). A date alone is its midnight.
pub fn as_micros(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_timestamp(s.trim()),
        _ => None,
    }
}

/// Text for a text column: strings as they are, other values as compact JSON.
pub fn as_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// `unscaled / 10^scale` as text, with exactly `scale` fractional digits.
pub fn decimal_text(unscaled: i128, scale: u8, negative: bool) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let sign = if negative && unscaled != 0 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `YYYY-MM-DD` at the start of `s` (years of four or more digits, an optional minus sign):
/// the day count since 1970-01-01 and what follows.
fn parse_date(s: &str) -> Option<(i64, &str)> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let year_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if year_len < 4 {
        return None;
    }
    let year: i64 = s[..year_len].parse().ok()?;
    let rest = s[year_len..].strip_prefix('-')?;
    let month = two_digits(rest)?;
    let rest = rest[2..].strip_prefix('-')?;
    let day = two_digits(rest)?;
    let year = if negative { -year } else { year };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day), &rest[2..]))
}

fn parse_timestamp(s: &str) -> Option<i64> {
    let (days, rest) = parse_date(s)?;
    let mut micros = days.checked_mul(SECONDS_PER_DAY * MICROS_PER_SECOND)?;
    let Some(rest) = rest.strip_prefix(['T', 't', ' ']) else {
        return rest.is_empty().then_some(micros);
    };
    let hour = two_digits(rest)?;
    let rest = rest[2..].strip_prefix(':')?;
    let minute = two_digits(rest)?;
    let mut rest = &rest[2..];
    let mut second = 0;
    if let Some(after) = rest.strip_prefix(':') {
        second = two_digits(after)?;
        rest = &after[2..];
    }
    if hour > 24 || minute > 59 || second > 60 {
        return None;
    }
    micros += (hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND;
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut fraction = 0i64;
        for (i, b) in after[..digits].bytes().enumerate() {
            if i < 6 {
                fraction = fraction * 10 + i64::from(b - b'0');
            }
        }
        for _ in digits..6 {
            fraction *= 10;
        }
        micros += fraction;
        rest = &after[digits..];
    }
    micros.checked_sub(offset_seconds(rest)? * MICROS_PER_SECOND)
}

/// `Z`, `+HH`, `+HH:MM`, `+HHMM` (or nothing: UTC) as seconds east of UTC.
fn offset_seconds(s: &str) -> Option<i64> {
    let sign = match s.as_bytes().first() {
        None => return Some(0),
        Some(b'Z' | b'z') if s.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        Some(_) => return None,
    };
    let s = &s[1..];
    let hours = two_digits(s)?;
    let minutes = match &s[2..] {
        "" => 0,
        rest => {
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            (rest.len() == 2).then(|| two_digits(rest)).flatten()?
        }
    };
    Some(sign * (hours * 3600 + minutes * 60))
}

fn two_digits(s: &str) -> Option<i64> {
    match s.as_bytes() {
        [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
        }
        _ => None,
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_keep_every_digit_and_round_half_away_from_zero() {
        assert_eq!(as_decimal(&json!("12.5"), 2), Some(1250));
        assert_eq!(as_decimal(&json!("-0.01"), 2), Some(-1));
        assert_eq!(
            as_decimal(&json!("99999999999999999999.99"), 2),
            Some(9_999_999_999_999_999_999_999)
        );
        assert_eq!(as_decimal(&json!("1.005"), 2), Some(101));
        assert_eq!(as_decimal(&json!("-1.005"), 2), Some(-101));
        assert_eq!(as_decimal(&json!("1.004"), 2), Some(100));
        assert_eq!(as_decimal(&json!(3), 1), Some(30));
        assert_eq!(as_decimal(&json!("1.2.3"), 2), None);
        assert_eq!(as_decimal(&json!("abc"), 0), None);
        assert_eq!(as_decimal(&json!(""), 0), None);
    }

    #[test]
    fn dates_are_days_since_1970_and_invalid_ones_are_refused() {
        assert_eq!(as_days(&json!("1970-01-01")), Some(0));
        assert_eq!(as_days(&json!("2000-03-01")), Some(11_017));
        assert_eq!(as_days(&json!("1969-12-31")), Some(-1));
        assert_eq!(as_days(&json!("2024-02-29 10:00:00")), Some(19_782));
        assert_eq!(as_days(&json!(19_782)), Some(19_782));
        assert_eq!(as_days(&json!("2023-02-29")), None);
        assert_eq!(as_days(&json!("2023-13-01")), None);
        assert_eq!(as_days(&json!("23-01-01")), None);
    }

    #[test]
    fn timestamps_take_offsets_fractions_and_either_separator() {
        let base = 1_700_000_000 * MICROS_PER_SECOND; // 2023-11-14T22:13:20Z
        assert_eq!(as_micros(&json!("2023-11-14T22:13:20Z")), Some(base));
        assert_eq!(as_micros(&json!("2023-11-14 22:13:20")), Some(base));
        assert_eq!(as_micros(&json!("2023-11-15T00:13:20+02:00")), Some(base));
        assert_eq!(as_micros(&json!("2023-11-14T17:13:20-0500")), Some(base));
        assert_eq!(
            as_micros(&json!("2023-11-14T22:13:20.5Z")),
            Some(base + 500_000)
        );
        assert_eq!(
            as_micros(&json!("2023-11-14T22:13:20.1234567")),
            Some(base + 123_456)
        );
        assert_eq!(
            as_micros(&json!("2023-11-14T22:13")),
            Some(base - 20 * MICROS_PER_SECOND)
        );
        assert_eq!(as_micros(&json!("1970-01-01")), Some(0));
        assert_eq!(as_micros(&json!("2023-11-14T22:13:20 nonsense")), None);
        assert_eq!(as_micros(&json!("2023-11-14T25:00:00")), None);
    }

    #[test]
    fn days_from_civil_inverts_the_generators_calendar() {
        for days in (-800_000..800_000).step_by(997) {
            let text = crate::pipeline::sources::generate::date_text(days);
            assert_eq!(as_days(&json!(text)), Some(days), "{text}");
        }
    }

    #[test]
    fn floats_bools_and_integers_accept_the_forms_sources_give() {
        assert!(as_f64(&json!("NaN")).is_some_and(f64::is_nan));
        assert_eq!(as_f64(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(as_f64(&json!(1.5)), Some(1.5));
        assert_eq!(as_bool(&json!(1)), Some(true));
        assert_eq!(as_bool(&json!("f")), Some(false));
        assert_eq!(as_bool(&json!(2)), None);
        assert_eq!(as_i64(&json!("42")), Some(42));
        assert_eq!(as_i64(&json!(1.5)), None);
        assert_eq!(as_text(&json!({"a": [1]})), "{\"a\":[1]}");
    }

    #[test]
    fn a_mismatch_names_the_column_and_cuts_long_values() {
        let column = Column::new("amount", ColumnType::Int64);
        let long = "x".repeat(100);
        let message = Mismatch::new(&column, &json!(long), "integer").to_string();
        assert!(message.starts_with("column \"amount\": \"xxx"), "{message}");
        assert!(message.ends_with("… is not a valid integer"), "{message}");
    }
}
