//! The DuckDB source's work: connecting (read-only, contained), binding, streaming the result
//! from a blocking thread into the bounded channel, and the watcher that interrupts a query
//! whose consumer left or whose time is up. See the parent module for the why.

use super::DuckQuery;
use super::bridge;
use crate::config::duckdb::{Target, target};
use crate::pipeline::columnar;
use crate::pipeline::sources::params::Param;
use crate::pipeline::sources::{Chunk, ChunkSender, Opened, SourceError, channel};
use crate::pipeline::types::{Column, ColumnType};
use duckdb::core::LogicalTypeId;
use duckdb::types::Value;
use duckdb::{AccessMode, Config, Connection, InterruptHandle, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Opens `query` and starts streaming its result.
pub async fn open(query: DuckQuery) -> Result<Opened, SourceError> {
    let (tx, chunks) = channel();
    let (ready, columns) = oneshot::channel();
    let runtime = Handle::current();
    // The thread logs in the caller's span (a job's), like the rest of the job.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.entered();
        stream(&query, &runtime, ready, &tx);
    });
    let columns = columns.await.map_err(|_| SourceError::Permanent {
        code: "query_failed",
        message: "the DuckDB thread ended before the query started".to_owned(),
    })??;
    Ok(Opened {
        columns,
        estimate: None,
        pre_encoded: false,
        chunks,
    })
}

/// Checks that `sql` can run (it parses, its tables exist) without running it.
pub async fn check(url: &str, sql: &str) -> Result<(), SourceError> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    let checked = tokio::task::spawn_blocking(move || {
        let conn = connect(&url)?;
        conn.prepare(&sql).map(drop).map_err(|e| failed(&e))
    });
    checked.await.map_err(|e| SourceError::Transient {
        code: "database_unavailable",
        message: format!("the DuckDB check stopped: {e}"),
    })?
}

/// Opens the database at `url`: read-only, UTC, and for a file without external access and
/// with its configuration locked.
fn connect(url: &str) -> Result<Connection, SourceError> {
    let Target {
        path,
        options,
        motherduck,
    } = target(url).map_err(|message| SourceError::Permanent {
        code: "query_failed",
        message,
    })?;
    let opening = |e: duckdb::Error| SourceError::Transient {
        code: "database_unavailable",
        message: format!("the DuckDB database could not be opened: {e}"),
    };
    let mut config = Config::default()
        .access_mode(AccessMode::ReadOnly)
        .map_err(opening)?;
    for (key, value) in &options {
        config = config
            .with(key, value)
            .map_err(|e| SourceError::Permanent {
                code: "query_failed",
                message: format!("the DuckDB setting {key} in the connection's URL: {e}"),
            })?;
    }
    let conn = Connection::open_with_flags(&path, config).map_err(opening)?;
    let fence = if motherduck {
        "SET TimeZone = 'UTC'; SET lock_configuration = true"
    } else {
        "SET TimeZone = 'UTC'; SET enable_external_access = false; SET lock_configuration = true"
    };
    conn.execute_batch(fence).map_err(opening)?;
    Ok(conn)
}

/// The blocking thread: connect, start the query, announce its columns on `ready`, then send
/// its batches until the end, an error, or the consumer's leaving.
fn stream(
    query: &DuckQuery,
    runtime: &Handle,
    ready: oneshot::Sender<Result<Vec<Column>, SourceError>>,
    tx: &ChunkSender,
) {
    let conn = match connect(&query.url) {
        Ok(conn) => conn,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let watch = Watch::start(
        runtime,
        conn.interrupt_handle(),
        tx,
        query.statement_timeout,
    );
    let started = conn
        .prepare(&query.sql)
        .and_then(|mut stmt| {
            // Executes the statement; its batches are fetched below with `step`.
            drop(stmt.stream_arrow(duckdb::params_from_iter(query.params.iter().map(value)))?);
            Ok(stmt)
        })
        .map_err(|e| watch.failed(&e));
    let (stmt, columns) = match started.and_then(|stmt| Ok((columns(&stmt)?, stmt))) {
        Ok((columns, stmt)) => (stmt, columns),
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    if ready.send(Ok(columns)).is_err() {
        return;
    }
    let mut sent = 0usize;
    loop {
        let next = match stmt.step() {
            Ok(Some(chunk)) => bridge::batch(chunk).map(Chunk::Batch),
            Ok(None) => break,
            Err(error) => Err(watch.failed(&error)),
        };
        let failed = next.is_err();
        if tx.blocking_send(next).is_err() || failed {
            break;
        }
        sent += 1;
    }
    tracing::debug!(batches = sent, "DuckDB source finished");
}

/// The result's columns: their Arrow types, with DuckDB's UUID and JSON named as such.
fn columns(stmt: &Statement<'_>) -> Result<Vec<Column>, SourceError> {
    let schema = bridge::schema(&stmt.schema())?;
    let unsupported = |e: columnar::Unsupported| SourceError::Permanent {
        code: "unsupported_type",
        message: e.to_string(),
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let mut column = columnar::column_type(field).map_err(unsupported)?;
        if column.kind == ColumnType::Text {
            let logical = stmt.column_logical_type(i);
            if logical.try_id() == Ok(LogicalTypeId::Uuid) {
                column.kind = ColumnType::Uuid;
            } else if logical
                .get_alias()
                .is_some_and(|a| a.eq_ignore_ascii_case("json"))
            {
                column.kind = ColumnType::Json;
            }
        }
        columns.push(column);
    }
    Ok(columns)
}

/// A parameter as DuckDB binds it. Decimals, dates, timestamps and UUIDs go as text, which
/// DuckDB casts exactly to the type the query gives the placeholder.
fn value(param: &Param) -> Value {
    match param {
        Param::Null => Value::Null,
        Param::Bool(b) => Value::Boolean(*b),
        Param::Int(n) => Value::BigInt(*n),
        Param::Number(text) | Param::Text(text, _) => Value::Text(text.clone()),
    }
}

/// Interrupts the query when the consumer drops the channel or the time is up, and remembers
/// which, so that an interrupted query reports why.
struct Watch {
    timed_out: Arc<AtomicBool>,
    done: CancellationToken,
    timeout: Duration,
}

impl Watch {
    fn start(
        runtime: &Handle,
        interrupt: Arc<InterruptHandle>,
        tx: &ChunkSender,
        timeout: Duration,
    ) -> Self {
        let watch = Self {
            timed_out: Arc::new(AtomicBool::new(false)),
            done: CancellationToken::new(),
            timeout,
        };
        let (tx, done, timed_out) = (tx.clone(), watch.done.clone(), watch.timed_out.clone());
        runtime.spawn(async move {
            tokio::select! {
                () = done.cancelled() => return,
                () = tx.closed() => {}
                () = tokio::time::sleep(timeout) => timed_out.store(true, Ordering::SeqCst),
            }
            interrupt.interrupt();
        });
        watch
    }

    /// Classifies a DuckDB error of the running query.
    fn failed(&self, error: &duckdb::Error) -> SourceError {
        if self.timed_out.load(Ordering::SeqCst) {
            return SourceError::Permanent {
                code: "query_timeout",
                message: format!(
                    "the query ran past its statement timeout ({})",
                    humantime::format_duration(self.timeout)
                ),
            };
        }
        failed(error)
    }
}

impl Drop for Watch {
    /// The watcher holds a sender: it must end with the thread, or the channel never closes.
    fn drop(&mut self) {
        self.done.cancel();
    }
}

/// A DuckDB error by its kind, which DuckDB puts first in its message (`Catalog Error: …`):
/// I/O, network and memory trouble is worth another attempt; the rest is the query's own.
fn failed(error: &duckdb::Error) -> SourceError {
    let message = error.to_string();
    let transient = [
        "IO Error",
        "HTTP Error",
        "Connection Error",
        "Out of Memory Error",
    ]
    .iter()
    .any(|kind| message.starts_with(kind));
    if transient {
        SourceError::Transient {
            code: "database_unavailable",
            message,
        }
    } else {
        SourceError::Permanent {
            code: "query_failed",
            message,
        }
    }
}
