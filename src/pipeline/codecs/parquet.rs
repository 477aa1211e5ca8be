//! Apache Parquet: one file, a column per source column with the type the source gave
//! ([`ColumnType`] → Arrow: integers as themselves, `numeric(p,s)` as `Decimal128(p,s)`,
//! floats, booleans, `Date32`, timestamps as microseconds — `timestamptz` with time zone
//! `UTC` — and UUIDs, JSON and everything else as UTF-8), zstd-compressed.
//!
//! Each batch of rows becomes an Arrow `RecordBatch` and goes to parquet's `ArrowWriter`, which
//! buffers the row group being built. A source that hands Arrow batches itself (DuckDB) skips
//! that step: an array whose type already is the column's goes to the writer as it is (a
//! zone other than UTC is only relabelled, the instants being the same); only the others
//! (`TINYINT`, blobs, lists, …) are rebuilt from their values ([`columnar::values`]). A row group is closed when its encoded size reaches
//! [`ParquetConfig::max_row_group_bytes`] (or its memory twice that), so memory stays flat
//! whatever the number of rows; the closed group's bytes go to the output at once, and the
//! pipeline's writer hands them on in bounded chunks.

use super::{Encoder, Out};
use crate::pipeline::Row;
use crate::pipeline::columnar;
use crate::pipeline::types::{self, Column, ColumnType, Mismatch};
use arrow_array::builder::{BooleanBuilder, PrimitiveBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde_json::Value;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// zstd level 1, the fastest. Measured on the export bench's 5,000,000 rows
/// (docs/benchmarks.md) its files were also smaller than level 3's (228 MB against 249 MB):
/// the columns are compressed page by page, and on such pages level 3 gained nothing.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;
/// A column's dictionary page is given up for plain encoding once it reaches this (parquet's
/// default is 1 MiB). A column of few distinct values (a status, a country) stays
/// dictionary-encoded; one of mostly distinct values (ids, e-mails, UUIDs) falls back early
/// instead of filling a dictionary as large as its data in every row group, which cost a tenth
/// of the encoding time and made the file 20% larger.
pub const DICTIONARY_PAGE_BYTES: usize = 256 * 1024;
/// Row groups close at this encoded size (8 MiB): large enough for efficient reads, small
/// enough that an export's memory stays well under 128 MiB (a closed group is held once more
/// while it is written out).
pub const MAX_ROW_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// How to write Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetConfig {
    /// zstd level, 1 to 22.
    pub zstd_level: i32,
    /// A row group closes when its encoded size reaches this.
    pub max_row_group_bytes: usize,
}

impl Default for ParquetConfig {
    fn default() -> Self {
        Self {
            zstd_level: DEFAULT_ZSTD_LEVEL,
            max_row_group_bytes: MAX_ROW_GROUP_BYTES,
        }
    }
}

impl ParquetConfig {
    /// An encoder writing Parquet.
    pub fn build(self) -> ParquetEncoder {
        ParquetEncoder {
            config: self,
            columns: Vec::new(),
            schema: Arc::new(Schema::empty()),
            writer: None,
            written: Shared::default(),
        }
    }
}

/// Writes rows as a Parquet file; see the module docs.
pub struct ParquetEncoder {
    config: ParquetConfig,
    columns: Vec<Column>,
    schema: SchemaRef,
    writer: Option<ArrowWriter<Shared>>,
    /// What the writer has written and the output has not taken yet.
    written: Shared,
}

impl std::fmt::Debug for ParquetEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetEncoder")
            .field("config", &self.config)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// The writer's sink: bytes parked until the encoder passes them to its output. Shared because
/// `ArrowWriter` owns its sink; uncontended, since one thread does both.
#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock()?.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, Vec<u8>>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("the Parquet buffer's lock is poisoned"))
    }

    /// Hands what is parked to `out`, and frees it.
    fn drain(&self, out: Out<'_>) -> io::Result<()> {
        let parked = std::mem::take(&mut *self.lock()?);
        if parked.is_empty() {
            return Ok(());
        }
        out.write_all(&parked)
    }
}

fn parquet_error(error: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(error)
}

impl Encoder for ParquetEncoder {
    fn begin(&mut self, columns: &[Column], out: Out<'_>) -> io::Result<()> {
        self.columns = columns.to_vec();
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| Field::new(c.name.clone(), arrow_type(c.kind), true))
            .collect();
        self.schema = Arc::new(Schema::new(fields));
        let level = ZstdLevel::try_new(self.config.zstd_level).map_err(parquet_error)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_bytes(Some(self.config.max_row_group_bytes))
            // Min/max per column chunk, not per page: what readers prune by, at less cost.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .set_created_by(format!("ferry {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer =
            ArrowWriter::try_new(self.written.clone(), self.schema.clone(), Some(properties))
                .map_err(parquet_error)?;
        self.writer = Some(writer);
        self.written.drain(out)
    }

    fn encode(&mut self, rows: &[Row], out: Out<'_>) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let arrays = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let values = rows.iter().map(|row| row.get(i).unwrap_or(&Value::Null));
                array(column, values, rows.len())
            })
            .collect::<Result<Vec<ArrayRef>, Mismatch>>()?;
        self.write(arrays, out)
    }

    fn encode_batch(
        &mut self,
        batch: &RecordBatch,
        _columns: &[Column],
        out: Out<'_>,
    ) -> io::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.num_columns() != self.columns.len() {
            return Err(io::Error::other(format!(
                "a batch of {} columns for a file of {}",
                batch.num_columns(),
                self.columns.len()
            )));
        }
        let arrays = self
            .columns
            .iter()
            .zip(batch.columns())
            .map(|(column, array)| as_column(column, array))
            .collect::<io::Result<Vec<ArrayRef>>>()?;
        self.write(arrays, out)
    }

    fn finish(&mut self, out: Out<'_>) -> io::Result<()> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("Parquet encoder finished twice"))?;
        writer.close().map_err(parquet_error)?;
        self.written.drain(out)
    }
}

impl ParquetEncoder {
    /// Writes one batch of the file's columns; closes the row group early when its memory
    /// passes twice the byte cap.
    fn write(&mut self, arrays: Vec<ArrayRef>, out: Out<'_>) -> io::Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(io::Error::other)?;
        let cap = 2 * self.config.max_row_group_bytes;
        let writer = self.writer_mut()?;
        writer.write(&batch).map_err(parquet_error)?;
        if writer.memory_size() >= cap {
            writer.flush().map_err(parquet_error)?;
        }
        self.written.drain(out)
    }

    fn writer_mut(&mut self) -> io::Result<&mut ArrowWriter<Shared>> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("Parquet encoder used before begin"))
    }
}

/// The Arrow type of a column type.
fn arrow_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int16 => DataType::Int16,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float32 => DataType::Float32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Decimal { precision, scale } => {
            DataType::Decimal128(precision, i8::try_from(scale).unwrap_or(i8::MAX))
        }
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Uuid | ColumnType::Json | ColumnType::Text => DataType::Utf8,
    }
}

/// A source's array as the column's: as it is when its type is the file's, relabelled when
/// only the time zone differs, rebuilt from its values otherwise.
fn as_column(column: &Column, array: &ArrayRef) -> io::Result<ArrayRef> {
    let target = arrow_type(column.kind);
    match (array.data_type(), &target) {
        (given, wanted) if given == wanted => Ok(array.clone()),
        (
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)),
            DataType::Timestamp(TimeUnit::Microsecond, Some(zone)),
        ) => match array.as_primitive_opt::<TimestampMicrosecondType>() {
            Some(instants) => Ok(Arc::new(instants.clone().with_timezone(zone.clone()))),
            None => Err(io::Error::other("a timestamp array of another kind")),
        },
        _ => {
            // Nested values (lists, structs) become their JSON text, blobs hex, and so on.
            let values = columnar::values(array.as_ref()).map_err(|e| e.in_column(&column.name))?;
            Ok(self::array(column, values.iter(), array.len())?)
        }
    }
}

/// `values` of a column as an Arrow array of the column's type.
fn array<'a>(
    column: &Column,
    values: impl Iterator<Item = &'a Value>,
    len: usize,
) -> Result<ArrayRef, Mismatch> {
    Ok(match column.kind {
        ColumnType::Bool => {
            let mut builder = BooleanBuilder::with_capacity(len);
            for value in values {
                match value {
                    Value::Null => builder.append_null(),
                    v => builder.append_value(
                        types::as_bool(v).ok_or_else(|| Mismatch::new(column, v, "boolean"))?,
                    ),
                }
            }
            Arc::new(builder.finish())
        }
        ColumnType::Int16 => primitive::<Int16Type>(column, values, "smallint", |v| {
            types::as_i64(v).and_then(|n| i16::try_from(n).ok())
        })?,
        ColumnType::Int32 => primitive::<Int32Type>(column, values, "integer", |v| {
            types::as_i64(v).and_then(|n| i32::try_from(n).ok())
        })?,
        ColumnType::Int64 => primitive::<Int64Type>(column, values, "integer", types::as_i64)?,
        ColumnType::Float32 => primitive::<Float32Type>(column, values, "float", |v| {
            types::as_f64(v).map(|f| f as f32)
        })?,
        ColumnType::Float64 => primitive::<Float64Type>(column, values, "float", types::as_f64)?,
        ColumnType::Decimal { precision, scale } => {
            primitive::<Decimal128Type>(column, values, "decimal", |v| {
                types::as_decimal(v, scale).filter(|n| fits(*n, precision))
            })?
        }
        ColumnType::Date => primitive::<Date32Type>(column, values, "date", |v| {
            types::as_days(v).and_then(|d| i32::try_from(d).ok())
        })?,
        ColumnType::Timestamp | ColumnType::Timestamptz => {
            primitive::<TimestampMicrosecondType>(column, values, "timestamp", types::as_micros)?
        }
        ColumnType::Uuid | ColumnType::Json | ColumnType::Text => {
            let mut builder = StringBuilder::with_capacity(len, len * 16);
            for value in values {
                match value {
                    Value::Null => builder.append_null(),
                    v => builder.append_value(types::as_text(v)),
                }
            }
            Arc::new(builder.finish())
        }
    })
}

/// A primitive array of the column's Arrow type (which carries a decimal's precision and scale
/// and a timestamp's zone) from values converted by `convert`; a value it refuses is a mismatch.
fn primitive<'a, T: ArrowPrimitiveType>(
    column: &Column,
    values: impl Iterator<Item = &'a Value>,
    expected: &'static str,
    convert: impl Fn(&Value) -> Option<T::Native>,
) -> Result<ArrayRef, Mismatch> {
    let mut builder = PrimitiveBuilder::<T>::new().with_data_type(arrow_type(column.kind));
    for value in values {
        match value {
            Value::Null => builder.append_null(),
            v => {
                builder.append_value(convert(v).ok_or_else(|| Mismatch::new(column, v, expected))?)
            }
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Whether `unscaled` has at most `precision` digits.
fn fits(unscaled: i128, precision: u8) -> bool {
    u32::from(precision) >= 39 || unscaled.unsigned_abs() < 10u128.pow(u32::from(precision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(columns: &[Column], rows: &[Row], config: ParquetConfig) -> io::Result<Vec<u8>> {
        let mut encoder = config.build();
        let mut out = Vec::new();
        encoder.begin(columns, &mut out)?;
        for chunk in rows.chunks(1000) {
            encoder.encode(chunk, &mut out)?;
        }
        encoder.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_file_has_the_magic_at_both_ends_and_row_groups_close_at_the_byte_cap() {
        let columns = [Column::new("n", ColumnType::Int64), Column::text("t")];
        let rows: Vec<Row> = (0..20_000)
            .map(|i| vec![json!(i), json!(format!("{i:x}-{}", i * 7919 % 1013))])
            .collect();
        let small = ParquetConfig {
            max_row_group_bytes: 16 * 1024,
            ..ParquetConfig::default()
        };
        let bytes = write(&columns, &rows, small).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
        let reader =
            parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        use parquet::file::reader::FileReader;
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 20_000);
        assert!(
            meta.num_row_groups() > 1,
            "{} row groups",
            meta.num_row_groups()
        );
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_is_an_invalid_data_error_naming_it() {
        let columns = [Column::new(
            "amount",
            ColumnType::Decimal {
                precision: 4,
                scale: 2,
            },
        )];
        let error =
            write(&columns, &[vec![json!("123.45")]], ParquetConfig::default()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("\"amount\""), "{error}");
        let columns = [Column::new("d", ColumnType::Date)];
        assert!(
            write(
                &columns,
                &[vec![json!("yesterday")]],
                ParquetConfig::default()
            )
            .is_err()
        );
    }

    #[test]
    fn decimal_precision_is_checked_digit_by_digit() {
        assert!(fits(9999, 4));
        assert!(!fits(10_000, 4));
        assert!(fits(-9999, 4));
        assert!(fits(i128::MAX, 38) == (i128::MAX.unsigned_abs() < 10u128.pow(38)));
    }
}
