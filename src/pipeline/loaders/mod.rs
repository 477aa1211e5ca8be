//! Where import rows go: the [`Loader`] seam and its two backends. A loader encodes its own
//! batches (it hands the reader an encoder for the table's column types), finds out whether a
//! job was already loaded, stages, turns constraint violations into per-row rejects, and
//! commits the rows together with a record of the job in `ferry_import_log` — the reader never
//! knows which database it feeds. A chunked import is one such load per chunk, each committed
//! with its checkpoint in `ferry_import_checkpoint` (see [`Commit`]). Both backends pass one
//! conformance suite (`tests/api/loaders.rs`).
//!
//! * [`postgres`]: binary `COPY … FROM STDIN` in savepointed chunks; a chunk the database
//!   refuses is loaded again into a temporary table where set queries find the bad rows.
//! * [`sqlite`]: prepared `INSERT`s, one row at a time, a refused row rejected on its own.

pub mod create;
pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod tables;

use crate::config::is_postgres;
use crate::domain::import::Mode;
use crate::pipeline::records::{Fields, ResumePoint};
use crate::pipeline::rejects::Rejects;
use crate::pipeline::sources::SourceError;
use crate::pipeline::validate::ColumnType;
use schema::TableSchema;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, SqliteConnection};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Batches in flight between the validator and the loader: the validator (and so the reader
/// of the stored file) waits when the database is slower.
pub const CHANNEL_BATCHES: usize = 4;

/// The table in a target database that remembers finished imports.
pub const LOG_TABLE: &str = "ferry_import_log";

/// The table in a target database that remembers how far a chunked import got.
pub const CHECKPOINT_TABLE: &str = "ferry_import_checkpoint";

/// Creates [`CHECKPOINT_TABLE`] (the same statement for both databases).
pub fn create_checkpoints() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (job_id text PRIMARY KEY, \
         line bigint NOT NULL, rows bigint NOT NULL, rejected bigint NOT NULL, \
         chunks bigint NOT NULL, byte_offset bigint, offset_line bigint)"
    )
}

/// The columns a [`CHECKPOINT_TABLE`] made by an earlier version of Ferry lacks.
const ADDED_CHECKPOINT_COLUMNS: [&str; 2] = ["byte_offset", "offset_line"];

/// The statements that add to a [`CHECKPOINT_TABLE`] made by an earlier version of Ferry the
/// columns it lacks, given the names of those it has; `if_not_exists` where the database can
/// say so (PostgreSQL), so that two imports doing it at once both succeed.
pub fn checkpoint_upgrades(present: &[String], if_not_exists: bool) -> Vec<String> {
    let guard = if if_not_exists { "IF NOT EXISTS " } else { "" };
    ADDED_CHECKPOINT_COLUMNS
        .iter()
        .filter(|column| !present.iter().any(|p| p == *column))
        .map(|column| format!("ALTER TABLE {CHECKPOINT_TABLE} ADD COLUMN {guard}{column} bigint"))
        .collect()
}

/// Reads a job's checkpoint: `line, rows, rejected, chunks, byte_offset, offset_line`.
pub fn select_checkpoint() -> String {
    format!(
        "SELECT line, rows, rejected, chunks, byte_offset, offset_line \
         FROM {CHECKPOINT_TABLE} WHERE job_id = $1"
    )
}

/// Writes a job's checkpoint (`$1` the job, then the columns of [`select_checkpoint`]).
pub fn upsert_checkpoint() -> String {
    format!(
        "INSERT INTO {CHECKPOINT_TABLE} \
         (job_id, line, rows, rejected, chunks, byte_offset, offset_line) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id) DO UPDATE SET \
         line = excluded.line, rows = excluded.rows, rejected = excluded.rejected, \
         chunks = excluded.chunks, byte_offset = excluded.byte_offset, \
         offset_line = excluded.offset_line"
    )
}

/// A row of [`select_checkpoint`].
pub type CheckpointRow = (i64, i64, i64, i64, Option<i64>, Option<i64>);

/// How far a chunked import got: what its committed chunks hold. Written in the same
/// transaction as each chunk's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The file's line of the last row of the last committed chunk; a retry skips the records
    /// up to it.
    pub line: u64,
    /// Rows the committed chunks loaded.
    pub rows: u64,
    /// Rows rejected up to `line` (counted against `max_errors` by a retry).
    pub rejected: u64,
    /// Chunks committed.
    pub chunks: u64,
    /// Where the stored file may be entered right after that last row (its byte offset and
    /// line), so that a retry reads on from there instead of from the start; `None` when the
    /// file cannot be entered in the middle (gzip, an encoding other than UTF-8) or the
    /// reader had no [`ResumePoint`] there.
    pub resume: Option<ResumePoint>,
}

impl Checkpoint {
    /// From the columns of [`select_checkpoint`].
    pub fn from_row((line, rows, rejected, chunks, offset, offset_line): CheckpointRow) -> Self {
        let n = |v: i64| v.max(0) as u64;
        let resume = match (offset, offset_line) {
            (Some(offset), Some(line)) if offset >= 0 && line >= 1 => Some(ResumePoint {
                offset: n(offset),
                line: n(line),
            }),
            _ => None,
        };
        Self {
            line: n(line),
            rows: n(rows),
            rejected: n(rejected),
            chunks: n(chunks),
            resume,
        }
    }

    /// The values bound after the job's id in [`upsert_checkpoint`].
    pub fn binds(&self) -> ([i64; 4], [Option<i64>; 2]) {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let counts = [n(self.line), n(self.rows), n(self.rejected), n(self.chunks)];
        let resume = [
            self.resume.map(|point| n(point.offset)),
            self.resume.map(|point| n(point.line)),
        ];
        (counts, resume)
    }
}

/// Ends a load of `loaded` rows (of which the database refused `refused`) in `tx`, the same on
/// every database: a chunk writes its checkpoint and commits; the whole file, or the last chunk,
/// also writes the job's row in [`LOG_TABLE`]. Returns `loaded`.
pub async fn settle<DB>(
    mut tx: sqlx::Transaction<'_, DB>,
    job: &str,
    commit: &Commit,
    loaded: u64,
    refused: u64,
) -> Result<u64, LoadError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut logged = loaded;
    if let Some(end) = commit.finish(loaded, refused)? {
        let ([line, rows, rejected, chunks], [offset, offset_line]) = end.checkpoint.binds();
        sqlx::query(AssertSqlSafe(upsert_checkpoint()))
            .bind(job)
            .bind(line)
            .bind(rows)
            .bind(rejected)
            .bind(chunks)
            .bind(offset)
            .bind(offset_line)
            .execute(&mut *tx)
            .await?;
        logged = end.checkpoint.rows;
        if !end.last {
            tx.commit().await?;
            return Ok(loaded);
        }
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {LOG_TABLE} (job_id, rows) VALUES ($1, $2)"
    )))
    .bind(job)
    .bind(i64::try_from(logged).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(loaded)
}

/// How a load commits.
#[derive(Debug, Clone)]
pub enum Commit {
    /// The whole file in one transaction, with the job's row in [`LOG_TABLE`].
    Whole,
    /// One chunk of a chunked import, with its checkpoint; the last chunk also writes the
    /// job's row in [`LOG_TABLE`].
    Chunk(Arc<Mutex<ChunkEnd>>),
}

/// What the reading side knows of a chunk by the time the loader sees its end; the loader
/// adds its own counts and writes it as the chunk's checkpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkEnd {
    /// Before the loader: the checkpoint before this chunk with `line` and the validator's
    /// rejects of the chunk added. After a commit: the chunk's checkpoint.
    pub checkpoint: Checkpoint,
    /// Whether the chunk ends the file.
    pub last: bool,
    /// Rows the validator passed in the chunk (an empty last chunk is not counted).
    pub rows: u64,
}

impl Commit {
    /// The checkpoint to write after loading `loaded` rows of which the database refused
    /// `refused`, and whether to write the job's log row too; `None` for [`Commit::Whole`].
    pub fn finish(&self, loaded: u64, refused: u64) -> Result<Option<ChunkEnd>, LoadError> {
        let Self::Chunk(end) = self else {
            return Ok(None);
        };
        let mut end = end
            .lock()
            .map_err(|_| LoadError::Internal("a chunk's checkpoint was poisoned".into()))?;
        end.checkpoint.rows += loaded;
        end.checkpoint.rejected += refused;
        if end.rows > 0 {
            end.checkpoint.chunks += 1;
        }
        Ok(Some(*end))
    }
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRow {
    /// The row's line in the file.
    pub line: u64,
    /// Where the row's encoding ends in [`Batch::data`]; it starts where the previous ends.
    pub end: usize,
    /// Where the row's fields end in [`Batch::raw`]; they start where the previous end.
    pub raw_end: usize,
}

/// Validated rows, encoded by the loader's own [`RowEncoder`], with the file's own fields of
/// each row (reported as they were should the database refuse the row). Both are kept in one
/// buffer each, so a batch is a handful of allocations whatever its number of rows.
#[derive(Debug, Default)]
pub struct Batch {
    /// The rows' encodings, back to back.
    pub data: Vec<u8>,
    /// The rows' fields, back to back, as [`push_fields`] writes them.
    pub raw: Vec<u8>,
    pub rows: Vec<BatchRow>,
    /// Rows the validator rejected since the previous batch (a chunked import's checkpoint
    /// counts them with the chunk they precede).
    pub rejected: u64,
    /// Whether this batch ends a chunk of a chunked import.
    pub chunk_end: bool,
    /// Where the file may be entered again right after the batch's last row (see
    /// [`Checkpoint::resume`]).
    pub resume: Option<ResumePoint>,
}

/// One row of a batch, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub line: u64,
    /// The row's encoding.
    pub data: &'a [u8],
    /// The row's fields, as [`push_fields`] wrote them.
    pub raw: &'a [u8],
}

impl RowRef<'_> {
    /// The file's own fields of the row.
    pub fn fields(&self) -> Fields {
        fields(self.raw)
    }
}

impl Batch {
    /// Each row with its encoding and fields.
    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> {
        let (mut start, mut raw_start) = (0, 0);
        self.rows.iter().map(move |row| {
            let item = RowRef {
                line: row.line,
                data: self.data.get(start..row.end).unwrap_or_default(),
                raw: self.raw.get(raw_start..row.raw_end).unwrap_or_default(),
            };
            (start, raw_start) = (row.end, row.raw_end);
            item
        })
    }
}

/// The length [`push_fields`] writes for a quoted empty field (`""`), which no field's real
/// length reaches: records are capped far below 4 GiB.
const QUOTED_EMPTY: u32 = u32::MAX;

/// Appends a record's fields to `raw`: their count, each length (`u32`, little-endian;
/// [`QUOTED_EMPTY`] for a quoted empty field), then their bytes.
pub fn push_fields(raw: &mut Vec<u8>, fields: &Fields) {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX - 1).min(u32::MAX - 1);
    raw.extend_from_slice(&len(fields.len()).to_le_bytes());
    for (index, field) in fields.iter().enumerate() {
        let length = match fields.is_quoted_empty(index) {
            true => QUOTED_EMPTY,
            false => len(field.len()),
        };
        raw.extend_from_slice(&length.to_le_bytes());
    }
    for field in fields.iter() {
        raw.extend_from_slice(field);
    }
}

/// The fields [`push_fields`] wrote (as many as can be read back).
pub fn fields(raw: &[u8]) -> Fields {
    let word = |at: usize| {
        raw.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let count = word(0) as usize;
    let mut start = 4 + 4 * count;
    let mut all = Fields::default();
    for i in 0..count {
        let length = word(4 + 4 * i);
        let quoted_empty = length == QUOTED_EMPTY;
        let end = start + if quoted_empty { 0 } else { length as usize };
        all.push(raw.get(start..end).unwrap_or_default(), quoted_empty);
        start = end;
    }
    all
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
    /// A table to create first, in the load's transaction (a chunked import: in its first
    /// chunk's).
    pub create: Option<create::NewTable>,
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

/// What the reader sends the loader: a batch, the end of the file (`Ok(None)`), or why it
/// stopped. A channel that closes without either is a reader that did not finish: the loader
/// rolls back, it never takes a closed channel for the end of the file.
pub type LoadMessage = Result<Option<Batch>, LoadError>;
/// The sending end of the validator → loader channel.
pub type LoadSender = mpsc::Sender<LoadMessage>;
/// The receiving end of the validator → loader channel.
pub type LoadReceiver = mpsc::Receiver<LoadMessage>;

/// A channel of the standard size.
pub fn channel() -> (LoadSender, LoadReceiver) {
    mpsc::channel(CHANNEL_BATCHES)
}

/// A target database, seen from an import.
#[async_trait::async_trait]
pub trait Loader: Send {
    /// Rows a previous attempt of `job` already committed, if it did.
    async fn already_loaded(&mut self, job: &str) -> Result<Option<u64>, LoadError>;

    /// The last checkpoint of chunked import `job`, if a chunk of it was committed.
    async fn checkpoint(&mut self, job: &str) -> Result<Option<Checkpoint>, LoadError>;

    /// The encoder the reader uses for this loader's batches.
    fn encoder(&self) -> EncoderFactory;

    /// Loads every batch in one transaction and commits it with the job's log row (or, for a
    /// chunk, with its checkpoint, see [`Commit`]); returns the rows loaded. Rows the database
    /// refuses go to `rejects` (which counts them against `max_errors`); the others load
    /// exactly once. Rolls back when `stop` fires, the reader sends an error or too many rows
    /// are rejected.
    async fn load(
        &mut self,
        plan: &LoadPlan,
        batches: LoadReceiver,
        rejects: &Rejects,
        stop: &CancellationToken,
        commit: &Commit,
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
pub fn quoted_list(names: &[impl AsRef<str>]) -> String {
    names
        .iter()
        .map(|c| schema::quote_ident(c.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits for the next batch (`None` at the end of the file) unless `stop` fires first.
async fn next_batch(
    batches: &mut LoadReceiver,
    stop: &CancellationToken,
) -> Result<Option<Batch>, LoadError> {
    let next = tokio::select! {
        next = batches.recv() => next,
        () = stop.cancelled() => return Err(LoadError::Stopped),
    };
    match next {
        Some(message) => message,
        None => Err(LoadError::Internal(
            "the reader ended without finishing the file".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_back_from_a_batch_with_nulls_and_quoted_empties_told_apart() {
        let mut written = Fields::default();
        written.push(b"a", false);
        written.push(b"", false);
        written.push(b"", true);
        written.push("é".as_bytes(), false);
        let mut raw = Vec::new();
        push_fields(&mut raw, &written);
        let read = fields(&raw);
        assert_eq!(read, written);
        assert!(read.is_null(1) && read.is_quoted_empty(2));
    }

    #[test]
    fn a_checkpoint_table_of_an_earlier_version_gets_only_the_columns_it_lacks() {
        let old: Vec<String> = ["job_id", "line", "rows", "rejected", "chunks"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            checkpoint_upgrades(&old, true),
            [
                "ALTER TABLE ferry_import_checkpoint ADD COLUMN IF NOT EXISTS byte_offset bigint",
                "ALTER TABLE ferry_import_checkpoint ADD COLUMN IF NOT EXISTS offset_line bigint",
            ]
        );
        let half = [old.clone(), vec!["byte_offset".to_owned()]].concat();
        assert_eq!(
            checkpoint_upgrades(&half, false),
            ["ALTER TABLE ferry_import_checkpoint ADD COLUMN offset_line bigint"]
        );
        let new = [half, vec!["offset_line".to_owned()]].concat();
        assert!(checkpoint_upgrades(&new, true).is_empty());
    }

    #[test]
    fn a_checkpoint_keeps_its_resume_point_through_its_row() {
        let resume = Some(ResumePoint {
            offset: 1_048_590,
            line: 50_002,
        });
        let checkpoint = Checkpoint {
            line: 50_001,
            rows: 50_000,
            rejected: 3,
            chunks: 1,
            resume,
        };
        let ([line, rows, rejected, chunks], [offset, offset_line]) = checkpoint.binds();
        let row = (line, rows, rejected, chunks, offset, offset_line);
        assert_eq!(Checkpoint::from_row(row), checkpoint);
        // Written by an earlier version, or with no resume point: lines are skipped instead.
        let without = Checkpoint::from_row((line, rows, rejected, chunks, None, None));
        assert_eq!(without.resume, None);
        assert_eq!(
            Checkpoint::from_row((1, 1, 0, 1, Some(-1), Some(2))).resume,
            None
        );
    }
}
