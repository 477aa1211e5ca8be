//! Where export rows come from: PostgreSQL, SQLite, DuckDB (cargo feature `duckdb`), or the
//! synthetic generator.
//!
//! Every source runs in a task of its own and hands chunks through a small bounded channel:
//! when the consumer (encoder, compressor, upload) is slow, `send` waits and the source stops
//! reading, so a slow store slows the database rather than growing a buffer.

pub mod duckdb;
pub mod generate;
pub mod params;
pub mod pg_binary;
pub mod postgres;
pub mod sqlite;

use super::Row;
use super::types::Column;
use arrow_array::RecordBatch;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight between a source and its consumer.
pub const CHANNEL_CHUNKS: usize = 4;
/// Pre-encoded bytes are coalesced to about this size before they are handed on.
pub const ENCODED_CHUNK: usize = 64 * 1024;

/// A piece of an export's data.
#[derive(Debug)]
pub enum Chunk {
    /// Rows that still need encoding.
    Rows(Vec<Row>),
    /// Bytes already in the target encoding (PostgreSQL's `COPY … (FORMAT csv)`), holding
    /// `rows` complete rows.
    Encoded { bytes: Bytes, rows: u64 },
    /// Columns (DuckDB's Arrow batches): Parquet takes them as they are, the other encoders
    /// get [`super::columnar::rows`].
    Batch(RecordBatch),
}

/// An open source: its columns, the planner's estimate, and the chunks to come.
#[derive(Debug)]
pub struct Opened {
    /// The columns, in order, with their types.
    pub columns: Vec<Column>,
    /// The planner's row estimate, when there is one.
    pub estimate: Option<u64>,
    /// Whether the chunks are [`Chunk::Encoded`] already (header included), so that no
    /// encoder runs.
    pub pre_encoded: bool,
    /// The chunks; the channel closes after the last one or after an error.
    pub chunks: ChunkReceiver,
}

/// Why a source failed, classified where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Worth another attempt: the database was unreachable, the connection reset.
    #[error("{message}")]
    Transient { code: &'static str, message: String },
    /// Will fail again: bad SQL, a missing table, a statement timeout.
    #[error("{message}")]
    Permanent { code: &'static str, message: String },
}

impl From<sqlx::Error> for SourceError {
    fn from(error: sqlx::Error) -> Self {
        classify(&error)
    }
}

/// Classifies a database error: connection trouble is transient, everything the query itself
/// causes is permanent. SQLSTATE classes: 08 connection, 53 resources, 57P0x shutdown, 40001/
/// 40P01 serialization/deadlock are transient; 57014 is a statement timeout.
pub fn classify(error: &sqlx::Error) -> SourceError {
    match error {
        sqlx::Error::Database(db) => {
            let state = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_owned();
            let transient = state.starts_with("08")
                || state.starts_with("53")
                || state.starts_with("57P0")
                || state == "40001"
                || state == "40P01";
            if transient {
                SourceError::Transient {
                    code: "database_unavailable",
                    message,
                }
            } else if state == "57014" {
                SourceError::Permanent {
                    code: "query_timeout",
                    message: format!("the query ran past its statement timeout: {message}"),
                }
            } else if state == "25006" {
                SourceError::Permanent {
                    code: "read_only",
                    message: format!("exports run read-only: {message}"),
                }
            } else {
                SourceError::Permanent {
                    code: "query_failed",
                    message,
                }
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => SourceError::Transient {
            code: "database_unavailable",
            message: format!("the database could not be reached: {error}"),
        },
        other => SourceError::Permanent {
            code: "query_failed",
            message: other.to_string(),
        },
    }
}

/// The sending end of a source's channel.
pub type ChunkSender = mpsc::Sender<Result<Chunk, SourceError>>;
/// The receiving end of a source's channel.
pub type ChunkReceiver = mpsc::Receiver<Result<Chunk, SourceError>>;

/// A channel of the standard size.
pub fn channel() -> (ChunkSender, ChunkReceiver) {
    mpsc::channel(CHANNEL_CHUNKS)
}

/// Opens the synthetic generator: it runs on a blocking thread and waits on the channel.
pub fn open_generator(spec: crate::domain::generate::GenerateSpec) -> Opened {
    // The generator's count is exact, so progress has a real percent.
    let estimate = Some(spec.rows);
    let mut generator = generate::Generator::new(spec);
    let columns = generator.columns();
    let (tx, chunks) = channel();
    // The thread writes in the caller's span (a job's), like the rest of the job.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.entered();
        let mut sent = 0u64;
        loop {
            let rows = generator.next_batch(super::BATCH_ROWS);
            let count = rows.len() as u64;
            if rows.is_empty() || tx.blocking_send(Ok(Chunk::Rows(rows))).is_err() {
                tracing::debug!(rows = sent, "synthetic source finished");
                return;
            }
            sent += count;
        }
    });
    Opened {
        columns,
        estimate,
        pre_encoded: false,
        chunks,
    }
}
