//! PostgreSQL's binary `COPY` format, written from the validator's normalised text: the
//! validator has already checked and converted every value, so the single busy backend gets
//! them ready-made instead of parsing text again.
//!
//! A stream is the header (`PGCOPY\n\xff\r\n\0`, flags, extension length), then per row a
//! big-endian `i16` field count and per field an `i32` length (`-1` for NULL) and the value in
//! the type's binary form, then the trailer `-1` as `i16`. Each type's form is the one its
//! `*_recv` function reads: integers and floats big-endian; `numeric` as base-10000 digits with
//! weight, sign and display scale; `date` as days and `timestamp`/`timestamptz` as microseconds
//! since 2000-01-01 (UTC); `uuid` its 16 bytes; `jsonb` a version byte `1` before the text;
//! text, `varchar`, `char`, `json` and enum labels their UTF-8 bytes.

use crate::pipeline::loaders::RowEncoder;
use crate::pipeline::validate::ColumnType;
use std::borrow::Cow;

/// The header of a binary COPY stream: signature, flags, header extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end of a binary COPY stream.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Julian day of 2000-01-01, PostgreSQL's epoch.
const EPOCH_JULIAN_DAY: i64 = 2_451_545;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Whether every one of `types` has a binary form here (other types go as text COPY).
pub fn supports(types: &[ColumnType]) -> bool {
    !types.iter().any(|t| matches!(t, ColumnType::Other(_)))
}

/// Encodes rows of the given column types.
pub struct BinaryEncoder {
    types: Vec<ColumnType>,
    count: [u8; 2],
}

impl BinaryEncoder {
    /// An encoder for columns of `types` (all of them [`supports`]ed).
    pub fn new(types: &[ColumnType]) -> Self {
        let count = i16::try_from(types.len()).unwrap_or(i16::MAX);
        Self {
            types: types.to_vec(),
            count: count.to_be_bytes(),
        }
    }
}

impl RowEncoder for BinaryEncoder {
    fn encode(&mut self, values: &[Option<Cow<'_, str>>], out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&self.count);
        for (value, kind) in values.iter().zip(&self.types) {
            match value {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(text) => field(kind, text, out)?,
            }
        }
        Ok(())
    }
}

/// A row encoded by [`BinaryEncoder`] with one more field in front: an `int8`.
pub fn with_leading_int8(row: &[u8], value: i64, out: &mut Vec<u8>) {
    let Some((count, fields)) = row.split_first_chunk::<2>() else {
        return;
    };
    let count = i16::from_be_bytes(*count).saturating_add(1);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
    out.extend_from_slice(fields);
}

const MALFORMED: &str = "a row that is not in PostgreSQL's binary format";

/// The fields of `row` (one of this encoder's rows), each with its length word, into `out`
/// (emptied first); fails when the row is not well formed.
pub fn fields<'r>(row: &'r [u8], out: &mut Vec<&'r [u8]>) -> Result<(), &'static str> {
    out.clear();
    let (count, mut rest) = row.split_first_chunk::<2>().ok_or(MALFORMED)?;
    for _ in 0..i16::from_be_bytes(*count) {
        let (field, after) = split_field(rest).ok_or(MALFORMED)?;
        out.push(field);
        rest = after;
    }
    Ok(())
}

/// Whether a field (as [`fields`] gives it) is NULL.
pub fn is_null(field: &[u8]) -> bool {
    field.starts_with(&(-1i32).to_be_bytes())
}

/// Appends a row of an `int8` `line`, the `fields` at the indices `keep`, and an `int4` `flags`.
pub fn keys_row(
    line: i64,
    fields: &[&[u8]],
    keep: &[usize],
    flags: i32,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let count = i16::try_from(keep.len() + 2).map_err(|_| "too many columns")?;
    let start = out.len();
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&line.to_be_bytes());
    for &i in keep {
        let Some(field) = fields.get(i) else {
            out.truncate(start);
            return Err(MALFORMED);
        };
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&4i32.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    Ok(())
}

/// The first field of `fields` (its length word and value), and what follows it.
fn split_field(fields: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, _) = fields.split_first_chunk::<4>()?;
    // A NULL's length is -1, and no value follows it.
    let size = usize::try_from(i32::from_be_bytes(*length)).unwrap_or(0);
    fields.split_at_checked(4 + size)
}

/// Appends one non-NULL field: its length, then its value.
fn field(kind: &ColumnType, text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    value(kind, text, out).map_err(|e| format!("{e} (value {text:?})"))?;
    let len = i32::try_from(out.len() - start - 4).map_err(|_| "a value over 2 GiB")?;
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn value(kind: &ColumnType, text: &str, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let bad = "cannot be sent in PostgreSQL's binary format";
    match kind {
        ColumnType::SmallInt => put(out, text.parse::<i16>().map_err(|_| bad)?.to_be_bytes()),
        ColumnType::Integer => put(out, text.parse::<i32>().map_err(|_| bad)?.to_be_bytes()),
        ColumnType::BigInt => put(out, text.parse::<i64>().map_err(|_| bad)?.to_be_bytes()),
        ColumnType::Real => put(out, text.parse::<f32>().map_err(|_| bad)?.to_be_bytes()),
        ColumnType::Double => put(out, text.parse::<f64>().map_err(|_| bad)?.to_be_bytes()),
        ColumnType::Numeric { .. } => numeric(text, out).ok_or(bad)?,
        ColumnType::Boolean => out.push(u8::from(text == "true")),
        ColumnType::Uuid => {
            out.extend_from_slice(uuid::Uuid::parse_str(text).map_err(|_| bad)?.as_bytes())
        }
        ColumnType::Date => put(out, days(text).ok_or(bad)?.to_be_bytes()),
        ColumnType::Timestamp | ColumnType::Timestamptz => {
            put(out, micros(text).ok_or(bad)?.to_be_bytes())
        }
        ColumnType::Jsonb => {
            out.push(1);
            out.extend_from_slice(text.as_bytes());
        }
        ColumnType::Text
        | ColumnType::Varchar(_)
        | ColumnType::Char(_)
        | ColumnType::Json
        | ColumnType::Enum(_) => out.extend_from_slice(text.as_bytes()),
        ColumnType::Other(_) => return Err(bad),
    }
    Ok(())
}

fn put<const N: usize>(out: &mut Vec<u8>, bytes: [u8; N]) {
    out.extend_from_slice(&bytes);
}

/// `YYYY-MM-DD` as days since 2000-01-01.
fn days(text: &str) -> Option<i32> {
    let year: i32 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    if text.len() != 10 {
        return None;
    }
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    i32::try_from(i64::from(date.to_julian_day()) - EPOCH_JULIAN_DAY).ok()
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f…][Z]` (the validator's normal forms) as microseconds since
/// 2000-01-01 00:00:00.
fn micros(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let day = i64::from(days(text.get(0..10)?)?);
    let hour: i64 = text.get(11..13)?.parse().ok()?;
    let minute: i64 = text.get(14..16)?.parse().ok()?;
    let second: i64 = text.get(17..19)?.parse().ok()?;
    let fraction = match text.get(19..)? {
        "" => 0,
        rest => {
            let digits = rest.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let value: i64 = digits.parse().ok()?;
            value * 10i64.pow(6 - digits.len() as u32)
        }
    };
    Some(day * MICROS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1_000_000 + fraction)
}

/// A decimal `[+-]digits[.digits][e±n]` as PostgreSQL's binary numeric: digit count, weight
/// (of the first base-10000 digit), sign, display scale, then the base-10000 digits.
fn numeric(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, text.get(1..)?),
        b'+' => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            unsigned.get(..at)?,
            unsigned.get(at + 1..)?.parse::<i32>().ok()?,
        ),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(int.len() + frac.len() + 8);
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        digits.push(b - b'0');
    }
    // Where the decimal point falls among `digits`, and the digits shown after it.
    let point = i64::try_from(int.len()).ok()? + i64::from(exponent);
    let scale = (i64::try_from(digits.len()).ok()? - point).max(0);
    let pad = (4 - point.rem_euclid(4)) % 4;
    let mut padded = vec![0u8; usize::try_from(pad).ok()?];
    padded.extend_from_slice(&digits);
    while padded.len() % 4 != 0 {
        padded.push(0);
    }
    let mut groups: Vec<u16> = padded
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |n, d| n * 10 + u16::from(*d)))
        .collect();
    let mut weight = (point + pad) / 4 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= i64::try_from(leading).ok()?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    put(out, i16::try_from(groups.len()).ok()?.to_be_bytes());
    put(out, i16::try_from(weight).ok()?.to_be_bytes());
    put(out, sign.to_be_bytes());
    put(out, i16::try_from(scale).ok()?.to_be_bytes());
    for group in groups {
        put(out, group.to_be_bytes());
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_parts(text: &str) -> (i16, i16, u16, i16, Vec<u16>) {
        let mut out = Vec::new();
        numeric(text, &mut out).unwrap();
        let word = |i: usize| u16::from_be_bytes([out[i], out[i + 1]]);
        let n = word(0) as usize;
        (
            word(0) as i16,
            word(2) as i16,
            word(4),
            word(6) as i16,
            (0..n).map(|i| word(8 + 2 * i)).collect(),
        )
    }

    #[test]
    fn numerics_split_into_base_10000_digits_around_the_point() {
        assert_eq!(numeric_parts("12.34"), (2, 0, 0, 2, vec![12, 3400]));
        assert_eq!(
            numeric_parts("-123456.7"),
            (3, 1, 0x4000, 1, vec![12, 3456, 7000])
        );
        assert_eq!(numeric_parts("0.00001"), (1, -2, 0, 5, vec![1000]));
        assert_eq!(numeric_parts("1.50e1"), (1, 0, 0, 1, vec![15]));
        assert_eq!(numeric_parts("+0.000"), (0, 0, 0, 3, vec![]));
        assert_eq!(numeric_parts("10000"), (1, 1, 0, 0, vec![1]));
        assert!(numeric("1.2.3", &mut Vec::new()).is_none());
    }

    #[test]
    fn a_keys_row_has_the_line_the_chosen_fields_nulls_included_and_the_flags() {
        let types = [ColumnType::Integer, ColumnType::Text, ColumnType::Integer];
        let mut out = Vec::new();
        BinaryEncoder::new(&types)
            .encode(&[Some("7".into()), Some("ab".into()), None], &mut out)
            .unwrap();
        let mut split = Vec::new();
        fields(&out, &mut split).unwrap();
        assert_eq!(split.len(), 3);
        assert!(is_null(split[2]) && !is_null(split[0]) && !is_null(split[1]));
        let mut row = Vec::new();
        keys_row(5, &split, &[0, 2], 6, &mut row).unwrap();
        let mut expected = vec![0, 4, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5];
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 6]);
        assert_eq!(row, expected);
        row.clear();
        keys_row(9, &split, &[1], 0, &mut row).unwrap();
        assert_eq!(&row[14..20], &[0, 0, 0, 2, b'a', b'b']);
        // A row cut short is refused; a place past the row's fields leaves nothing behind.
        assert!(fields(&out[..9], &mut split).is_err());
        let before = row.len();
        assert!(keys_row(1, &split, &[2], 0, &mut row).is_err());
        assert_eq!(row.len(), before);
    }

    #[test]
    fn dates_and_timestamps_count_from_2000() {
        assert_eq!(days("2000-01-01"), Some(0));
        assert_eq!(days("1999-12-31"), Some(-1));
        assert_eq!(days("2024-02-29"), Some(8825));
        assert_eq!(micros("2000-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(
            micros("2000-01-02T00:00:00.000001Z"),
            Some(MICROS_PER_DAY + 1)
        );
        assert_eq!(micros("2000-01-01 00:00:00.1234567"), None);
    }

    #[test]
    fn a_row_has_its_field_count_lengths_and_nulls() {
        let mut encoder =
            BinaryEncoder::new(&[ColumnType::Integer, ColumnType::Text, ColumnType::Jsonb]);
        let mut out = Vec::new();
        encoder
            .encode(&[Some("7".into()), None, Some("{}".into())], &mut out)
            .unwrap();
        assert_eq!(
            out,
            [
                &[0, 3][..],
                &[0, 0, 0, 4, 0, 0, 0, 7],
                &[0xff; 4],
                &[0, 0, 0, 3, 1, b'{', b'}']
            ]
            .concat()
        );
        let mut lined = Vec::new();
        with_leading_int8(&out, 9, &mut lined);
        assert_eq!(&lined[..2], &[0, 4]);
        assert_eq!(&lined[2..14], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(&lined[14..], &out[2..]);
    }
}
