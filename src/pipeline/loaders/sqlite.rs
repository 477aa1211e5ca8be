//! Loading into SQLite: prepared `INSERT`s of validated values, one row at a time, in one
//! transaction. `replace` deletes the table's rows in the same transaction; `upsert` uses
//! `ON CONFLICT … DO UPDATE`, so a key repeated in the file is applied in file order. The job's
//! id goes into `ferry_import_log` with the rows.
//!
//! A row SQLite refuses (`UNIQUE`, `PRIMARY KEY`, `CHECK`, `NOT NULL`, `FOREIGN KEY`) is a
//! per-row reject: a failed statement is undone by SQLite on its own (the `ABORT` conflict
//! resolution) and the transaction goes on. Foreign keys are enforced for the load
//! (`PRAGMA foreign_keys = ON`, which SQLite leaves off by default).
//!
//! Batches are encoded for this loader as length-prefixed values (see [`ValueEncoder`]);
//! SQLite stores booleans as 1 and 0.

use super::{
    Batch, CHECKPOINT_TABLE, Checkpoint, CheckpointRow, Commit, EncoderFactory, LOG_TABLE,
    LoadError, LoadPlan, LoadReceiver, Loader, RowEncoder, checkpoint_upgrades, create_checkpoints,
    next_batch, select_checkpoint,
};
use crate::domain::import::Mode;
use crate::pipeline::rejects::{Rejected, Rejects};
use crate::pipeline::validate::ColumnType;
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};
use std::borrow::Cow;
use tokio_util::sync::CancellationToken;

/// The length written for a NULL value.
const NULL: u32 = u32::MAX;

/// Loads into one SQLite database.
pub struct SqliteLoader {
    conn: SqliteConnection,
}

impl SqliteLoader {
    /// A loader over `conn`.
    pub fn new(conn: SqliteConnection) -> Self {
        Self { conn }
    }
}

#[async_trait::async_trait]
impl Loader for SqliteLoader {
    async fn already_loaded(&mut self, job: &str) -> Result<Option<u64>, LoadError> {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {LOG_TABLE} (job_id TEXT PRIMARY KEY, \
             rows INTEGER NOT NULL, finished_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )))
        .execute(&mut self.conn)
        .await?;
        let rows: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT rows FROM {LOG_TABLE} WHERE job_id = $1"
        )))
        .bind(job)
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(rows.map(|r| r.max(0) as u64))
    }

    async fn checkpoint(&mut self, job: &str) -> Result<Option<Checkpoint>, LoadError> {
        sqlx::raw_sql(AssertSqlSafe(create_checkpoints()))
            .execute(&mut self.conn)
            .await?;
        let present: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
            .bind(CHECKPOINT_TABLE)
            .fetch_all(&mut self.conn)
            .await?;
        for upgrade in checkpoint_upgrades(&present, false) {
            match sqlx::raw_sql(AssertSqlSafe(upgrade))
                .execute(&mut self.conn)
                .await
            {
                // Another import added it first.
                Err(sqlx::Error::Database(e)) if e.message().contains("duplicate column") => {}
                other => {
                    other?;
                }
            }
        }
        let row: Option<CheckpointRow> = sqlx::query_as(AssertSqlSafe(select_checkpoint()))
            .bind(job)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(row.map(Checkpoint::from_row))
    }

    fn encoder(&self) -> EncoderFactory {
        |types| Box::new(ValueEncoder::new(types))
    }

    async fn load(
        &mut self,
        plan: &LoadPlan,
        mut batches: LoadReceiver,
        rejects: &Rejects,
        stop: &CancellationToken,
        commit: &Commit,
    ) -> Result<u64, LoadError> {
        // Only outside a transaction does this pragma take effect.
        sqlx::raw_sql("PRAGMA foreign_keys = ON")
            .execute(&mut self.conn)
            .await?;
        let mut tx = self.conn.begin().await?;
        if let Some(new) = &plan.create {
            let create = new.statement(&plan.table.qualified(), false);
            sqlx::raw_sql(AssertSqlSafe(create))
                .execute(&mut *tx)
                .await
                .map_err(super::create::creation_failed)?;
        }
        if plan.mode == Mode::Replace {
            let delete = format!("DELETE FROM {}", plan.table.qualified());
            sqlx::raw_sql(AssertSqlSafe(delete))
                .execute(&mut *tx)
                .await?;
        }
        let insert = insert_statement(plan);
        let mut loaded = 0u64;
        while let Some(batch) = next_batch(&mut batches, stop).await? {
            loaded += insert_batch(&mut tx, &insert, &batch, rejects).await?;
        }
        super::settle(tx, &plan.job, commit, loaded, rejects.own_count()).await
    }
}

/// Inserts a batch row by row; a row SQLite refuses for a constraint is rejected.
async fn insert_batch(
    conn: &mut SqliteConnection,
    insert: &str,
    batch: &Batch,
    rejects: &Rejects,
) -> Result<u64, LoadError> {
    let mut loaded = 0;
    let mut refused = Vec::new();
    for row in batch.iter() {
        let mut query = sqlx::query(AssertSqlSafe(insert.to_owned()));
        for value in decode(row.data)? {
            query = query.bind(value);
        }
        match query.execute(&mut *conn).await {
            Ok(_) => loaded += 1,
            Err(sqlx::Error::Database(e)) if is_constraint(e.code().as_deref()) => {
                refused.push(Rejected {
                    line: row.line,
                    fields: row.fields(),
                    raw: None,
                    errors: refusal(e.message()),
                });
            }
            Err(other) => return Err(other.into()),
        }
    }
    rejects.send(refused).await?;
    Ok(loaded)
}

/// `constraint what: message`, naming what SQLite names: the columns of a key or NOT NULL, a
/// CHECK's name or expression, or the kind (`FOREIGN KEY`), which is all SQLite tells.
fn refusal(message: &str) -> String {
    match message.split_once(" constraint failed: ") {
        Some((_, what)) => format!("constraint {what}: {message}"),
        None => {
            let kind = message
                .strip_suffix(" constraint failed")
                .unwrap_or("unnamed");
            format!("constraint {kind}: {message}")
        }
    }
}

/// SQLITE_CONSTRAINT and its extended codes (the low byte is 19).
fn is_constraint(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| c & 0xff == 19)
}

fn insert_statement(plan: &LoadPlan) -> String {
    let placeholders = (1..=plan.columns.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({placeholders})",
        plan.table.qualified(),
        plan.column_list()
    );
    if plan.mode == Mode::Upsert {
        sql.push(' ');
        sql.push_str(&plan.on_conflict());
    }
    sql
}

/// Encodes a row as its values one after the other, each a little-endian `u32` length (or
/// `u32::MAX` for NULL) and its UTF-8 bytes. Booleans become `1` and `0`.
pub struct ValueEncoder {
    boolean: Vec<bool>,
}

impl ValueEncoder {
    /// An encoder for columns of these types.
    pub fn new(types: &[ColumnType]) -> Self {
        Self {
            boolean: types.iter().map(|t| *t == ColumnType::Boolean).collect(),
        }
    }
}

impl RowEncoder for ValueEncoder {
    fn encode(&mut self, values: &[Option<Cow<'_, str>>], out: &mut Vec<u8>) -> Result<(), String> {
        for (value, boolean) in values.iter().zip(&self.boolean) {
            let text = match value.as_deref() {
                None => {
                    out.extend_from_slice(&NULL.to_le_bytes());
                    continue;
                }
                Some(text) if *boolean => match text {
                    "true" => "1",
                    _ => "0",
                },
                Some(text) => text,
            };
            let len = u32::try_from(text.len())
                .ok()
                .filter(|&n| n != NULL)
                .ok_or("a value longer than 4 GiB")?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Ok(())
    }
}

/// The values of one row encoded by [`ValueEncoder`].
fn decode(mut bytes: &[u8]) -> Result<Vec<Option<&str>>, LoadError> {
    let broken = || LoadError::Internal("a batch row is not in the SQLite loader's format".into());
    let mut values = Vec::new();
    while let Some((head, rest)) = bytes.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*head);
        if len == NULL {
            values.push(None);
            bytes = rest;
            continue;
        }
        let (text, rest) = rest.split_at_checked(len as usize).ok_or_else(broken)?;
        values.push(Some(std::str::from_utf8(text).map_err(|_| broken())?));
        bytes = rest;
    }
    if bytes.is_empty() {
        Ok(values)
    } else {
        Err(broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_nulls_and_booleans_as_numbers() {
        let mut encoder =
            ValueEncoder::new(&[ColumnType::Text, ColumnType::Boolean, ColumnType::Text]);
        let mut out = Vec::new();
        encoder
            .encode(&[Some("a,b".into()), Some("true".into()), None], &mut out)
            .unwrap();
        assert_eq!(decode(&out).unwrap(), [Some("a,b"), Some("1"), None]);
        assert!(decode(&out[..out.len() - 2]).is_err());
    }

    #[test]
    fn refusals_name_what_sqlite_names() {
        assert_eq!(
            refusal("UNIQUE constraint failed: people.id"),
            "constraint people.id: UNIQUE constraint failed: people.id"
        );
        assert_eq!(
            refusal("FOREIGN KEY constraint failed"),
            "constraint FOREIGN KEY: FOREIGN KEY constraint failed"
        );
    }
}
