//! File formats: each codec is `Config → build() → Encoder`, one file per format, and
//! [`build`] picks one for an [`Encoding`]. A new format is one new file here, one variant of
//! [`Encoding`] and one arm in [`build`].
//!
//! Encoders append to a caller's buffer instead of writing to an I/O sink: the pipeline decides
//! when a buffer is full enough to hand to storage, and the encoders stay synchronous and
//! testable without I/O.

pub mod csv;
pub mod jsonl;

use super::Row;
use crate::domain::Encoding;

/// Turns rows into the bytes of one file format. Call [`Encoder::begin`] once, then
/// [`Encoder::encode`] for each batch, then [`Encoder::finish`] once. Rows must have one value
/// per column given to `begin`.
pub trait Encoder: Send {
    /// Writes whatever comes before the rows (e.g. a CSV header line).
    fn begin(&mut self, columns: &[String], out: &mut Vec<u8>);
    /// Appends rows.
    fn encode(&mut self, rows: &[Row], out: &mut Vec<u8>);
    /// Writes whatever comes after the last row.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// The options of an export that shape its encoding; each codec reads the ones it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// The CSV field delimiter: one ASCII byte, not a quote or a line break (checked when the
    /// request is parsed).
    pub delimiter: u8,
    /// Whether a CSV file starts with a header line.
    pub header: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            header: true,
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
    }
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
        encoder.begin(&["id".to_owned(), "tag".to_owned()], &mut out);
        encoder.encode(&[vec![json!(1), json!("a;b")]], &mut out);
        encoder.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn build_gives_a_csv_encoder_that_follows_the_options() {
        let options = EncoderOptions {
            delimiter: b';',
            header: true,
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
        };
        assert_eq!(
            encode_all(Encoding::Jsonl, &options),
            "{\"id\":1,\"tag\":\"a;b\"}\n"
        );
    }
}
