//! PostgreSQL's typed row path, for formats that need each column's type (Parquet, XLSX):
//! `COPY (…) TO STDOUT (FORMAT binary)`, decoded here.
//!
//! Binary `COPY` sends integers, floats, dates and timestamps as fixed-width binary, so neither
//! PostgreSQL nor Ferry formats or parses their text (the backend's text output is the slow
//! half of a CSV export). Types decoded natively: `bool`, `int2/4/8`, `float4/8`,
//! `numeric(p,s)` (p ≤ 38), `date`, `timestamp`, `timestamptz`, `uuid`, `json`, `jsonb` and
//! the text types. Every other column is cast to `text` in the `COPY`'s select list, so its
//! value arrives as PostgreSQL prints it. A `numeric` without a declared precision (an
//! expression, or a column declared plain `numeric`) has no fixed scale and is text too.
//!
//! The stream is parsed as bytes whatever the message boundaries are; at most one partial row
//! is held between messages.

use super::{Chunk, ChunkSender, SourceError};
use crate::pipeline::types::{Column, ColumnType, MAX_DECIMAL_PRECISION, decimal_text};
use crate::pipeline::{BATCH_ROWS, Row};
use bytes::{Buf, BytesMut};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::PgColumn;
use sqlx::{Column as _, PgConnection};

/// How one column's binary value becomes a [`Value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric {
        scale: u8,
    },
    Date,
    Timestamp,
    Uuid,
    Jsonb,
    /// UTF-8 bytes as they are (text types, `json`, and columns cast to `text`).
    Text,
}

/// The columns of a query and how to read them.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The columns, typed.
    pub columns: Vec<Column>,
    decoders: Vec<Decoder>,
    /// Which columns the `COPY` casts to `text`.
    casts: Vec<bool>,
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400 * 1_000_000;
/// Binary `COPY`'s signature, flags and header-extension length.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Types the columns of `described`; `numeric` columns read from a table get their declared
/// precision and scale from `pg_attribute`.
pub async fn plan(conn: &mut PgConnection, described: &[PgColumn]) -> Result<Plan, SourceError> {
    let mut plan = Plan {
        columns: Vec::with_capacity(described.len()),
        decoders: Vec::with_capacity(described.len()),
        casts: Vec::with_capacity(described.len()),
    };
    for column in described {
        let oid = column.type_info().oid().map_or(0, |oid| oid.0);
        let (kind, decoder) = match oid {
            1700 => numeric(conn, column).await?,
            _ => by_oid(oid),
        };
        plan.columns.push(Column::new(column.name(), kind));
        plan.casts.push(decoder.is_none());
        plan.decoders.push(decoder.unwrap_or(Decoder::Text));
    }
    Ok(plan)
}

/// The type and decoder of a column by its type's OID; `None` when it must be cast to text.
fn by_oid(oid: u32) -> (ColumnType, Option<Decoder>) {
    match oid {
        16 => (ColumnType::Bool, Some(Decoder::Bool)),
        21 => (ColumnType::Int16, Some(Decoder::Int2)),
        23 => (ColumnType::Int32, Some(Decoder::Int4)),
        20 => (ColumnType::Int64, Some(Decoder::Int8)),
        700 => (ColumnType::Float32, Some(Decoder::Float4)),
        701 => (ColumnType::Float64, Some(Decoder::Float8)),
        1082 => (ColumnType::Date, Some(Decoder::Date)),
        1114 => (ColumnType::Timestamp, Some(Decoder::Timestamp)),
        1184 => (ColumnType::Timestamptz, Some(Decoder::Timestamp)),
        2950 => (ColumnType::Uuid, Some(Decoder::Uuid)),
        114 => (ColumnType::Json, Some(Decoder::Text)),
        3802 => (ColumnType::Json, Some(Decoder::Jsonb)),
        // text, varchar, bpchar, name
        25 | 1043 | 1042 | 19 => (ColumnType::Text, Some(Decoder::Text)),
        _ => (ColumnType::Text, None),
    }
}

/// A `numeric` column: a decimal when it comes from a table column declared `numeric(p,s)`.
async fn numeric(
    conn: &mut PgConnection,
    column: &PgColumn,
) -> Result<(ColumnType, Option<Decoder>), SourceError> {
    let (Some(table), Some(attribute)) = (column.relation_id(), column.relation_attribute_no())
    else {
        return Ok((ColumnType::Text, None));
    };
    let typmod: Option<i32> = sqlx::query_scalar(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = $1 AND attnum = $2",
    )
    .bind(table)
    .bind(attribute)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match typmod.and_then(precision_scale) {
        Some((precision, scale)) => (
            ColumnType::Decimal { precision, scale },
            Some(Decoder::Numeric { scale }),
        ),
        None => (ColumnType::Text, None),
    })
}

/// `numeric(p,s)`'s type modifier as (p, s), when p fits a 128-bit decimal and 0 ≤ s ≤ p.
fn precision_scale(typmod: i32) -> Option<(u8, u8)> {
    if typmod < 4 {
        return None;
    }
    let packed = typmod - 4;
    let precision = u8::try_from((packed >> 16) & 0xffff).ok()?;
    let scale = u8::try_from(packed & 0xffff).ok()?;
    (precision <= MAX_DECIMAL_PRECISION && scale <= precision).then_some((precision, scale))
}

impl Plan {
    /// The `COPY` statement that reads `sql` in binary, casting what must be text.
    pub fn copy_sql(&self, sql: &str) -> String {
        let names: Vec<String> = (1..=self.columns.len()).map(|i| format!("c{i}")).collect();
        let select: Vec<String> = names
            .iter()
            .zip(&self.casts)
            .map(|(name, cast)| {
                if *cast {
                    format!("ferry_q.{name}::text")
                } else {
                    format!("ferry_q.{name}")
                }
            })
            .collect();
        format!(
            "COPY (SELECT {} FROM ({sql}) AS ferry_q({})) TO STDOUT (FORMAT binary)",
            select.join(", "),
            names.join(", ")
        )
    }
}

/// Streams the rows of `sql` as typed values, a batch at a time.
pub async fn stream(
    conn: &mut PgConnection,
    plan: &Plan,
    sql: &str,
    tx: &ChunkSender,
) -> Result<(), SourceError> {
    let copy = plan.copy_sql(sql);
    let mut stream = conn.copy_out_raw(&copy).await?;
    let mut parser = Parser::new(&plan.decoders);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(message) = stream.try_next().await? {
        parser.feed(&message);
        while let Some(row) = parser.next_row()? {
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if tx.send(Ok(Chunk::Rows(full))).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !parser.finished() {
        return Err(protocol("the binary COPY stream ended early"));
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(Chunk::Rows(batch))).await;
    }
    Ok(())
}

fn protocol(message: &str) -> SourceError {
    SourceError::Transient {
        code: "database_unavailable",
        message: message.to_owned(),
    }
}

/// Binary `COPY` bytes in, rows out.
struct Parser<'a> {
    decoders: &'a [Decoder],
    buffer: BytesMut,
    header_done: bool,
    trailer_seen: bool,
}

impl<'a> Parser<'a> {
    fn new(decoders: &'a [Decoder]) -> Self {
        Self {
            decoders,
            buffer: BytesMut::new(),
            header_done: false,
            trailer_seen: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn finished(&self) -> bool {
        self.trailer_seen
    }

    /// The next complete row, or `None` until more bytes arrive.
    fn next_row(&mut self) -> Result<Option<Row>, SourceError> {
        if !self.header_done && !self.skip_header()? {
            return Ok(None);
        }
        if self.trailer_seen {
            return Ok(None);
        }
        let Some(len) = self.tuple_len()? else {
            return Ok(None);
        };
        let mut tuple = self.buffer.split_to(len);
        let count = tuple.get_i16();
        if count == -1 {
            self.trailer_seen = true;
            return Ok(None);
        }
        let mut row = Vec::with_capacity(self.decoders.len());
        for decoder in self.decoders {
            let size = tuple.get_i32();
            if size < 0 {
                row.push(Value::Null);
            } else {
                let field = tuple.split_to(size as usize);
                row.push(decode(*decoder, &field)?);
            }
        }
        Ok(Some(row))
    }

    fn skip_header(&mut self) -> Result<bool, SourceError> {
        let fixed = SIGNATURE.len() + 8;
        if self.buffer.len() < fixed {
            return Ok(false);
        }
        if &self.buffer[..SIGNATURE.len()] != SIGNATURE {
            return Err(protocol("the binary COPY stream has no PGCOPY signature"));
        }
        let extension = read_i32(&self.buffer, SIGNATURE.len() + 4);
        let total = fixed + usize::try_from(extension).unwrap_or(0);
        if self.buffer.len() < total {
            return Ok(false);
        }
        self.buffer.advance(total);
        self.header_done = true;
        Ok(true)
    }

    /// The length of the tuple at the front of the buffer, when all of it is there.
    fn tuple_len(&self) -> Result<Option<usize>, SourceError> {
        if self.buffer.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([self.buffer[0], self.buffer[1]]);
        if count == -1 {
            return Ok(Some(2));
        }
        if usize::try_from(count).ok() != Some(self.decoders.len()) {
            return Err(protocol("a binary COPY row has an unexpected field count"));
        }
        let mut at = 2;
        for _ in 0..count {
            if self.buffer.len() < at + 4 {
                return Ok(None);
            }
            let size = read_i32(&self.buffer, at);
            at += 4 + usize::try_from(size).unwrap_or(0);
        }
        Ok((self.buffer.len() >= at).then_some(at))
    }
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn decode(decoder: Decoder, field: &[u8]) -> Result<Value, SourceError> {
    let bad = || protocol("a binary COPY value has an unexpected size");
    Ok(match decoder {
        Decoder::Bool => Value::Bool(*field.first().ok_or_else(bad)? != 0),
        Decoder::Int2 => Value::from(i16::from_be_bytes(field.try_into().map_err(|_| bad())?)),
        Decoder::Int4 => Value::from(i32::from_be_bytes(field.try_into().map_err(|_| bad())?)),
        Decoder::Int8 => Value::from(i64::from_be_bytes(field.try_into().map_err(|_| bad())?)),
        Decoder::Float4 => float(f64::from(f32::from_be_bytes(
            field.try_into().map_err(|_| bad())?,
        ))),
        Decoder::Float8 => float(f64::from_be_bytes(field.try_into().map_err(|_| bad())?)),
        Decoder::Numeric { scale } => numeric_value(field, scale).ok_or_else(bad)?,
        Decoder::Date => {
            let days = i32::from_be_bytes(field.try_into().map_err(|_| bad())?);
            match days {
                i32::MAX => Value::from("infinity"),
                i32::MIN => Value::from("-infinity"),
                days => Value::from(i64::from(days) + PG_EPOCH_DAYS),
            }
        }
        Decoder::Timestamp => {
            let micros = i64::from_be_bytes(field.try_into().map_err(|_| bad())?);
            match micros {
                i64::MAX => Value::from("infinity"),
                i64::MIN => Value::from("-infinity"),
                micros => Value::from(micros.saturating_add(PG_EPOCH_MICROS)),
            }
        }
        Decoder::Uuid => Value::String(
            uuid::Uuid::from_slice(field)
                .map_err(|_| bad())?
                .hyphenated()
                .to_string(),
        ),
        Decoder::Jsonb => Value::String(text(field.get(1..).ok_or_else(bad)?)),
        Decoder::Text => Value::String(text(field)),
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A float; NaN and the infinities, which JSON numbers cannot hold, as PostgreSQL's text.
fn float(value: f64) -> Value {
    match serde_json::Number::from_f64(value) {
        Some(number) => Value::Number(number),
        None if value.is_nan() => Value::from("NaN"),
        None if value > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

/// A binary `numeric` as its decimal text with `scale` fractional digits: base-10000 digits
/// with a weight (the power of 10000 of the first) and a sign; NaN and the infinities as text.
fn numeric_value(field: &[u8], scale: u8) -> Option<Value> {
    let header = |i: usize| Some(u16::from_be_bytes([*field.get(i)?, *field.get(i + 1)?]));
    let count = usize::from(header(0)?);
    let weight = i32::from(header(2)? as i16);
    let sign = header(4)?;
    match sign {
        0xC000 => return Some(Value::from("NaN")),
        0xD000 => return Some(Value::from("Infinity")),
        0xF000 => return Some(Value::from("-Infinity")),
        _ => {}
    }
    let mut unscaled: i128 = 0;
    for i in 0..count {
        let digit = i128::from(header(8 + 2 * i)?);
        // This digit is worth digit × 10000^(weight − i); at `scale`, × 10^scale more.
        let power = 4 * (weight - i as i32) + i32::from(scale);
        if power >= 0 {
            unscaled =
                unscaled.checked_add(digit.checked_mul(10i128.checked_pow(power as u32)?)?)?;
        } else if power > -4 {
            unscaled = unscaled.checked_add(digit / 10i128.pow(power.unsigned_abs()))?;
        }
    }
    let negative = sign == 0x4000;
    Some(Value::String(decimal_text(unscaled, scale, negative)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [digits.len() as u16, weight as u16, sign, dscale] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_decode_to_their_exact_text_at_the_column_scale() {
        // 12345.67 = 1|2345|6700 with weight 1
        let v = numeric_value(&numeric(1, 0, 2, &[1, 2345, 6700]), 2).unwrap();
        assert_eq!(v, Value::from("12345.67"));
        let v = numeric_value(&numeric(-1, 0x4000, 2, &[500]), 2).unwrap();
        assert_eq!(v, Value::from("-0.05"));
        let v = numeric_value(&numeric(0, 0, 0, &[]), 3).unwrap();
        assert_eq!(v, Value::from("0.000"));
        let v = numeric_value(&numeric(2, 0, 0, &[1]), 0).unwrap();
        assert_eq!(v, Value::from("100000000"));
        assert_eq!(
            numeric_value(&numeric(0, 0xC000, 0, &[]), 2).unwrap(),
            Value::from("NaN")
        );
    }

    #[test]
    fn type_modifiers_give_precision_and_scale_only_when_they_fit() {
        assert_eq!(precision_scale((12 << 16 | 2) + 4), Some((12, 2)));
        assert_eq!(precision_scale(-1), None);
        assert_eq!(precision_scale((60 << 16) + 4), None);
    }

    #[test]
    fn rows_split_anywhere_across_messages_parse_the_same() {
        let decoders = [Decoder::Int4, Decoder::Text];
        let mut stream = SIGNATURE.to_vec();
        stream.extend_from_slice(&[0; 8]);
        for (n, text) in [(1i32, Some("a")), (2, None), (3, Some("ccc"))] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&4i32.to_be_bytes());
            stream.extend_from_slice(&n.to_be_bytes());
            match text {
                Some(t) => {
                    stream.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    stream.extend_from_slice(t.as_bytes());
                }
                None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        for piece in [1, 3, 7, stream.len()] {
            let mut parser = Parser::new(&decoders);
            let mut rows = Vec::new();
            for chunk in stream.chunks(piece) {
                parser.feed(chunk);
                while let Some(row) = parser.next_row().unwrap() {
                    rows.push(row);
                }
            }
            assert!(parser.finished());
            assert_eq!(
                rows,
                [
                    vec![Value::from(1), Value::from("a")],
                    vec![Value::from(2), Value::Null],
                    vec![Value::from(3), Value::from("ccc")],
                ]
            );
        }
    }
}
