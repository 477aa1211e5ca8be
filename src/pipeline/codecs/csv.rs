//! CSV as RFC 4180 describes it, with two choices of ours:
//!
//! * Lines end with `\n`, not `\r\n`: what PostgreSQL's `COPY … CSV` writes and what Unix
//!   tools expect; every CSV reader we know accepts it.
//! * A null is an empty field and an empty string is `""`, also as `COPY … CSV` writes them,
//!   so a file loaded back into PostgreSQL keeps nulls apart from empty strings. (A one-column
//!   row holding a null is therefore an empty line; `COPY` reads it back as a null, but some
//!   readers skip empty lines.)
//!
//! A field is quoted only when it must be: when it holds the delimiter, a quote, CR or LF (or is
//! an empty string); quotes inside are doubled. Leading or trailing spaces are kept as they are
//! and are no reason to quote.
//!
//! The quoting is written here rather than taken from the `csv` crate: its `Writer` wants to
//! own its sink and keeps a buffer of its own, and `csv_core` needs a loop around every field
//! to handle a full output buffer, while appending to a `Vec` is a dozen lines. Each batch is
//! built in that `Vec` and written on in one `write_all`.

use super::{Encoder, Out, push_json};
use crate::pipeline::Row;
use crate::pipeline::types::Column;
use serde_json::Value;
use std::io;

/// How to write CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvConfig {
    /// The field delimiter: one ASCII byte, not a quote or a line break.
    pub delimiter: u8,
    /// Whether the first line names the columns.
    pub header: bool,
}

impl Default for CsvConfig {
    fn default() -> Self {
        Self {
            delimiter: b',',
            header: true,
        }
    }
}

impl CsvConfig {
    /// An encoder writing this kind of CSV.
    pub fn build(self) -> CsvEncoder {
        CsvEncoder {
            config: self,
            scratch: Vec::new(),
            batch: Vec::new(),
        }
    }
}

/// Writes rows as CSV lines; see the module docs for how values become fields.
#[derive(Debug)]
pub struct CsvEncoder {
    config: CsvConfig,
    /// Holds the text of a number or nested value until it is known whether it needs quotes;
    /// reused so that encoding does not allocate per value.
    scratch: Vec<u8>,
    /// The current batch's text, written on at the end of each call; as long as one batch.
    batch: Vec<u8>,
}

impl Encoder for CsvEncoder {
    fn begin(&mut self, columns: &[Column], out: Out<'_>) -> io::Result<()> {
        if !self.config.header {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.batch);
        line.clear();
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                line.push(self.config.delimiter);
            }
            push_text(column.name.as_bytes(), self.config.delimiter, &mut line);
        }
        line.push(b'\n');
        let written = out.write_all(&line);
        self.batch = line;
        written
    }

    fn encode(&mut self, rows: &[Row], out: Out<'_>) -> io::Result<()> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        for row in rows {
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    batch.push(self.config.delimiter);
                }
                self.push_value(value, &mut batch);
            }
            batch.push(b'\n');
        }
        let written = out.write_all(&batch);
        self.batch = batch;
        written
    }

    fn finish(&mut self, _out: Out<'_>) -> io::Result<()> {
        Ok(())
    }
}

impl CsvEncoder {
    /// Null → nothing; string → its text; bool → `true`/`false`; number, array, object → compact
    /// JSON text. Each is quoted if it must be.
    fn push_value(&mut self, value: &Value, out: &mut Vec<u8>) {
        let delimiter = self.config.delimiter;
        match value {
            Value::Null => {}
            Value::String(text) => push_text(text.as_bytes(), delimiter, out),
            Value::Bool(true) => push_text(b"true", delimiter, out),
            Value::Bool(false) => push_text(b"false", delimiter, out),
            Value::Number(_) | Value::Array(_) | Value::Object(_) => {
                self.scratch.clear();
                push_json(value, &mut self.scratch);
                push_text(&self.scratch, delimiter, out);
            }
        }
    }
}

/// Appends one non-null field, quoted if it must be.
fn push_text(field: &[u8], delimiter: u8, out: &mut Vec<u8>) {
    if !field.is_empty() && !needs_quotes(field, delimiter) {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    for piece in field.split_inclusive(|&b| b == b'"') {
        out.extend_from_slice(piece);
        if piece.ends_with(b"\"") {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

fn needs_quotes(field: &[u8], delimiter: u8) -> bool {
    field
        .iter()
        .any(|&b| b == delimiter || matches!(b, b'"' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    fn encode(config: CsvConfig, columns: &[&str], rows: &[Row]) -> String {
        let mut encoder = config.build();
        let columns: Vec<Column> = columns.iter().map(|c| Column::text(*c)).collect();
        let mut out = Vec::new();
        encoder.begin(&columns, &mut out).unwrap();
        encoder.encode(rows, &mut out).unwrap();
        encoder.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn field(value: Value) -> String {
        let config = CsvConfig {
            header: false,
            ..CsvConfig::default()
        };
        let line = encode(config, &["only"], &[vec![value]]);
        line.strip_suffix('\n').unwrap().to_owned()
    }

    fn read(text: &str, delimiter: u8) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(text.as_bytes())
            .records()
            .map(|record| record.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn plain_fields_are_written_as_they_are_spaces_included() {
        assert_eq!(field(json!("plain")), "plain");
        assert_eq!(field(json!("  padded  ")), "  padded  ");
        assert_eq!(field(json!("ünïcødé ✓")), "ünïcødé ✓");
    }

    #[test]
    fn fields_with_a_delimiter_quote_or_line_break_are_quoted() {
        assert_eq!(field(json!("a,b")), "\"a,b\"");
        assert_eq!(field(json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(field(json!("\"")), "\"\"\"\"");
        assert_eq!(field(json!("line\nbreak")), "\"line\nbreak\"");
        assert_eq!(field(json!("carriage\rreturn")), "\"carriage\rreturn\"");
    }

    #[test]
    fn a_null_is_an_empty_field_and_an_empty_string_is_quoted() {
        let config = CsvConfig {
            header: false,
            ..CsvConfig::default()
        };
        let rows = [vec![Value::Null, json!(""), Value::Null]];
        assert_eq!(encode(config, &["a", "b", "c"], &rows), ",\"\",\n");
    }

    #[test]
    fn a_one_column_row_holding_a_null_is_an_empty_line() {
        assert_eq!(field(Value::Null), "");
        assert_eq!(field(json!("")), "\"\"");
    }

    #[test]
    fn numbers_and_bools_are_written_as_json_text() {
        assert_eq!(field(json!(42)), "42");
        assert_eq!(field(json!(-7)), "-7");
        assert_eq!(field(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(field(json!(1.5)), "1.5");
        assert_eq!(field(json!(true)), "true");
        assert_eq!(field(json!(false)), "false");
    }

    #[test]
    fn nested_json_is_compact_and_quoted_when_it_holds_the_delimiter() {
        assert_eq!(field(json!({"a": 1})), r#""{""a"":1}""#);
        assert_eq!(field(json!([1, 2])), "\"[1,2]\"");
        assert_eq!(field(json!([])), "[]");
    }

    #[test]
    fn the_header_line_comes_first_only_when_asked_for() {
        let rows = [vec![json!(1), json!("x")]];
        let with = encode(CsvConfig::default(), &["id", "na,me"], &rows);
        assert_eq!(with, "id,\"na,me\"\n1,x\n");
        let config = CsvConfig {
            header: false,
            ..CsvConfig::default()
        };
        assert_eq!(encode(config, &["id", "na,me"], &rows), "1,x\n");
    }

    #[test]
    fn semicolon_and_tab_delimiters_quote_themselves_and_not_commas() {
        let rows = [vec![json!("a,b"), json!("c;d"), json!("e\tf")]];
        let semicolon = CsvConfig {
            delimiter: b';',
            header: false,
        };
        assert_eq!(
            encode(semicolon, &["x", "y", "z"], &rows),
            "a,b;\"c;d\";e\tf\n"
        );
        let tab = CsvConfig {
            delimiter: b'\t',
            header: false,
        };
        assert_eq!(encode(tab, &["x", "y", "z"], &rows), "a,b\tc;d\t\"e\tf\"\n");
    }

    #[test]
    fn a_delimiter_that_appears_in_numbers_gets_them_quoted() {
        let config = CsvConfig {
            delimiter: b'.',
            header: false,
        };
        assert_eq!(
            encode(config, &["x", "y"], &[vec![json!(1.5), json!(2)]]),
            "\"1.5\".2\n"
        );
    }

    #[test]
    fn nasty_fields_round_trip_through_the_csv_crate_with_every_delimiter() {
        let alphabet = ['a', ' ', '"', ',', ';', '\t', '|', '\n', '\r', 'é', '✓'];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4180);
        for delimiter in [b',', b';', b'\t', b'|'] {
            let rows: Vec<Vec<String>> = (0..300)
                .map(|_| {
                    (0..3)
                        .map(|_| {
                            let length = rng.random_range(1..8);
                            (0..length)
                                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                                .collect()
                        })
                        .collect()
                })
                .collect();
            let values: Vec<Row> = rows
                .iter()
                .map(|row| row.iter().map(|f| json!(f)).collect())
                .collect();
            let config = CsvConfig {
                delimiter,
                header: true,
            };
            let text = encode(config, &["a \"1\"", "b\nb", "c"], &values);
            let mut read_back = read(&text, delimiter);
            assert_eq!(read_back.remove(0), ["a \"1\"", "b\nb", "c"]);
            assert_eq!(read_back, rows, "delimiter {:?}", delimiter as char);
        }
    }
}
