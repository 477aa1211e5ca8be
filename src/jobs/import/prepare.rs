//! Checking an import against its target before a byte is stored: the connection, the table,
//! the columns named by `key`, `columns` and `mapping`, and the column rules.
//!
//! `TargetConn` and `connect` live in `pipeline::loaders` now; they are re-exported here for
//! the callers that list a connection's tables.

use crate::config::{LOCAL_CONNECTION, Settings, is_duckdb, is_postgres};
use crate::domain::ImportSpec;
use crate::domain::invalid::{Collector, Invalid};
use crate::pipeline::loaders::schema::{self, TableSchema};
use crate::pipeline::sources::SourceError;
use crate::pipeline::validate::{ColumnRule, ColumnType};

use crate::pipeline::import::infer;
use crate::pipeline::loaders::create::NewTable;

pub use crate::pipeline::import::{Creation, Prepared};
pub use crate::pipeline::loaders::{TargetConn, connect};

/// Why an import cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The spec names something that does not exist or breaks a rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The target database failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// The connection an import uses: the named one, or the only configured one, or `local`.
pub fn connection_name(settings: &Settings, spec: &ImportSpec) -> Result<String, Invalid> {
    if let Some(name) = &spec.connection {
        return settings
            .connection(name)
            .map(|_| name.clone())
            .ok_or_else(|| {
                Invalid::field("target.connection", format!("unknown connection {name:?}"))
            });
    }
    match settings.connections.keys().collect::<Vec<_>>().as_slice() {
        [] => Ok(LOCAL_CONNECTION.to_owned()),
        [only] => Ok((*only).clone()),
        _ => Err(Invalid::field(
            "target.connection",
            "several connections are configured; name one",
        )),
    }
}

/// Finds the target table and builds its column rules.
pub async fn prepare(settings: &Settings, spec: &ImportSpec) -> Result<Prepared, PrepareError> {
    let connection = connection_name(settings, spec)?;
    let url = settings
        .connection(&connection)
        .map(|c| c.url.expose().to_owned())
        .ok_or_else(|| Invalid::field("target.connection", "unknown connection"))?;
    if is_duckdb(&url) {
        return Err(Invalid::field(
            "target.connection",
            format!("{connection:?} is a DuckDB connection, which Ferry only exports from"),
        )
        .into());
    }
    let found = match connect(&url).await? {
        TargetConn::Postgres(mut conn) => {
            schema::postgres(&mut conn, spec.table.schema.as_deref(), &spec.table.name).await?
        }
        TargetConn::Sqlite(mut conn) => schema::sqlite(&mut conn, &spec.table.name).await?,
    };
    let Some(table) = found else {
        if !spec.create {
            return Err(Invalid::field(
                "target.table",
                format!(
                    "no table {:?} on connection {connection:?}; \"create\": true makes it from the file",
                    spec.table.to_string()
                ),
            )
            .into());
        }
        new_names(spec)?;
        return Ok(Prepared {
            connection,
            url,
            table: TableSchema {
                schema: spec.table.schema.clone(),
                table: spec.table.name.clone(),
                columns: Vec::new(),
            },
            rules: Vec::new(),
            creation: Creation::Pending,
        });
    };
    let rules = rules(&table, spec, is_postgres(&url), true)?;
    Ok(Prepared {
        connection,
        url,
        table,
        rules,
        creation: Creation::Exists,
    })
}

/// Before the file is sampled, the columns of a table to create are not known; `key` and
/// `columns` can only be checked to be names a header can become.
fn new_names(spec: &ImportSpec) -> Result<(), Invalid> {
    let mut errors = Collector::default();
    let hint = |name: &str| {
        format!(
            "the new table's columns are the header's names normalised (lower-case a-z, 0-9 and _): {name:?} cannot be one; did you mean {:?}?",
            infer::normalise(name)
        )
    };
    for key in spec.key.iter().filter(|k| !infer::is_normal(k)) {
        errors.push("key", hint(key));
    }
    for name in spec.columns.keys().filter(|k| !infer::is_normal(k)) {
        errors.push(format!("columns.{name}"), hint(name));
    }
    errors.finish(())
}

/// The target once the table to create was inferred from the file: its schema and rules, with
/// `key` and `columns` checked against the inferred columns.
pub fn created(prepared: Prepared, spec: &ImportSpec, new: NewTable) -> Result<Prepared, Invalid> {
    let postgres = is_postgres(&prepared.url);
    let table = new.schema(
        prepared.table.schema.clone(),
        &prepared.table.table,
        postgres,
    );
    // The mapping named the columns; it is not checked against them again.
    let rules = rules(&table, spec, postgres, false)?;
    Ok(Prepared {
        table,
        rules,
        creation: Creation::Ready(new),
        ..prepared
    })
}

/// Checks the spec's column names and builds a rule per column.
fn rules(
    table: &TableSchema,
    spec: &ImportSpec,
    postgres: bool,
    check_mapping: bool,
) -> Result<Vec<ColumnRule>, Invalid> {
    let mut errors = Collector::default();
    for key in &spec.key {
        if table.column(key).is_none() {
            errors.push("key", format!("the table has no column {key:?}"));
        }
    }
    for name in spec.columns.keys() {
        if table.column(name).is_none() {
            errors.push(format!("columns.{name}"), "the table has no such column");
        }
    }
    for (header, column) in spec.mapping.iter().filter(|_| check_mapping) {
        if table.column(column).is_none() {
            errors.push(
                format!("mapping.{header}"),
                format!("the table has no column {column:?}"),
            );
        }
    }
    let mut rules = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let kind = if postgres {
            ColumnType::from_postgres(
                &column.data_type,
                &column.udt_name,
                column.char_len,
                column.precision,
                column.scale,
                column.enum_labels.clone(),
            )
        } else {
            ColumnType::from_sqlite(&column.data_type)
        };
        let extra = spec.columns.get(&column.name);
        match ColumnRule::build(&column.name, kind, column.nullable, extra) {
            Ok(rule) => rules.push(rule),
            Err(invalid) => errors.extend(invalid),
        }
    }
    errors.finish(rules)
}
