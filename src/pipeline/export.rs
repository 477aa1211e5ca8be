//! The export pipeline: chunks from a source → encoder → gzip → a byte sink (the multipart
//! upload), hashing and counting on the way. It holds at most one flush buffer of plain bytes
//! and what the compressor keeps; the sink decides how many parts are in flight, and while it
//! waits nothing more is read from the source.

use super::codecs::{self, EncoderOptions};
use super::sources::{Chunk, Opened, SourceError};
use crate::domain::Encoding;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write;
use tokio_util::sync::CancellationToken;

/// Plain bytes gathered before they are compressed and handed to the sink.
pub const FLUSH_BYTES: usize = 256 * 1024;
/// gzip level: 1, the fastest, as `gzip -1`; exports are about moving data quickly.
const GZIP_LEVEL: u32 = 1;

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
    #[error("stopped")]
    Stopped,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// How to write the file.
#[derive(Debug, Clone)]
pub struct Output {
    pub encoding: Encoding,
    pub options: EncoderOptions,
    pub gzip: bool,
}

/// Runs the pipeline to the end of the source, or until `stop` fires. `progress` is called
/// with (rows, bytes written) after every chunk.
pub async fn run(
    mut opened: Opened,
    output: &Output,
    sink: &mut dyn ByteSink,
    stop: &CancellationToken,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<Written, PipelineError> {
    let mut out = Writer::new(output.gzip);
    let mut encoder = codecs::build(output.encoding, &output.options);
    let mut plain = Vec::with_capacity(FLUSH_BYTES * 2);
    if !opened.pre_encoded {
        encoder.begin(&opened.columns, &mut plain);
    }
    let mut rows = 0u64;
    loop {
        let chunk = tokio::select! {
            chunk = opened.chunks.recv() => chunk,
            () = stop.cancelled() => return Err(PipelineError::Stopped),
        };
        match chunk {
            None => break,
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Chunk::Rows(batch))) => {
                encoder.encode(&batch, &mut plain);
                rows += batch.len() as u64;
            }
            Some(Ok(Chunk::Encoded { bytes, rows: n })) => {
                plain.extend_from_slice(&bytes);
                rows += n;
            }
        }
        if plain.len() >= FLUSH_BYTES {
            out.emit(&mut plain, sink, stop).await?;
        }
        progress(rows, out.bytes);
    }
    if !opened.pre_encoded {
        encoder.finish(&mut plain);
    }
    out.emit(&mut plain, sink, stop).await?;
    let written = out.finish(sink, stop, rows).await?;
    progress(written.rows, written.bytes);
    Ok(written)
}

/// Compresses (optionally), hashes and counts what goes to the sink.
struct Writer {
    gzip: Option<GzEncoder<Vec<u8>>>,
    hasher: Sha256,
    bytes: u64,
}

impl Writer {
    fn new(gzip: bool) -> Self {
        Self {
            gzip: gzip.then(|| {
                GzEncoder::new(
                    Vec::with_capacity(FLUSH_BYTES),
                    Compression::new(GZIP_LEVEL),
                )
            }),
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Hands `plain` (emptied) on to the sink, through the compressor if there is one.
    async fn emit(
        &mut self,
        plain: &mut Vec<u8>,
        sink: &mut dyn ByteSink,
        stop: &CancellationToken,
    ) -> Result<(), PipelineError> {
        let data = match &mut self.gzip {
            Some(gz) => {
                gz.write_all(plain).map_err(|e| SinkError {
                    transient: false,
                    message: e.to_string(),
                })?;
                plain.clear();
                std::mem::take(gz.get_mut())
            }
            None => std::mem::take(plain),
        };
        self.send(data, sink, stop).await
    }

    async fn send(
        &mut self,
        data: Vec<u8>,
        sink: &mut dyn ByteSink,
        stop: &CancellationToken,
    ) -> Result<(), PipelineError> {
        if data.is_empty() {
            return Ok(());
        }
        self.hasher.update(&data);
        self.bytes += data.len() as u64;
        tokio::select! {
            result = sink.write(Bytes::from(data)) => Ok(result?),
            () = stop.cancelled() => Err(PipelineError::Stopped),
        }
    }

    async fn finish(
        mut self,
        sink: &mut dyn ByteSink,
        stop: &CancellationToken,
        rows: u64,
    ) -> Result<Written, PipelineError> {
        if let Some(gz) = self.gzip.take() {
            let tail = gz.finish().map_err(|e| SinkError {
                transient: false,
                message: e.to_string(),
            })?;
            self.send(tail, sink, stop).await?;
        }
        Ok(Written {
            rows,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}
