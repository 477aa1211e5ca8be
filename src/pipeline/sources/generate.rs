//! The synthetic source: deterministic rows from a [`GenerateSpec`], for test-data exports and
//! load tests, with no database.
//!
//! Every value comes from one ChaCha8 stream seeded with the spec's seed, drawn row by row and
//! column by column, so the same seed and columns give the same rows whatever the batch sizes.
//! Ranges and choices are sampled here from raw 64-bit draws rather than through `rand`'s
//! distributions, whose algorithms may change between `rand` releases: the file a seed makes
//! should only change when this file does (a golden test pins it).

mod calendar;
mod words;

use crate::domain::generate::{Column, ColumnKind, GenerateSpec};
use crate::pipeline::Row;
use crate::pipeline::types::{self, ColumnType};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};
use std::fmt::{Display, Write as _};
use time::{Date, OffsetDateTime};

/// Makes the rows of a [`GenerateSpec`], a batch at a time.
#[derive(Debug)]
pub struct Generator {
    columns: Vec<types::Column>,
    plans: Vec<Plan>,
    rng: ChaCha8Rng,
    remaining: u64,
}

/// One column, with its bounds turned into what sampling needs.
#[derive(Debug)]
struct Plan {
    null_fraction: f64,
    kind: Kind,
}

/// A [`ColumnKind`] prepared for sampling: every range is a start plus an inclusive span.
#[derive(Debug)]
enum Kind {
    Uuid,
    Int {
        min: i64,
        span: u64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    Name,
    Email,
    Company,
    City,
    Country,
    Phone,
    /// Days since 1970-01-01.
    Date {
        first: i64,
        span: u64,
    },
    /// Seconds since 1970-01-01T00:00:00Z.
    Timestamp {
        first: i64,
        span: u64,
    },
    Enum {
        values: Vec<String>,
    },
    Text {
        min_length: usize,
        span: u64,
    },
    Json,
}

impl Generator {
    /// Prepares a generator; the rows come from [`Generator::next_batch`].
    pub fn new(spec: GenerateSpec) -> Self {
        let columns = spec
            .columns
            .iter()
            .map(|c| types::Column::new(c.name.clone(), column_type(&c.kind)))
            .collect();
        let plans = spec.columns.iter().map(Plan::new).collect();
        Self {
            columns,
            plans,
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            remaining: spec.rows,
        }
    }

    /// The columns, in order, with the type of each kind.
    pub fn columns(&self) -> Vec<types::Column> {
        self.columns.clone()
    }

    /// The next rows, at most `max` of them; empty once the spec's row count is reached (and
    /// when `max` is 0, so callers should ask for at least one row).
    pub fn next_batch(&mut self, max: usize) -> Vec<Row> {
        let count = usize::try_from(self.remaining).map_or(max, |remaining| remaining.min(max));
        let mut rows = Vec::with_capacity(count);
        for _ in 0..count {
            rows.push(self.row());
        }
        self.remaining -= count as u64;
        rows
    }

    fn row(&mut self) -> Row {
        let rng = &mut self.rng;
        self.plans.iter().map(|plan| plan.value(rng)).collect()
    }
}

/// The type of a generated kind: numbers, booleans, dates and timestamps (UTC) as themselves;
/// UUIDs and JSON as such; every word-like kind as text.
fn column_type(kind: &ColumnKind) -> ColumnType {
    match kind {
        ColumnKind::Uuid => ColumnType::Uuid,
        ColumnKind::Int { .. } => ColumnType::Int64,
        ColumnKind::Float { .. } => ColumnType::Float64,
        ColumnKind::Bool => ColumnType::Bool,
        ColumnKind::Date { .. } => ColumnType::Date,
        ColumnKind::Timestamp { .. } => ColumnType::Timestamptz,
        ColumnKind::Json => ColumnType::Json,
        ColumnKind::Name
        | ColumnKind::Email
        | ColumnKind::Company
        | ColumnKind::City
        | ColumnKind::Country
        | ColumnKind::Phone
        | ColumnKind::Enum { .. }
        | ColumnKind::Text { .. } => ColumnType::Text,
    }
}

/// `YYYY-MM-DD` of a day count since 1970-01-01, as the generator writes dates.
pub fn date_text(days: i64) -> String {
    calendar::date(days)
}

impl Plan {
    fn new(column: &Column) -> Self {
        Self {
            null_fraction: column.null_fraction,
            kind: Kind::new(&column.kind),
        }
    }

    /// The null decision is drawn before the value, and only for fractions strictly between
    /// 0 and 1, so a column that is never (or always) null costs no draw for it.
    fn value(&self, rng: &mut ChaCha8Rng) -> Value {
        let p = self.null_fraction;
        if p > 0.0 && (p >= 1.0 || unit(rng) < p) {
            return Value::Null;
        }
        self.kind.value(rng)
    }
}

impl Kind {
    fn new(kind: &ColumnKind) -> Self {
        match kind {
            ColumnKind::Uuid => Self::Uuid,
            ColumnKind::Int { min, max } => Self::Int {
                min: *min,
                span: max.abs_diff(*min),
            },
            ColumnKind::Float { min, max } => Self::Float {
                min: *min,
                max: *max,
            },
            ColumnKind::Bool => Self::Bool,
            ColumnKind::Name => Self::Name,
            ColumnKind::Email => Self::Email,
            ColumnKind::Company => Self::Company,
            ColumnKind::City => Self::City,
            ColumnKind::Country => Self::Country,
            ColumnKind::Phone => Self::Phone,
            ColumnKind::Date { start, end } => date_kind(*start, *end),
            ColumnKind::Timestamp { start, end } => timestamp_kind(*start, *end),
            ColumnKind::Enum { values } => Self::Enum {
                values: values.clone(),
            },
            ColumnKind::Text {
                min_length,
                max_length,
            } => Self::Text {
                min_length: *min_length as usize,
                span: u64::from(max_length.saturating_sub(*min_length)),
            },
            ColumnKind::Json => Self::Json,
        }
    }

    fn value(&self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Self::Uuid => Value::String(uuid(rng)),
            Self::Int { min, span } => Value::from(min.wrapping_add(upto(rng, *span) as i64)),
            Self::Float { min, max } => Value::from(float(rng, *min, *max)),
            Self::Bool => Value::Bool(rng.next_u32() & 1 == 1),
            Self::Name => Value::String(name(rng)),
            Self::Email => Value::String(email(rng)),
            Self::Company => pick_str(rng, words::COMPANIES),
            Self::City => pick_str(rng, words::CITIES),
            Self::Country => pick_str(rng, words::COUNTRIES),
            Self::Phone => Value::String(phone(rng)),
            Self::Date { first, span } => Value::String(calendar::date(
                first.saturating_add_unsigned(upto(rng, *span)),
            )),
            Self::Timestamp { first, span } => Value::String(calendar::timestamp(
                first.saturating_add_unsigned(upto(rng, *span)),
            )),
            Self::Enum { values } => Value::String(pick(rng, values).clone()),
            Self::Text { min_length, span } => {
                let length = min_length + upto(rng, *span) as usize;
                Value::String(text(rng, length))
            }
            Self::Json => json(rng),
        }
    }
}

fn date_kind(start: Date, end: Date) -> Kind {
    let first = calendar::days_since_epoch(start);
    Kind::Date {
        first,
        span: calendar::days_since_epoch(end).abs_diff(first),
    }
}

/// Values are whole seconds, so the range starts at the first whole second not before `start`;
/// a range that holds no whole second gives the second `end` falls in.
fn timestamp_kind(start: OffsetDateTime, end: OffsetDateTime) -> Kind {
    let last = end.unix_timestamp();
    let first = (start.unix_timestamp() + i64::from(start.nanosecond() > 0)).min(last);
    Kind::Timestamp {
        first,
        span: last.abs_diff(first),
    }
}

/// A uniform integer in `0..n`, for `n > 0` (Lemire's multiply-and-reject: unbiased, and
/// almost always one draw).
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    let mut product = u128::from(rng.next_u64()) * u128::from(n);
    if (product as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (product >> 64) as u64
}

/// A uniform integer in `0..=span`.
fn upto(rng: &mut ChaCha8Rng, span: u64) -> u64 {
    match span.checked_add(1) {
        Some(n) => below(rng, n),
        None => rng.next_u64(),
    }
}

/// A uniform float in `0..1` with 53 random bits.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A float in `min..max`; both bounds are finite and `min < max`. When `max - min` overflows
/// the weighted form keeps the value finite; rounding near `max` is clamped below it.
fn float(rng: &mut ChaCha8Rng, min: f64, max: f64) -> f64 {
    let u = unit(rng);
    let span = max - min;
    let value = if span.is_finite() {
        min + span * u
    } else {
        min * (1.0 - u) + max * u
    };
    value.clamp(min, max.next_down())
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len() as u64) as usize]
}

fn pick_str(rng: &mut ChaCha8Rng, items: &[&str]) -> Value {
    Value::String((*pick(rng, items)).to_owned())
}

/// A version 4 UUID, lowercase and hyphenated.
fn uuid(rng: &mut ChaCha8Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid.hyphenated().encode_lower(&mut buffer).to_owned()
}

fn name(rng: &mut ChaCha8Rng) -> String {
    let first = pick(rng, words::FIRST_NAMES);
    let last = pick(rng, words::LAST_NAMES);
    let mut out = String::with_capacity(first.len() + 1 + last.len());
    out.push_str(first);
    out.push(' ');
    out.push_str(last);
    out
}

/// `first.last42@example.com`: a lowercase name, a number from 1 to 99, a reserved domain.
fn email(rng: &mut ChaCha8Rng) -> String {
    let first = pick(rng, words::FIRST_NAMES);
    let last = pick(rng, words::LAST_NAMES);
    let number = 1 + below(rng, 99);
    let domain = pick(rng, words::EMAIL_DOMAINS);
    let mut out = String::with_capacity(first.len() + last.len() + domain.len() + 5);
    out.extend(first.chars().map(|c| c.to_ascii_lowercase()));
    out.push('.');
    out.extend(last.chars().map(|c| c.to_ascii_lowercase()));
    push_display(&mut out, number);
    out.push('@');
    out.push_str(domain);
    out
}

/// `+1NPA55501XX`: a North American number in E.164 form from the 555-0100 to 555-0199
/// block, which is reserved for fiction, so no generated number rings a real phone.
fn phone(rng: &mut ChaCha8Rng) -> String {
    let area = 201 + below(rng, 789);
    let line = below(rng, 100);
    let mut out = String::with_capacity(12);
    out.push_str("+1");
    push_display(&mut out, area);
    out.push_str("55501");
    push_display(&mut out, format_args!("{line:02}"));
    out
}

/// Lorem-ipsum words from a random starting word, cut to exactly `length` characters; a cut
/// that would end on a space ends on a full stop instead.
fn text(rng: &mut ChaCha8Rng, length: usize) -> String {
    let mut next = below(rng, words::LOREM.len() as u64) as usize;
    let mut out = String::with_capacity(length + 16);
    while out.len() < length {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(words::LOREM[next % words::LOREM.len()]);
        next += 1;
    }
    out.truncate(length);
    if out.ends_with(' ') {
        out.pop();
        out.push('.');
    }
    out
}

/// `{"score": 0..=100, "tags": [0 to 3 distinct tags], "active": bool}`.
fn json(rng: &mut ChaCha8Rng) -> Value {
    let mut object = Map::with_capacity(3);
    object.insert("score".to_owned(), Value::from(below(rng, 101)));
    let first = below(rng, words::TAGS.len() as u64) as usize;
    let tags = (0..below(rng, 4) as usize)
        .map(|k| Value::from(words::TAGS[(first + k) % words::TAGS.len()]))
        .collect();
    object.insert("tags".to_owned(), Value::Array(tags));
    object.insert("active".to_owned(), Value::Bool(rng.next_u32() & 1 == 1));
    Value::Object(object)
}

/// Appends `value`'s text; writing into a `String` cannot fail.
fn push_display(out: &mut String, value: impl Display) {
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests;
