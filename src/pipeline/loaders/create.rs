//! A table an import creates (SPEC §4.1 "New tables"): its columns as inferred from the file,
//! the `CREATE TABLE` each database gets, and the schema the validator and loaders then use.
//! The statement runs inside the load's transaction (see [`LoadPlan::create`]), so a failed or
//! cancelled import leaves no table behind.
//!
//! | inferred | PostgreSQL | SQLite |
//! |---|---|---|
//! | boolean | `boolean` | `boolean` (stored as 1/0) |
//! | bigint | `bigint` | `integer` |
//! | numeric | `numeric` | `numeric` |
//! | double precision | `double precision` | `real` |
//! | date, timestamp | `date`, `timestamp` | `date`, `timestamp` (ISO 8601 text) |
//! | timestamptz | `timestamptz` | `timestamptz` (ISO 8601 text, UTC) |
//! | uuid | `uuid` | `uuid` (text) |
//! | jsonb | `jsonb` | `json` (text) |
//! | text | `text` | `text` |
//!
//! The SQLite names are ones `ColumnType::from_sqlite` reads back as the same types, so a later
//! import into the table validates its fields the same way.
//!
//! [`LoadPlan::create`]: super::LoadPlan::create

use super::LoadError;
use super::schema::{DbColumn, TableSchema, quote_ident};
use crate::domain::{CreatedColumn, CreatedTable};
use crate::pipeline::validate::ColumnType;

/// A column to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    /// Its name: the header normalised (or the spec's `mapping` of it).
    pub name: String,
    /// The header it comes from.
    pub header: String,
    /// The inferred type.
    pub kind: ColumnType,
}

/// A table to create, from its file.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTable {
    /// Its columns, in the file's order.
    pub columns: Vec<NewColumn>,
    /// Columns of the primary key (an upsert's `key`); empty for none.
    pub primary_key: Vec<String>,
    /// Per field of the file's header: the index of its column, `None` for a field the import
    /// ignores (`_line`, `_errors`, `_raw`). Empty for a file without a header.
    pub fields: Vec<Option<usize>>,
}

impl NewTable {
    /// The type a column is declared with on PostgreSQL (`postgres`) or SQLite.
    pub fn declared(kind: &ColumnType, postgres: bool) -> String {
        if postgres {
            return kind.to_string();
        }
        match kind {
            ColumnType::BigInt => "integer".into(),
            ColumnType::Double => "real".into(),
            ColumnType::Jsonb => "json".into(),
            other => other.to_string(),
        }
    }

    /// `CREATE TABLE qualified (…)` for PostgreSQL (`postgres`) or SQLite.
    pub fn statement(&self, qualified: &str, postgres: bool) -> String {
        let mut parts: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    quote_ident(&c.name),
                    Self::declared(&c.kind, postgres)
                )
            })
            .collect();
        if !self.primary_key.is_empty() {
            parts.push(format!(
                "PRIMARY KEY ({})",
                super::quoted_list(&self.primary_key)
            ));
        }
        format!("CREATE TABLE {qualified} ({})", parts.join(", "))
    }

    /// The table as the validator and loaders see an existing one.
    pub fn schema(&self, schema: Option<String>, table: &str, postgres: bool) -> TableSchema {
        let columns = self
            .columns
            .iter()
            .map(|c| DbColumn {
                name: c.name.clone(),
                data_type: Self::declared(&c.kind, postgres),
                udt_name: String::new(),
                nullable: !self.primary_key.contains(&c.name),
                has_default: false,
                generated: false,
                char_len: None,
                precision: None,
                scale: None,
                enum_labels: None,
            })
            .collect();
        TableSchema {
            schema,
            table: table.to_owned(),
            columns,
        }
    }

    /// What the job's result says was created.
    pub fn describe(&self, table: &str, postgres: bool) -> CreatedTable {
        CreatedTable {
            table: table.to_owned(),
            columns: self
                .columns
                .iter()
                .map(|c| CreatedColumn {
                    name: c.name.clone(),
                    kind: Self::declared(&c.kind, postgres),
                    header: c.header.clone(),
                })
                .collect(),
        }
    }
}

/// A `CREATE TABLE` that failed because the table exists meanwhile (another import created
/// it between the check and the load) is transient: the retry finds the table and loads into
/// it as it is.
pub fn creation_failed(error: sqlx::Error) -> LoadError {
    let exists = match &error {
        sqlx::Error::Database(e) => {
            e.code().as_deref() == Some("42P07") || e.message().contains("already exists")
        }
        _ => false,
    };
    if exists {
        LoadError::producer(
            "table_exists",
            format!("the table was created by someone else meanwhile: {error}"),
            true,
        )
    } else {
        LoadError::Database(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> NewTable {
        NewTable {
            columns: vec![
                NewColumn {
                    name: "id".into(),
                    header: "ID".into(),
                    kind: ColumnType::BigInt,
                },
                NewColumn {
                    name: "data".into(),
                    header: "Data".into(),
                    kind: ColumnType::Jsonb,
                },
            ],
            primary_key: vec!["id".into()],
            fields: vec![Some(0), Some(1)],
        }
    }

    #[test]
    fn each_database_gets_its_own_type_names() {
        assert_eq!(
            table().statement("\"t\"", true),
            "CREATE TABLE \"t\" (\"id\" bigint, \"data\" jsonb, PRIMARY KEY (\"id\"))"
        );
        assert_eq!(
            table().statement("\"t\"", false),
            "CREATE TABLE \"t\" (\"id\" integer, \"data\" json, PRIMARY KEY (\"id\"))"
        );
    }

    #[test]
    fn sqlite_names_read_back_as_the_inferred_types() {
        for kind in crate::pipeline::import::infer::PREFERENCE {
            let back = ColumnType::from_sqlite(&NewTable::declared(&kind, false));
            let same = match kind {
                ColumnType::Jsonb => back == ColumnType::Json,
                _ => back == kind,
            };
            assert!(same, "{kind} came back as {back}");
        }
    }

    #[test]
    fn key_columns_are_not_null_and_the_result_names_headers() {
        let schema = table().schema(None, "t", true);
        assert!(!schema.columns[0].nullable && schema.columns[1].nullable);
        let created = table().describe("t", false);
        assert_eq!(created.columns[0].kind, "integer");
        assert_eq!(created.columns[1].header, "Data");
    }
}
