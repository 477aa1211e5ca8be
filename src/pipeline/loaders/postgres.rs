//! Loading into PostgreSQL: `COPY target (columns) FROM STDIN` inside one transaction.
//!
//! `append` copies straight into the table; `replace` and `upsert` copy into a temporary
//! staging table first and then, in the same transaction, swap the rows in (`TRUNCATE` +
//! `INSERT … SELECT`) or merge them (`INSERT … ON CONFLICT (key) DO UPDATE`), so that readers of
//! the table are locked out only for the swap, not for the whole load. The job's id is written
//! to `ferry_import_log` in the same transaction: a retry after a commit whose success was never
//! recorded finds it there and does not load the file twice.

use super::{Batch, LoadError, LoadPlan, LoadReceiver};
use crate::domain::import::Mode;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio_util::sync::CancellationToken;

/// The table in the target database that remembers finished imports.
const LOG_TABLE: &str = "ferry_import_log";

/// Rows a previous attempt of `job` already committed, if it did.
pub async fn already_loaded(conn: &mut PgConnection, job: &str) -> Result<Option<u64>, LoadError> {
    ensure_log(conn).await?;
    let rows: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT rows FROM {LOG_TABLE} WHERE job_id = $1"
    )))
    .bind(job)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(rows.map(|r| r.max(0) as u64))
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

/// Loads every batch from `batches` in one transaction and commits; returns the rows loaded.
/// Stops, rolling back, when `stop` fires or the producer sends an error.
pub async fn load(
    conn: &mut PgConnection,
    plan: &LoadPlan,
    mut batches: LoadReceiver,
    stop: &CancellationToken,
) -> Result<u64, LoadError> {
    let mut tx = conn.begin().await?;
    let columns = plan.column_list();
    let staged = plan.mode != Mode::Append;
    let destination = if staged {
        let create = format!(
            "CREATE TEMP TABLE ferry_staging (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
            plan.table.qualified()
        );
        sqlx::raw_sql(AssertSqlSafe(create))
            .execute(&mut *tx)
            .await?;
        "ferry_staging".to_owned()
    } else {
        plan.table.qualified()
    };
    let mut copy = tx
        .copy_in_raw(&format!("COPY {destination} ({columns}) FROM STDIN"))
        .await?;
    loop {
        let next = tokio::select! {
            next = batches.recv() => next,
            () = stop.cancelled() => {
                let _ = copy.abort("cancelled").await;
                return Err(LoadError::Stopped);
            }
        };
        match next {
            None => break,
            Some(Ok(Batch::Copy { data, .. })) => {
                copy.send(data).await?;
            }
            Some(Ok(Batch::Values { .. })) => {
                let _ = copy.abort("wrong batch kind").await;
                return Err(LoadError::Internal(
                    "a values batch reached the COPY loader".into(),
                ));
            }
            Some(Err(error)) => {
                let _ = copy.abort("the import stopped").await;
                return Err(error);
            }
        }
    }
    let copied = copy.finish().await?;
    if staged {
        merge(&mut tx, plan, &columns).await?;
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {LOG_TABLE} (job_id, rows) VALUES ($1, $2)"
    )))
    .bind(&plan.job)
    .bind(i64::try_from(copied).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(copied)
}

/// Moves the staged rows into the table: a swap for `replace`, a merge for `upsert`.
async fn merge(tx: &mut PgConnection, plan: &LoadPlan, columns: &str) -> Result<(), LoadError> {
    let table = plan.table.qualified();
    let sql = match plan.mode {
        Mode::Append => return Ok(()),
        Mode::Replace => format!(
            "TRUNCATE {table}; INSERT INTO {table} ({columns}) SELECT {columns} FROM ferry_staging"
        ),
        Mode::Upsert => format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM ferry_staging {}",
            plan.on_conflict()
        ),
    };
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    Ok(())
}

/// Appends one row in COPY's text format: tab-separated, `\N` for NULL, and backslash, tab,
/// newline and carriage return escaped.
pub fn push_copy_row<'a>(out: &mut Vec<u8>, values: impl IntoIterator<Item = Option<&'a str>>) {
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match value {
            None => out.extend_from_slice(b"\\N"),
            Some(text) => escape_into(out, text.as_bytes()),
        }
    }
    out.push(b'\n');
}

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // Most values need no escaping: find out with two vectorised scans, then copy at once.
    if memchr::memchr3(b'\\', b'\t', b'\n', bytes).is_none()
        && memchr::memchr(b'\r', bytes).is_none()
    {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::push_copy_row;

    #[test]
    fn copy_rows_escape_what_the_text_format_treats_specially() {
        let mut out = Vec::new();
        push_copy_row(
            &mut out,
            [Some("a\tb"), None, Some("back\\slash\nline\r"), Some("")],
        );
        assert_eq!(out, b"a\\tb\t\\N\tback\\\\slash\\nline\\r\t\n");
    }
}
