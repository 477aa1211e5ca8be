//! The reading half of an import, on a blocking thread: stored bytes → gunzip → CSV records →
//! header mapping → validation → batches for the loader and rejects for the report. Both
//! outputs are bounded channels, so a slow database slows this reader, which slows the read
//! from storage.

use super::header::{Mapping, map_header, positional};
use crate::domain::Progress;
use crate::domain::import::Compression;
use crate::pipeline::loaders::postgres::push_copy_row;
use crate::pipeline::loaders::schema::TableSchema;
use crate::pipeline::loaders::{Batch, LoadError, LoadSender};
use crate::pipeline::records::{
    Broken, Fields, ReaderOptions, Record, RecordKind, RecordReader, looks_like_text,
};
use crate::pipeline::validate::{ColumnRule, ColumnType};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Bytes read from the (decompressed) file at once.
const READ_CHUNK: usize = 64 * 1024;
/// A COPY batch is handed on at about this size.
const COPY_BATCH_BYTES: usize = 256 * 1024;
/// A values batch (SQLite) is handed on at this many rows.
const VALUES_BATCH_ROWS: usize = 500;
/// Rejects are handed to the report writer in groups of this many.
const REJECTS_BATCH: usize = 256;

/// One rejected row, for the report.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub line: u64,
    /// The record's fields, when it could be split (empty otherwise).
    pub fields: Fields,
    /// The record's raw bytes, when it could not.
    pub raw: Option<Vec<u8>>,
    /// `column: reason; …`
    pub errors: String,
}

/// The header and its mapping, sent to the loader before any batch.
pub type MappingResult = Result<Mapping, LoadError>;

/// How to read the file.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub compression: Compression,
    pub max_errors: u64,
    /// PostgreSQL (COPY text batches) or SQLite (values).
    pub copy: bool,
}

/// Where the producer's results go.
pub struct Outputs {
    pub mapping: oneshot::Sender<MappingResult>,
    pub batches: LoadSender,
    pub rejects: mpsc::Sender<Vec<Rejected>>,
    pub progress: watch::Sender<Progress>,
}

fn producer_error(code: &'static str, message: impl Into<String>, transient: bool) -> LoadError {
    LoadError::Producer {
        code,
        message: message.into(),
        transient,
    }
}

/// Reads everything; returns (rows passed on, rows rejected). On failure the error is also
/// sent to the loader, so that it rolls back.
pub fn produce(
    input: impl Read + 'static,
    settings: &ReadSettings,
    table: &TableSchema,
    rules: &[ColumnRule],
    mapping: &BTreeMap<String, String>,
    outputs: Outputs,
    stop: &CancellationToken,
) -> Result<(u64, u64), LoadError> {
    let batches = outputs.batches.clone();
    let mut state = State::new(settings, table, rules, mapping, outputs);
    let result = state.run(input, stop);
    if let Err(LoadError::Producer {
        code,
        message,
        transient,
    }) = &result
    {
        let _ = batches.blocking_send(Err(producer_error(code, message.clone(), *transient)));
    }
    if result.is_ok() {
        tracing::info!(
            rows = state.passed,
            rejected = state.rejected,
            "file read and checked"
        );
    }
    result.map(|()| (state.passed, state.rejected))
}

struct State<'a> {
    settings: &'a ReadSettings,
    table: &'a TableSchema,
    rules: &'a [ColumnRule],
    mapping_spec: &'a BTreeMap<String, String>,
    mapping: Option<Mapping>,
    mapping_tx: Option<oneshot::Sender<MappingResult>>,
    outputs: Outputs,
    reader: RecordReader,
    copy: Vec<u8>,
    values: Vec<Vec<Option<String>>>,
    batch_rows: u64,
    rejects: Vec<Rejected>,
    passed: u64,
    rejected: u64,
    bytes: Arc<AtomicU64>,
}

impl<'a> State<'a> {
    fn new(
        settings: &'a ReadSettings,
        table: &'a TableSchema,
        rules: &'a [ColumnRule],
        mapping_spec: &'a BTreeMap<String, String>,
        mut outputs: Outputs,
    ) -> Self {
        let mut reader = RecordReader::new(ReaderOptions {
            delimiter: settings.delimiter,
            quote: settings.quote,
            ..ReaderOptions::default()
        });
        // Records parsed in the same chunk as the header already need its field count.
        if settings.header {
            reader.expect_header_fields();
        }
        let (placeholder, _) = oneshot::channel();
        let mapping_tx = Some(std::mem::replace(&mut outputs.mapping, placeholder));
        Self {
            settings,
            table,
            rules,
            mapping_spec,
            mapping: None,
            mapping_tx,
            outputs,
            reader,
            copy: Vec::with_capacity(COPY_BATCH_BYTES * 2),
            values: Vec::new(),
            batch_rows: 0,
            rejects: Vec::new(),
            passed: 0,
            rejected: 0,
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    fn run(
        &mut self,
        input: impl Read + 'static,
        stop: &CancellationToken,
    ) -> Result<(), LoadError> {
        let counted = Counted {
            inner: input,
            count: self.bytes.clone(),
        };
        let mut input = match decompressed(counted, self.settings.compression) {
            Ok(input) => input,
            Err(error) => return Err(self.fail_mapping(error)),
        };
        let mut buf = vec![0u8; READ_CHUNK];
        let mut records = Vec::with_capacity(1024);
        let mut first = true;
        loop {
            if stop.is_cancelled() {
                return Err(LoadError::Stopped);
            }
            let n = read(&mut input, &mut buf)?;
            let chunk = buf.get(..n).unwrap_or_default();
            if first && n > 0 && !looks_like_text(chunk) {
                return Err(self.fail_mapping(producer_error(
                    "not_csv",
                    "the file is not CSV text (binary data found at its start)",
                    false,
                )));
            }
            first = false;
            if n == 0 {
                self.reader.finish(&mut records);
            } else {
                self.reader.feed(chunk, &mut records);
            }
            for record in records.drain(..) {
                self.record(record)?;
            }
            self.report_progress();
            if n == 0 {
                break;
            }
        }
        if self.mapping.is_none() {
            let error = producer_error(
                "empty_file",
                "the file is empty: no header and no rows",
                false,
            );
            return Err(self.fail_mapping(error));
        }
        self.flush_batch()?;
        self.flush_rejects();
        Ok(())
    }

    fn fail_mapping(&mut self, error: LoadError) -> LoadError {
        if let (
            Some(tx),
            LoadError::Producer {
                code,
                message,
                transient,
            },
        ) = (self.mapping_tx.take(), &error)
        {
            let _ = tx.send(Err(producer_error(code, message.clone(), *transient)));
        }
        error
    }

    fn record(&mut self, record: Record) -> Result<(), LoadError> {
        let Some(mapping) = &self.mapping else {
            return self.first_record(record);
        };
        match record.kind {
            RecordKind::Broken { raw, reason } => {
                let why = match reason {
                    Broken::UnbalancedQuote => {
                        "_raw: unbalanced quote; the record cannot be split into fields".to_owned()
                    }
                    Broken::TooLong { bytes } => format!(
                        "_raw: the record is {bytes} bytes, longer than the maximum of 1 MiB"
                    ),
                };
                self.reject(Rejected {
                    line: record.line,
                    fields: Fields::default(),
                    raw: Some(raw),
                    errors: why,
                })
            }
            RecordKind::Fields(fields) if fields.len() != mapping.fields.len() => {
                let errors = format!(
                    "_line: expected {} fields, found {}",
                    mapping.fields.len(),
                    fields.len()
                );
                let raw = Some(csv_line(&fields, self.settings.delimiter));
                self.reject(Rejected {
                    line: record.line,
                    fields,
                    raw,
                    errors,
                })
            }
            RecordKind::Fields(fields) => self.row(record.line, fields),
        }
    }

    fn first_record(&mut self, record: Record) -> Result<(), LoadError> {
        let fields = match record.kind {
            RecordKind::Fields(fields) => fields,
            RecordKind::Broken { .. } => {
                return Err(self.fail_mapping(producer_error(
                    "not_csv",
                    "the first line of the file cannot be read as CSV",
                    false,
                )));
            }
        };
        let mapped = if self.settings.header {
            let names: Vec<String> = fields
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            map_header(&names, self.table, self.mapping_spec)
        } else {
            positional(fields.len(), self.table)
        };
        let mapping = match mapped {
            Ok(mapping) => mapping,
            Err(e) => return Err(self.fail_mapping(producer_error(e.code, e.message, false))),
        };
        self.reader.expect_fields(mapping.fields.len());
        if let Some(tx) = self.mapping_tx.take() {
            let _ = tx.send(Ok(mapping.clone()));
        }
        self.mapping = Some(mapping);
        if self.settings.header {
            Ok(())
        } else {
            self.record(Record {
                line: record.line,
                kind: RecordKind::Fields(fields),
            })
        }
    }

    fn row(&mut self, line: u64, fields: Fields) -> Result<(), LoadError> {
        let Some(mapping) = &self.mapping else {
            return Ok(());
        };
        let mut values: Vec<Option<Cow<str>>> = Vec::with_capacity(fields.len());
        let mut errors = String::new();
        for (field, target) in fields.iter().zip(&mapping.fields) {
            let Some(rule) = target.and_then(|i| self.rules.get(i)) else {
                continue;
            };
            match rule.check(field) {
                // SQLite has no boolean type: it stores them as 1 and 0.
                Ok(Some(value)) if !self.settings.copy && rule.kind == ColumnType::Boolean => {
                    values.push(Some(Cow::Borrowed(if value == "true" { "1" } else { "0" })));
                }
                Ok(value) => values.push(value),
                Err(reason) => {
                    if !errors.is_empty() {
                        errors.push_str("; ");
                    }
                    errors.push_str(&format!("{}: {reason}", rule.name));
                }
            }
        }
        if !errors.is_empty() {
            drop(values);
            return self.reject(Rejected {
                line,
                fields,
                raw: None,
                errors,
            });
        }
        if self.settings.copy {
            push_copy_row(&mut self.copy, values.iter().map(|v| v.as_deref()));
        } else {
            self.values
                .push(values.into_iter().map(|v| v.map(Cow::into_owned)).collect());
        }
        self.batch_rows += 1;
        self.passed += 1;
        if self.copy.len() >= COPY_BATCH_BYTES || self.values.len() >= VALUES_BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn reject(&mut self, rejected: Rejected) -> Result<(), LoadError> {
        self.rejected += 1;
        self.rejects.push(rejected);
        if self.rejects.len() >= REJECTS_BATCH {
            self.flush_rejects();
        }
        if self.rejected > self.settings.max_errors {
            return Err(producer_error(
                "too_many_errors",
                format!(
                    "more than {} rows were rejected (max_errors); nothing was loaded",
                    self.settings.max_errors
                ),
                false,
            ));
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), LoadError> {
        if self.batch_rows == 0 {
            return Ok(());
        }
        let batch = if self.settings.copy {
            Batch::Copy {
                data: std::mem::replace(&mut self.copy, Vec::with_capacity(COPY_BATCH_BYTES * 2)),
                rows: self.batch_rows,
            }
        } else {
            Batch::Values {
                rows: std::mem::take(&mut self.values),
            }
        };
        self.batch_rows = 0;
        // The loader hung up: it failed or stopped and reports why itself.
        self.outputs
            .batches
            .blocking_send(Ok(batch))
            .map_err(|_| LoadError::Stopped)
    }

    fn flush_rejects(&mut self) {
        if !self.rejects.is_empty() {
            let _ = self
                .outputs
                .rejects
                .blocking_send(std::mem::take(&mut self.rejects));
        }
    }

    fn report_progress(&self) {
        let (rows, rejected, bytes) = (
            self.passed + self.rejected,
            self.rejected,
            self.bytes.load(Ordering::Relaxed),
        );
        self.outputs.progress.send_modify(|p| {
            p.rows = rows;
            p.bytes = bytes;
            p.rows_rejected = Some(rejected);
            p.rows_inserted = Some(rows - rejected);
        });
    }
}

/// The fields again as one CSV line (for `_raw` when the field count is wrong).
fn csv_line(fields: &Fields, delimiter: u8) -> Vec<u8> {
    let row: crate::pipeline::Row = fields
        .iter()
        .map(|f| serde_json::Value::String(String::from_utf8_lossy(f).into_owned()))
        .collect();
    let mut line = Vec::new();
    let options = crate::pipeline::codecs::EncoderOptions {
        delimiter,
        header: false,
        ..Default::default()
    };
    let mut encoder = crate::pipeline::codecs::build(crate::domain::Encoding::Csv, &options);
    crate::pipeline::codecs::in_memory(encoder.encode(&[row], &mut line));
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    line
}

/// The input, gunzipped when it is (or is declared) gzip.
fn decompressed(
    input: impl Read + 'static,
    compression: Compression,
) -> Result<Box<dyn Read>, LoadError> {
    let mut buffered = BufReader::with_capacity(READ_CHUNK, input);
    let head = buffered.fill_buf().map_err(io_error)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    match (compression, gzip) {
        (Compression::Gzip, false) => Err(producer_error(
            "not_gzip",
            "the file was declared gzip-compressed but is not gzip",
            false,
        )),
        (Compression::Auto | Compression::Gzip, true) => {
            Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
        }
        _ => Ok(Box::new(buffered)),
    }
}

/// Counts the bytes read from storage, for progress against the upload's size.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn read(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, LoadError> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        }
    }
}

/// A corrupt or truncated compressed file is permanent; anything else (the store) transient.
fn io_error(error: std::io::Error) -> LoadError {
    match error.kind() {
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => {
            producer_error(
                "corrupt_file",
                format!("the file cannot be decompressed: {error}"),
                false,
            )
        }
        _ => producer_error(
            "storage_unavailable",
            format!("reading the stored file failed: {error}"),
            true,
        ),
    }
}
