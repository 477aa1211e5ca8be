//! The export pipeline: chunks from a source → encoder → compressor (gzip, or a zip bundle's
//! entry) → a byte sink (the multipart upload), hashing and counting on the way.
//!
//! ```text
//! source task ─chunks (4)─▶ blocking thread: encoder → gzip/zip ─bytes (2 × 256 KiB)─▶ async: sha256 → sink
//! ```
//!
//! Encoding runs on a blocking thread of its own because the formats' libraries are
//! synchronous `Write` code (Parquet's writer, XLSX's workbook, zip) and CPU-bound; it reads the
//! source's bounded channel and writes into a bounded channel of byte chunks, which the async
//! side hands to the sink. So memory holds the source's chunks, one flush buffer, two chunks in
//! flight and what the encoder keeps (a Parquet row group, capped in bytes), whatever the size
//! of the file; when the sink waits, both channels fill and the source stops reading.

use super::codecs::gzip::GzipConfig;
use super::codecs::zip::ZipConfig;
use super::codecs::{self, EncoderOptions, Out};
use super::columnar::Unsupported;
use super::sources::{Chunk, ChunkReceiver, Opened, SourceError};
use super::types::Mismatch;
use crate::domain::Encoding;
use bytes::Bytes;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bytes gathered on the encoding thread before they are handed to the sink.
pub const FLUSH_BYTES: usize = 256 * 1024;
/// Chunks of [`FLUSH_BYTES`] in flight between the encoding thread and the sink.
const BYTE_CHUNKS: usize = 2;
/// gzip level of `csv.gz`/`jsonl.gz` and deflate level of a bundle's text entries when the
/// export names none (see [`super::codecs::gzip`] for why 2).
pub const DEFAULT_GZIP_LEVEL: u32 = super::codecs::gzip::DEFAULT_LEVEL;

/// Where the file's bytes go.
#[async_trait::async_trait]
pub trait ByteSink: Send {
    /// Takes the next bytes; waits while the sink is full.
    async fn write(&mut self, data: Bytes) -> Result<(), SinkError>;
}

/// A sink that failed; `transient` when trying again may work.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub transient: bool,
    pub message: String,
}

/// Why the pipeline stopped early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("storage failed: {0}")]
    Sink(#[from] SinkError),
    /// A value that does not fit its column's type in a typed format.
    #[error("{0}")]
    InvalidValue(String),
    /// The encoder failed (its scratch files, a limit of the format).
    #[error("encoding failed: {message}")]
    Encode { transient: bool, message: String },
    #[error("stopped")]
    Stopped,
}

impl From<io::Error> for PipelineError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::InvalidData => match error.get_ref() {
                Some(inner) if inner.is::<Mismatch>() || inner.is::<Unsupported>() => {
                    Self::InvalidValue(inner.to_string())
                }
                _ => Self::Encode {
                    transient: false,
                    message: error.to_string(),
                },
            },
            // The byte channel closed: the sink side stopped, and says why.
            io::ErrorKind::BrokenPipe => Self::Stopped,
            _ => Self::Encode {
                transient: true,
                message: error.to_string(),
            },
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    /// A bundle's entries, in order; empty for a single file.
    pub entries: Vec<EntryWritten>,
}

/// One entry of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryWritten {
    /// Its file name in the zip.
    pub name: String,
    pub rows: u64,
    /// Its size unzipped.
    pub bytes: u64,
}

/// How to write one file.
#[derive(Debug, Clone)]
pub struct Output {
    pub encoding: Encoding,
    pub options: EncoderOptions,
    /// The gzip level, when the file is gzip-compressed.
    pub gzip: Option<u32>,
}

/// One entry of a bundle: its file name in the zip, how to write it, and whether it is
/// compressed already (stored rather than deflated).
#[derive(Debug, Clone)]
pub struct Entry {
    pub file_name: String,
    pub output: Output,
    pub compressed: bool,
}

/// Opens the source of entry `i` of a bundle (entries are opened one at a time, in turn).
pub type Opener = Box<dyn FnMut(usize) -> BoxFuture<'static, Result<Opened, SourceError>> + Send>;

/// Runs the pipeline for one file to the end of the source, or until `stop` fires.
/// `progress` is called with (rows, bytes written) after every chunk.
pub async fn run(
    opened: Opened,
    output: &Output,
    sink: &mut dyn ByteSink,
    stop: &CancellationToken,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<Written, PipelineError> {
    let output = output.clone();
    let work = move |feed: &Feed, out: Out<'_>| {
        write_file(feed, opened, &output, out)?;
        Ok(Vec::new())
    };
    drive(work, sink, stop, progress).await
}

/// Runs the pipeline for a bundle: each entry's source is opened and written in turn into one
/// zip; rows and progress count all entries. Any entry's failure fails the whole.
pub async fn run_bundle(
    entries: Vec<Entry>,
    mut opener: Opener,
    deflate_level: u32,
    sink: &mut dyn ByteSink,
    stop: &CancellationToken,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<Written, PipelineError> {
    let work = move |feed: &Feed, out: Out<'_>| {
        let mut zip = ZipConfig { deflate_level }.build(out);
        let mut written = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let opened = feed.wait(opener(i))??;
            zip.start_entry(&entry.file_name, entry.compressed)?;
            let mut counted = Counted {
                inner: zip.entry(),
                bytes: 0,
            };
            let rows = write_file(feed, opened, &entry.output, &mut counted)?;
            written.push(EntryWritten {
                name: entry.file_name.clone(),
                rows,
                bytes: counted.bytes,
            });
        }
        zip.finish()?;
        Ok(written)
    };
    drive(work, sink, stop, progress).await
}

/// What the encoding thread works with: the runtime (to wait on channels and sources), the
/// stop signal and the shared row count.
pub struct Feed {
    handle: Handle,
    stop: CancellationToken,
    rows: Arc<AtomicU64>,
}

impl Feed {
    /// Waits for `future`, or for the stop signal.
    fn wait<T>(&self, future: impl Future<Output = T>) -> Result<T, PipelineError> {
        self.handle.block_on(async {
            tokio::select! {
                value = future => Ok(value),
                () = self.stop.cancelled() => Err(PipelineError::Stopped),
            }
        })
    }

    /// The source's next chunk; `None` at its end.
    fn next(&self, chunks: &mut ChunkReceiver) -> Result<Option<Chunk>, PipelineError> {
        Ok(self.wait(chunks.recv())?.transpose()?)
    }
}

/// Runs `work` on a blocking thread that writes into a bounded channel, and hands what comes
/// out of the channel to `sink`, hashing and counting it.
async fn drive<W>(
    work: W,
    sink: &mut dyn ByteSink,
    stop: &CancellationToken,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<Written, PipelineError>
where
    W: FnOnce(&Feed, Out<'_>) -> Result<Vec<EntryWritten>, PipelineError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(BYTE_CHUNKS);
    let rows = Arc::new(AtomicU64::new(0));
    let feed = Feed {
        handle: Handle::current(),
        stop: stop.clone(),
        rows: rows.clone(),
    };
    // The thread logs in the caller's span (a job's), like the rest of the job.
    let span = tracing::Span::current();
    let producer = tokio::task::spawn_blocking(move || {
        let _entered = span.entered();
        let mut writer = ChannelWriter {
            tx,
            buffer: Vec::with_capacity(FLUSH_BYTES),
        };
        let entries = work(&feed, &mut writer)?;
        writer.send_buffer()?;
        Ok::<_, PipelineError>(entries)
    });
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let forwarded = async {
        loop {
            let next = tokio::select! {
                next = rx.recv() => next,
                () = stop.cancelled() => return Err(PipelineError::Stopped),
            };
            let Some(data) = next else { return Ok(()) };
            hasher.update(&data);
            bytes += data.len() as u64;
            tokio::select! {
                result = sink.write(data) => result?,
                () = stop.cancelled() => return Err(PipelineError::Stopped),
            }
            progress(rows.load(Ordering::Relaxed), bytes);
        }
    }
    .await;
    drop(rx);
    let produced = producer.await.map_err(|e| PipelineError::Encode {
        transient: false,
        message: format!("the encoding thread failed: {e}"),
    })?;
    forwarded?;
    let entries = produced?;
    let rows = rows.load(Ordering::Relaxed);
    progress(rows, bytes);
    Ok(Written {
        rows,
        bytes,
        sha256: hex::encode(hasher.finalize()),
        entries,
    })
}

/// Writes one source's file into `out` (through gzip when asked); returns its rows.
fn write_file(
    feed: &Feed,
    opened: Opened,
    output: &Output,
    out: Out<'_>,
) -> Result<u64, PipelineError> {
    match output.gzip {
        Some(level) => {
            let mut gz = GzipConfig { level }.build(out)?;
            let rows = encode(feed, opened, output, &mut gz)?;
            gz.finish()?;
            Ok(rows)
        }
        None => encode(feed, opened, output, out),
    }
}

/// Moves every chunk of the source through the encoder (or as it is, when it comes encoded).
fn encode(
    feed: &Feed,
    mut opened: Opened,
    output: &Output,
    out: Out<'_>,
) -> Result<u64, PipelineError> {
    let mut encoder =
        (!opened.pre_encoded).then(|| codecs::build(output.encoding, &output.options));
    if let Some(encoder) = &mut encoder {
        encoder.begin(&opened.columns, out)?;
    }
    let mut rows = 0u64;
    while let Some(chunk) = feed.next(&mut opened.chunks)? {
        let count = match (chunk, &mut encoder) {
            (Chunk::Rows(batch), Some(encoder)) => {
                encoder.encode(&batch, out)?;
                batch.len() as u64
            }
            (Chunk::Batch(batch), Some(encoder)) => {
                encoder.encode_batch(&batch, &opened.columns, out)?;
                batch.num_rows() as u64
            }
            (Chunk::Encoded { bytes, rows }, None) => {
                out.write_all(&bytes)?;
                rows
            }
            _ => {
                return Err(PipelineError::Encode {
                    transient: false,
                    message: "the source sent chunks of the wrong kind".to_owned(),
                });
            }
        };
        rows += count;
        feed.rows.fetch_add(count, Ordering::Relaxed);
    }
    if let Some(encoder) = &mut encoder {
        encoder.finish(out)?;
    }
    Ok(rows)
}

/// The encoding thread's end of the byte channel: gathers [`FLUSH_BYTES`], then waits for room
/// in the channel. A closed channel (the sink side stopped) is `BrokenPipe`.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&self, data: Bytes) -> io::Result<()> {
        self.tx
            .blocking_send(data)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(FLUSH_BYTES));
        self.send(Bytes::from(full))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = FLUSH_BYTES - self.buffer.len();
        let taken = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..taken]);
        if self.buffer.len() >= FLUSH_BYTES {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// Counts what goes through (a bundle entry's unzipped size).
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
