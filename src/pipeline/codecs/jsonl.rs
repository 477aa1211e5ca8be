//! JSON Lines: one JSON object per row and line, keys the column names in column order, values
//! as the source gave them, each line ended by `\n`. No header: the keys name the columns.

use super::{Encoder, Out, push_json};
use crate::pipeline::Row;
use crate::pipeline::types::Column;
use std::io;

/// How to write JSON Lines (nothing to choose yet; here so every codec reads the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonlConfig;

impl JsonlConfig {
    /// An encoder writing JSON Lines.
    pub fn build(self) -> JsonlEncoder {
        JsonlEncoder::default()
    }
}

/// Writes rows as JSON objects, one per line.
#[derive(Debug, Default)]
pub struct JsonlEncoder {
    /// Each column's key as JSON text with its colon, `"name":`, escaped once in
    /// [`Encoder::begin`] rather than for every row.
    keys: Vec<Vec<u8>>,
    /// The current batch's lines, written on at the end of each call.
    batch: Vec<u8>,
}

impl Encoder for JsonlEncoder {
    fn begin(&mut self, columns: &[Column], _out: Out<'_>) -> io::Result<()> {
        self.keys = columns
            .iter()
            .map(|column| {
                let mut key = Vec::with_capacity(column.name.len() + 3);
                push_json(&column.name, &mut key);
                key.push(b':');
                key
            })
            .collect();
        Ok(())
    }

    fn encode(&mut self, rows: &[Row], out: Out<'_>) -> io::Result<()> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        self.push_rows(rows, &mut batch);
        let written = out.write_all(&batch);
        self.batch = batch;
        written
    }

    fn finish(&mut self, _out: Out<'_>) -> io::Result<()> {
        Ok(())
    }
}

impl JsonlEncoder {
    fn push_rows(&self, rows: &[Row], out: &mut Vec<u8>) {
        for row in rows {
            debug_assert_eq!(
                row.len(),
                self.keys.len(),
                "a row's width differs from the columns'"
            );
            out.push(b'{');
            for (i, (key, value)) in self.keys.iter().zip(row).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(key);
                push_json(value, out);
            }
            out.extend_from_slice(b"}\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn encode(columns: &[&str], rows: &[Row]) -> String {
        let mut encoder = JsonlConfig.build();
        let columns: Vec<Column> = columns.iter().map(|c| Column::text(*c)).collect();
        let mut out = Vec::new();
        encoder.begin(&columns, &mut out).unwrap();
        encoder.encode(rows, &mut out).unwrap();
        encoder.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_row_is_one_object_on_its_own_line_with_keys_in_column_order() {
        let rows = [
            vec![json!(2), json!("b"), Value::Null],
            vec![json!(1), json!("a"), json!(true)],
        ];
        let text = encode(&["z", "a", "m"], &rows);
        assert_eq!(
            text,
            "{\"z\":2,\"a\":\"b\",\"m\":null}\n{\"z\":1,\"a\":\"a\",\"m\":true}\n"
        );
    }

    #[test]
    fn no_rows_make_an_empty_file() {
        assert_eq!(encode(&["a"], &[]), "");
    }

    #[test]
    fn column_names_with_quotes_and_unicode_are_escaped_and_read_back() {
        let columns = ["say \"hi\"", "naïve ✓", "back\\slash", "tab\there"];
        let row = vec![json!(1), json!("é\n"), json!({"k": [1, 2]}), json!(-0.5)];
        let text = encode(&columns, std::slice::from_ref(&row));
        assert_eq!(text.lines().count(), 1);
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = parsed.keys().map(String::as_str).collect();
        assert_eq!(keys, columns);
        assert_eq!(parsed.values().cloned().collect::<Vec<_>>(), row);
    }

    #[test]
    fn strings_with_line_breaks_stay_on_one_line() {
        let text = encode(&["note"], &[vec![json!("one\ntwo\r\nthree\u{2028}")]]);
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with("}\n"));
    }
}
