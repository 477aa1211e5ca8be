//! The import validator: each raw CSV field is checked against its column's type, nullability
//! and the import spec's extra rules (SPEC §4.2), and either normalised into the text
//! PostgreSQL's `COPY` takes (unescaped: the loader escapes) or rejected with a short reason
//! for the reject report. Pure logic, no I/O; one [`ColumnRule`] per column is built once per
//! import, then [`ColumnRule::check`] runs on every field, allocating only when a value changes.
//!
//! | type | accepted | written as | rejected, e.g. |
//! |---|---|---|---|
//! | every type | UTF-8 without NUL | | `not valid UTF-8 (at byte 3)`, `contains a NUL byte` |
//! | every type | empty (after trimming, for non-text types) | NULL | `required` (NOT NULL or `required: true`) |
//! | `text` `varchar` `char` | `""` (quoted empty) | the empty string | by `enum`/`pattern` only |
//! | `smallint` `integer` `bigint` | optional sign, ASCII digits, in range | without `+` or leading zeros | `a decimal in an integer column: "12.5"`, `not an integer: "1e3"`, `out of range for integer` |
//! | `numeric(p,s)` | `[+-]digits[.digits][e±n]`; digits beyond `s` only if zeros; at most `p-s` before the point | as written | `not a finite number: "NaN"`, `more than 2 digits after the decimal point`, `out of range for numeric(5,2)` |
//! | `real` `double precision` | decimal syntax, finite, not underflowing to 0 | shortest round-trip (`0.1`, `1500`, `1e21`) | `not a finite number: "inf"`, `out of range for real` |
//! | `boolean` | `true t yes y on 1` / `false f no n off 0`, any case | `true` / `false` | `not a boolean: "maybe"` |
//! | `text` | anything, whitespace kept | as written | |
//! | `varchar(n)` `char(n)` | at most `n` characters (not bytes); excess spaces are cut, as PostgreSQL does | as written | `longer than 20 characters` |
//! | `uuid` | hyphenated, simple, braced or URN, any case | lower-case hyphenated | `not a UUID: "x"` |
//! | `date` | `YYYY-MM-DD`, then the spec's `formats` | `YYYY-MM-DD` | `31 February 2024 is not a date`, `month 13 does not exist`, `not a date: "x"` |
//! | `timestamp` | `YYYY-MM-DD[T ]HH:MM[:SS[.f]]` without offset, then `formats` | `YYYY-MM-DD HH:MM:SS[.ffffff]` | `has a UTC offset, but the column is timestamp without time zone` |
//! | `timestamptz` | the same with `Z` or `±HH[:MM]`; a `formats` match without `%z` is UTC | UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` | `no UTC offset (add Z or +HH:MM)` |
//! | `json` `jsonb` | valid JSON; `jsonb` without `\u0000` | as written | `not valid JSON: …` |
//! | enum types | one of the labels, exactly | as written | `not one of: ok, error` |
//! | other types | anything | trimmed; PostgreSQL judges it, so a bad value fails the load | |
//!
//! Fields of every type but `text`, `varchar` and `char` are trimmed of surrounding whitespace.
//! An empty field is NULL for every type. A quoted empty field (`""`) is the empty string in
//! `text`, `varchar` and `char` columns, as in PostgreSQL's `COPY … CSV`, and NULL in every
//! other type: none has an empty value, and files written with every field quoted (Python's
//! `QUOTE_ALL`, many spreadsheets) write a missing number as `""`. Years run from 0001 to 9999; hour 24 and leap seconds are refused;
//! fractions beyond microseconds are accepted only when the extra digits are zeros, as are
//! digits beyond a `numeric` scale — Ferry never drops a digit silently.
//!
//! The spec's rules, checked when the rule is built (errors `columns.<name>.<rule>`):
//! `formats` only on date and time columns (see the `formats` module for the directives);
//! `enum` and `pattern` only on text, enum and other types, against the value as loaded, the
//! pattern matching the whole value; `min`/`max` only on number columns, inclusive, compared
//! exactly as decimals (not on dates, nor as text lengths); `required: false` cannot loosen a
//! NOT NULL column.

mod civil;
mod dates;
mod decimal;
mod field;
mod formats;
mod numbers;
mod rules;
mod scalars;
mod scratch;
mod types;

use std::borrow::Cow;

pub use crate::domain::rules::RuleSpec;
pub use types::ColumnType;

use crate::domain::invalid::Invalid;
use numbers::Width;
use rules::Extras;

/// The reason an empty field is rejected in a column that needs a value.
const REQUIRED: &str = "required";

/// Everything needed to validate one column's fields, built once per import.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    /// The column's name.
    pub name: String,
    /// The column's type.
    pub kind: ColumnType,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    extras: Extras,
}

impl ColumnRule {
    /// Checks the spec's extra rules against the column (a bad regex, `formats` on an integer
    /// column, `min` greater than `max`, …) and compiles them; every fault is reported, each
    /// as a field error named `columns.<name>.<rule>`.
    pub fn build(
        name: &str,
        kind: ColumnType,
        nullable: bool,
        spec: Option<&RuleSpec>,
    ) -> Result<ColumnRule, Invalid> {
        let extras = match spec {
            Some(spec) => Extras::build(name, &kind, nullable, spec)?,
            None => Extras::default(),
        };
        Ok(Self {
            name: name.to_owned(),
            kind,
            nullable,
            extras,
        })
    }

    /// Validates and normalises one raw field (bytes straight from the CSV reader), written
    /// without quotes if it is empty: an empty field is NULL.
    /// `Ok(None)` is SQL NULL; `Ok(Some(text))` the value as PostgreSQL's `COPY` takes it in
    /// text format, unescaped, borrowed from `raw` unless normalising changed it; `Err` a short
    /// reason for the reject report. Never panics, whatever the bytes.
    pub fn check<'a>(&self, raw: &'a [u8]) -> Result<Option<Cow<'a, str>>, String> {
        self.check_field(raw, false)
    }

    /// As [`ColumnRule::check`], for a field that was written `""` when `quoted_empty`: the
    /// empty string in a text, `varchar` or `char` column, NULL in any other (no other type
    /// has an empty value).
    pub fn check_field<'a>(
        &self,
        raw: &'a [u8],
        quoted_empty: bool,
    ) -> Result<Option<Cow<'a, str>>, String> {
        let text = field::decode(raw)?;
        let keep = self.kind.keeps_whitespace();
        let value = if keep { text } else { text.trim() };
        if value.is_empty() && !(keep && quoted_empty) {
            return if self.nullable && !self.extras.required {
                Ok(None)
            } else {
                Err(REQUIRED.to_owned())
            };
        }
        let value = self.convert(value)?;
        self.extras.check(&value)?;
        Ok(Some(value))
    }

    /// The type's own check and normal form.
    fn convert<'a>(&self, value: &'a str) -> Result<Cow<'a, str>, String> {
        let formats = &self.extras.formats;
        match &self.kind {
            ColumnType::SmallInt => numbers::integer(value, Width::Small),
            ColumnType::Integer => numbers::integer(value, Width::Integer),
            ColumnType::BigInt => numbers::integer(value, Width::Big),
            ColumnType::Numeric { precision, scale } => numbers::numeric(value, *precision, *scale),
            ColumnType::Real => numbers::real(value),
            ColumnType::Double => numbers::double(value),
            ColumnType::Boolean => scalars::boolean(value),
            ColumnType::Text | ColumnType::Other(_) => Ok(Cow::Borrowed(value)),
            ColumnType::Varchar(max) | ColumnType::Char(max) => scalars::bounded_text(value, *max),
            ColumnType::Uuid => scalars::uuid(value),
            ColumnType::Date => dates::date(value, formats),
            ColumnType::Timestamp => dates::timestamp(value, formats),
            ColumnType::Timestamptz => dates::timestamptz(value, formats),
            ColumnType::Json => scalars::json(value, false),
            ColumnType::Jsonb => scalars::json(value, true),
            ColumnType::Enum(labels) => scalars::label(value, labels),
        }
    }
}

#[cfg(test)]
mod tests;
