//! `date`, `timestamp` and `timestamptz` fields: ISO 8601 always, then the spec's formats in
//! order; the first reading that is a real date wins. Written back in ISO form, borrowed when
//! the field already is.

use std::borrow::Cow;
use std::fmt::{self, Write};

use time::{Date, PrimitiveDateTime, Time, UtcOffset};

use super::civil::{Cursor, Fields};
use super::field::shown;
use super::formats::Format;
use super::scratch::normalised;

/// Where a reading came from: only an ISO reading without an offset is ambiguous for
/// `timestamptz`; a format without `%z` says UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Iso,
    Format,
}

/// `YYYY-MM-DD` or one of `formats`, written `YYYY-MM-DD`.
pub(super) fn date<'a>(value: &'a str, formats: &[Format]) -> Result<Cow<'a, str>, String> {
    let date = first_reading(value, formats, iso_date, "a date", |f, _| f.date())?;
    Ok(normalised(value, |w| write_date(w, date)))
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.f]]` without offset, or one of `formats`, written
/// `YYYY-MM-DD HH:MM:SS[.ffffff]`. A value with an offset is refused: dropping it or converting
/// it would both be guesses.
pub(super) fn timestamp<'a>(value: &'a str, formats: &[Format]) -> Result<Cow<'a, str>, String> {
    let local = first_reading(value, formats, iso_date_time, "a timestamp", |f, _| {
        if f.offset.is_some() {
            return Err(
                "has a UTC offset, but the column is timestamp without time zone".to_owned(),
            );
        }
        Ok(PrimitiveDateTime::new(f.date()?, f.time()?))
    })?;
    Ok(normalised(value, |w| {
        write_date(w, local.date())?;
        w.write_char(' ')?;
        write_time(w, local.time())
    }))
}

/// ISO 8601 / RFC 3339 with `Z` or an offset (`T` or a space between date and time), or one of
/// `formats` (UTC unless the format has `%z`), written as UTC: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
/// An ISO value without an offset is refused as ambiguous.
pub(super) fn timestamptz<'a>(value: &'a str, formats: &[Format]) -> Result<Cow<'a, str>, String> {
    let utc = first_reading(value, formats, iso_date_time, "a timestamp", utc_reading)?;
    Ok(normalised(value, |w| {
        write_date(w, utc.date())?;
        w.write_char('T')?;
        write_time(w, utc.time())?;
        w.write_char('Z')
    }))
}

fn utc_reading(fields: &Fields, source: Source) -> Result<PrimitiveDateTime, String> {
    let offset = match (fields.offset()?, source) {
        (Some(offset), _) => offset,
        (None, Source::Format) => UtcOffset::UTC,
        (None, Source::Iso) => return Err("no UTC offset (add Z or +HH:MM)".to_owned()),
    };
    let local = PrimitiveDateTime::new(fields.date()?, fields.time()?);
    let utc = local
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (1..=9999).contains(&utc.year()))
        .ok_or("out of range once converted to UTC")?;
    Ok(PrimitiveDateTime::new(utc.date(), utc.time()))
}

/// The first reading — ISO, then each format — that `make` accepts. When none does, the
/// reason of the first reading that matched the shape (`31 February 2024 is not a date`), or
/// else `not <what>`.
fn first_reading<T>(
    value: &str,
    formats: &[Format],
    iso: fn(&str) -> Option<Fields>,
    what: &str,
    make: impl Fn(&Fields, Source) -> Result<T, String>,
) -> Result<T, String> {
    let readings = iso(value).map(|f| (f, Source::Iso)).into_iter().chain(
        formats
            .iter()
            .filter_map(|format| Some((format.read(value)?, Source::Format))),
    );
    let mut reason = None;
    for (fields, source) in readings {
        match make(&fields, source) {
            Ok(made) => return Ok(made),
            Err(why) => {
                reason.get_or_insert(why);
            }
        }
    }
    Err(reason.unwrap_or_else(|| format!("not {what}: {}", shown(value))))
}

/// `YYYY-MM-DD`, strictly.
fn iso_date(value: &str) -> Option<Fields> {
    let mut cursor = Cursor::new(value);
    let fields = read_date(&mut cursor)?;
    cursor.is_done().then_some(fields)
}

/// `YYYY-MM-DD[Tt ]HH:MM[:SS[.f{1,9}]]` and an optional `Z`/`±HH[:MM]` offset.
fn iso_date_time(value: &str) -> Option<Fields> {
    let mut cursor = Cursor::new(value);
    let mut fields = read_date(&mut cursor)?;
    cursor.eat_any(b"Tt ").then_some(())?;
    fields.hour = cursor.number(2, 2)?;
    cursor.eat(b':').then_some(())?;
    fields.minute = cursor.number(2, 2)?;
    if cursor.eat(b':') {
        fields.second = cursor.number(2, 2)?;
        if cursor.eat(b'.') {
            fields.fraction = cursor.fraction()?;
        }
    }
    if !cursor.is_done() {
        fields.offset = Some(cursor.offset()?);
    }
    cursor.is_done().then_some(fields)
}

fn read_date(cursor: &mut Cursor<'_>) -> Option<Fields> {
    let year = cursor.number(4, 4)?;
    cursor.eat(b'-').then_some(())?;
    let month = cursor.number(2, 2)?;
    cursor.eat(b'-').then_some(())?;
    let day = cursor.number(2, 2)?;
    Some(Fields {
        year,
        month,
        day,
        ..Fields::default()
    })
}

fn write_date(w: &mut dyn Write, date: Date) -> fmt::Result {
    let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
    write!(w, "{year:04}-{month:02}-{day:02}")
}

/// `HH:MM:SS`, then the microseconds without trailing zeros when there are any.
fn write_time(w: &mut dyn Write, time: Time) -> fmt::Result {
    let (hour, minute, second) = (time.hour(), time.minute(), time.second());
    write!(w, "{hour:02}:{minute:02}:{second:02}")?;
    let micro = time.microsecond();
    if micro == 0 {
        return Ok(());
    }
    let mut digits = 6;
    let mut trimmed = micro;
    while trimmed.is_multiple_of(10) {
        trimmed /= 10;
        digits -= 1;
    }
    write!(w, ".{trimmed:0digits$}")
}
