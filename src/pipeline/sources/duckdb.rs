//! DuckDB as an export source (cargo feature `duckdb`): a DuckDB file, or MotherDuck.
//!
//! A `duckdb:///path/app.duckdb` connection is opened read-only (`access_mode = READ_ONLY`),
//! so any number of processes may read the file at once (a DuckDB file has one writer or many
//! readers); with external access off and the configuration locked, so a query reads that
//! database and nothing else — no other files, no `ATTACH`, no extensions — and cannot undo
//! either. The session's time zone is UTC. An `md:` URL goes to DuckDB as it is: MotherDuck
//! (the `motherduck` extension, its token from `motherduck_token` or `MOTHERDUCK_TOKEN`); it
//! keeps external access, which MotherDuck needs, so there the token's own rights are the fence.
//!
//! The query runs on a blocking thread with its parameters bound natively (`$1`, `$2`, …) and
//! its result streamed chunk by chunk (DuckDB's vectors of 2,048 rows) as Arrow batches into the
//! source's bounded channel: a full channel stops the thread, so DuckDB stops producing. A
//! watcher interrupts the query when the consumer goes away (cancellation) or the connection's
//! `statement_timeout` passes.
//!
//! This file holds what the rest of Ferry sees with or without the feature; `engine` and
//! `bridge` hold the feature's code. The URL's form is configuration's
//! ([`crate::config::duckdb`]).

#[cfg(feature = "duckdb")]
mod bridge;
#[cfg(feature = "duckdb")]
mod engine;

#[cfg(not(feature = "duckdb"))]
use super::Opened;
use super::SourceError;
use super::params::Param;
use std::time::Duration;

/// What to read.
#[derive(Debug, Clone)]
pub struct DuckQuery {
    /// The connection URL (`duckdb://…` or `md:…`).
    pub url: String,
    /// The query, with `$1`, `$2`, … for `params`.
    pub sql: String,
    /// The parameters, bound natively.
    pub params: Vec<Param>,
    /// Longest the query may run.
    pub statement_timeout: Duration,
}

#[cfg(feature = "duckdb")]
pub use engine::{check, open};

/// Opens `query` and starts streaming its result (here: refuses, DuckDB is not built in).
#[cfg(not(feature = "duckdb"))]
pub async fn open(_query: DuckQuery) -> Result<Opened, SourceError> {
    Err(not_built())
}

/// Checks that a query can run (here: refuses, DuckDB is not built in).
#[cfg(not(feature = "duckdb"))]
pub async fn check(_url: &str, _sql: &str) -> Result<(), SourceError> {
    Err(not_built())
}

/// Opens and closes a connection, for the start-up look at every data connection.
pub async fn probe(url: &str) -> Result<(), SourceError> {
    check(url, "SELECT 1").await
}

#[cfg(not(feature = "duckdb"))]
fn not_built() -> SourceError {
    SourceError::Permanent {
        code: "duckdb_unavailable",
        message: "this Ferry was built without DuckDB (cargo feature `duckdb`)".to_owned(),
    }
}
