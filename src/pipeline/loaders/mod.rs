//! Where import rows go: the [`Loader`] seam and its two backends. A loader encodes its own
//! batches (it hands the reader an encoder for the table's column types), finds out whether a
//! job was already loaded, stages, turns constraint violations into per-row rejects, and
//! commits the rows together with a record of the job in `ferry_import_log` — the reader never
//! knows which database it feeds. Both backends pass one conformance suite
//! (`tests/api/loaders.rs`).
//!
//! * [`postgres`]: binary `COPY … FROM STDIN` in savepointed chunks; a chunk the database
//!   refuses is loaded again into a temporary table where set queries find the bad rows.
//! * [`sqlite`]: prepared `INSERT`s, one row at a time, a refused row rejected on its own.

pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod tables;

use crate::config::is_postgres;
use crate::domain::import::Mode;
use crate::pipeline::records::Fields;
use crate::pipeline::rejects::Rejects;
use crate::pipeline::sources::SourceError;
use crate::pipeline::validate::ColumnType;
use schema::TableSchema;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use std::borrow::Cow;
use std::str::FromStr;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Batches in flight between the validator and the loader: the validator (and so the reader
/// of the stored file) waits when the database is slower.
pub const CHANNEL_BATCHES: usize = 4;

/// The table in a target database that remembers finished imports.
pub const LOG_TABLE: &str = "ferry_import_log";

/// A connection to a target database (also used to list its tables).
pub enum TargetConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Opens a connection to `url`.
pub async fn connect(url: &str) -> Result<TargetConn, SourceError> {
    if is_postgres(url) {
        Ok(TargetConn::Postgres(PgConnection::connect(url).await?))
    } else {
        Ok(TargetConn::Sqlite(
            SqliteConnectOptions::from_str(url)?.connect().await?,
        ))
    }
}

impl TargetConn {
    /// The loader for this connection's database.
    pub fn into_loader(self) -> Box<dyn Loader> {
        match self {
            Self::Postgres(conn) => Box::new(postgres::PgLoader::new(conn)),
            Self::Sqlite(conn) => Box::new(sqlite::SqliteLoader::new(conn)),
        }
    }
}

/// Turns one row of validated values into a loader's wire format. Built by the loader for the
/// plan's column types, called on the reader's thread.
pub trait RowEncoder: Send {
    /// Appends one row (values in the plan's column order, `None` for NULL, as the validator
    /// normalised them) to `out`. An `Err` is a reason to reject the row; it means the
    /// validator let through something this encoder cannot represent.
    fn encode(&mut self, values: &[Option<Cow<'_, str>>], out: &mut Vec<u8>) -> Result<(), String>;
}

/// Builds a loader's encoder for the types of the columns the file fills, in the file's order.
pub type EncoderFactory = fn(&[ColumnType]) -> Box<dyn RowEncoder>;

/// One row of a batch: where it came from, for the rejects report.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// The row's line in the file.
    pub line: u64,
    /// Where the row's encoding ends in [`Batch::data`]; it starts where the previous ends.
    pub end: usize,
    /// The file's own fields, reported as they were should the database refuse the row.
    pub fields: Fields,
}

/// Validated rows, encoded by the loader's own [`RowEncoder`].
#[derive(Debug, Default)]
pub struct Batch {
    /// The rows' encodings, back to back.
    pub data: Vec<u8>,
    pub rows: Vec<BatchRow>,
}

impl Batch {
    /// Each row with its encoding.
    pub fn iter(&self) -> impl Iterator<Item = (&BatchRow, &[u8])> {
        let mut start = 0;
        self.rows.iter().map(move |row| {
            let bytes = self.data.get(start..row.end).unwrap_or_default();
            start = row.end;
            (row, bytes)
        })
    }
}

/// What to load where.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The job's id, recorded with the load so a retry never loads twice.
    pub job: String,
    pub table: TableSchema,
    /// The columns the file fills, in the batches' order.
    pub columns: Vec<String>,
    /// Their types, in the same order.
    pub types: Vec<ColumnType>,
    pub mode: Mode,
    pub key: Vec<String>,
}

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database refused or failed.
    #[error("{0}")]
    Database(#[from] sqlx::Error),
    /// The reader gave up (too many rejects, an unreadable file); the message says why.
    #[error("{message}")]
    Producer {
        code: &'static str,
        message: String,
        transient: bool,
    },
    /// Asked to stop.
    #[error("stopped")]
    Stopped,
    /// A bug.
    #[error("{0}")]
    Internal(String),
}

impl LoadError {
    /// A failure of the reader (or of the rejects it counts).
    pub fn producer(code: &'static str, message: impl Into<String>, transient: bool) -> Self {
        Self::Producer {
            code,
            message: message.into(),
            transient,
        }
    }

    /// The same error again (errors carrying a database error lose its details).
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Producer {
                code,
                message,
                transient,
            } => Self::producer(code, message.clone(), *transient),
            Self::Stopped => Self::Stopped,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for LoadError {
    fn from(error: std::io::Error) -> Self {
        Self::Internal(format!("the loader's spill file failed: {error}"))
    }
}

/// The sending end of the validator → loader channel.
pub type LoadSender = mpsc::Sender<Result<Batch, LoadError>>;
/// The receiving end of the validator → loader channel.
pub type LoadReceiver = mpsc::Receiver<Result<Batch, LoadError>>;

/// A channel of the standard size.
pub fn channel() -> (LoadSender, LoadReceiver) {
    mpsc::channel(CHANNEL_BATCHES)
}

/// A target database, seen from an import.
#[async_trait::async_trait]
pub trait Loader: Send {
    /// Rows a previous attempt of `job` already committed, if it did.
    async fn already_loaded(&mut self, job: &str) -> Result<Option<u64>, LoadError>;

    /// The encoder the reader uses for this loader's batches.
    fn encoder(&self) -> EncoderFactory;

    /// Loads every batch in one transaction and commits it with the job's log row; returns
    /// the rows loaded. Rows the database refuses go to `rejects` (which counts them against
    /// `max_errors`); the others load exactly once. Rolls back when `stop` fires, the reader
    /// sends an error or too many rows are rejected.
    async fn load(
        &mut self,
        plan: &LoadPlan,
        batches: LoadReceiver,
        rejects: &Rejects,
        stop: &CancellationToken,
    ) -> Result<u64, LoadError>;
}

impl LoadPlan {
    /// The quoted column list, in the batches' order.
    pub fn column_list(&self) -> String {
        quoted_list(&self.columns)
    }

    /// `ON CONFLICT (key) DO UPDATE SET …` (or `DO NOTHING` when every column is a key).
    pub fn on_conflict(&self) -> String {
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.key.contains(c))
            .map(|c| format!("{0} = excluded.{0}", schema::quote_ident(c)))
            .collect();
        let key = quoted_list(&self.key);
        if updates.is_empty() {
            format!("ON CONFLICT ({key}) DO NOTHING")
        } else {
            format!("ON CONFLICT ({key}) DO UPDATE SET {}", updates.join(", "))
        }
    }
}

/// Identifiers quoted and joined with `, `.
pub fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|c| schema::quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits for the next batch unless `stop` fires first.
async fn next_batch(
    batches: &mut LoadReceiver,
    stop: &CancellationToken,
) -> Result<Option<Batch>, LoadError> {
    tokio::select! {
        next = batches.recv() => next.transpose(),
        () = stop.cancelled() => Err(LoadError::Stopped),
    }
}
