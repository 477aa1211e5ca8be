//! Resolving an export's source against configuration: which connection, which SQL, which
//! parameters. Pure checks come first ([`resolve`]); opening happens in the worker ([`open`]).

use crate::config::{ParamType, Settings, is_duckdb, is_postgres};
use crate::domain::export::Part;
use crate::domain::generate::GenerateSpec;
use crate::domain::invalid::{Collector, Invalid};
use crate::domain::{Encoding, Source};
use crate::pipeline::sources::duckdb::DuckQuery;
use crate::pipeline::sources::params::{self, Param};
use crate::pipeline::sources::postgres::{self, PgQuery};
use crate::pipeline::sources::{self, Opened, SourceError};
use serde_json::Value;
use std::time::Duration;

/// A source, checked against configuration and ready to open.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A PostgreSQL query with its parameters inlined as literals.
    Postgres {
        url: String,
        sql: String,
        statement_timeout: Duration,
    },
    /// A SQLite query with parameters to bind.
    Sqlite {
        url: String,
        sql: String,
        params: Vec<Param>,
    },
    /// A DuckDB query with parameters to bind (cargo feature `duckdb`).
    Duckdb(DuckQuery),
    /// Synthetic data.
    Generate(GenerateSpec),
}

/// Checks the source of `part` against `settings`: the connection exists and allows SQL, the
/// template exists, parameters fit their types. Errors name fields under `part.field`.
pub fn resolve(settings: &Settings, part: &Part) -> Result<Resolved, Invalid> {
    let at = &part.field;
    match &part.source {
        Source::Generate(generate) => Ok(Resolved::Generate(generate.clone())),
        Source::Sql {
            connection,
            query,
            params,
        } => {
            let found = settings.connection(connection).ok_or_else(|| {
                Invalid::field(
                    format!("{at}.connection"),
                    format!("unknown connection {connection:?}"),
                )
            })?;
            if !found.allow_sql {
                return Err(Invalid::field(
                    format!("{at}.connection"),
                    format!("connection {connection:?} does not allow SQL exports; use a template"),
                ));
            }
            let mut errors = Collector::default();
            let checked: Vec<Param> = params
                .iter()
                .enumerate()
                .filter_map(|(i, value)| {
                    params::untyped(value, &format!("{at}.params[{i}]"))
                        .map_err(|e| errors.push(e.field, e.message))
                        .ok()
                })
                .collect();
            errors.finish(())?;
            build(found.url.expose(), query, checked, found.statement_timeout)
        }
        Source::Template { template, params } => {
            let found = settings.templates.get(template).ok_or_else(|| {
                Invalid::field(
                    format!("{at}.template"),
                    format!("unknown template {template:?}"),
                )
            })?;
            let connection = settings.connection(&found.connection).ok_or_else(|| {
                Invalid::field(
                    format!("{at}.template"),
                    "the template's connection is not configured",
                )
            })?;
            let declared: Vec<(String, ParamType)> = found
                .params
                .iter()
                .map(|p| (p.name.clone(), p.kind))
                .collect();
            let checked = template_params(&declared, params, at)?;
            build(
                connection.url.expose(),
                &found.query,
                checked,
                connection.statement_timeout,
            )
        }
    }
}

fn template_params(
    declared: &[(String, ParamType)],
    given: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<Vec<Param>, Invalid> {
    let mut errors = Collector::default();
    for name in given.keys() {
        if !declared.iter().any(|(d, _)| d == name) {
            errors.push(
                format!("{at}.params.{name}"),
                "the template has no such parameter",
            );
        }
    }
    let mut checked = Vec::with_capacity(declared.len());
    for (name, kind) in declared {
        let field = format!("{at}.params.{name}");
        match given.get(name) {
            None => errors.push(field, "missing"),
            Some(value) => match params::typed(value, *kind, &field) {
                Ok(param) => checked.push(param),
                Err(e) => errors.push(e.field, e.message),
            },
        }
    }
    errors.finish(checked)
}

fn build(
    url: &str,
    query: &str,
    params: Vec<Param>,
    statement_timeout: Duration,
) -> Result<Resolved, Invalid> {
    if is_postgres(url) {
        let sql = params::inline(query, &params).map_err(|e| Invalid::field(e.field, e.message))?;
        Ok(Resolved::Postgres {
            url: url.to_owned(),
            sql,
            statement_timeout,
        })
    } else if is_duckdb(url) {
        Ok(Resolved::Duckdb(DuckQuery {
            url: url.to_owned(),
            sql: query.to_owned(),
            params,
            statement_timeout,
        }))
    } else {
        Ok(Resolved::Sqlite {
            url: url.to_owned(),
            sql: query.to_owned(),
            params,
        })
    }
}

/// Opens a resolved source for `encoding`.
pub async fn open(
    resolved: Resolved,
    encoding: Encoding,
    delimiter: u8,
    header: bool,
) -> Result<Opened, SourceError> {
    match resolved {
        Resolved::Generate(spec) => Ok(sources::open_generator(spec)),
        Resolved::Sqlite { url, sql, params } => sources::sqlite::open(&url, sql, params).await,
        Resolved::Duckdb(query) => sources::duckdb::open(query).await,
        Resolved::Postgres {
            url,
            sql,
            statement_timeout,
        } => {
            postgres::open(PgQuery {
                url,
                sql,
                encoding,
                delimiter,
                header,
                statement_timeout,
            })
            .await
        }
    }
}

/// Checks a resolved query against its database, so that SQL that cannot run is refused when
/// the export is requested. Only a permanent error refuses; an unreachable database does not
/// (the job will retry).
pub async fn check(resolved: &Resolved) -> Result<(), SourceError> {
    let checked = match resolved {
        Resolved::Generate(_) => return Ok(()),
        Resolved::Postgres { url, sql, .. } => {
            tokio::time::timeout(CHECK_TIMEOUT, postgres::check(url, sql)).await
        }
        Resolved::Sqlite { url, sql, .. } => {
            tokio::time::timeout(CHECK_TIMEOUT, sources::sqlite::check(url, sql)).await
        }
        Resolved::Duckdb(query) => {
            tokio::time::timeout(
                CHECK_TIMEOUT,
                sources::duckdb::check(&query.url, &query.sql),
            )
            .await
        }
    };
    match checked {
        Ok(Err(error @ SourceError::Permanent { .. })) => Err(error),
        _ => Ok(()),
    }
}

/// How long a request waits for its query to be checked.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
