//! The last resort of a load: an insert of the good rows that the database still refuses, for a
//! reason no set query foresaw (an exclusion constraint, a trigger, a unique expression index, a
//! key another session inserted meanwhile). A binary search over line numbers finds the first
//! row that makes the insert fail — each probe inside a savepoint that is rolled back, so probes
//! never count against the transaction's subtransactions — and that row is rejected with the
//! database's own message; then the insert runs again.

use super::{execute, row_level};
use crate::pipeline::loaders::LoadError;
use sqlx::postgres::PgDatabaseError;
use sqlx::{AssertSqlSafe, PgConnection};

/// Rows that no set query foresaw, found by probing, before a load gives up.
const MAX_PROBED: usize = 100;

/// Inserts the rows of `ferry_rows` not in `ferry_bad`, in file order; when that fails,
/// finds the first row that makes it fail, marks it bad and tries again.
pub async fn insert_good(conn: &mut PgConnection, statement: &str) -> Result<(), LoadError> {
    for _ in 0..=MAX_PROBED {
        execute(conn, "SAVEPOINT ferry_insert").await?;
        let error = match insert_until(conn, statement, i64::MAX).await {
            Ok(()) => return execute(conn, "RELEASE SAVEPOINT ferry_insert").await,
            Err(error) => error,
        };
        execute(conn, "ROLLBACK TO SAVEPOINT ferry_insert").await?;
        execute(conn, "RELEASE SAVEPOINT ferry_insert").await?;
        let (line, reason) = first_failing(conn, statement, error).await?;
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
