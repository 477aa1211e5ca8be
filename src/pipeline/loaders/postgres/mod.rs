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
//! with their line, and the others inserted, in file order, in one statement. Once a chunk was
//! refused the next ones go to the temporary table first, until one comes out clean.
//!
//! **replace** and **upsert** copy the whole file into that temporary table, find the bad rows
//! the same way, and then, in the same transaction, swap the rows in (`TRUNCATE` + `INSERT`) or
//! merge them (`INSERT … ON CONFLICT (key) DO UPDATE`, the last row of a key winning), so that
//! readers of the table are locked out only for the swap, not for the whole load.
//!
//! Whatever the set queries do not foresee (an exclusion constraint, a trigger, a key another
//! session inserted meanwhile) makes the final insert fail; the loader then looks for the first
//! row that makes it fail (a binary search over line numbers, each probe rolled back), rejects
//! it with the database's message, and inserts again.
//!
//! The job's id is written to `ferry_import_log` in the same transaction: a retry after a commit
//! whose success was never recorded finds it there and does not load the file twice.

pub mod binary;
pub mod spill;
pub mod text;
pub mod violations;

use super::{
    Batch, EncoderFactory, LOG_TABLE, LoadError, LoadPlan, LoadReceiver, Loader, next_batch,
};
use crate::domain::import::Mode;
use crate::pipeline::rejects::{Rejected, Rejects};
use crate::pipeline::validate::ColumnType;
use spill::Spill;
use sqlx::postgres::PgDatabaseError;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use violations::{Constraint, Scope};

/// The smallest chunk of an `append`, in bytes of encoded rows.
pub const MIN_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Released savepoints (subtransactions that wrote) allowed in one load; the last chunk takes
/// whatever is left.
pub const MAX_SAVEPOINTS: u32 = 56;
/// Rows that no set query foresaw, found by probing, before a load gives up.
const MAX_PROBED: usize = 100;
/// Rejects handed on at once.
const REJECTS_GROUP: usize = 256;

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
    ) -> Result<u64, LoadError> {
        let mut tx = self.conn.begin().await?;
        let mut load = Load {
            plan,
            format: Format::of(&plan.types),
            spill: Spill::create().await?,
            rejects,
            scratch: None,
        };
        let loaded = match plan.mode {
            Mode::Append => load.append(&mut tx, &mut batches, stop).await?,
            Mode::Replace | Mode::Upsert => load.staged(&mut tx, &mut batches, stop).await?,
        };
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {LOG_TABLE} (job_id, rows) VALUES ($1, $2)"
        )))
        .bind(&plan.job)
        .bind(i64::try_from(loaded).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(loaded)
    }
}

async fn ensure_log(conn: &mut PgConnection) -> Result<(), LoadError> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {LOG_TABLE} (job_id text PRIMARY KEY, rows bigint NOT NULL, \
         finished_at timestamptz NOT NULL DEFAULT now())"
    );
    match sqlx::raw_sql(AssertSqlSafe(create))
        .execute(&mut *conn)
        .await
    {
        // Two first imports at once may race to create it; one wins, which is all we need.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
        other => other.map(drop).map_err(Into::into),
    }
}

/// The COPY format of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Text,
}

impl Format {
    /// Binary when every column has a binary encoding here.
    pub fn of(types: &[ColumnType]) -> Self {
        if binary::supports(types) {
            Self::Binary
        } else {
            Self::Text
        }
    }

    fn options(self) -> &'static str {
        match self {
            Self::Binary => " (FORMAT binary)",
            Self::Text => "",
        }
    }

    fn header(self) -> &'static [u8] {
        match self {
            Self::Binary => binary::HEADER,
            Self::Text => b"",
        }
    }

    fn trailer(self) -> &'static [u8] {
        match self {
            Self::Binary => binary::TRAILER,
            Self::Text => b"",
        }
    }

    /// A batch again, each row with its line number as a first column.
    fn with_lines(self, batch: &Batch) -> Vec<u8> {
        let mut out = Vec::with_capacity(batch.data.len() + 16 * batch.rows.len());
        for (row, bytes) in batch.iter() {
            let line = i64::try_from(row.line).unwrap_or(i64::MAX);
            match self {
                Self::Binary => binary::with_leading_int8(bytes, line, &mut out),
                Self::Text => text::with_leading_int8(bytes, line, &mut out),
            }
        }
        out
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
    /// The temporary tables and the constraints, once a chunk needed them.
    scratch: Option<Vec<Constraint>>,
}

impl Load<'_> {
    async fn append(
        &mut self,
        conn: &mut PgConnection,
        batches: &mut LoadReceiver,
        stop: &CancellationToken,
    ) -> Result<u64, LoadError> {
        let (mut loaded, mut bytes, mut savepoints, mut dirty) = (0u64, 0usize, 0u32, false);
        let table = self.plan.table.qualified();
        while let Some(first) = next_batch(batches, stop).await? {
            let limit = chunk_limit(bytes, savepoints);
            self.spill.clear().await?;
            let copied = if dirty {
                bytes += self.spill_chunk(first, batches, limit, stop).await?;
                None
            } else {
                execute(conn, "SAVEPOINT ferry_chunk").await?;
                let (copied, size) = self
                    .copy_chunk(conn, &table, first, batches, limit, stop)
                    .await?;
                bytes += size;
                Some(copied)
            };
            match copied {
                Some(Copied::Clean(rows)) => {
                    execute(conn, "RELEASE SAVEPOINT ferry_chunk").await?;
                    loaded += rows;
                }
                refused => {
                    if let Some(Copied::Refused(error)) = refused {
                        tracing::info!(error = %error, "a chunk was refused; finding its bad rows");
                        execute(conn, "ROLLBACK TO SAVEPOINT ferry_chunk").await?;
                        execute(conn, "RELEASE SAVEPOINT ferry_chunk").await?;
                    }
                    self.rows_from_spill(conn).await?;
                    let (good, bad) = self.settle(conn, true).await?;
                    loaded += good;
                    dirty = bad > 0;
                }
            }
            savepoints += 1;
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
            let batch = match next_batch(batches, stop).await {
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
            next = match next_batch(batches, stop).await {
                Ok(next) => next,
                Err(error) => {
                    let _ = copy.abort("the import stopped").await;
                    return Err(error);
                }
            };
        }
        copy.send(self.format.trailer()).await?;
        match copy.finish().await {
            Ok(_) => Ok((Copied::Clean(rows), size)),
            Err(sqlx::Error::Database(e)) if row_level(e.code().as_deref()) => {
                Ok((Copied::Refused(sqlx::Error::Database(e)), size))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Takes one chunk into the spill only (the chunk goes to `ferry_rows` from there).
    async fn spill_chunk(
        &mut self,
        first: Batch,
        batches: &mut LoadReceiver,
        limit: usize,
        stop: &CancellationToken,
    ) -> Result<usize, LoadError> {
        let mut size = 0;
        let mut next = Some(first);
        while let Some(batch) = next {
            size += batch.data.len();
            self.spill.write(&batch).await?;
            if size >= limit {
                break;
            }
            next = next_batch(batches, stop).await?;
        }
        Ok(size)
    }

    /// Creates the temporary tables and reads the constraints, once per load.
    async fn scratch(&mut self, conn: &mut PgConnection) -> Result<(), LoadError> {
        if self.scratch.is_some() {
            return Ok(());
        }
        let table = self.plan.table.qualified();
        let mut sql = format!(
            "CREATE TEMP TABLE ferry_rows (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP;
             ALTER TABLE ferry_rows ADD COLUMN ferry_line bigint;
             CREATE TEMP TABLE ferry_bad (line bigint NOT NULL, reason text NOT NULL) ON COMMIT DROP;"
        );
        for column in self.not_null() {
            sql.push_str(&format!(
                "ALTER TABLE ferry_rows ALTER COLUMN {} DROP NOT NULL;",
                super::schema::quote_ident(&column)
            ));
        }
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
        self.scratch = Some(violations::catalogue(conn, &table).await?);
        Ok(())
    }

    fn not_null(&self) -> Vec<String> {
        let table = &self.plan.table;
        table
            .columns
            .iter()
            .filter(|c| !c.nullable && !c.generated)
            .map(|c| c.name.clone())
            .collect()
    }

    /// Loads the spilled chunk into a fresh `ferry_rows`.
    async fn rows_from_spill(&mut self, conn: &mut PgConnection) -> Result<(), LoadError> {
        self.scratch(conn).await?;
        execute(conn, "TRUNCATE ferry_rows, ferry_bad").await?;
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY ferry_rows (ferry_line, {}) FROM STDIN{}",
                self.plan.column_list(),
                self.format.options()
            ))
            .await?;
        copy.send(self.format.header()).await?;
        let mut reader = self.spill.reader(MIN_CHUNK_BYTES / 16).await?;
        while let Some(batch) = reader.next().await? {
            copy.send(self.format.with_lines(&batch)).await?;
        }
        copy.send(self.format.trailer()).await?;
        copy.finish().await?;
        Ok(())
    }

    /// Finds the bad rows of `ferry_rows`, inserts the others, rejects the bad ones; returns
    /// (rows inserted, rows rejected).
    async fn settle(
        &mut self,
        conn: &mut PgConnection,
        against_table: bool,
    ) -> Result<(u64, u64), LoadError> {
        execute(conn, "ANALYZE ferry_rows").await?;
        let scope = Scope {
            plan: self.plan,
            not_null: self.not_null(),
            against_table,
        };
        let constraints = self.scratch.clone().unwrap_or_default();
        violations::find(conn, &scope, &constraints).await?;
        if self.plan.mode == Mode::Replace {
            execute(conn, &format!("TRUNCATE {}", self.plan.table.qualified())).await?;
        }
        self.insert_good(conn).await?;
        let bad: HashMap<u64, String> = sqlx::query_as::<_, (i64, String)>(
            "SELECT line, string_agg(reason, '; ' ORDER BY reason) FROM ferry_bad GROUP BY line",
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(line, reason)| (line.max(0) as u64, reason))
        .collect();
        if !bad.is_empty() {
            self.reject(&bad).await?;
        }
        let count = bad.len() as u64;
        Ok((self.spill.rows.saturating_sub(count), count))
    }

    /// Sends the spilled rows whose lines are in `bad` to the rejects.
    async fn reject(&mut self, bad: &HashMap<u64, String>) -> Result<(), LoadError> {
        let mut reader = self.spill.reader(MIN_CHUNK_BYTES / 16).await?;
        let mut group = Vec::new();
        while let Some(batch) = reader.next().await? {
            for row in batch.rows {
                if let Some(reason) = bad.get(&row.line) {
                    group.push(Rejected {
                        line: row.line,
                        fields: row.fields,
                        raw: None,
                        errors: reason.clone(),
                    });
                }
                if group.len() >= REJECTS_GROUP {
                    self.rejects.send(std::mem::take(&mut group)).await?;
                }
            }
        }
        self.rejects.send(group).await
    }

    /// Inserts the rows of `ferry_rows` not in `ferry_bad`, in file order; when that fails,
    /// finds the first row that makes it fail, marks it bad and tries again.
    async fn insert_good(&mut self, conn: &mut PgConnection) -> Result<(), LoadError> {
        let statement = self.good_rows_statement();
        for _ in 0..=MAX_PROBED {
            execute(conn, "SAVEPOINT ferry_insert").await?;
            let error = match insert_until(conn, &statement, i64::MAX).await {
                Ok(()) => return execute(conn, "RELEASE SAVEPOINT ferry_insert").await,
                Err(error) => error,
            };
            execute(conn, "ROLLBACK TO SAVEPOINT ferry_insert").await?;
            execute(conn, "RELEASE SAVEPOINT ferry_insert").await?;
            let (line, reason) = first_failing(conn, &statement, error).await?;
            tracing::info!(line, reason, "a row no set query foresaw was refused");
            sqlx::query("INSERT INTO ferry_bad (line, reason) VALUES ($1, $2)")
                .bind(line)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
        }
        Err(LoadError::Internal(format!(
            "more than {MAX_PROBED} rows were refused for reasons Ferry could not find in advance"
        )))
    }

    /// `INSERT … SELECT` of the good rows up to line `$1`.
    fn good_rows_statement(&self) -> String {
        let plan = self.plan;
        let columns = plan.column_list();
        let selected = plan
            .columns
            .iter()
            .map(|c| format!("r.{}", super::schema::quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = format!(
            "FROM ferry_rows r WHERE r.ferry_line <= $1 AND {}",
            "NOT EXISTS (SELECT 1 FROM ferry_bad b WHERE b.line = r.ferry_line)"
        );
        let table = plan.table.qualified();
        if plan.mode == Mode::Upsert {
            let key = plan
                .key
                .iter()
                .map(|c| format!("r.{}", super::schema::quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {selected} {filter} \
                 ORDER BY {key}, r.ferry_line DESC {}",
                plan.on_conflict()
            )
        } else {
            format!(
                "INSERT INTO {table} ({columns}) SELECT {selected} {filter} ORDER BY r.ferry_line"
            )
        }
    }
}

/// Runs the good-rows insert up to line `until`; a row-level refusal comes back as the
/// database's error, anything else as a load error.
async fn insert_until(
    conn: &mut PgConnection,
    statement: &str,
    until: i64,
) -> Result<(), RowError> {
    match sqlx::query(AssertSqlSafe(statement.to_owned()))
        .bind(until)
        .execute(&mut *conn)
        .await
    {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if row_level(e.code().as_deref()) => Err(RowError::Refused(
            refusal(e.try_downcast_ref::<PgDatabaseError>(), e.message()),
        )),
        Err(other) => Err(RowError::Load(other.into())),
    }
}

/// Why an insert failed.
enum RowError {
    /// The database refused a row: the reason to report.
    Refused(String),
    /// Anything else.
    Load(LoadError),
}

/// Finds the smallest line up to which the insert fails (each probe rolled back).
async fn first_failing(
    conn: &mut PgConnection,
    statement: &str,
    error: RowError,
) -> Result<(i64, String), LoadError> {
    let mut reason = match error {
        RowError::Refused(reason) => reason,
        RowError::Load(error) => return Err(error),
    };
    let (low, high): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT min(ferry_line), max(ferry_line) FROM ferry_rows r
         WHERE NOT EXISTS (SELECT 1 FROM ferry_bad b WHERE b.line = r.ferry_line)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let (Some(mut low), Some(mut high)) = (low, high) else {
        return Err(LoadError::Internal("an insert of no rows failed".into()));
    };
    while low < high {
        let middle = low + (high - low) / 2;
        execute(conn, "SAVEPOINT ferry_probe").await?;
        let probe = insert_until(conn, statement, middle).await;
        execute(conn, "ROLLBACK TO SAVEPOINT ferry_probe").await?;
        execute(conn, "RELEASE SAVEPOINT ferry_probe").await?;
        match probe {
            Ok(()) => low = middle + 1,
            Err(RowError::Refused(why)) => {
                reason = why;
                high = middle;
            }
            Err(RowError::Load(error)) => return Err(error),
        }
    }
    Ok((high, reason))
}

/// `constraint name: message (detail)` from a database error.
fn refusal(error: Option<&PgDatabaseError>, message: &str) -> String {
    let Some(error) = error else {
        return message.to_owned();
    };
    let name = error.constraint().unwrap_or("unnamed");
    match error.detail() {
        Some(detail) => format!(
            "constraint {name}: {} ({})",
            error.message(),
            detail.trim_end_matches('.')
        ),
        None => format!("constraint {name}: {}", error.message()),
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
