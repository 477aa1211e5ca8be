//! Loading into SQLite: prepared `INSERT`s of validated values, in one transaction. `replace`
//! deletes the table's rows in the same transaction; `upsert` uses `ON CONFLICT … DO UPDATE`.
//! As with PostgreSQL, the job's id goes into `ferry_import_log` with the rows.

use super::{Batch, LoadError, LoadPlan, LoadReceiver};
use crate::domain::import::Mode;
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};
use tokio_util::sync::CancellationToken;

/// Rows a previous attempt of `job` already committed, if it did.
pub async fn already_loaded(
    conn: &mut SqliteConnection,
    job: &str,
) -> Result<Option<u64>, LoadError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS ferry_import_log (job_id TEXT PRIMARY KEY, rows INTEGER NOT NULL, \
         finished_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .execute(&mut *conn)
    .await?;
    let rows: Option<i64> =
        sqlx::query_scalar("SELECT rows FROM ferry_import_log WHERE job_id = $1")
            .bind(job)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(rows.map(|r| r.max(0) as u64))
}

/// Loads every batch in one transaction and commits; returns the rows loaded.
pub async fn load(
    conn: &mut SqliteConnection,
    plan: &LoadPlan,
    mut batches: LoadReceiver,
    stop: &CancellationToken,
) -> Result<u64, LoadError> {
    let mut tx = conn.begin().await?;
    if plan.mode == Mode::Replace {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DELETE FROM {}",
            plan.table.qualified()
        )))
        .execute(&mut *tx)
        .await?;
    }
    let insert = insert_statement(plan);
    let mut loaded = 0u64;
    loop {
        let next = tokio::select! {
            next = batches.recv() => next,
            () = stop.cancelled() => return Err(LoadError::Stopped),
        };
        let rows = match next {
            None => break,
            Some(Ok(Batch::Values { rows })) => rows,
            Some(Ok(Batch::Copy { .. })) => {
                return Err(LoadError::Internal(
                    "a COPY batch reached the SQLite loader".into(),
                ));
            }
            Some(Err(error)) => return Err(error),
        };
        for row in rows {
            let mut query = sqlx::query(AssertSqlSafe(insert.clone()));
            for value in row {
                query = query.bind(value);
            }
            query.execute(&mut *tx).await?;
            loaded += 1;
        }
    }
    sqlx::query("INSERT INTO ferry_import_log (job_id, rows) VALUES ($1, $2)")
        .bind(&plan.job)
        .bind(i64::try_from(loaded).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(loaded)
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
