//! strftime-style formats from the import spec (`"%d/%m/%Y %H:%M"`), compiled once per column
//! and matched strictly: the whole value, every literal character exactly, no locale.
//!
//! | directive | reads |
//! |---|---|
//! | `%Y` | a four-digit year |
//! | `%y` | a two-digit year: 69–99 → 1969–1999, 00–68 → 2000–2068 (POSIX) |
//! | `%m` `%d` `%H` `%M` `%S` | 1 or 2 digits (greedy, like `strptime`) |
//! | `%I` `%p` | hour 1–12 with `AM`/`PM` (any case); each needs the other |
//! | `%b` `%B` | an English month name, full or three-letter, any case |
//! | `%f` | 1 to 9 fraction digits (beyond 6 only zeros) |
//! | `%z` | `Z`, `±HH`, `±HHMM` or `±HH:MM` |
//! | `%F` `%T` `%%` | `%Y-%m-%d`, `%H:%M:%S`, a `%` |
//!
//! A format must give a year, a month and a day; minutes need an hour, seconds need minutes, a
//! fraction needs seconds; missing time fields are zero. `date` formats take no time of day,
//! `timestamp` formats no offset; a `timestamptz` format without `%z` reads the time as UTC.

use super::civil::{Cursor, Fields};
use super::types::ColumnType;

/// The longest format accepted, in bytes.
const MAX_FORMAT_LEN: usize = 100;
/// English month names; `%b` and `%B` read the full name or its first three letters.
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// One step of a compiled format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Literal(char),
    Year,
    Year2,
    Month,
    MonthName,
    Day,
    Hour,
    Hour12,
    AmPm,
    Minute,
    Second,
    Fraction,
    Offset,
}

/// A compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Format {
    items: Vec<Item>,
}

impl Format {
    /// Compiles `source` for a column of type `kind`, or says what is wrong with it.
    pub(super) fn compile(source: &str, kind: &ColumnType) -> Result<Self, String> {
        if source.len() > MAX_FORMAT_LEN {
            return Err(format!("longer than {MAX_FORMAT_LEN} bytes"));
        }
        let items = tokenize(source)?;
        check_complete(&items)?;
        check_fits(&items, kind)?;
        Ok(Self { items })
    }

    /// The fields of `value` when the whole of it matches this format.
    pub(super) fn read(&self, value: &str) -> Option<Fields> {
        let mut cursor = Cursor::new(value);
        let mut fields = Fields::default();
        for item in &self.items {
            read_item(*item, &mut cursor, &mut fields)?;
        }
        cursor.is_done().then_some(fields)
    }
}

fn read_item(item: Item, cursor: &mut Cursor<'_>, fields: &mut Fields) -> Option<()> {
    match item {
        Item::Literal(c) => {
            let mut buf = [0; 4];
            cursor.eat_exact(c.encode_utf8(&mut buf)).then_some(())?;
        }
        Item::Year => fields.year = cursor.number(4, 4)?,
        Item::Year2 => fields.year = century(cursor.number(2, 2)?),
        Item::Month => fields.month = cursor.number(1, 2)?,
        Item::MonthName => fields.month = month_name(cursor)?,
        Item::Day => fields.day = cursor.number(1, 2)?,
        Item::Hour | Item::Hour12 => fields.hour = cursor.number(1, 2)?,
        Item::AmPm => fields.pm = Some(am_pm(cursor)?),
        Item::Minute => fields.minute = cursor.number(1, 2)?,
        Item::Second => fields.second = cursor.number(1, 2)?,
        Item::Fraction => fields.fraction = cursor.fraction()?,
        Item::Offset => fields.offset = Some(cursor.offset()?),
    }
    Some(())
}

/// POSIX's pivot for two-digit years.
fn century(yy: u32) -> u32 {
    if yy >= 69 { 1900 + yy } else { 2000 + yy }
}

fn month_name(cursor: &mut Cursor<'_>) -> Option<u32> {
    let index = MONTHS
        .iter()
        .position(|name| cursor.eat_word(name) || cursor.eat_word(name.get(..3).unwrap_or(name)))?;
    u32::try_from(index + 1).ok()
}

fn am_pm(cursor: &mut Cursor<'_>) -> Option<bool> {
    if cursor.eat_word("AM") {
        Some(false)
    } else if cursor.eat_word("PM") {
        Some(true)
    } else {
        None
    }
}

/// Splits a format into items; `%F` and `%T` expand.
fn tokenize(source: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            items.push(Item::Literal(c));
            continue;
        }
        let directive = chars.next().ok_or("ends with a lone %")?;
        items.extend_from_slice(expand(directive)?);
    }
    Ok(items)
}

fn expand(directive: char) -> Result<&'static [Item], String> {
    use Item::*;
    Ok(match directive {
        'Y' => &[Year],
        'y' => &[Year2],
        'm' => &[Month],
        'b' | 'B' => &[MonthName],
        'd' => &[Day],
        'H' => &[Hour],
        'I' => &[Hour12],
        'p' => &[AmPm],
        'M' => &[Minute],
        'S' => &[Second],
        'f' => &[Fraction],
        'z' => &[Offset],
        'F' => &[Year, Literal('-'), Month, Literal('-'), Day],
        'T' => &[Hour, Literal(':'), Minute, Literal(':'), Second],
        '%' => &[Literal('%')],
        other => return Err(format!("unsupported directive %{other}")),
    })
}

/// Each field given once, the date complete, and each time field with the one above it.
fn check_complete(items: &[Item]) -> Result<(), String> {
    use Item::*;
    let count = |wanted: &[Item]| items.iter().filter(|i| wanted.contains(i)).count();
    let groups: [(&[Item], &str); 9] = [
        (&[Year, Year2], "year (%Y or %y)"),
        (&[Month, MonthName], "month (%m or %b)"),
        (&[Day], "day (%d)"),
        (&[Hour, Hour12], "hour (%H or %I)"),
        (&[AmPm], "AM/PM (%p)"),
        (&[Minute], "minutes (%M)"),
        (&[Second], "seconds (%S)"),
        (&[Fraction], "fraction (%f)"),
        (&[Offset], "offset (%z)"),
    ];
    if let Some((_, what)) = groups.iter().find(|(group, _)| count(group) > 1) {
        return Err(format!("gives the {what} more than once"));
    }
    for (group, what) in groups.iter().take(3) {
        if count(group) == 0 {
            return Err(format!("has no {what}"));
        }
    }
    let needs: [(Item, Item, &str); 5] = [
        (Hour12, AmPm, "%I needs %p"),
        (AmPm, Hour12, "%p needs %I"),
        (Minute, Hour, "%M needs an hour"),
        (Second, Minute, "%S needs %M"),
        (Fraction, Second, "%f needs %S"),
    ];
    let has = |item| count(&[item]) > 0;
    match needs
        .iter()
        .find(|(item, needed, _)| has(*item) && !(has(*needed) || (*needed == Hour && has(Hour12))))
    {
        Some((_, _, message)) => Err((*message).to_owned()),
        None => Ok(()),
    }
}

/// A `date` format takes no time of day; a `timestamp` format takes no offset.
fn check_fits(items: &[Item], kind: &ColumnType) -> Result<(), String> {
    use Item::*;
    let has = |wanted: &[Item]| items.iter().any(|i| wanted.contains(i));
    match kind {
        ColumnType::Date if has(&[Hour, Hour12, AmPm, Minute, Second, Fraction, Offset]) => {
            Err("a date column takes no time of day".to_owned())
        }
        ColumnType::Timestamp if has(&[Offset]) => {
            Err("a timestamp without time zone column takes no %z".to_owned())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::Format;
    use crate::pipeline::validate::ColumnType;
    use crate::pipeline::validate::civil::{Fields, Offset};

    fn compile(source: &str) -> Result<Format, String> {
        Format::compile(source, &ColumnType::Timestamptz)
    }

    #[test]
    fn formats_compile_with_every_supported_directive() {
        let sources = [
            "%d/%m/%Y %H:%M",
            "%Y-%m-%d",
            "%m/%d/%Y",
            "%Y-%m-%dT%H:%M:%S%z",
            "%d.%m.%Y",
            "%d %b %y %I:%M:%S.%f %p",
            "%F %T",
            "%B %d, %Y at %H:%M 100%%",
        ];
        for source in sources {
            assert!(compile(source).is_ok(), "{source}: {:?}", compile(source));
        }
    }

    #[test]
    fn malformed_or_incomplete_formats_are_refused() {
        let cases = [
            ("%d/%m/%Y %j", "unsupported directive %j"),
            ("%d/%m/%Y %", "ends with a lone %"),
            ("%m/%Y", "has no day (%d)"),
            ("%d/%m", "has no year (%Y or %y)"),
            ("%d/%m/%Y/%y", "gives the year (%Y or %y) more than once"),
            ("%d/%b/%m/%Y", "gives the month (%m or %b) more than once"),
            ("%F %I:%M", "%I needs %p"),
            ("%F %H %p", "%p needs %I"),
            ("%F %M", "%M needs an hour"),
            ("%F %H:%S", "%S needs %M"),
            ("%F %H:%M.%f", "%f needs %S"),
        ];
        for (source, why) in cases {
            assert_eq!(compile(source), Err(why.to_owned()), "{source}");
        }
        let long = format!("%F{}", "x".repeat(100));
        assert_eq!(compile(&long), Err("longer than 100 bytes".to_owned()));
    }

    #[test]
    fn formats_fit_the_column_type() {
        let date = Format::compile("%F %H:%M", &ColumnType::Date);
        assert_eq!(date, Err("a date column takes no time of day".to_owned()));
        let naive = Format::compile("%F %H:%M%z", &ColumnType::Timestamp);
        assert_eq!(
            naive,
            Err("a timestamp without time zone column takes no %z".to_owned())
        );
        assert!(Format::compile("%d.%m.%Y", &ColumnType::Date).is_ok());
    }

    #[test]
    fn formats_read_the_whole_value_strictly() {
        let format = compile("%d %b %Y, %I:%M:%S.%f %p %z").unwrap();
        let fields = format.read("2 SEP 2024, 3:04:05.25 pm -05:30");
        let expected = Fields {
            year: 2024,
            month: 9,
            day: 2,
            hour: 3,
            pm: Some(true),
            minute: 4,
            second: 5,
            fraction: (25, 2),
            offset: Some(Offset {
                negative: true,
                hours: 5,
                minutes: 30,
            }),
        };
        assert_eq!(fields, Some(expected));
        let european = compile("%d/%m/%Y").unwrap();
        for bad in [
            "02/01/2024 ",
            "02-01-2024",
            "02/01/24",
            "002/01/2024",
            "2/1/20245",
            "é2/01/2024",
        ] {
            assert_eq!(european.read(bad), None, "{bad}");
        }
        assert!(european.read("2/1/2024").is_some());
    }

    #[test]
    fn two_digit_years_pivot_like_posix() {
        let format = compile("%d%m%y").unwrap();
        assert_eq!(format.read("010268").map(|f| f.year), Some(2068));
        assert_eq!(format.read("010269").map(|f| f.year), Some(1969));
    }
}
