//! The first pass of an import that creates its table: the stored file is read from its start
//! (gunzipped, decoded from its encoding, split into records as the load will split it) up to [`SAMPLE_RECORDS`] records
//! after the header, and each column's type is inferred from them ([`infer`]). Only the
//! inference's state per column is kept, never the records, so memory stays bounded whatever
//! the file. The load then reads the file again from its start.
//!
//! Column names: the header's names, trimmed, or the spec's `mapping` of them, normalised and
//! made unique ([`infer::column_names`]); a file without a header gets `column_1`, `column_2`,
//! …. The rejects report's own columns (`_line`, `_errors`, `_raw`) are left out, as every
//! import ignores them. Records that are broken or have the wrong number of fields are not
//! sampled: the load rejects them.

use super::infer::{self, ColumnGuess, SAMPLE_RECORDS};
use super::read::{READ_CHUNK, Reads, opened};
use crate::domain::ImportSpec;
use crate::domain::import::{Mode, REPORT_COLUMNS};
use crate::pipeline::loaders::LoadError;
use crate::pipeline::loaders::create::{NewColumn, NewTable};
use crate::pipeline::records::{
    Fields, ReaderOptions, Record, RecordKind, RecordReader, looks_like_text,
};
use std::io::Read;

/// Reads the sample of `input` and describes the table to create for `spec`.
pub fn sample(input: impl Read + 'static, spec: &ImportSpec) -> Result<NewTable, LoadError> {
    let input = opened(input, spec.compression, spec.encoding.encoding())?.text;
    let mut reader = RecordReader::new(ReaderOptions {
        delimiter: spec.delimiter,
        quote: spec.quote,
        ..ReaderOptions::default()
    });
    if spec.header {
        reader.expect_header_fields();
    }
    let mut sampler: Option<Sampler> = None;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut records = Vec::with_capacity(1024);
    let mut first = true;
    let mut reads = Reads::new(input);
    loop {
        let n = reads.next(&mut buf)?;
        let chunk = buf.get(..n).unwrap_or_default();
        if first && n > 0 && !looks_like_text(chunk) {
            return Err(LoadError::producer(
                "not_csv",
                "the file is not CSV text (binary data found at its start)",
                false,
            ));
        }
        first = false;
        if n == 0 {
            reader.finish(&mut records);
        } else {
            reader.feed(chunk, &mut records);
        }
        for record in records.drain(..) {
            match &mut sampler {
                Some(sampler) => sampler.record(&record),
                None => {
                    let started = Sampler::start(record, spec)?;
                    reader.expect_fields(started.width);
                    sampler = Some(started);
                }
            }
        }
        let full = sampler
            .as_ref()
            .is_some_and(|s| s.sampled >= SAMPLE_RECORDS);
        if n == 0 || full {
            break;
        }
    }
    sampler.map(|s| s.finish(spec)).ok_or_else(|| {
        LoadError::producer(
            "empty_file",
            "the file is empty: no header and no rows",
            false,
        )
    })
}

/// The inference in progress.
struct Sampler {
    /// Fields per record.
    width: usize,
    /// Per field: its column, or `None` when ignored.
    fields: Vec<Option<usize>>,
    names: Vec<String>,
    headers: Vec<String>,
    guesses: Vec<ColumnGuess>,
    sampled: usize,
}

impl Sampler {
    /// From the first record: the header, or (without one) the first row.
    fn start(record: Record, spec: &ImportSpec) -> Result<Self, LoadError> {
        let RecordKind::Fields(first) = &record.kind else {
            return Err(LoadError::producer(
                "not_csv",
                "the first line of the file cannot be read as CSV",
                false,
            ));
        };
        let headers: Vec<String> = if spec.header {
            first
                .iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_owned())
                .collect()
        } else {
            (1..=first.len()).map(|i| format!("column_{i}")).collect()
        };
        let mut fields = Vec::with_capacity(headers.len());
        let mut kept = Vec::new();
        for header in &headers {
            if REPORT_COLUMNS.contains(&header.as_str()) {
                fields.push(None);
                continue;
            }
            fields.push(Some(kept.len()));
            kept.push(header.clone());
        }
        let sources: Vec<String> = kept
            .iter()
            .map(|h| spec.mapping.get(h).unwrap_or(h).clone())
            .collect();
        let names = infer::column_names(&sources);
        let guesses = names
            .iter()
            .map(|name| ColumnGuess::new(name, spec.columns.get(name)))
            .collect();
        let mut sampler = Self {
            width: headers.len(),
            fields,
            names,
            headers: kept,
            guesses,
            sampled: 0,
        };
        if !spec.header {
            sampler.record(&record);
        }
        Ok(sampler)
    }

    fn record(&mut self, record: &Record) {
        let RecordKind::Fields(fields) = &record.kind else {
            return;
        };
        if fields.len() != self.width || self.sampled >= SAMPLE_RECORDS {
            return;
        }
        self.sampled += 1;
        self.add(fields);
    }

    fn add(&mut self, fields: &Fields) {
        for (field, column) in fields.iter().zip(&self.fields) {
            if let Some(guess) = column.and_then(|i| self.guesses.get_mut(i)) {
                guess.add(field);
            }
        }
    }

    fn finish(self, spec: &ImportSpec) -> NewTable {
        let columns = self
            .names
            .into_iter()
            .zip(self.headers)
            .zip(&self.guesses)
            .map(|((name, header), guess)| NewColumn {
                name,
                header,
                kind: guess.kind(),
            })
            .collect();
        NewTable {
            columns,
            primary_key: match spec.mode {
                Mode::Upsert => spec.key.clone(),
                Mode::Append | Mode::Replace => Vec::new(),
            },
            fields: if spec.header { self.fields } else { Vec::new() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ImportRequest;
    use crate::pipeline::validate::ColumnType;

    fn spec(json: serde_json::Value) -> ImportSpec {
        serde_json::from_value::<ImportRequest>(json)
            .unwrap()
            .parse("d")
            .unwrap()
    }

    fn sampled(file: &str, json: serde_json::Value) -> NewTable {
        sample(std::io::Cursor::new(file.as_bytes().to_vec()), &spec(json)).unwrap()
    }

    #[test]
    fn the_header_names_columns_and_the_rows_type_them() {
        let new = sampled(
            "Signed Up,Name,name,_errors,Zip\n2026-01-02,ann,x,oops,007\n,bob,y,,12345\n",
            serde_json::json!({"target": {"table": "t", "create": true}}),
        );
        let names: Vec<_> = new.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["signed_up", "name", "name_2", "zip"]);
        assert_eq!(new.columns[0].header, "Signed Up");
        assert_eq!(new.columns[0].kind, ColumnType::Date);
        assert_eq!(new.columns[3].kind, ColumnType::Text);
        assert_eq!(new.fields, [Some(0), Some(1), Some(2), None, Some(3)]);
    }

    #[test]
    fn without_a_header_columns_are_numbered_and_the_first_row_counts() {
        let new = sampled(
            "1,true\n2,false\n",
            serde_json::json!({"target": {"table": "t", "create": true},
                "format": {"header": false}}),
        );
        let names: Vec<_> = new.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["column_1", "column_2"]);
        assert_eq!(new.columns[1].kind, ColumnType::Boolean);
        assert!(new.fields.is_empty());
    }

    #[test]
    fn the_mapping_names_columns_and_an_upsert_key_becomes_the_primary_key() {
        let new = sampled(
            "User ID,E-mail\n1,a@example.com\n",
            serde_json::json!({"target": {"table": "t", "create": true}, "mode": "upsert",
                "key": ["id"], "mapping": {"User ID": "id"}}),
        );
        assert_eq!(new.columns[0].name, "id");
        assert_eq!(new.columns[1].name, "e_mail");
        assert_eq!(new.primary_key, ["id"]);
    }

    #[test]
    fn only_the_first_records_are_sampled_and_rows_of_the_wrong_width_are_skipped() {
        let mut file = String::from("n\n1,2\n");
        for i in 0..SAMPLE_RECORDS {
            file.push_str(&format!("{i}\n"));
        }
        file.push_str("not a number\n");
        let new = sampled(
            &file,
            serde_json::json!({"target": {"table": "t", "create": true}}),
        );
        assert_eq!(new.columns[0].kind, ColumnType::BigInt);
    }

    #[test]
    fn an_empty_file_is_refused() {
        let error = sample(
            std::io::Cursor::new(Vec::new()),
            &spec(serde_json::json!({"target": {"table": "t", "create": true}})),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            LoadError::Producer {
                code: "empty_file",
                ..
            }
        ));
    }
}
