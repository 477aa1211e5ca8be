//! `/v1/templates`, `/v1/connections`, `/v1/connections/{name}/tables`: what a caller may name
//! in a request, so that a form (the web page, the CLI) can offer it instead of asking for it.
//!
//! Templates and connections are server configuration. A caller sees a connection only if it may
//! use it ([`Caller::may_use`]: `connections.NAME.scopes`), a template only if it may use the
//! template's connection, and the tables of such a connection only: the same rule that lets it
//! export from and import into that connection. Secrets (URLs, queries) are never shown.

use super::AppState;
use super::error::ApiError;
use super::openapi::{NotFound, Unauthorized, Unavailable};
use crate::auth::Caller;
use crate::config::{ConnectionSettings, LOCAL_CONNECTION, Settings, is_duckdb, is_postgres};
use crate::jobs::import::prepare::{TargetConn, connect};
use crate::pipeline::loaders::tables::{self, TableSummary};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The discovery routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(templates))
        .routes(routes!(connections))
        .routes(routes!(tables))
}

/// `GET /v1/templates`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    /// By name.
    pub items: Vec<TemplateView>,
}

/// `GET /v1/connections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    /// By name.
    pub items: Vec<ConnectionView>,
}

/// `GET /v1/connections/{name}/tables`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableList {
    /// By schema, then name.
    pub items: Vec<TableView>,
}

/// A template: a named query with typed parameters (`"source": {"type": "template", …}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    #[schema(example = "users_by_plan")]
    pub name: String,
    /// The connection it runs on.
    #[schema(example = "main")]
    pub connection: String,
    /// Its parameters, in order.
    pub params: Vec<ParamView>,
}

/// One typed template parameter.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamView {
    #[schema(example = "plan")]
    pub name: String,
    /// `text`, `int`, `bigint`, `numeric`, `bool`, `date`, `timestamptz` or `uuid`.
    #[serde(rename = "type")]
    #[schema(example = "text")]
    pub kind: &'static str,
}

/// A data connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    #[schema(example = "main")]
    pub name: String,
    /// What database it is.
    pub kind: ConnectionKind,
    /// Whether `sql` exports may run on it.
    pub allow_sql: bool,
}

/// The database behind a connection.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    Postgres,
    Sqlite,
    Duckdb,
}

impl ConnectionKind {
    /// The kind of the database at `url`.
    pub fn of(url: &str) -> Self {
        if is_postgres(url) {
            Self::Postgres
        } else if is_duckdb(url) {
            Self::Duckdb
        } else {
            Self::Sqlite
        }
    }
}

/// A table an import may target.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableView {
    /// Its schema (PostgreSQL); `null` on SQLite.
    #[schema(example = "public")]
    pub schema: Option<String>,
    #[schema(example = "people")]
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<ColumnView>,
}

/// One column of a table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnView {
    #[schema(example = "id")]
    pub name: String,
    /// The type as the database spells it (`integer`, `character varying(20)`, `TEXT`, …).
    #[serde(rename = "type")]
    #[schema(example = "integer")]
    pub kind: String,
    /// Whether it takes NULL (an empty field).
    pub nullable: bool,
}

impl From<TableSummary> for TableView {
    fn from(table: TableSummary) -> Self {
        Self {
            schema: table.schema,
            name: table.name,
            columns: table
                .columns
                .into_iter()
                .map(|c| ColumnView {
                    name: c.name,
                    kind: c.data_type,
                    nullable: c.nullable,
                })
                .collect(),
        }
    }
}

/// Whether `caller` may use the connection `name`; an unknown name is left to the checks that
/// report it. A refused connection is answered like an unknown one, so that nothing tells a
/// caller that it exists.
pub fn allowed(settings: &Settings, caller: &Caller, name: &str) -> bool {
    settings
        .connection(name)
        .is_none_or(|connection| caller.may_use(&connection))
}

/// The connections `caller` may use, by name, the built-in `local` included.
fn usable(settings: &Settings, caller: &Caller) -> Vec<(String, ConnectionSettings)> {
    let mut found: Vec<(String, ConnectionSettings)> = settings
        .connections
        .iter()
        .map(|(name, c)| (name.clone(), c.clone()))
        .collect();
    if !settings.connections.contains_key(LOCAL_CONNECTION) {
        found.push((LOCAL_CONNECTION.to_owned(), settings.local_connection()));
    }
    found.retain(|(_, c)| caller.may_use(c));
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The templates the caller may run.
#[utoipa::path(
    get,
    path = "/v1/templates",
    operation_id = "list_templates",
    tag = "discovery",
    responses(
        (status = 200, description = "The templates, by name", body = TemplateList),
        Unauthorized,
    )
)]
async fn templates(State(state): State<AppState>, caller: Caller) -> Json<TemplateList> {
    let connections = usable(&state.settings, &caller);
    let items = state
        .settings
        .templates
        .iter()
        .filter(|(_, t)| connections.iter().any(|(name, _)| name == &t.connection))
        .map(|(name, t)| TemplateView {
            name: name.clone(),
            connection: t.connection.clone(),
            params: t
                .params
                .iter()
                .map(|p| ParamView {
                    name: p.name.clone(),
                    kind: p.kind.as_str(),
                })
                .collect(),
        })
        .collect();
    Json(TemplateList { items })
}

/// The data connections the caller may use.
#[utoipa::path(
    get,
    path = "/v1/connections",
    operation_id = "list_connections",
    tag = "discovery",
    responses(
        (status = 200, description = "The connections, by name", body = ConnectionList),
        Unauthorized,
    )
)]
async fn connections(State(state): State<AppState>, caller: Caller) -> Json<ConnectionList> {
    let items = usable(&state.settings, &caller)
        .into_iter()
        .map(|(name, c)| ConnectionView {
            kind: ConnectionKind::of(c.url.expose()),
            allow_sql: c.allow_sql,
            name,
        })
        .collect();
    Json(ConnectionList { items })
}

/// The tables of a connection that an import may target, with their columns.
///
/// On PostgreSQL: the tables the connection's role may insert into, outside the system schemas.
/// At most 1,000 tables. None on DuckDB, which Ferry only exports from.
#[utoipa::path(
    get,
    path = "/v1/connections/{name}/tables",
    operation_id = "list_tables",
    tag = "discovery",
    params(("name" = String, Path, description = "The connection's name")),
    responses(
        (status = 200, description = "The tables, by schema and name", body = TableList),
        NotFound, Unauthorized, Unavailable,
    )
)]
async fn tables(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TableList>, ApiError> {
    let (_, connection) = usable(&state.settings, &caller)
        .into_iter()
        .find(|(n, _)| n == &name)
        .ok_or(ApiError::NotFound)?;
    if ConnectionKind::of(connection.url.expose()) == ConnectionKind::Duckdb {
        return Ok(Json(TableList { items: Vec::new() }));
    }
    let unavailable = |error| {
        ApiError::Unavailable(
            anyhow::Error::new(error).context(format!("listing the tables of connection {name:?}")),
        )
    };
    let found = match connect(connection.url.expose())
        .await
        .map_err(unavailable)?
    {
        TargetConn::Postgres(mut conn) => tables::postgres(&mut conn).await,
        TargetConn::Sqlite(mut conn) => tables::sqlite(&mut conn).await,
    }
    .map_err(unavailable)?;
    Ok(Json(TableList {
        items: found.into_iter().map(TableView::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_kind_comes_from_its_url() {
        assert_eq!(
            ConnectionKind::of("postgres://u@h/db"),
            ConnectionKind::Postgres
        );
        assert_eq!(
            ConnectionKind::of("postgresql://u@h/db"),
            ConnectionKind::Postgres
        );
        assert_eq!(
            ConnectionKind::of("sqlite:///x.db?mode=rwc"),
            ConnectionKind::Sqlite
        );
        assert_eq!(
            ConnectionKind::of("duckdb:///a.duckdb"),
            ConnectionKind::Duckdb
        );
        assert_eq!(ConnectionKind::of("md:my_db"), ConnectionKind::Duckdb);
    }
}
