//! Settling rows the database may refuse: they are in the temporary table `ferry_rows` (with
//! their line numbers), set queries mark the bad ones ([`violations`](super::violations)), the
//! others go into the table in one statement (in file order; merged for `upsert`), and the bad
//! ones, read back from the spill with the file's own fields, go to the rejects.

use super::{Load, execute, probe, violations};
use crate::domain::import::Mode;
use crate::pipeline::loaders::LoadError;
use crate::pipeline::loaders::schema::quote_ident;
use crate::pipeline::rejects::Rejected;
use sqlx::{AssertSqlSafe, PgConnection};
use std::collections::HashMap;
use violations::{Constraint, Scope};

/// Rejects handed on at once.
const REJECTS_GROUP: usize = 256;

/// What a load learns about the table once it first needs the temporary tables.
#[derive(Debug, Clone, Default)]
pub(super) struct Scratch {
    constraints: Vec<Constraint>,
    /// The NOT NULL columns that may end up NULL (not identity, not generated).
    not_null: Vec<String>,
}

impl Load<'_> {
    /// Creates the temporary tables and reads the constraints, once per load. Identity
    /// columns stay NOT NULL (they cannot drop it) and are left out of the NOT NULL checks:
    /// they always get a value.
    pub(super) async fn scratch(&mut self, conn: &mut PgConnection) -> Result<(), LoadError> {
        if self.scratch.is_some() {
            return Ok(());
        }
        let table = self.plan.table.qualified();
        let identity: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attidentity <> ''",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await?;
        let not_null: Vec<String> = self
            .plan
            .table
            .columns
            .iter()
            .filter(|c| !c.nullable && !c.generated && !identity.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        let mut sql = format!(
            "CREATE TEMP TABLE ferry_rows (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY) ON COMMIT DROP;
             ALTER TABLE ferry_rows ADD COLUMN ferry_line bigint;
             CREATE TEMP TABLE ferry_bad (line bigint NOT NULL, reason text NOT NULL) ON COMMIT DROP;"
        );
        for column in &not_null {
            sql.push_str(&format!(
                "ALTER TABLE ferry_rows ALTER COLUMN {} DROP NOT NULL;",
                quote_ident(column)
            ));
        }
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
        let constraints = violations::catalogue(conn, &table).await?;
        self.scratch = Some(Scratch {
            constraints,
            not_null,
        });
        Ok(())
    }

    /// Loads the spilled chunk into a fresh `ferry_rows`.
    pub(super) async fn rows_from_spill(
        &mut self,
        conn: &mut PgConnection,
    ) -> Result<(), LoadError> {
        self.scratch(conn).await?;
        execute(conn, "TRUNCATE ferry_rows, ferry_bad").await?;
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY ferry_rows (ferry_line, {}) FROM STDIN{}",
                self.plan.column_list(),
                self.format.options()
            ))
            .await?;
        copy.send(self.format.header()).await?;
        let mut reader = self.spill.reader().await?;
        while let Some(batch) = reader.next().await? {
            copy.send(self.format.with_lines(&batch)).await?;
        }
        copy.send(self.format.trailer()).await?;
        copy.finish().await?;
        Ok(())
    }

    /// Finds the bad rows of `ferry_rows`, inserts the others, rejects the bad ones; returns
    /// (rows inserted, rows rejected).
    pub(super) async fn settle(
        &mut self,
        conn: &mut PgConnection,
        against_table: bool,
    ) -> Result<(u64, u64), LoadError> {
        execute(conn, "ANALYZE ferry_rows").await?;
        let scratch = self.scratch.clone().unwrap_or_default();
        let scope = Scope {
            plan: self.plan,
            not_null: scratch.not_null.clone(),
            against_table,
        };
        let constraints = scratch.constraints;
        violations::find(conn, &scope, &constraints).await?;
        if self.plan.mode == Mode::Replace {
            execute(conn, &format!("TRUNCATE {}", self.plan.table.qualified())).await?;
        }
        probe::insert_good(conn, &self.good_rows_statement()).await?;
        let bad: HashMap<u64, String> = sqlx::query_as::<_, (i64, String)>(
            "SELECT line, string_agg(reason, '; ' ORDER BY reason) FROM ferry_bad GROUP BY line",
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(line, reason)| (line.max(0) as u64, reason))
        .collect();
        if !bad.is_empty() {
            self.reject(&bad).await?;
        }
        let count = bad.len() as u64;
        Ok((self.spill.rows.saturating_sub(count), count))
    }

    /// Sends the spilled rows whose lines are in `bad` to the rejects.
    async fn reject(&mut self, bad: &HashMap<u64, String>) -> Result<(), LoadError> {
        let mut reader = self.spill.reader().await?;
        let mut group = Vec::new();
        while let Some(batch) = reader.next().await? {
            for row in batch.iter() {
                if let Some(reason) = bad.get(&row.line) {
                    group.push(Rejected {
                        line: row.line,
                        fields: row.fields(),
                        raw: None,
                        errors: reason.clone(),
                    });
                }
                if group.len() >= REJECTS_GROUP {
                    self.rejects.send(std::mem::take(&mut group)).await?;
                }
            }
        }
        self.rejects.send(group).await
    }

    /// `INSERT … SELECT` of the good rows up to line `$1`.
    fn good_rows_statement(&self) -> String {
        let plan = self.plan;
        let columns = plan.column_list();
        let selected = plan
            .columns
            .iter()
            .map(|c| format!("r.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = format!(
            "FROM ferry_rows r WHERE r.ferry_line <= $1 AND {}",
            "NOT EXISTS (SELECT 1 FROM ferry_bad b WHERE b.line = r.ferry_line)"
        );
        let table = plan.table.qualified();
        if plan.mode == Mode::Upsert {
            let key = plan
                .key
                .iter()
                .map(|c| format!("r.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {selected} {filter} \
                 ORDER BY {key}, r.ferry_line DESC {}",
                plan.on_conflict()
            )
        } else {
            format!(
                "INSERT INTO {table} ({columns}) SELECT {selected} {filter} ORDER BY r.ferry_line"
            )
        }
    }
}
