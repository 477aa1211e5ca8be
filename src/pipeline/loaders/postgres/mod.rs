//! Loading into PostgreSQL, in one transaction, with `COPY … FROM STDIN (FORMAT binary)` (text
//! COPY when a column has a type the binary encoder does not know).
//!
//! **append** copies straight into the table, in chunks, each inside a savepoint. A chunk grows
//! with what was loaded before it (at least [`MIN_CHUNK_BYTES`], a sixth of what came before),
//! so that a transaction never holds more than [`MAX_SAVEPOINTS`] released savepoints:
//! PostgreSQL slows down once a transaction has more than 64 subtransactions that wrote. While a
//! chunk is copied its rows also go to a [`spill`] file on local disk. A clean chunk is
//! released and forgotten; a chunk the database refuses (a constraint, which the validator
//! cannot foresee) is rolled back to its savepoint and loaded again, from the spill, into a
//! temporary table, where set queries find the bad rows ([`violations`]); those are rejected
//! with their line, and the others copied from the spill into the table, in file order. That
//! temporary table (`ferry_keys`) holds only the line and the columns the constraints read (keys,
//! foreign keys, CHECKs, NOT NULL), so a refused chunk costs a narrow copy, the queries and the
//! same binary COPY a clean chunk gets. (Where the constraints read a column the file does not
//! fill, or COPY is text, the whole rows go to `ferry_rows` and the good ones in with one
//! `INSERT … SELECT`.) Once a chunk was refused the next ones go to the temporary table first,
//! until one comes out clean; meanwhile each chunk is received into a second spill while the one
//! before it is settled, so that the reader's parsing and the database's work overlap as they do
//! for clean chunks.
//!
//! **replace** and **upsert** copy the whole file into that temporary table, find the bad rows
//! the same way, and then, in the same transaction, swap the rows in (`TRUNCATE` + `INSERT`) or
//! merge them (`INSERT … ON CONFLICT (key) DO UPDATE`, the last row of a key winning), so that
//! readers of the table are locked out only for the swap, not for the whole load.
//!
//! Whatever the set queries do not foresee (an exclusion constraint, a trigger, a key another
//! session inserted meanwhile) makes the final copy or insert fail (a refused copy of the good
//! rows is rolled back to its savepoint and the chunk goes the `ferry_rows` way); the loader then
//! looks for the first
//! row that makes it fail (a binary search over line numbers, each probe rolled back), rejects
//! it with the database's message, and inserts again.
//!
//! The job's id is written to `ferry_import_log` in the same transaction: a retry after a commit
//! whose success was never recorded finds it there and does not load the file twice.

pub mod binary;
pub mod format;
pub mod probe;
mod settle;
pub mod spill;
pub mod text;
pub mod violations;

use super::{
    Batch, CHECKPOINT_TABLE, Checkpoint, CheckpointRow, Commit, EncoderFactory, LOG_TABLE,
    LoadError, LoadPlan, LoadReceiver, Loader, checkpoint_upgrades, create_checkpoints, next_batch,
    select_checkpoint,
};
use crate::domain::import::Mode;
use crate::pipeline::rejects::Rejects;

use spill::Spill;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use format::Format;
use tokio_util::sync::CancellationToken;

/// The smallest chunk of an `append`, in bytes of encoded rows.
pub const MIN_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Released savepoints (subtransactions that wrote) allowed in one load; the last chunk takes
/// whatever is left.
pub const MAX_SAVEPOINTS: u32 = 56;

/// Loads into one PostgreSQL database.
pub struct PgLoader {
    conn: PgConnection,
}

impl PgLoader {
    /// A loader over `conn`.
    pub fn new(conn: PgConnection) -> Self {
        Self { conn }
    }
}

#[async_trait::async_trait]
impl Loader for PgLoader {
    async fn already_loaded(&mut self, job: &str) -> Result<Option<u64>, LoadError> {
        ensure_log(&mut self.conn).await?;
        let rows: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT rows FROM {LOG_TABLE} WHERE job_id = $1"
        )))
        .bind(job)
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(rows.map(|r| r.max(0) as u64))
    }

    async fn checkpoint(&mut self, job: &str) -> Result<Option<Checkpoint>, LoadError> {
        create_once(&mut self.conn, create_checkpoints()).await?;
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
        )
        .bind(CHECKPOINT_TABLE)
        .fetch_all(&mut self.conn)
        .await?;
        for upgrade in checkpoint_upgrades(&present, true) {
            sqlx::raw_sql(AssertSqlSafe(upgrade))
                .execute(&mut self.conn)
                .await?;
        }
        let row: Option<CheckpointRow> = sqlx::query_as(AssertSqlSafe(select_checkpoint()))
            .bind(job)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(row.map(Checkpoint::from_row))
    }

    fn encoder(&self) -> EncoderFactory {
        |types| match Format::of(types) {
            Format::Binary => Box::new(binary::BinaryEncoder::new(types)),
            Format::Text => Box::new(text::TextEncoder),
        }
    }

    async fn load(
        &mut self,
        plan: &LoadPlan,
        mut batches: LoadReceiver,
        rejects: &Rejects,
        stop: &CancellationToken,
        commit: &Commit,
    ) -> Result<u64, LoadError> {
        let mut tx = self.conn.begin().await?;
        if let Some(new) = &plan.create {
            let create = new.statement(&plan.table.qualified(), true);
            sqlx::raw_sql(AssertSqlSafe(create))
                .execute(&mut *tx)
                .await
                .map_err(super::create::creation_failed)?;
        }
        let mut load = Load {
            plan,
            format: Format::of(&plan.types),
            spill: Spill::create().await?,
            rejects,
            ended: false,
            scratch: None,
        };
        let loaded = match plan.mode {
            Mode::Append => load.append(&mut tx, &mut batches, stop).await?,
            Mode::Replace | Mode::Upsert => load.staged(&mut tx, &mut batches, stop).await?,
        };
        crate::pipeline::loaders::settle(tx, &plan.job, commit, loaded, rejects.own_count()).await
    }
}

async fn ensure_log(conn: &mut PgConnection) -> Result<(), LoadError> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {LOG_TABLE} (job_id text PRIMARY KEY, rows bigint NOT NULL, \
         finished_at timestamptz NOT NULL DEFAULT now())"
    );
    create_once(conn, create).await
}

/// Runs a `CREATE TABLE IF NOT EXISTS`.
async fn create_once(conn: &mut PgConnection, create: String) -> Result<(), LoadError> {
    match sqlx::raw_sql(AssertSqlSafe(create))
        .execute(&mut *conn)
        .await
    {
        // Two first imports at once may race to create it; one wins, which is all we need.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
        other => other.map(drop).map_err(Into::into),
    }
}

/// How a chunk's COPY ended.
enum Copied {
    /// Every row went in.
    Clean(u64),
    /// The database refused a row; the transaction waits for a rollback to the savepoint.
    Refused(sqlx::Error),
}

/// One load in progress.
struct Load<'a> {
    plan: &'a LoadPlan,
    format: Format,
    spill: Spill,
    rejects: &'a Rejects,
    /// Whether the reader sent the end of the file.
    ended: bool,
    /// The temporary tables and the constraints, once a chunk needed them.
    scratch: Option<settle::Scratch>,
}

impl Load<'_> {
    /// The next batch; `None` at the end of the file, and after it.
    async fn next(
        &mut self,
        batches: &mut LoadReceiver,
        stop: &CancellationToken,
    ) -> Result<Option<Batch>, LoadError> {
        next_of(&mut self.ended, batches, stop).await
    }

    async fn append(
        &mut self,
        conn: &mut PgConnection,
        batches: &mut LoadReceiver,
        stop: &CancellationToken,
    ) -> Result<u64, LoadError> {
        let (mut loaded, mut bytes, mut chunks) = (0u64, 0usize, 0u32);
        let table = self.plan.table.qualified();
        // Once a chunk was refused, `held` says the spill holds a received chunk waiting to be
        // settled; while the last settled chunk was dirty, the next one is received into
        // `ahead` as this one is settled, so the reader and the database keep working at once.
        let (mut held, mut dirty) = (false, false);
        let mut ahead: Option<Spill> = None;
        loop {
            let limit = chunk_limit(bytes, chunks);
            if held {
                let (good, bad) = if dirty {
                    let next = match &mut ahead {
                        Some(spill) => spill,
                        None => ahead.insert(Spill::create().await?),
                    };
                    let mut ended = self.ended;
                    let (settled, size) = tokio::try_join!(
                        self.settle_chunk(conn),
                        receive(next, &mut ended, batches, limit, stop)
                    )?;
                    self.ended = ended;
                    held = next.rows > 0;
                    if held {
                        std::mem::swap(&mut self.spill, next);
                        bytes += size;
                        chunks += 1;
                    }
                    settled
                } else {
                    held = false;
                    self.settle_chunk(conn).await?
                };
                loaded += good;
                dirty = bad > 0;
                continue;
            }
            let Some(first) = self.next(batches, stop).await? else {
                break;
            };
            self.spill.clear().await?;
            execute(conn, "SAVEPOINT ferry_chunk").await?;
            let (copied, size) = self
                .copy_chunk(conn, &table, first, batches, limit, stop)
                .await?;
            bytes += size;
            chunks += 1;
            match copied {
                Copied::Clean(rows) => {
                    execute(conn, "RELEASE SAVEPOINT ferry_chunk").await?;
                    loaded += rows;
                }
                Copied::Refused(error) => {
                    tracing::info!(error = %error, "a chunk was refused; finding its bad rows");
                    execute(conn, "ROLLBACK TO SAVEPOINT ferry_chunk").await?;
                    execute(conn, "RELEASE SAVEPOINT ferry_chunk").await?;
                    (held, dirty) = (true, true);
                }
            }
        }
        Ok(loaded)
    }

    /// `replace` and `upsert`: the whole file into `ferry_rows`, then swapped in or merged.
    async fn staged(
        &mut self,
        conn: &mut PgConnection,
        batches: &mut LoadReceiver,
        stop: &CancellationToken,
    ) -> Result<u64, LoadError> {
        self.scratch(conn).await?;
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY ferry_rows (ferry_line, {}) FROM STDIN{}",
                self.plan.column_list(),
                self.format.options()
            ))
            .await?;
        copy.send(self.format.header()).await?;
        loop {
            let batch = match self.next(batches, stop).await {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(error) => {
                    let _ = copy.abort("the import stopped").await;
                    return Err(error);
                }
            };
            copy.send(self.format.with_lines(&batch)).await?;
            self.spill.write(&batch).await?;
        }
        copy.send(self.format.trailer()).await?;
        copy.finish().await?;
        let replace = self.plan.mode == Mode::Replace;
        let (good, _) = self.settle(conn, !replace).await?;
        Ok(good)
    }

    /// Copies one chunk into the table (and the spill); returns how it went and its size.
    async fn copy_chunk(
        &mut self,
        conn: &mut PgConnection,
        table: &str,
        first: Batch,
        batches: &mut LoadReceiver,
        limit: usize,
        stop: &CancellationToken,
    ) -> Result<(Copied, usize), LoadError> {
        let statement = format!(
            "COPY {table} ({}) FROM STDIN{}",
            self.plan.column_list(),
            self.format.options()
        );
        let mut copy = conn.copy_in_raw(&statement).await?;
        copy.send(self.format.header()).await?;
        let (mut size, mut rows) = (0usize, 0u64);
        let mut next = Some(first);
        while let Some(batch) = next {
            size += batch.data.len();
            rows += batch.rows.len() as u64;
            self.spill.write(&batch).await?;
            copy.send(batch.data).await?;
            if size >= limit {
                break;
            }
            next = match self.next(batches, stop).await {
                Ok(next) => next,
                Err(error) => {
                    let _ = copy.abort("the import stopped").await;
                    return Err(error);
                }
            };
        }
        copy.send(self.format.trailer()).await?;
        Ok((finished(copy.finish().await, rows)?, size))
    }
}

/// The next batch; `None` at the end of the file (`ended` then set), and after it.
async fn next_of(
    ended: &mut bool,
    batches: &mut LoadReceiver,
    stop: &CancellationToken,
) -> Result<Option<Batch>, LoadError> {
    if *ended {
        return Ok(None);
    }
    let next = next_batch(batches, stop).await?;
    *ended = next.is_none();
    Ok(next)
}

/// Receives the next chunk, up to `limit` bytes, into `spill` (emptied first); returns its size,
/// 0 at the end of the file.
async fn receive(
    spill: &mut Spill,
    ended: &mut bool,
    batches: &mut LoadReceiver,
    limit: usize,
    stop: &CancellationToken,
) -> Result<usize, LoadError> {
    spill.clear().await?;
    let mut size = 0;
    while size < limit {
        let Some(batch) = next_of(ended, batches, stop).await? else {
            break;
        };
        size += batch.data.len();
        spill.write(&batch).await?;
    }
    Ok(size)
}

/// How a COPY of `rows` rows ended: a refused row is for the caller to handle, any other error
/// ends the load.
fn finished(result: Result<u64, sqlx::Error>, rows: u64) -> Result<Copied, LoadError> {
    match result {
        Ok(_) => Ok(Copied::Clean(rows)),
        Err(sqlx::Error::Database(e)) if row_level(e.code().as_deref()) => {
            Ok(Copied::Refused(sqlx::Error::Database(e)))
        }
        Err(other) => Err(other.into()),
    }
}

/// Errors about one row's values: integrity constraints (class 23) and data exceptions (22).
fn row_level(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("23") || c.starts_with("22"))
}

/// The size of the next chunk of an append, after `bytes` loaded in `savepoints` chunks.
fn chunk_limit(bytes: usize, savepoints: u32) -> usize {
    if savepoints + 1 >= MAX_SAVEPOINTS {
        usize::MAX
    } else {
        (bytes / 6).max(MIN_CHUNK_BYTES)
    }
}

async fn execute(conn: &mut PgConnection, sql: &str) -> Result<(), LoadError> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_grow_so_that_savepoints_stay_under_the_limit() {
        let (mut bytes, mut savepoints) = (0usize, 0u32);
        // 50 GB of rows.
        while bytes < 50_000_000_000 {
            let limit = chunk_limit(bytes, savepoints);
            bytes = bytes.saturating_add(limit);
            savepoints += 1;
        }
        assert!(savepoints <= MAX_SAVEPOINTS, "{savepoints}");
        assert_eq!(chunk_limit(0, 0), MIN_CHUNK_BYTES);
        assert_eq!(chunk_limit(600 * 1024 * 1024, 10), 100 * 1024 * 1024);
    }
}
