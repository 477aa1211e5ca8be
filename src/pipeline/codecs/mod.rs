//! File formats: each codec is `Config → build() → Encoder`, one file per format, and
//! [`build`] picks one for an [`Encoding`]. A new format is one new file here, one variant of
//! [`Encoding`] and one arm in [`build`].
//!
//! Encoders are synchronous and write to a `std::io::Write`: the pipeline runs them on a
//! blocking thread whose writer hands bounded chunks to the upload through a bounded channel,
//! so a format whose library wants a `Write` (Parquet, XLSX, zip) streams like CSV does. Tests
//! pass a `Vec<u8>`.

pub mod csv;
pub mod gzip;
pub mod jsonl;
pub mod parquet;
pub mod xlsx;
pub mod zip;

use super::Row;
use super::columnar;
use super::types::Column;
use crate::domain::Encoding;
use arrow_array::RecordBatch;
use std::io::{self, Write};
use std::path::PathBuf;

/// Where an encoder writes: the next stage (a compressor, a zip entry, the upload's channel).
pub type Out<'a> = &'a mut (dyn Write + Send);

/// Turns rows into the bytes of one file format. Call [`Encoder::begin`] once, then
/// [`Encoder::encode`] for each batch, then [`Encoder::finish`] once. Rows must have one value
/// per column given to `begin`. Encoders run on a blocking thread (the pipeline's), so they may
/// do synchronous I/O; `InvalidData` errors are values that do not fit their column's type.
pub trait Encoder: Send {
    /// Writes whatever comes before the rows (e.g. a CSV header line).
    fn begin(&mut self, columns: &[Column], out: Out<'_>) -> io::Result<()>;
    /// Appends rows.
    fn encode(&mut self, rows: &[Row], out: Out<'_>) -> io::Result<()>;
    /// Appends a batch of columns whose types are `columns` (the ones given to `begin`). By
    /// default as the rows [`columnar::rows`] makes of it; Parquet writes the arrays as they are.
    fn encode_batch(
        &mut self,
        batch: &RecordBatch,
        columns: &[Column],
        out: Out<'_>,
    ) -> io::Result<()> {
        self.encode(&columnar::rows(batch, columns)?, out)
    }
    /// Writes whatever comes after the last row.
    fn finish(&mut self, out: Out<'_>) -> io::Result<()>;
}

/// The options of an export that shape its encoding; each codec reads the ones it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderOptions {
    /// The CSV field delimiter: one ASCII byte, not a quote or a line break (checked when the
    /// request is parsed).
    pub delimiter: u8,
    /// Whether a CSV file starts with a header line.
    pub header: bool,
    /// Where encoders that need scratch files (XLSX's constant-memory sheets) keep them.
    pub temp_dir: PathBuf,
    /// Parquet's zstd level, when the export chose one.
    pub zstd_level: Option<i32>,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            header: true,
            temp_dir: std::env::temp_dir(),
            zstd_level: None,
        }
    }
}

/// The encoder for `encoding`, configured from `options`.
pub fn build(encoding: Encoding, options: &EncoderOptions) -> Box<dyn Encoder> {
    match encoding {
        Encoding::Csv => Box::new(
            csv::CsvConfig {
                delimiter: options.delimiter,
                header: options.header,
            }
            .build(),
        ),
        Encoding::Jsonl => Box::new(jsonl::JsonlConfig.build()),
        Encoding::Parquet => Box::new(
            parquet::ParquetConfig {
                zstd_level: options.zstd_level.unwrap_or(parquet::DEFAULT_ZSTD_LEVEL),
                ..parquet::ParquetConfig::default()
            }
            .build(),
        ),
        Encoding::Xlsx => Box::new(
            xlsx::XlsxConfig {
                temp_dir: options.temp_dir.clone(),
                ..xlsx::XlsxConfig::default()
            }
            .build(),
        ),
    }
}

/// Checks the outcome of a text encoder (CSV, JSON Lines) writing into a `Vec`, which cannot
/// fail: for callers that build small pieces in memory (a rejects report, one CSV line).
pub fn in_memory(written: io::Result<()>) {
    debug_assert!(written.is_ok(), "encoding into memory failed: {written:?}");
}

/// Appends `value` as compact JSON text. Serialising a JSON value into memory cannot fail:
/// its map keys are strings and a `Vec` takes every byte.
fn push_json(value: &impl serde::Serialize, out: &mut Vec<u8>) {
    let written = serde_json::to_writer(out, value);
    debug_assert!(written.is_ok(), "JSON into memory failed: {written:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode_all(encoding: Encoding, options: &EncoderOptions) -> String {
        let mut encoder = build(encoding, options);
        let mut out = Vec::new();
        encoder
            .begin(&[Column::text("id"), Column::text("tag")], &mut out)
            .unwrap();
        encoder
            .encode(&[vec![json!(1), json!("a;b")]], &mut out)
            .unwrap();
        encoder.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn build_gives_a_csv_encoder_that_follows_the_options() {
        let options = EncoderOptions {
            delimiter: b';',
            header: true,
            ..EncoderOptions::default()
        };
        assert_eq!(encode_all(Encoding::Csv, &options), "id;tag\n1;\"a;b\"\n");
        let headless = EncoderOptions {
            header: false,
            ..EncoderOptions::default()
        };
        assert_eq!(encode_all(Encoding::Csv, &headless), "1,a;b\n");
    }

    #[test]
    fn build_gives_a_jsonl_encoder_that_ignores_csv_options() {
        let options = EncoderOptions {
            delimiter: b';',
            header: true,
            ..EncoderOptions::default()
        };
        assert_eq!(
            encode_all(Encoding::Jsonl, &options),
            "{\"id\":1,\"tag\":\"a;b\"}\n"
        );
    }
}
