//! What a target table looks like: its columns, their types, nullability and defaults, read
//! from the database so that the validator can take its rules from the schema.

use crate::pipeline::sources::SourceError;
use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, PgConnection, Row};

/// One column of the target table.
#[derive(Debug, Clone, PartialEq)]
pub struct DbColumn {
    pub name: String,
    /// PostgreSQL's `data_type` (`integer`, `USER-DEFINED`, …) or SQLite's declared type.
    pub data_type: String,
    /// PostgreSQL's `udt_name` (`int4`, an enum's name, …); empty for SQLite.
    pub udt_name: String,
    pub nullable: bool,
    /// Whether leaving the column out still gives a value (a default, identity, generated).
    pub has_default: bool,
    /// Whether the column cannot be written (generated always).
    pub generated: bool,
    pub char_len: Option<i32>,
    pub precision: Option<i32>,
    pub scale: Option<i32>,
    /// Labels of an enum type.
    pub enum_labels: Option<Vec<String>>,
}

/// The target table, found.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The schema (PostgreSQL) it lives in.
    pub schema: Option<String>,
    pub table: String,
    pub columns: Vec<DbColumn>,
}

impl TableSchema {
    /// The table's name, quoted for SQL.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.table)),
            None => quote_ident(&self.table),
        }
    }

    /// A column by exact name.
    pub fn column(&self, name: &str) -> Option<&DbColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Quotes an identifier: `"` doubled, the whole in `"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Reads a PostgreSQL table's columns; `None` if there is no such table.
pub async fn postgres(
    conn: &mut PgConnection,
    schema: Option<&str>,
    table: &str,
) -> Result<Option<TableSchema>, SourceError> {
    let schema: String = match schema {
        Some(schema) => schema.to_owned(),
        None => {
            sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let rows = sqlx::query(
        "SELECT column_name::text, data_type::text, udt_name::text, is_nullable::text,
                column_default::text, is_identity::text, is_generated::text,
                character_maximum_length::int4, numeric_precision::int4, numeric_scale::int4
         FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(&schema)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut column = pg_column(row)?;
        if column.data_type == "USER-DEFINED" {
            column.enum_labels = enum_labels(conn, &column.udt_name).await?;
        }
        columns.push(column);
    }
    Ok(Some(TableSchema {
        schema: Some(schema),
        table: table.to_owned(),
        columns,
    }))
}

fn pg_column(row: &sqlx::postgres::PgRow) -> Result<DbColumn, SourceError> {
    let default: Option<String> = row.try_get(4)?;
    let identity: String = row.try_get(5)?;
    let generated: String = row.try_get(6)?;
    Ok(DbColumn {
        name: row.try_get(0)?,
        data_type: row.try_get(1)?,
        udt_name: row.try_get(2)?,
        nullable: row.try_get::<String, _>(3)? == "YES",
        has_default: default.is_some() || identity == "YES" || generated == "ALWAYS",
        generated: generated == "ALWAYS",
        char_len: row.try_get(7)?,
        precision: row.try_get(8)?,
        scale: row.try_get(9)?,
        enum_labels: None,
    })
}

async fn enum_labels(
    conn: &mut PgConnection,
    type_name: &str,
) -> Result<Option<Vec<String>>, SourceError> {
    let labels: Vec<String> = sqlx::query_scalar(
        "SELECT e.enumlabel::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
         WHERE t.typname = $1 ORDER BY e.enumsortorder",
    )
    .bind(type_name)
    .fetch_all(&mut *conn)
    .await?;
    Ok((!labels.is_empty()).then_some(labels))
}

/// Reads a SQLite table's columns; `None` if there is no such table.
pub async fn sqlite(
    conn: &mut SqliteConnection,
    table: &str,
) -> Result<Option<TableSchema>, SourceError> {
    let sql = format!(
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info({})",
        quote_literal(table)
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let columns = rows
        .iter()
        .map(|row| {
            let declared: String = row.try_get(1)?;
            let default: Option<String> = row.try_get(3)?;
            let pk: i64 = row.try_get(4)?;
            // An INTEGER PRIMARY KEY is the rowid: SQLite fills it when it is left out.
            let rowid = pk == 1 && declared.eq_ignore_ascii_case("integer");
            Ok(DbColumn {
                name: row.try_get(0)?,
                data_type: declared,
                udt_name: String::new(),
                nullable: row.try_get::<i64, _>(2)? == 0 && !rowid,
                has_default: default.is_some() || rowid,
                generated: false,
                char_len: None,
                precision: None,
                scale: None,
                enum_labels: None,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(TableSchema {
        schema: None,
        table: table.to_owned(),
        columns,
    }))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
