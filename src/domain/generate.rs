//! The synthetic data generator's column specification, parsed from a request.

use super::invalid::{Collector, Invalid};
use serde::Deserialize;
use time::{Date, OffsetDateTime, format_description::well_known::Rfc3339, macros::datetime};

/// At most this many columns in one generated file.
pub const MAX_COLUMNS: usize = 256;
/// The longest generated text value, in characters.
const MAX_TEXT: u32 = 65_536;
/// At most this many rows in one generated file.
pub const MAX_ROWS: u64 = 10_000_000_000;

/// A validated request for synthetic data.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSpec {
    /// How many rows to write.
    pub rows: u64,
    /// The seed: the same seed and columns give the same file, byte for byte.
    pub seed: u64,
    /// The columns, in order.
    pub columns: Vec<Column>,
}

/// One generated column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column's name in the header.
    pub name: String,
    /// What values it holds.
    pub kind: ColumnKind,
    /// The share of rows (0 to 1) in which the value is null.
    pub null_fraction: f64,
}

/// The kinds of values the generator can make.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// A random (version 4) UUID.
    Uuid,
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A float in `min..max`.
    Float { min: f64, max: f64 },
    /// `true` or `false`.
    Bool,
    /// A person's full name.
    Name,
    /// An e-mail address.
    Email,
    /// A company name.
    Company,
    /// A city.
    City,
    /// A country.
    Country,
    /// A phone number in E.164 form.
    Phone,
    /// A date in `start..=end`.
    Date { start: Date, end: Date },
    /// A UTC timestamp in `start..=end`.
    Timestamp {
        start: OffsetDateTime,
        end: OffsetDateTime,
    },
    /// One of the given values.
    Enum { values: Vec<String> },
    /// Lorem-ipsum text of `min_length..=max_length` characters.
    Text { min_length: u32, max_length: u32 },
    /// A small JSON object.
    Json,
}

/// A column as the client sends it; [`parse`] checks it against its kind.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    /// The column's name in the file.
    #[schema(min_length = 1, max_length = 128)]
    name: String,
    /// What the values are.
    #[schema(value_type = KindName)]
    kind: String,
    /// Smallest value (`int`, `float`).
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    min: Option<serde_json::Number>,
    /// Largest value (`int`, `float`).
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    max: Option<serde_json::Number>,
    /// First date or timestamp (`date`, `timestamp`), ISO 8601.
    #[serde(default)]
    start: Option<String>,
    /// Last date or timestamp (`date`, `timestamp`), ISO 8601.
    #[serde(default)]
    end: Option<String>,
    /// The values to pick from (`enum`).
    #[serde(default)]
    values: Option<Vec<String>>,
    /// Exact length in characters (`text`).
    #[serde(default)]
    length: Option<u32>,
    /// Shortest length in characters (`text`).
    #[serde(default)]
    min_length: Option<u32>,
    /// Longest length in characters (`text`).
    #[serde(default)]
    max_length: Option<u32>,
    /// Share of NULLs, 0 to 1.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    null_fraction: Option<f64>,
}

/// The kinds of generated column (documentation of [`RawColumn::kind`]).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: `parse_kind` reads the name
pub enum KindName {
    Uuid,
    Int,
    Float,
    Bool,
    Name,
    Email,
    Company,
    City,
    Country,
    Phone,
    Date,
    Timestamp,
    Enum,
    Text,
    Json,
}

/// The generate source as the client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenerate {
    rows: u64,
    #[serde(default)]
    seed: u64,
    #[serde(deserialize_with = "super::json::objects")]
    columns: Vec<RawColumn>,
}

/// Checks a raw generate source; `at` is the field path of the source in the request.
pub fn parse(raw: &RawGenerate, at: &str) -> Result<GenerateSpec, Invalid> {
    let mut errors = Collector::default();
    if raw.rows > MAX_ROWS {
        errors.push(format!("{at}.rows"), format!("at most {MAX_ROWS} rows"));
    }
    if raw.columns.is_empty() || raw.columns.len() > MAX_COLUMNS {
        errors.push(
            format!("{at}.columns"),
            format!("between 1 and {MAX_COLUMNS} columns"),
        );
    }
    let mut columns = Vec::with_capacity(raw.columns.len());
    for (i, column) in raw.columns.iter().enumerate() {
        let field = format!("{at}.columns[{i}]");
        if raw.columns[..i].iter().any(|c| c.name == column.name) {
            errors.push(format!("{field}.name"), "duplicate column name");
        }
        match parse_column(column, &field) {
            Ok(parsed) => columns.push(parsed),
            Err(invalid) => errors.extend(invalid),
        }
    }
    errors.finish(GenerateSpec {
        rows: raw.rows,
        seed: raw.seed,
        columns,
    })
}

fn parse_column(raw: &RawColumn, field: &str) -> Result<Column, Invalid> {
    let mut errors = Collector::default();
    if raw.name.is_empty() || raw.name.len() > 128 {
        errors.push(format!("{field}.name"), "1 to 128 bytes");
    }
    let null_fraction = raw.null_fraction.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&null_fraction) {
        errors.push(format!("{field}.null_fraction"), "between 0 and 1");
    }
    // On a bad kind the placeholder is never returned: `finish` sees the recorded error.
    let kind = parse_kind(raw, field).unwrap_or_else(|invalid| {
        errors.extend(invalid);
        ColumnKind::Bool
    });
    errors.finish(Column {
        name: raw.name.clone(),
        kind,
        null_fraction,
    })
}

fn parse_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    let kind = match raw.kind.as_str() {
        "uuid" => ColumnKind::Uuid,
        "bool" => ColumnKind::Bool,
        "name" => ColumnKind::Name,
        "email" => ColumnKind::Email,
        "company" => ColumnKind::Company,
        "city" => ColumnKind::City,
        "country" => ColumnKind::Country,
        "phone" => ColumnKind::Phone,
        "json" => ColumnKind::Json,
        "int" => int_kind(raw, field)?,
        "float" => float_kind(raw, field)?,
        "date" => date_kind(raw, field)?,
        "timestamp" => timestamp_kind(raw, field)?,
        "enum" => enum_kind(raw, field)?,
        "text" => text_kind(raw, field)?,
        other => {
            return Err(Invalid::field(
                format!("{field}.kind"),
                format!(
                    "unknown kind {other:?}; expected one of uuid, int, float, bool, name, email, \
                     company, city, country, phone, date, timestamp, enum, text, json"
                ),
            ));
        }
    };
    Ok(kind)
}

fn int_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    let bound = |n: &Option<serde_json::Number>, name: &str, default: i64| match n {
        None => Ok(default),
        Some(n) => n
            .as_i64()
            .ok_or_else(|| Invalid::field(format!("{field}.{name}"), "must be a 64-bit integer")),
    };
    let min = bound(&raw.min, "min", 0)?;
    let max = bound(&raw.max, "max", 1_000_000)?;
    if min > max {
        return Err(Invalid::field(
            format!("{field}.min"),
            "must not exceed max",
        ));
    }
    Ok(ColumnKind::Int { min, max })
}

fn float_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    let min = raw.min.as_ref().and_then(|n| n.as_f64()).unwrap_or(0.0);
    let max = raw.max.as_ref().and_then(|n| n.as_f64()).unwrap_or(1.0);
    if !(min.is_finite() && max.is_finite() && min < max) {
        return Err(Invalid::field(
            format!("{field}.min"),
            "min and max must be finite, with min < max",
        ));
    }
    Ok(ColumnKind::Float { min, max })
}

fn date_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    let parse = |text: &Option<String>, name: &str, default: Date| match text {
        None => Ok(default),
        Some(text) => Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| Invalid::field(format!("{field}.{name}"), "expected YYYY-MM-DD")),
    };
    let start = parse(&raw.start, "start", time::macros::date!(2000 - 01 - 01))?;
    let end = parse(&raw.end, "end", time::macros::date!(2030 - 12 - 31))?;
    if start > end {
        return Err(Invalid::field(
            format!("{field}.start"),
            "must not be after end",
        ));
    }
    Ok(ColumnKind::Date { start, end })
}

fn timestamp_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    let parse = |text: &Option<String>, name: &str, default: OffsetDateTime| match text {
        None => Ok(default),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            Invalid::field(format!("{field}.{name}"), "expected an RFC 3339 timestamp")
        }),
    };
    let start = parse(&raw.start, "start", datetime!(2020-01-01 0:00 UTC))?;
    let end = parse(&raw.end, "end", datetime!(2026-12-31 23:59:59 UTC))?;
    if start > end {
        return Err(Invalid::field(
            format!("{field}.start"),
            "must not be after end",
        ));
    }
    Ok(ColumnKind::Timestamp { start, end })
}

fn enum_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    match &raw.values {
        Some(values) if !values.is_empty() => Ok(ColumnKind::Enum {
            values: values.clone(),
        }),
        _ => Err(Invalid::field(
            format!("{field}.values"),
            "an enum column needs a non-empty list of values",
        )),
    }
}

fn text_kind(raw: &RawColumn, field: &str) -> Result<ColumnKind, Invalid> {
    let (min_length, max_length) = match (raw.length, raw.min_length, raw.max_length) {
        (Some(length), None, None) => (length, length),
        (None, min, max) => (min.unwrap_or(10), max.unwrap_or(min.unwrap_or(10).max(40))),
        _ => {
            return Err(Invalid::field(
                format!("{field}.length"),
                "give either length or min_length/max_length",
            ));
        }
    };
    if min_length > max_length || max_length > MAX_TEXT {
        return Err(Invalid::field(
            format!("{field}.max_length"),
            format!("need min_length <= max_length <= {MAX_TEXT}"),
        ));
    }
    Ok(ColumnKind::Text {
        min_length,
        max_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawGenerate {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_valid_spec_parses_every_kind() {
        let spec = raw(serde_json::json!({"rows": 5, "seed": 1, "columns": [
            {"name": "id", "kind": "uuid"},
            {"name": "n", "kind": "int", "min": -5, "max": 5},
            {"name": "d", "kind": "date", "start": "2020-01-01", "end": "2020-12-31"},
            {"name": "s", "kind": "enum", "values": ["a", "b"]},
            {"name": "t", "kind": "text", "length": 12},
        ]}));
        let parsed = parse(&spec, "source").unwrap();
        assert_eq!(parsed.columns.len(), 5);
        assert_eq!(parsed.columns[1].kind, ColumnKind::Int { min: -5, max: 5 });
    }

    #[test]
    fn every_bad_column_is_named_at_once() {
        let spec = raw(serde_json::json!({"rows": 5, "columns": [
            {"name": "a", "kind": "nope"},
            {"name": "a", "kind": "int", "min": 9, "max": 1},
            {"name": "e", "kind": "enum"},
        ]}));
        let fields: Vec<String> = parse(&spec, "source")
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "source.columns[0].kind",
                "source.columns[1].name",
                "source.columns[1].min",
                "source.columns[2].values"
            ]
        );
    }
}
