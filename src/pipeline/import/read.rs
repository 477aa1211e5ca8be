//! The reading half of an import, on a blocking thread: stored bytes → gunzip → decode to
//! UTF-8 (unless the file is UTF-8) → CSV records → header mapping → validation → rows encoded
//! by the loader's encoder, in batches, and rejects for the report. Both outputs are bounded
//! channels, so a slow database slows this reader, which slows the read from storage. It never
//! knows which database it feeds.

use super::decode::{MALFORMED, decoded};
use super::header::{HeaderError, Mapping, map_header, positional};
use crate::domain::import::Compression;
use crate::domain::{Progress, TextEncoding};
use crate::pipeline::loaders::schema::TableSchema;
use crate::pipeline::loaders::{
    Batch, BatchRow, EncoderFactory, LoadError, LoadSender, RowEncoder, push_fields,
};
use crate::pipeline::records::{
    Broken, Fields, ReaderOptions, Record, RecordKind, RecordReader, ResumePoint,
    TEXT_SAMPLE_BYTES, looks_like_text,
};
use crate::pipeline::rejects::{Rejected, Rejects};
use crate::pipeline::validate::ColumnRule;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Bytes read from the (decompressed) file at once.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// A batch is handed on at about this many bytes of encoded rows…
const BATCH_BYTES: usize = 256 * 1024;
/// … or at this many rows, whichever comes first.
const BATCH_ROWS: usize = 4096;
/// Rejects are handed to the report writer in groups of this many.
const REJECTS_BATCH: usize = 256;

/// The header and its mapping, sent before any batch.
pub type MappingResult = Result<Mapping, LoadError>;

/// Opens the stored file again from a byte offset, on the reader's thread: a chunked import's
/// retry reads the header from the start, then enters the file at its checkpoint.
pub type Reopen = Box<dyn FnOnce(u64) -> std::io::Result<Box<dyn Read + Send>> + Send>;

/// How to read the file.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    /// The declared encoding; a byte order mark overrides it.
    pub encoding: TextEncoding,
    pub compression: Compression,
    /// Records up to this line are skipped unread (a chunked import's retry resumes after its
    /// last checkpoint); 0 skips nothing.
    pub skip_through: u64,
    /// Where the records after `skip_through` begin, if the checkpoint knows: once the header
    /// is read, the file is opened again there (with [`Reopen`]) rather than read through.
    /// Only a file that is neither gzip nor decoded from another encoding is entered so.
    pub resume: Option<ResumePoint>,
    /// For a chunked import, rows per chunk: a batch ends at each chunk's last row, marked
    /// [`Batch::chunk_end`].
    pub chunk_rows: Option<u64>,
}

/// Where the reader's results go.
pub struct Outputs {
    /// The mapping, once the first record is read.
    pub mapping: oneshot::Sender<MappingResult>,
    /// The file's header, for the rejects report.
    pub header: oneshot::Sender<Vec<String>>,
    pub batches: LoadSender,
    pub rejects: Rejects,
    pub progress: watch::Sender<Progress>,
}

/// What the reader needs to know about the target.
pub struct Target<'a> {
    pub table: &'a TableSchema,
    pub rules: &'a [ColumnRule],
    pub mapping: &'a BTreeMap<String, String>,
    /// For a table this import creates from a file with a header: per field, its column (the
    /// header was mapped when the table was inferred); empty to map the header here.
    pub fields: &'a [Option<usize>],
    pub encoder: EncoderFactory,
}

/// Reads everything; returns the rows passed on. The end of the file, or the error, is sent to
/// the loader last.
pub fn read(
    input: impl Read + 'static,
    reopen: Option<Reopen>,
    settings: &ReadSettings,
    target: &Target<'_>,
    outputs: Outputs,
    stop: &CancellationToken,
) -> Result<u64, LoadError> {
    let batches = outputs.batches.clone();
    let mut state = State::new(settings, target, outputs);
    state.jump = settings.resume.zip(reopen);
    let result = state.run(input, stop);
    // The loader commits only on an explicit end of the file; anything else rolls it back.
    let last = match &result {
        Ok(()) => Ok(None),
        Err(error) => Err(error.duplicate()),
    };
    let _ = batches.blocking_send(last);
    if result.is_ok() {
        tracing::info!(
            rows = state.passed,
            rejected = state.rejected,
            "file read and checked"
        );
    }
    result.map(|()| state.passed)
}

fn producer_error(code: &'static str, message: impl Into<String>, transient: bool) -> LoadError {
    LoadError::producer(code, message, transient)
}

struct State<'a> {
    settings: &'a ReadSettings,
    target: &'a Target<'a>,
    mapping: Option<Mapping>,
    mapping_tx: Option<oneshot::Sender<MappingResult>>,
    header_tx: Option<oneshot::Sender<Vec<String>>>,
    outputs: Outputs,
    reader: RecordReader,
    encoder: Option<Box<dyn RowEncoder>>,
    batch: Batch,
    rejects: Vec<Rejected>,
    passed: u64,
    rejected: u64,
    /// `rejected` when the last batch was sent.
    rejected_sent: u64,
    /// Rows passed in the current chunk.
    chunk_passed: u64,
    bytes: Arc<AtomicU64>,
    /// The encoding's name when the file is decoded (not UTF-8): fields holding
    /// [`MALFORMED`] are rejected naming it.
    decoded_from: Option<&'static str>,
    /// Whether the reader's offsets are the stored file's (neither gzip nor decoded), so that
    /// rows' resume points may go into checkpoints.
    plain: bool,
    /// Where to enter the file once the header is read, and how.
    jump: Option<(ResumePoint, Reopen)>,
}

impl<'a> State<'a> {
    fn new(settings: &'a ReadSettings, target: &'a Target<'a>, mut outputs: Outputs) -> Self {
        let mut reader = RecordReader::new(reader_options(settings));
        // Records parsed in the same chunk as the header already need its field count.
        if settings.header {
            reader.expect_header_fields();
        }
        let (placeholder, _) = oneshot::channel();
        let mapping_tx = Some(std::mem::replace(&mut outputs.mapping, placeholder));
        let (placeholder, _) = oneshot::channel();
        let header_tx = Some(std::mem::replace(&mut outputs.header, placeholder));
        Self {
            settings,
            target,
            mapping: None,
            mapping_tx,
            header_tx,
            outputs,
            reader,
            encoder: None,
            batch: new_batch(),
            rejects: Vec::new(),
            passed: 0,
            rejected: 0,
            rejected_sent: 0,
            chunk_passed: 0,
            bytes: Arc::new(AtomicU64::new(0)),
            decoded_from: None,
            plain: false,
            jump: None,
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
        let opened = opened(
            counted,
            self.settings.compression,
            self.settings.encoding.encoding(),
        );
        let input = match opened {
            Ok(opened) => {
                let utf8 = opened.encoding == encoding_rs::UTF_8;
                self.decoded_from = (!utf8).then(|| opened.encoding.name());
                self.plain = utf8 && !opened.gzip;
                if !self.plain {
                    self.jump = None;
                }
                opened.text
            }
            Err(error) => return Err(self.fail_mapping(error)),
        };
        let mut buf = vec![0u8; READ_CHUNK];
        let mut records = Vec::with_capacity(1024);
        let mut first = true;
        let mut reads = Reads::new(input);
        loop {
            if stop.is_cancelled() {
                return Err(LoadError::Stopped);
            }
            let n = reads.next(&mut buf)?;
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
            // Once the header is mapped a jump is due, and the records read past it are not
            // needed: the reader resumed at the checkpoint reads them again if they are.
            let jump_due = |state: &Self| n > 0 && state.mapping.is_some() && state.jump.is_some();
            let mut pending = records.drain(..);
            for record in pending.by_ref() {
                self.record(record)?;
                if jump_due(self) {
                    break;
                }
            }
            drop(pending);
            if jump_due(self)
                && let Some((point, reopen)) = self.jump.take()
            {
                reads = Reads::new(self.enter(point, reopen)?);
                continue;
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

    /// Opens the file again at `point` and reads on from there with a reader resumed there.
    fn enter(&mut self, point: ResumePoint, reopen: Reopen) -> Result<Box<dyn Read>, LoadError> {
        let input = reopen(point.offset).map_err(io_error)?;
        tracing::info!(
            offset = point.offset,
            line = point.line,
            "entering the stored file at the checkpoint"
        );
        self.bytes.store(point.offset, Ordering::Relaxed);
        let mut reader = RecordReader::resumed(reader_options(self.settings), point);
        if let Some(mapping) = &self.mapping {
            reader.expect_fields(mapping.fields.len());
        }
        self.reader = reader;
        Ok(Box::new(Counted {
            inner: input,
            count: self.bytes.clone(),
        }))
    }

    fn fail_mapping(&mut self, error: LoadError) -> LoadError {
        if let Some(tx) = self.mapping_tx.take() {
            let _ = tx.send(Err(error.duplicate()));
        }
        error
    }

    fn record(&mut self, record: Record) -> Result<(), LoadError> {
        let Some(mapping) = &self.mapping else {
            return self.first_record(record);
        };
        if record.line <= self.settings.skip_through {
            return Ok(());
        }
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
            RecordKind::Fields(fields) => self.row(record.line, fields, record.end),
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
            if self.target.fields.is_empty() {
                map_header(&names, self.target.table, self.target.mapping)
            } else {
                fixed(names, self.target.fields)
            }
        } else {
            positional(fields.len(), self.target.table)
        };
        let mapping = match mapped {
            Ok(mapping) => mapping,
            Err(e) => return Err(self.fail_mapping(producer_error(e.code, e.message, false))),
        };
        self.reader.expect_fields(mapping.fields.len());
        let types: Vec<_> = mapping
            .fields
            .iter()
            .flatten()
            .filter_map(|&i| self.target.rules.get(i).map(|rule| rule.kind.clone()))
            .collect();
        self.encoder = Some((self.target.encoder)(&types));
        if let Some(tx) = self.header_tx.take() {
            let _ = tx.send(mapping.header.clone());
        }
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
                end: record.end,
            })
        }
    }

    fn row(
        &mut self,
        line: u64,
        fields: Fields,
        end: Option<ResumePoint>,
    ) -> Result<(), LoadError> {
        let (Some(mapping), Some(encoder)) = (&self.mapping, self.encoder.as_mut()) else {
            return Ok(());
        };
        let mut values: Vec<Option<Cow<str>>> = Vec::with_capacity(fields.len());
        let mut errors = String::new();
        for (index, (field, target)) in fields.iter().zip(&mapping.fields).enumerate() {
            let Some(rule) = target.and_then(|i| self.target.rules.get(i)) else {
                continue;
            };
            let checked = match self.decoded_from {
                Some(name) if memchr::memchr(MALFORMED, field).is_some() => Err(format!(
                    "not valid {name} (a byte sequence that is no character in it)"
                )),
                _ => rule.check_field(field, fields.is_quoted_empty(index)),
            };
            match checked {
                Ok(value) => values.push(value),
                Err(reason) => {
                    if !errors.is_empty() {
                        errors.push_str("; ");
                    }
                    errors.push_str(&format!("{}: {reason}", rule.name));
                }
            }
        }
        if errors.is_empty() {
            let before = self.batch.data.len();
            if let Err(reason) = encoder.encode(&values, &mut self.batch.data) {
                self.batch.data.truncate(before);
                errors = format!("_line: {reason}");
            }
        }
        drop(values);
        if !errors.is_empty() {
            return self.reject(Rejected {
                line,
                fields,
                raw: None,
                errors,
            });
        }
        push_fields(&mut self.batch.raw, &fields);
        self.batch.rows.push(BatchRow {
            line,
            end: self.batch.data.len(),
            raw_end: self.batch.raw.len(),
        });
        self.batch.resume = end.filter(|_| self.plain);
        self.passed += 1;
        self.chunk_passed += 1;
        if self
            .settings
            .chunk_rows
            .is_some_and(|rows| self.chunk_passed >= rows)
        {
            self.chunk_passed = 0;
            self.batch.chunk_end = true;
        }
        if self.batch.chunk_end
            || self.batch.data.len() >= BATCH_BYTES
            || self.batch.rows.len() >= BATCH_ROWS
        {
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
        self.outputs.rejects.add(1)
    }

    fn flush_batch(&mut self) -> Result<(), LoadError> {
        if self.batch.rows.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::replace(&mut self.batch, new_batch());
        batch.rejected = self.rejected - self.rejected_sent;
        self.rejected_sent = self.rejected;
        // The loader hung up: it failed or stopped and reports why itself.
        self.outputs
            .batches
            .blocking_send(Ok(Some(batch)))
            .map_err(|_| LoadError::Stopped)
    }

    fn flush_rejects(&mut self) {
        self.outputs
            .rejects
            .blocking_send(std::mem::take(&mut self.rejects));
    }

    fn report_progress(&self) {
        let (rows, rejected, bytes) = (
            self.passed + self.rejected,
            self.outputs.rejects.count(),
            self.bytes.load(Ordering::Relaxed),
        );
        self.outputs.progress.send_modify(|p| {
            p.rows = rows;
            p.bytes = bytes;
            p.rows_rejected = Some(rejected);
            p.rows_inserted = Some(rows.saturating_sub(rejected));
        });
    }
}

fn reader_options(settings: &ReadSettings) -> ReaderOptions {
    ReaderOptions {
        delimiter: settings.delimiter,
        quote: settings.quote,
        ..ReaderOptions::default()
    }
}

/// The mapping of a header already mapped when its table was inferred from it.
fn fixed(header: Vec<String>, fields: &[Option<usize>]) -> Result<Mapping, HeaderError> {
    if header.len() != fields.len() {
        return Err(HeaderError {
            code: "header_changed",
            message: format!(
                "the header has {} fields, but the table was made from one of {}",
                header.len(),
                fields.len()
            ),
        });
    }
    Ok(Mapping {
        fields: fields.to_vec(),
        header,
    })
}

fn new_batch() -> Batch {
    Batch {
        data: Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4),
        raw: Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4),
        rows: Vec::with_capacity(1024),
        ..Batch::default()
    }
}

/// The fields again as one CSV line (for `_raw` when the field count is wrong): a NULL field
/// empty, a quoted empty one `""`.
fn csv_line(fields: &Fields, delimiter: u8) -> Vec<u8> {
    let row: crate::pipeline::Row = fields
        .iter()
        .enumerate()
        .map(|(index, f)| match fields.is_null(index) {
            true => serde_json::Value::Null,
            false => serde_json::Value::String(String::from_utf8_lossy(f).into_owned()),
        })
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

/// The file's text as the load reads it.
pub(super) struct Opened {
    pub text: Box<dyn Read>,
    /// The encoding it was decoded from (UTF-8: not decoded).
    pub encoding: &'static encoding_rs::Encoding,
    /// Whether it was gunzipped.
    pub gzip: bool,
}

/// The file's text as the load reads it: gunzipped as `compression` says, then decoded to UTF-8
/// from `encoding` (a byte order mark at the start overrides it).
pub(super) fn opened(
    input: impl Read + 'static,
    compression: Compression,
    encoding: &'static encoding_rs::Encoding,
) -> Result<Opened, LoadError> {
    let (input, gzip) = decompressed(input, compression)?;
    let (text, encoding) = decoded(input, encoding).map_err(io_error)?;
    Ok(Opened {
        text,
        encoding,
        gzip,
    })
}

/// The input, gunzipped when it is (or is declared) gzip, and whether it is.
fn decompressed(
    input: impl Read + 'static,
    compression: Compression,
) -> Result<(Box<dyn Read>, bool), LoadError> {
    let mut buffered = BufReader::with_capacity(READ_CHUNK, input);
    let head = buffered.fill_buf().map_err(io_error)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    match (compression, gzip) {
        (Compression::Gzip, false) => Err(producer_error(
            "not_gzip",
            "the file was declared gzip-compressed but is not gzip",
            false,
        )),
        (Compression::Auto | Compression::Gzip, true) => Ok((
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            true,
        )),
        _ => Ok((Box::new(buffered), false)),
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

/// The reads of a file: the first one a sample ([`read_sample`]), then as the input gives.
pub(super) struct Reads<R> {
    input: R,
    first: bool,
    /// A failure of the sample's reads, returned in place of the next read.
    deferred: Option<LoadError>,
}

impl<R: Read> Reads<R> {
    pub(super) fn new(input: R) -> Self {
        Self {
            input,
            first: true,
            deferred: None,
        }
    }

    /// The next bytes into `buf`; 0 at the end of the file.
    pub(super) fn next(&mut self, buf: &mut [u8]) -> Result<usize, LoadError> {
        if std::mem::take(&mut self.first) {
            let (n, failure) = read_sample(&mut self.input, buf)?;
            self.deferred = failure;
            return Ok(n);
        }
        match self.deferred.take() {
            Some(failure) => Err(failure),
            None => read_some(&mut self.input, buf),
        }
    }
}

/// The first read: at least [`TEXT_SAMPLE_BYTES`] unless the file is shorter, however little
/// each read of the input gives (the decompressor's or the decoder's), so that the sample
/// [`looks_like_text`] judges is a real one. A read that fails after some bytes ends the sample
/// early and its error is handed back beside them, to be returned in place of the next read.
fn read_sample(
    input: &mut impl Read,
    buf: &mut [u8],
) -> Result<(usize, Option<LoadError>), LoadError> {
    let mut filled = 0;
    while filled < TEXT_SAMPLE_BYTES {
        let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) else {
            break;
        };
        match read_some(input, rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            // What was read before a failure is still the file's start: it is loaded first
            // (a chunked import commits what it can), and the failure comes after it.
            Err(error) if filled > 0 => return Ok((filled, Some(error))),
            Err(error) => return Err(error),
        }
    }
    Ok((filled, None))
}

fn read_some(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, LoadError> {
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

#[cfg(test)]
mod tests {
    use super::{READ_CHUNK, Reads};
    use std::io::Read;

    /// Gives its pieces one read each, then fails as a broken connection does.
    struct Breaks(Vec<&'static [u8]>);

    impl Read for Breaks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("the connection broke"));
            }
            let piece = self.0.remove(0);
            buf[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }

    #[test]
    fn a_failure_within_the_sample_comes_after_the_bytes_read_before_it() {
        let mut reads = Reads::new(Breaks(vec![b"id\n1\n", b"2\n"]));
        let mut buf = vec![0; READ_CHUNK];
        assert_eq!(reads.next(&mut buf).ok(), Some(7));
        assert_eq!(&buf[..7], b"id\n1\n2\n");
        assert!(reads.next(&mut buf).is_err());
    }

    #[test]
    fn a_failure_before_any_byte_is_returned_at_once() {
        let mut reads = Reads::new(Breaks(Vec::new()));
        assert!(reads.next(&mut vec![0; READ_CHUNK]).is_err());
    }
}
