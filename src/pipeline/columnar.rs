//! Arrow record batches as export chunks: what a columnar source (DuckDB) hands the pipeline.
//!
//! [`column_type`] says what an Arrow field is in Ferry's terms (SPEC §3.1): integers as the
//! smallest of Ferry's integer types that holds them (`UBIGINT` as `decimal(20,0)`), decimals,
//! floats, booleans, dates, timestamps (with a zone: `timestamptz`), UUIDs and JSON by their
//! extension type, lists, structs, maps and unions as JSON, and everything else that has a
//! text form (strings, enums, times, intervals, blobs) as text. A type with no faithful form
//! (an opaque extension such as DuckDB's `BIGNUM`) is refused, naming the column, before any
//! row is read.
//!
//! Parquet takes a batch's arrays as they are when their type already is the file's (the
//! common case; see [`super::codecs::parquet`]). The row encoders (CSV, JSON Lines, XLSX) get
//! [`rows`]: JSON values in the forms [`super::types`] reads — decimals as their exact text,
//! dates `YYYY-MM-DD`, timestamps RFC 3339 (`Z` for `timestamptz`; the largest and smallest
//! 64-bit values, DuckDB's and PostgreSQL's infinities, as `infinity`/`-infinity`), times
//! `HH:MM:SS.ffffff`, intervals ISO 8601 (`P1Y2M3DT4H5M6.5S`), blobs lowercase hex, nested
//! values as JSON arrays and objects (map keys as text), and JSON text holding an object or an
//! array parsed (a JSON scalar, or text that does not parse, stays text).

use super::Row;
use super::sources::generate::date_text;
use super::types::{Column, ColumnType, decimal_text};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type,
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, IntervalDayTimeType,
    IntervalMonthDayNanoType, IntervalYearMonthType, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, OffsetSizeTrait, RecordBatch};
use arrow_schema::{DataType, Field, IntervalUnit, TimeUnit};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The metadata key of an Arrow extension type's name.
const EXTENSION_NAME: &str = "ARROW:extension:name";
/// The metadata key of an extension type's parameters (JSON).
const EXTENSION_METADATA: &str = "ARROW:extension:metadata";

/// A type Ferry cannot write faithfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}: {what} has no file type; cast it in the query (e.g. to VARCHAR)")]
pub struct Unsupported {
    /// The column, as the header shows it (empty while unknown).
    pub column: String,
    /// The type, as Arrow or the source names it.
    pub what: String,
}

impl Unsupported {
    fn new(what: impl Into<String>) -> Self {
        Self {
            column: String::new(),
            what: what.into(),
        }
    }

    fn of(data_type: &DataType) -> Self {
        Self::new(format!("the Arrow type {data_type}"))
    }

    pub fn in_column(mut self, column: &str) -> Self {
        self.column = column.to_owned();
        self
    }
}

impl From<Unsupported> for std::io::Error {
    fn from(error: Unsupported) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }
}

/// The column an Arrow field becomes.
pub fn column_type(field: &Field) -> Result<Column, Unsupported> {
    let kind = match extension(field) {
        Some(("arrow.uuid", _)) => Ok(ColumnType::Uuid),
        Some(("arrow.json", _)) => Ok(ColumnType::Json),
        Some(("arrow.opaque", metadata)) => Err(Unsupported::new(opaque_name(metadata))),
        _ => kind(field.data_type()),
    };
    kind.map(|kind| Column::new(field.name().clone(), kind))
        .map_err(|error| error.in_column(field.name()))
}

fn extension(field: &Field) -> Option<(&str, &str)> {
    let metadata = field.metadata();
    let name = metadata.get(EXTENSION_NAME)?;
    let parameters = metadata.get(EXTENSION_METADATA).map_or("", String::as_str);
    Some((name.as_str(), parameters))
}

/// `DuckDB's BIGNUM` from an opaque type's `{"type_name": …, "vendor_name": …}`.
fn opaque_name(metadata: &str) -> String {
    let parsed: Value = serde_json::from_str(metadata).unwrap_or(Value::Null);
    match (parsed["vendor_name"].as_str(), parsed["type_name"].as_str()) {
        (Some(vendor), Some(name)) => format!("{vendor}'s {}", name.to_uppercase()),
        _ => "an opaque extension type".to_owned(),
    }
}

fn kind(data_type: &DataType) -> Result<ColumnType, Unsupported> {
    use DataType as D;
    Ok(match data_type {
        D::Boolean => ColumnType::Bool,
        D::Int8 | D::Int16 | D::UInt8 => ColumnType::Int16,
        D::Int32 | D::UInt16 => ColumnType::Int32,
        D::Int64 | D::UInt32 => ColumnType::Int64,
        D::UInt64 => ColumnType::Decimal {
            precision: 20,
            scale: 0,
        },
        D::Float32 => ColumnType::Float32,
        D::Float64 => ColumnType::Float64,
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) => {
            let scale = u8::try_from(*s).map_err(|_| Unsupported::of(data_type))?;
            ColumnType::Decimal {
                precision: *p,
                scale,
            }
        }
        D::Date32 | D::Date64 => ColumnType::Date,
        D::Timestamp(_, None) => ColumnType::Timestamp,
        D::Timestamp(_, Some(_)) => ColumnType::Timestamptz,
        D::Dictionary(_, values) => match kind(values)? {
            ColumnType::Json => ColumnType::Json,
            _ => ColumnType::Text,
        },
        nested if nested.is_nested() => {
            check_children(nested)?;
            ColumnType::Json
        }
        other => {
            check_scalar(other)?;
            ColumnType::Text
        }
    })
}

/// Checks that [`values`] can write every child of a nested type.
fn check_children(data_type: &DataType) -> Result<(), Unsupported> {
    use DataType as D;
    match data_type {
        D::List(child) | D::LargeList(child) | D::FixedSizeList(child, _) | D::Map(child, _) => {
            kind(child.data_type()).map(drop)
        }
        D::Struct(fields) => fields
            .iter()
            .try_for_each(|f| kind(f.data_type()).map(drop)),
        D::Union(fields, _) => fields
            .iter()
            .try_for_each(|(_, f)| kind(f.data_type()).map(drop)),
        other => Err(Unsupported::of(other)),
    }
}

/// Checks that [`values`] writes a scalar type that has no column type of its own as text.
fn check_scalar(data_type: &DataType) -> Result<(), Unsupported> {
    use DataType as D;
    match data_type {
        D::Null
        | D::Utf8
        | D::LargeUtf8
        | D::Utf8View
        | D::Binary
        | D::LargeBinary
        | D::BinaryView
        | D::FixedSizeBinary(_)
        | D::Time32(_)
        | D::Time64(_)
        | D::Interval(_)
        | D::Duration(_) => Ok(()),
        other => Err(Unsupported::of(other)),
    }
}

/// The rows of `batch`, whose columns are `columns` (from [`column_type`] of its fields).
pub fn rows(batch: &RecordBatch, columns: &[Column]) -> Result<Vec<Row>, Unsupported> {
    if batch.num_columns() != columns.len() {
        return Err(Unsupported::new(format!(
            "a batch of {} columns where {} were announced",
            batch.num_columns(),
            columns.len()
        )));
    }
    let mut rows: Vec<Row> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(columns.len()))
        .collect();
    for (column, array) in columns.iter().zip(batch.columns()) {
        let values = values(array.as_ref()).map_err(|e| e.in_column(&column.name))?;
        for (row, value) in rows.iter_mut().zip(values) {
            row.push(match column.kind {
                ColumnType::Json => parsed(value),
                _ => value,
            });
        }
    }
    Ok(rows)
}

/// JSON text of an object or array as the value it holds, so that JSON Lines nests it (and CSV
/// writes it back as compact JSON). Scalars stay text: the JSON `null` parsed would be written
/// as SQL NULL, and a JSON string without its quotes.
fn parsed(value: Value) -> Value {
    match value {
        Value::String(text) if text.trim_start().starts_with(['{', '[']) => {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
        other => other,
    }
}

/// Every value of `array` (nulls as `Value::Null`) in the forms the module docs give.
pub fn values(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    use DataType as D;
    let data_type = array.data_type();
    let bad = || Unsupported::of(data_type);
    Ok(match data_type {
        D::Null => vec![Value::Null; array.len()],
        D::Boolean => {
            let bools = array.as_boolean_opt().ok_or_else(bad)?;
            each(array, |i| Value::Bool(bools.value(i)))
        }
        D::Int8 => primitive::<Int8Type>(array, Value::from)?,
        D::Int16 => primitive::<Int16Type>(array, Value::from)?,
        D::Int32 => primitive::<Int32Type>(array, Value::from)?,
        D::Int64 => primitive::<Int64Type>(array, Value::from)?,
        D::UInt8 => primitive::<UInt8Type>(array, Value::from)?,
        D::UInt16 => primitive::<UInt16Type>(array, Value::from)?,
        D::UInt32 => primitive::<UInt32Type>(array, Value::from)?,
        D::UInt64 => primitive::<UInt64Type>(array, Value::from)?,
        D::Float32 => primitive::<Float32Type>(array, float32)?,
        D::Float64 => primitive::<Float64Type>(array, float)?,
        D::Decimal32(_, s) => decimal::<Decimal32Type>(array, *s, i128::from)?,
        D::Decimal64(_, s) => decimal::<Decimal64Type>(array, *s, i128::from)?,
        D::Decimal128(_, s) => decimal::<Decimal128Type>(array, *s, |v| v)?,
        D::Date32 => primitive::<Date32Type>(array, |d| date(i64::from(d)))?,
        D::Date64 => primitive::<Date64Type>(array, |ms| date(ms.div_euclid(86_400_000)))?,
        D::Timestamp(unit, zone) => timestamps(array, *unit, zone.is_some())?,
        D::Time32(_) | D::Time64(_) => times(array)?,
        D::Interval(_) | D::Duration(_) => intervals(array)?,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => strings(array)?,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => blobs(array)?,
        D::List(_) => list::<i32>(array)?,
        D::LargeList(_) => list::<i64>(array)?,
        D::FixedSizeList(_, _) => fixed_size_list(array)?,
        D::Struct(_) => structs(array)?,
        D::Map(_, _) => maps(array)?,
        D::Union(_, _) => unions(array)?,
        D::Dictionary(_, _) => dictionary(array)?,
        _ => return Err(bad()),
    })
}

/// `value(i)` for each row, `Value::Null` where the row is null.
fn each(array: &dyn Array, mut value: impl FnMut(usize) -> Value) -> Vec<Value> {
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                Value::Null
            } else {
                value(i)
            }
        })
        .collect()
}

fn primitive<T: ArrowPrimitiveType>(
    array: &dyn Array,
    value: impl Fn(T::Native) -> Value,
) -> Result<Vec<Value>, Unsupported> {
    let typed = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    Ok(each(array, |i| value(typed.value(i))))
}

fn decimal<T: ArrowPrimitiveType>(
    array: &dyn Array,
    scale: i8,
    widen: impl Fn(T::Native) -> i128,
) -> Result<Vec<Value>, Unsupported> {
    let scale = u8::try_from(scale).map_err(|_| Unsupported::of(array.data_type()))?;
    primitive::<T>(array, |v| {
        let unscaled = widen(v);
        Value::String(decimal_text(unscaled, scale, unscaled < 0))
    })
}

/// A float as a JSON number, or `NaN`/`Infinity`/`-Infinity` text, which JSON cannot hold.
fn float(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(number) => Value::Number(number),
        None if value.is_nan() => Value::from("NaN"),
        None if value > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

/// A 32-bit float by its shortest text (`0.1`, not `0.10000000149011612`).
fn float32(value: f32) -> Value {
    float(value.to_string().parse().unwrap_or(f64::from(value)))
}

fn date(days: i64) -> Value {
    match days {
        d if d >= i64::from(i32::MAX) => Value::from("infinity"),
        d if d <= -i64::from(i32::MAX) => Value::from("-infinity"),
        d => Value::String(date_text(d)),
    }
}

/// Units per second and fraction digits of a time unit.
fn scale(unit: TimeUnit) -> (i64, usize) {
    match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    }
}

fn timestamps(array: &dyn Array, unit: TimeUnit, utc: bool) -> Result<Vec<Value>, Unsupported> {
    let text = move |v: i64| timestamp_text(v, unit, utc);
    match unit {
        TimeUnit::Second => primitive::<TimestampSecondType>(array, text),
        TimeUnit::Millisecond => primitive::<TimestampMillisecondType>(array, text),
        TimeUnit::Microsecond => primitive::<TimestampMicrosecondType>(array, text),
        TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(array, text),
    }
}

/// RFC 3339 text of `value` units since the epoch, `Z` when `utc`.
fn timestamp_text(value: i64, unit: TimeUnit, utc: bool) -> Value {
    if value == i64::MAX {
        return Value::from("infinity");
    }
    if value <= -i64::MAX {
        return Value::from("-infinity");
    }
    let (per_second, digits) = scale(unit);
    let seconds = value.div_euclid(per_second);
    let mut out = date_text(seconds.div_euclid(86_400));
    out.push('T');
    push_clock(
        &mut out,
        seconds.rem_euclid(86_400),
        value.rem_euclid(per_second),
        digits,
    );
    if utc {
        out.push('Z');
    }
    Value::String(out)
}

/// `HH:MM:SS`, then `.` and the fraction's digits (trailing zeros dropped) when it has any.
fn push_clock(out: &mut String, seconds_of_day: i64, fraction: i64, digits: usize) {
    let (h, m, s) = (
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
    );
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
    if fraction > 0 {
        let text = format!("{fraction:0digits$}");
        out.push('.');
        out.push_str(text.trim_end_matches('0'));
    }
}

fn times(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let clock = |value: i64, unit: TimeUnit| {
        let (per_second, digits) = scale(unit);
        let mut out = String::with_capacity(15);
        push_clock(
            &mut out,
            value.div_euclid(per_second),
            value.rem_euclid(per_second),
            digits,
        );
        Value::String(out)
    };
    match array.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            primitive::<Time32SecondType>(array, |v| clock(i64::from(v), TimeUnit::Second))
        }
        DataType::Time32(_) => primitive::<Time32MillisecondType>(array, |v| {
            clock(i64::from(v), TimeUnit::Millisecond)
        }),
        DataType::Time64(TimeUnit::Microsecond) => {
            primitive::<Time64MicrosecondType>(array, |v| clock(v, TimeUnit::Microsecond))
        }
        _ => primitive::<Time64NanosecondType>(array, |v| clock(v, TimeUnit::Nanosecond)),
    }
}

fn intervals(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    use DataType as D;
    let nanos = |value: i64, unit: TimeUnit| {
        let (per_second, _) = scale(unit);
        interval_text(0, 0, value.saturating_mul(1_000_000_000 / per_second))
    };
    match array.data_type() {
        D::Interval(IntervalUnit::YearMonth) => {
            primitive::<IntervalYearMonthType>(array, |m| interval_text(m, 0, 0))
        }
        D::Interval(IntervalUnit::DayTime) => primitive::<IntervalDayTimeType>(array, |v| {
            interval_text(0, v.days, i64::from(v.milliseconds) * 1_000_000)
        }),
        D::Interval(IntervalUnit::MonthDayNano) => {
            primitive::<IntervalMonthDayNanoType>(array, |v| {
                interval_text(v.months, v.days, v.nanoseconds)
            })
        }
        D::Duration(TimeUnit::Second) => {
            primitive::<DurationSecondType>(array, |v| nanos(v, TimeUnit::Second))
        }
        D::Duration(TimeUnit::Millisecond) => {
            primitive::<DurationMillisecondType>(array, |v| nanos(v, TimeUnit::Millisecond))
        }
        D::Duration(TimeUnit::Microsecond) => {
            primitive::<DurationMicrosecondType>(array, |v| nanos(v, TimeUnit::Microsecond))
        }
        _ => primitive::<DurationNanosecondType>(array, |v| nanos(v, TimeUnit::Nanosecond)),
    }
}

/// ISO 8601 duration text, each part with its own sign (`P1Y2M3DT4H5M6.5S`, `P-1M`, `PT0S`).
fn interval_text(months: i32, days: i32, nanos: i64) -> Value {
    if months == 0 && days == 0 && nanos == 0 {
        return Value::from("PT0S");
    }
    let mut out = String::from("P");
    for (amount, unit) in [(months / 12, 'Y'), (months % 12, 'M'), (days, 'D')] {
        if amount != 0 {
            let _ = write!(out, "{amount}{unit}");
        }
    }
    if nanos != 0 {
        out.push('T');
        let sign = if nanos < 0 { "-" } else { "" };
        let nanos = nanos.unsigned_abs();
        let seconds = nanos / 1_000_000_000;
        let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
        for (amount, unit) in [(hours, 'H'), (minutes, 'M')] {
            if amount != 0 {
                let _ = write!(out, "{sign}{amount}{unit}");
            }
        }
        let (whole, fraction) = (seconds % 60, nanos % 1_000_000_000);
        if whole != 0 || fraction != 0 {
            let _ = write!(out, "{sign}{whole}");
            if fraction != 0 {
                let digits = format!("{fraction:09}");
                let _ = write!(out, ".{}", digits.trim_end_matches('0'));
            }
            out.push('S');
        }
    }
    Value::String(out)
}

fn strings(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let text = |s: &str| Value::String(s.to_owned());
    if let Some(a) = array.as_string_opt::<i32>() {
        Ok(each(array, |i| text(a.value(i))))
    } else if let Some(a) = array.as_string_opt::<i64>() {
        Ok(each(array, |i| text(a.value(i))))
    } else if let Some(a) = array.as_string_view_opt() {
        Ok(each(array, |i| text(a.value(i))))
    } else {
        Err(Unsupported::of(array.data_type()))
    }
}

fn blobs(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let hex = |b: &[u8]| Value::String(hex::encode(b));
    if let Some(a) = array.as_binary_opt::<i32>() {
        Ok(each(array, |i| hex(a.value(i))))
    } else if let Some(a) = array.as_binary_opt::<i64>() {
        Ok(each(array, |i| hex(a.value(i))))
    } else if let Some(a) = array.as_binary_view_opt() {
        Ok(each(array, |i| hex(a.value(i))))
    } else if let Some(a) = array.as_fixed_size_binary_opt() {
        Ok(each(array, |i| hex(a.value(i))))
    } else {
        Err(Unsupported::of(array.data_type()))
    }
}

/// Rows of a list: the slices `offsets[i]..offsets[i + 1]` of its child's values.
fn sliced<O: OffsetSizeTrait>(
    array: &dyn Array,
    offsets: &[O],
    mut children: Vec<Value>,
) -> Vec<Value> {
    each(array, |i| {
        range(offsets, i)
            .and_then(|r| children.get_mut(r))
            .map_or(Value::Null, take_all)
    })
}

/// Row `i`'s range of a list's or map's child values.
fn range<O: OffsetSizeTrait>(offsets: &[O], i: usize) -> Option<std::ops::Range<usize>> {
    Some(offsets.get(i)?.as_usize()..offsets.get(i + 1)?.as_usize())
}

fn take_all(slice: &mut [Value]) -> Value {
    Value::Array(slice.iter_mut().map(std::mem::take).collect())
}

fn list<O: OffsetSizeTrait>(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let list = array
        .as_list_opt::<O>()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    let children = values(list.values().as_ref())?;
    Ok(sliced(array, list.value_offsets(), children))
}

fn fixed_size_list(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let list = array
        .as_fixed_size_list_opt()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    let width = usize::try_from(list.value_length()).unwrap_or(0);
    let offsets: Vec<i64> = (0..=list.len())
        .map(|i| i64::try_from(i * width).unwrap_or(i64::MAX))
        .collect();
    let children = values(list.values().as_ref())?;
    Ok(sliced(array, &offsets, children))
}

fn structs(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let structs = array
        .as_struct_opt()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    let mut fields = Vec::with_capacity(structs.num_columns());
    for (name, column) in structs.column_names().into_iter().zip(structs.columns()) {
        fields.push((name.to_owned(), values(column.as_ref())?));
    }
    Ok(each(array, |i| {
        let object: Map<String, Value> = fields
            .iter_mut()
            .map(|(name, column)| {
                let value = column.get_mut(i).map_or(Value::Null, std::mem::take);
                (name.clone(), value)
            })
            .collect();
        Value::Object(object)
    }))
}

fn maps(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let map = array
        .as_map_opt()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    let offsets = map.value_offsets();
    let mut keys = values(map.keys().as_ref())?;
    let mut entries = values(map.values().as_ref())?;
    Ok(each(array, |i| {
        let Some(r) = range(offsets, i) else {
            return Value::Null;
        };
        match (keys.get_mut(r.clone()), entries.get_mut(r)) {
            (Some(keys), Some(entries)) => Value::Object(
                keys.iter_mut()
                    .zip(entries)
                    .map(|(k, v)| (key_text(std::mem::take(k)), std::mem::take(v)))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }))
}

/// A map key as an object key: text as it is, anything else as its JSON text.
fn key_text(key: Value) -> String {
    match key {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

fn unions(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let union = array
        .as_union_opt()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    let mut children: HashMap<i8, Vec<Value>> = HashMap::new();
    if let DataType::Union(fields, _) = union.data_type() {
        for (type_id, _) in fields.iter() {
            children.insert(type_id, values(union.child(type_id).as_ref())?);
        }
    }
    Ok((0..union.len())
        .map(|i| {
            children
                .get_mut(&union.type_id(i))
                .and_then(|child| child.get_mut(union.value_offset(i)))
                .map_or(Value::Null, std::mem::take)
        })
        .collect())
}

fn dictionary(array: &dyn Array) -> Result<Vec<Value>, Unsupported> {
    let dictionary = array
        .as_any_dictionary_opt()
        .ok_or_else(|| Unsupported::of(array.data_type()))?;
    let entries = values(dictionary.values().as_ref())?;
    let keys = dictionary.normalized_keys();
    Ok(each(array, |i| {
        keys.get(i)
            .and_then(|&key| entries.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    }))
}

#[cfg(test)]
mod tests;
