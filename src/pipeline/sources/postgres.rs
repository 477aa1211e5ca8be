//! PostgreSQL as an export source.
//!
//! The query runs on a connection of its own in a `READ ONLY` transaction with a statement
//! timeout. CSV comes straight from `COPY (query) TO STDOUT (FORMAT csv)`, with no decoding or
//! re-encoding in Ferry; formats that need each column's type (Parquet, XLSX) read typed rows
//! from a binary `COPY` ([`super::pg_binary`]); JSON Lines reads `row_to_json` of each row. An
//! `EXPLAIN` first checks the query (bad SQL fails before any byte is stored) and gives the row
//! estimate.

use super::pg_binary::{self, Plan};
use super::{Chunk, ENCODED_CHUNK, Opened, SourceError, channel};
use crate::domain::Encoding;
use crate::pipeline::types::Column as Typed;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use sqlx::{AssertSqlSafe, Column, Connection, Executor, PgConnection, Row, SqlSafeStr};
use std::time::Duration;
use tracing::Instrument;

/// What to read and how.
#[derive(Debug, Clone)]
pub struct PgQuery {
    /// The connection URL.
    pub url: String,
    /// The query, parameters already inlined as literals (see [`super::params`]).
    pub sql: String,
    /// The encoding the consumer wants; CSV is produced by PostgreSQL itself.
    pub encoding: Encoding,
    /// CSV delimiter and header, for `COPY`.
    pub delimiter: u8,
    pub header: bool,
    /// Longest the query may run.
    pub statement_timeout: Duration,
}

/// Opens the query: connects, starts the read-only transaction, checks the query with
/// `EXPLAIN`, and starts streaming.
pub async fn open(query: PgQuery) -> Result<Opened, SourceError> {
    let mut conn = PgConnection::connect(&query.url).await?;
    let timeout_ms = query.statement_timeout.as_millis().max(1);
    let setup = format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms}; \
         SET LOCAL standard_conforming_strings = on; SET LOCAL idle_in_transaction_session_timeout = 0"
    );
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut conn)
        .await?;
    let estimate = explain(&mut conn, &query.sql).await?;
    let described = conn
        .describe(AssertSqlSafe(query.sql.clone()).into_sql_str())
        .await?;
    let typed = match query.encoding {
        Encoding::Parquet | Encoding::Xlsx => {
            Some(pg_binary::plan(&mut conn, described.columns()).await?)
        }
        Encoding::Csv | Encoding::Jsonl => None,
    };
    let columns = match &typed {
        Some(plan) => plan.columns.clone(),
        None => described
            .columns()
            .iter()
            .map(|c| Typed::text(c.name()))
            .collect(),
    };
    let (tx, chunks) = channel();
    let pre_encoded = query.encoding == Encoding::Csv;
    tokio::spawn(
        async move {
            let result = match (&typed, query.encoding) {
                (Some(plan), _) => typed_rows(&mut conn, plan, &query, &tx).await,
                (None, Encoding::Csv) => copy_csv(&mut conn, &query, &tx).await,
                (None, _) => json_rows(&mut conn, &query, &tx).await,
            };
            match result {
                Ok(()) => tracing::debug!("PostgreSQL source finished"),
                Err(error) => {
                    tracing::debug!(error = %error, "PostgreSQL source failed");
                    let _ = tx.send(Err(error)).await;
                }
            }
            let _ = conn.close().await;
        }
        .in_current_span(),
    );
    Ok(Opened {
        columns,
        estimate,
        pre_encoded,
        chunks,
    })
}

/// The planner's row estimate; also fails early on a query that cannot run.
async fn explain(conn: &mut PgConnection, sql: &str) -> Result<Option<u64>, SourceError> {
    let plan: serde_json::Value =
        sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")))
            .fetch_one(&mut *conn)
            .await?;
    Ok(plan
        .pointer("/0/Plan/Plan Rows")
        .and_then(serde_json::Value::as_f64)
        .map(|rows| rows.max(0.0) as u64))
}

type Tx = super::ChunkSender;

/// Streams `COPY … TO STDOUT`, coalescing PostgreSQL's one-message-per-row into larger chunks.
async fn copy_csv(conn: &mut PgConnection, query: &PgQuery, tx: &Tx) -> Result<(), SourceError> {
    let delimiter = char::from(query.delimiter).to_string().replace('\'', "''");
    let copy = format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER {}, DELIMITER '{delimiter}')",
        query.sql, query.header
    );
    let mut stream = conn.copy_out_raw(&copy).await?;
    let mut buffer = BytesMut::with_capacity(ENCODED_CHUNK * 2);
    let mut messages: u64 = 0;
    let mut header_pending = query.header;
    while let Some(message) = stream.try_next().await? {
        buffer.extend_from_slice(&message);
        // Each CopyData message is one row (or the header line).
        if header_pending {
            header_pending = false;
        } else {
            messages += 1;
        }
        if buffer.len() >= ENCODED_CHUNK {
            let chunk = Chunk::Encoded {
                bytes: buffer.split().freeze(),
                rows: std::mem::take(&mut messages),
            };
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(());
            }
        }
    }
    if !buffer.is_empty() || messages > 0 {
        let _ = tx
            .send(Ok(Chunk::Encoded {
                bytes: Bytes::from(buffer),
                rows: messages,
            }))
            .await;
    }
    Ok(())
}

/// Streams typed rows from a binary `COPY`.
async fn typed_rows(
    conn: &mut PgConnection,
    plan: &Plan,
    query: &PgQuery,
    tx: &Tx,
) -> Result<(), SourceError> {
    pg_binary::stream(conn, plan, &query.sql, tx).await
}

/// Streams rows as JSON objects (`row_to_json`), for JSON Lines.
async fn json_rows(conn: &mut PgConnection, query: &PgQuery, tx: &Tx) -> Result<(), SourceError> {
    let sql = format!(
        "SELECT row_to_json(ferry_q)::text FROM ({}) AS ferry_q",
        query.sql
    );
    let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *conn);
    let mut batch = Vec::with_capacity(crate::pipeline::BATCH_ROWS);
    while let Some(row) = rows.next().await {
        let text: String = row?.try_get(0)?;
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| SourceError::Permanent {
                code: "query_failed",
                message: e.to_string(),
            })?;
        batch.push(object.into_iter().map(|(_, v)| v).collect());
        if batch.len() == crate::pipeline::BATCH_ROWS {
            let full =
                std::mem::replace(&mut batch, Vec::with_capacity(crate::pipeline::BATCH_ROWS));
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

/// Checks that `sql` can run (it parses, its tables exist) without running it.
pub async fn check(url: &str, sql: &str) -> Result<(), SourceError> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::raw_sql("BEGIN READ ONLY").execute(&mut conn).await?;
    let result = explain(&mut conn, sql).await.map(drop);
    let _ = conn.close().await;
    result
}
