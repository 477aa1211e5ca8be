//! SQLite as an export source: the query runs on a read-only connection (`query_only`), with
//! its parameters bound natively. Column types come from the declared types of the columns
//! the query reads (SQLite's affinity rules, plus `BOOLEAN`, `DATE` and `DATETIME`); for an
//! expression, the type sqlx infers from the query plan, and text when it cannot tell.

use super::params::Param;
use super::{Chunk, Opened, SourceError, channel};
use crate::pipeline::types::{Column as Typed, ColumnType};
use crate::pipeline::{BATCH_ROWS, Row};
use futures::StreamExt;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection as _, Executor, Row as _, SqlSafeStr,
    SqliteConnection, TypeInfo, ValueRef,
};
use std::str::FromStr;
use tracing::Instrument;

/// Opens `sql` on the database at `url`, read-only.
pub async fn open(url: &str, sql: String, params: Vec<Param>) -> Result<Opened, SourceError> {
    let options = SqliteConnectOptions::from_str(url)?.read_only(true);
    let mut conn = options.connect().await?;
    sqlx::raw_sql("PRAGMA query_only = ON")
        .execute(&mut conn)
        .await?;
    let columns = conn
        .describe(AssertSqlSafe(sql.clone()).into_sql_str())
        .await?
        .columns()
        .iter()
        .map(|c| Typed::new(c.name(), declared_type(c.type_info().name())))
        .collect();
    let (tx, chunks) = channel();
    tokio::spawn(
        async move {
            match stream_rows(&mut conn, sql, params, &tx).await {
                Ok(()) => tracing::debug!("SQLite source finished"),
                Err(error) => {
                    tracing::debug!(error = %error, "SQLite source failed");
                    let _ = tx.send(Err(error)).await;
                }
            }
        }
        .in_current_span(),
    );
    Ok(Opened {
        columns,
        estimate: None,
        pre_encoded: false,
        chunks,
    })
}

async fn stream_rows(
    conn: &mut SqliteConnection,
    sql: String,
    params: Vec<Param>,
    tx: &super::ChunkSender,
) -> Result<(), SourceError> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for param in params {
        query = match param {
            Param::Null => query.bind(None::<String>),
            Param::Bool(b) => query.bind(b),
            Param::Int(n) => query.bind(n),
            Param::Number(n) => query.bind(n.parse::<f64>().unwrap_or(f64::NAN)),
            Param::Text(s, _) => query.bind(s),
        };
    }
    let mut rows = query.fetch(&mut *conn);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = rows.next().await {
        batch.push(decode(&row?)?);
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if tx.send(Ok(Chunk::Rows(full))).await.is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(Chunk::Rows(batch))).await;
    }
    Ok(())
}

/// The column type of a declared SQLite type, as sqlx names it after SQLite's affinity rules.
/// `NUMERIC` columns hold integers or reals, so they are floats.
fn declared_type(name: &str) -> ColumnType {
    match name {
        "INTEGER" => ColumnType::Int64,
        "REAL" | "NUMERIC" => ColumnType::Float64,
        "BOOLEAN" => ColumnType::Bool,
        "DATE" => ColumnType::Date,
        "DATETIME" => ColumnType::Timestamp,
        _ => ColumnType::Text,
    }
}

/// One row's values by their storage class: INTEGER, REAL, TEXT, BLOB (as hex) or NULL.
fn decode(row: &SqliteRow) -> Result<Row, SourceError> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let class = raw.type_info().name().to_owned();
            Ok(match class.as_str() {
                "INTEGER" => Value::from(row.try_get::<i64, _>(i)?),
                "REAL" => serde_json::Number::from_f64(row.try_get::<f64, _>(i)?)
                    .map_or(Value::Null, Value::Number),
                "BLOB" => Value::String(hex::encode(row.try_get::<Vec<u8>, _>(i)?)),
                _ => Value::String(row.try_get::<String, _>(i)?),
            })
        })
        .collect()
}

/// Checks that `sql` can run (it parses, its tables exist) without running it.
pub async fn check(url: &str, sql: &str) -> Result<(), SourceError> {
    let mut conn = SqliteConnectOptions::from_str(url)?
        .read_only(true)
        .connect()
        .await?;
    conn.describe(AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await?;
    Ok(())
}

/// Creates the database file at `url` if it does not exist (an empty database).
pub async fn create_if_missing(url: &str) -> Result<(), SourceError> {
    let conn = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .connect()
        .await?;
    conn.close().await?;
    Ok(())
}
