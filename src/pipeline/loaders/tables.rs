//! The tables a connection offers as import targets, with their columns and types: what the web
//! page and other clients list so that a user picks a table instead of typing its name.
//!
//! PostgreSQL lists the tables (plain and partitioned, not partitions) that the connection's
//! role may `INSERT` into, outside the system schemas; SQLite lists every table but its own. Both
//! leave out Ferry's `ferry_import_log`. One statement each, capped at [`MAX_TABLES`] tables.

use crate::pipeline::sources::SourceError;
use sqlx::sqlite::SqliteConnection;
use sqlx::{PgConnection, Row};

/// Most tables one listing returns.
pub const MAX_TABLES: i64 = 1000;

/// One table and its columns, in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// Its schema (PostgreSQL); `None` on SQLite.
    pub schema: Option<String>,
    pub name: String,
    pub columns: Vec<ColumnSummary>,
}

/// One column: its name, its type as the database spells it, whether it takes NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSummary {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

/// The import targets of a PostgreSQL connection.
pub async fn postgres(conn: &mut PgConnection) -> Result<Vec<TableSummary>, SourceError> {
    let rows = sqlx::query(
        "WITH t AS (
             SELECT c.oid, n.nspname, c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%'
               AND c.relname <> 'ferry_import_log'
               AND has_schema_privilege(n.oid, 'USAGE')
               AND has_table_privilege(c.oid, 'INSERT')
             ORDER BY n.nspname, c.relname
             LIMIT $1)
         SELECT t.nspname::text, t.relname::text, a.attname::text,
                format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
         FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY t.nspname, t.relname, a.attnum",
    )
    .bind(MAX_TABLES)
    .fetch_all(&mut *conn)
    .await?;
    let columns = rows
        .iter()
        .map(|row| {
            Ok((
                Some(row.try_get::<String, _>(0)?),
                row.try_get::<String, _>(1)?,
                ColumnSummary {
                    name: row.try_get(2)?,
                    data_type: row.try_get(3)?,
                    nullable: row.try_get(4)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(group(columns))
}

/// The tables of a SQLite connection.
pub async fn sqlite(conn: &mut SqliteConnection) -> Result<Vec<TableSummary>, SourceError> {
    let rows = sqlx::query(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk
         FROM (SELECT name FROM sqlite_master
               WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                 AND name <> 'ferry_import_log'
               ORDER BY name LIMIT $1) m
         JOIN pragma_table_info(m.name) p
         ORDER BY m.name, p.cid",
    )
    .bind(MAX_TABLES)
    .fetch_all(&mut *conn)
    .await?;
    let columns = rows
        .iter()
        .map(|row| {
            let data_type: String = row.try_get(2)?;
            // An INTEGER PRIMARY KEY is the rowid: never NULL, filled when left out.
            let rowid = row.try_get::<i64, _>(4)? == 1 && data_type.eq_ignore_ascii_case("integer");
            Ok((
                None,
                row.try_get::<String, _>(0)?,
                ColumnSummary {
                    name: row.try_get(1)?,
                    nullable: row.try_get::<i64, _>(3)? == 0 && !rowid,
                    data_type,
                },
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(group(columns))
}

/// Gathers rows of (schema, table, column), ordered by table, into tables.
fn group(rows: Vec<(Option<String>, String, ColumnSummary)>) -> Vec<TableSummary> {
    let mut tables: Vec<TableSummary> = Vec::new();
    for (schema, name, column) in rows {
        match tables.last_mut() {
            Some(last) if last.schema == schema && last.name == name => last.columns.push(column),
            _ => tables.push(TableSummary {
                schema,
                name,
                columns: vec![column],
            }),
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> ColumnSummary {
        ColumnSummary {
            name: name.into(),
            data_type: "text".into(),
            nullable: true,
        }
    }

    #[test]
    fn rows_of_one_table_make_one_entry_and_a_same_name_in_another_schema_another() {
        let public = Some("public".to_owned());
        let other = Some("other".to_owned());
        let tables = group(vec![
            (other.clone(), "a".into(), column("x")),
            (public.clone(), "a".into(), column("x")),
            (public.clone(), "a".into(), column("y")),
            (public.clone(), "b".into(), column("z")),
        ]);
        let names: Vec<_> = tables
            .iter()
            .map(|t| (t.schema.as_deref(), t.name.as_str(), t.columns.len()))
            .collect();
        assert_eq!(
            names,
            [
                (Some("other"), "a", 1),
                (Some("public"), "a", 2),
                (Some("public"), "b", 1)
            ]
        );
    }
}
