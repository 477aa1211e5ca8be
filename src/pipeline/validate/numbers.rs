//! Integers, `numeric` and floats: what PostgreSQL would accept, checked here so one bad field
//! rejects one row instead of failing the whole `COPY`.

use std::borrow::Cow;
use std::fmt::{self, Write};

use super::decimal::Decimal;
use super::field::shown;
use super::scratch::{Scratch, normalised};

/// The largest exponent `numeric` input takes (PostgreSQL's `NUMERIC_MAX_PRECISION`).
const MAX_NUMERIC_EXPONENT: i64 = 1000;
/// Digits before the point an unconstrained `numeric` can store.
const MAX_NUMERIC_DIGITS: i64 = 131_072;
/// Digits after the point an unconstrained `numeric` can store (`NUMERIC_DSCALE_MAX`).
const MAX_NUMERIC_SCALE: i64 = 16_383;

/// The three integer widths, by their PostgreSQL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Width {
    /// `smallint`.
    Small,
    /// `integer`.
    Integer,
    /// `bigint`.
    Big,
}

impl Width {
    fn range(self) -> (i64, i64) {
        match self {
            Self::Small => (i16::MIN.into(), i16::MAX.into()),
            Self::Integer => (i32::MIN.into(), i32::MAX.into()),
            Self::Big => (i64::MIN, i64::MAX),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Small => "smallint",
            Self::Integer => "integer",
            Self::Big => "bigint",
        }
    }
}

/// An optional sign and ASCII digits, in the column's range; written back without `+` or
/// leading zeros (allocating only then).
pub(super) fn integer(value: &str, width: Width) -> Result<Cow<'_, str>, String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_an_integer(value));
    }
    let out_of_range = || format!("out of range for {}", width.name());
    let parsed: i64 = value.parse().map_err(|_| out_of_range())?;
    let (min, max) = width.range();
    if !(min..=max).contains(&parsed) {
        return Err(out_of_range());
    }
    let padded = digits.len() > 1 && digits.starts_with('0');
    let canonical = !(value.starts_with('+') || padded || value == "-0");
    Ok(if canonical {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(parsed.to_string())
    })
}

fn not_an_integer(value: &str) -> String {
    match Decimal::parse(value) {
        Some(_) if value.contains('.') => {
            format!("a decimal in an integer column: {}", shown(value))
        }
        _ if is_non_finite(value) => format!("not a finite number: {}", shown(value)),
        _ => format!("not an integer: {}", shown(value)),
    }
}

/// A decimal number within `numeric(precision, scale)`, kept as written. Digits beyond the
/// scale are accepted only when they are zeros: PostgreSQL would round them away, and Ferry
/// never drops a digit silently.
pub(super) fn numeric(
    value: &str,
    precision: Option<u32>,
    scale: Option<u32>,
) -> Result<Cow<'_, str>, String> {
    let number = Decimal::parse(value).ok_or_else(|| not_a_number(value))?;
    if number.exponent().abs() > MAX_NUMERIC_EXPONENT {
        return Err("exponent out of range for numeric".to_owned());
    }
    if number.magnitude() > MAX_NUMERIC_DIGITS || number.written_scale() > MAX_NUMERIC_SCALE {
        return Err("out of range for numeric".to_owned());
    }
    let typmod_scale = scale.or(precision.map(|_| 0));
    if let Some(s) = typmod_scale
        && number.scale() > i64::from(s)
    {
        return Err(match s {
            0 => "digits after the decimal point in a whole-number column".to_owned(),
            _ => format!("more than {s} digits after the decimal point"),
        });
    }
    if let Some(p) = precision {
        let s = typmod_scale.unwrap_or(0);
        if !number.is_zero() && number.magnitude() > i64::from(p) - i64::from(s) {
            return Err(format!("out of range for numeric({p},{s})"));
        }
    }
    Ok(Cow::Borrowed(value))
}

fn not_a_number(value: &str) -> String {
    if is_non_finite(value) {
        format!("not a finite number: {}", shown(value))
    } else {
        format!("not a number: {}", shown(value))
    }
}

fn is_non_finite(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    ["nan", "inf", "infinity"]
        .iter()
        .any(|word| unsigned.eq_ignore_ascii_case(word))
}

/// A finite `real`, written in its shortest round-trip form.
pub(super) fn real(value: &str) -> Result<Cow<'_, str>, String> {
    let number = float_syntax(value)?;
    let parsed: f32 = value.parse().map_err(|_| not_a_number(value))?;
    check_float(parsed.is_finite(), parsed == 0.0, &number, "real")?;
    let shortest = Shortest::of(parsed);
    Ok(normalised(value, |w| write_float(w, &shortest)))
}

/// A finite `double precision`, written in its shortest round-trip form.
pub(super) fn double(value: &str) -> Result<Cow<'_, str>, String> {
    let number = float_syntax(value)?;
    let parsed: f64 = value.parse().map_err(|_| not_a_number(value))?;
    check_float(
        parsed.is_finite(),
        parsed == 0.0,
        &number,
        "double precision",
    )?;
    let shortest = Shortest::of(parsed);
    Ok(normalised(value, |w| write_float(w, &shortest)))
}

fn float_syntax(value: &str) -> Result<Decimal<'_>, String> {
    Decimal::parse(value).ok_or_else(|| not_a_number(value))
}

/// Overflow to infinity and underflow to zero are both out of range, as in PostgreSQL.
fn check_float(
    finite: bool,
    zero: bool,
    written: &Decimal<'_>,
    type_name: &str,
) -> Result<(), String> {
    if !finite || (zero && !written.is_zero()) {
        return Err(format!("out of range for {type_name}"));
    }
    Ok(())
}

/// A float's shortest round-trip digits, from Rust's `{:e}` (`-1.5e-7`, `0e0`).
struct Shortest {
    text: Scratch,
}

impl Shortest {
    fn of(value: impl fmt::LowerExp) -> Self {
        let mut text = Scratch::new();
        // `{:e}` of a float is at most about 25 bytes; it always fits.
        let _ = write!(text, "{value:e}");
        Self { text }
    }

    /// (`"-"` or `""`, the first digit, the digits after it, the first digit's exponent).
    fn parts(&self) -> (&str, &str, &str, i32) {
        let text = self.text.as_str();
        let (sign, unsigned) = match text.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", text),
        };
        let (mantissa, exp) = unsigned.split_once('e').unwrap_or((unsigned, "0"));
        let (first, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        (sign, first, rest, exp.parse().unwrap_or(0))
    }
}

/// Writes a float like JavaScript's `Number#toString`: positional from 1e-7 up to 1e21
/// (`0.5`, `1500`, `-0`), otherwise `1.5e21`, `1e-7`.
fn write_float(w: &mut dyn Write, value: &Shortest) -> fmt::Result {
    let (sign, first, rest, exp) = value.parts();
    w.write_str(sign)?;
    let more = i32::try_from(rest.len()).unwrap_or(i32::MAX);
    match exp {
        21.. | ..=-7 => {
            w.write_str(first)?;
            if !rest.is_empty() {
                write!(w, ".{rest}")?;
            }
            write!(w, "e{exp}")
        }
        0.. if exp >= more => {
            write!(w, "{first}{rest}")?;
            zeros(w, exp - more)
        }
        0.. => {
            let (int, frac) = rest.split_at(usize::try_from(exp).unwrap_or(0));
            write!(w, "{first}{int}.{frac}")
        }
        _ => {
            w.write_str("0.")?;
            zeros(w, -exp - 1)?;
            write!(w, "{first}{rest}")
        }
    }
}

fn zeros(w: &mut dyn Write, count: i32) -> fmt::Result {
    (0..count).try_for_each(|_| w.write_char('0'))
}
