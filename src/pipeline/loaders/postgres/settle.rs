//! Settling rows the database may refuse: they are in the temporary table `ferry_rows` (with
//! their line numbers), set queries mark the bad ones ([`violations`](super::violations)), the
//! others go into the table in one statement (in file order; merged for `upsert`), and the bad
//! ones, read back from the spill with the file's own fields, go to the rejects.

use super::format::Format;
use super::{Copied, Load, binary, execute, finished, probe, violations};
use crate::domain::import::Mode;
use crate::pipeline::loaders::LoadError;
use crate::pipeline::loaders::schema::quote_ident;
use crate::pipeline::rejects::Rejected;
use crate::pipeline::validate::ColumnType;
use fastbloom::BloomFilter;
use sqlx::{AssertSqlSafe, PgConnection};
use std::collections::HashMap;
use violations::{Constraint, Repeats, Scope};

/// Rejects handed on at once.
const REJECTS_GROUP: usize = 256;
/// The most bits a Bloom filter of a chunk's keys takes (4 MiB): past about 2,800,000 rows a
/// chunk, more rows are marked as maybe repeated than need be, which costs time, not results.
const MAX_FILTER_BITS: u64 = 32 * 1024 * 1024;

/// What a load learns about the table once it first needs the temporary tables.
#[derive(Debug, Clone, Default)]
pub(super) struct Scratch {
    constraints: Vec<Constraint>,
    /// The NOT NULL columns that may end up NULL (not identity, not generated).
    not_null: Vec<String>,
    /// When every column the constraints read is in the file and rows go in binary: those
    /// columns' places in the file's columns, in order — what `ferry_keys` holds.
    narrow: Option<Vec<usize>>,
    /// On the narrow path: the unique keys whose repeats Ferry marks in `ferry_keys`.
    repeats: Vec<Repeats>,
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
        // The set queries' estimated costs (a probe per row) would make PostgreSQL compile
        // them with JIT, which costs more than the queries themselves.
        let mut sql = format!(
            "SET LOCAL jit = off;
             CREATE TEMP TABLE ferry_rows (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY) ON COMMIT DROP;
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
        let narrow = self.narrow_columns(&constraints, &not_null);
        if let Some(keep) = &narrow {
            let columns: Vec<&str> = keep
                .iter()
                .filter_map(|&i| self.plan.columns.get(i).map(String::as_str))
                .collect();
            let select = if columns.is_empty() {
                String::new()
            } else {
                format!(", {}", crate::pipeline::loaders::quoted_list(&columns))
            };
            let create = format!(
                "CREATE TEMP TABLE ferry_keys ON COMMIT DROP AS \
                 SELECT NULL::bigint AS ferry_line{select}, 0 AS ferry_twins FROM {table} WITH NO DATA"
            );
            execute(conn, &create).await?;
        }
        let repeats = match narrow {
            Some(_) => self.repeats(&constraints),
            None => Vec::new(),
        };
        self.scratch = Some(Scratch {
            constraints,
            not_null,
            narrow,
            repeats,
        });
        Ok(())
    }

    /// The places of the columns `ferry_keys` needs, or `None` when the narrow path cannot judge
    /// the rows: in `replace` and `upsert` (the good rows go in from the temporary table), with
    /// text COPY, or when a CHECK or a foreign key reads a column the file does not fill (its
    /// value would be the table's default).
    fn narrow_columns(
        &self,
        constraints: &[Constraint],
        not_null: &[String],
    ) -> Option<Vec<usize>> {
        let plan = self.plan;
        if plan.mode != Mode::Append || self.format != Format::Binary {
            return None;
        }
        let mut read: Vec<&str> = not_null.iter().map(String::as_str).collect();
        for constraint in constraints {
            let columns = constraint.reads(plan);
            let judged_here = !matches!(constraint.kind, violations::Kind::Unique { .. });
            if judged_here && columns.iter().any(|c| !plan.columns.iter().any(|p| p == c)) {
                return None;
            }
            read.extend(columns);
        }
        let keep = plan
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| read.contains(&c.as_str()))
            .map(|(i, _)| i)
            .collect();
        Some(keep)
    }

    /// The unique keys whose repeats can be told from their bytes: every column in the file and
    /// of a type whose equal values have equal binary forms (not `numeric`, whose `1.0` and
    /// `1.00` differ, nor floats, `char` or JSON). A text key under a collation that calls
    /// different bytes equal would go unmarked; the copy of the good rows then fails and the
    /// chunk is settled the slow way, so results never depend on it.
    fn repeats(&self, constraints: &[Constraint]) -> Vec<Repeats> {
        let plan = self.plan;
        let mut repeats = Vec::new();
        for constraint in constraints {
            let violations::Kind::Unique { columns, .. } = &constraint.kind else {
                continue;
            };
            let places: Option<Vec<usize>> = columns
                .iter()
                .map(|c| plan.columns.iter().position(|p| p == c))
                .collect();
            let Some(mut places) = places else {
                continue;
            };
            places.sort_unstable();
            let telling = places
                .iter()
                .all(|&p| plan.types.get(p).is_some_and(bytes_tell_equality));
            // One bit of `ferry_twins` (an int4) each.
            if telling && repeats.len() < 31 {
                repeats.push(Repeats {
                    name: constraint.name.clone(),
                    places,
                });
            }
        }
        repeats
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

    /// Settles the spilled chunk of an `append`; returns (rows inserted, rows rejected).
    ///
    /// When the constraints read only some columns, only those go to `ferry_keys`, the set
    /// queries find the bad rows there, and the good rows are copied from the spill into the
    /// table with `COPY`, as a clean chunk is, inside a savepoint: a narrow temporary table and
    /// no `INSERT … SELECT`. Should the database still refuse a row (a reason no query foresaw),
    /// the chunk is settled through `ferry_rows` and probing instead.
    pub(super) async fn settle_chunk(
        &mut self,
        conn: &mut PgConnection,
    ) -> Result<(u64, u64), LoadError> {
        self.scratch(conn).await?;
        let scratch = self.scratch.clone().unwrap_or_default();
        let Some(keep) = &scratch.narrow else {
            self.rows_from_spill(conn).await?;
            return self.settle(conn, true).await;
        };
        execute(conn, "TRUNCATE ferry_keys, ferry_bad").await?;
        self.keys_from_spill(conn, keep, &scratch.repeats).await?;
        // A NOT NULL column the file does not fill takes the table's default, which
        // `ferry_keys` does not know: the COPY below finds out.
        let not_null = scratch
            .not_null
            .iter()
            .filter(|c| self.plan.columns.contains(c))
            .cloned()
            .collect();
        let scope = Scope {
            plan: self.plan,
            not_null,
            against_table: true,
            rows: "ferry_keys",
            repeats: &scratch.repeats,
        };
        violations::find(conn, &scope, &scratch.constraints).await?;
        let bad = bad_lines(conn).await?;
        execute(conn, "SAVEPOINT ferry_good").await?;
        match self.copy_good(conn, &bad).await? {
            Copied::Clean(rows) => {
                execute(conn, "RELEASE SAVEPOINT ferry_good").await?;
                if !bad.is_empty() {
                    self.reject(&bad).await?;
                }
                Ok((rows, bad.len() as u64))
            }
            Copied::Refused(error) => {
                tracing::info!(error = %error, "the good rows were refused; settling the chunk row by row");
                execute(conn, "ROLLBACK TO SAVEPOINT ferry_good").await?;
                execute(conn, "RELEASE SAVEPOINT ferry_good").await?;
                self.rows_from_spill(conn).await?;
                self.settle(conn, true).await
            }
        }
    }

    /// Loads the line and the columns at `keep` of each spilled row into `ferry_keys`, with
    /// the row's `ferry_twins` bits: for each of `repeats`, whether the row's key may have been
    /// on an earlier row (a Bloom filter of the chunk's keys, NULL keys left out).
    async fn keys_from_spill(
        &mut self,
        conn: &mut PgConnection,
        keep: &[usize],
        repeats: &[Repeats],
    ) -> Result<(), LoadError> {
        let columns: Vec<&str> = keep
            .iter()
            .filter_map(|&i| self.plan.columns.get(i).map(String::as_str))
            .collect();
        let mut list = String::from("ferry_line");
        if !columns.is_empty() {
            list.push_str(", ");
            list.push_str(&crate::pipeline::loaders::quoted_list(&columns));
        }
        list.push_str(", ferry_twins");
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY ferry_keys ({list}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        copy.send(binary::HEADER).await?;
        let mut seen: Vec<BloomFilter> = repeats.iter().map(|_| filter(self.spill.rows)).collect();
        let mut reader = self.spill.reader().await?;
        let (mut out, mut key) = (Vec::new(), Vec::new());
        while let Some(batch) = reader.next().await? {
            out.clear();
            let mut fields = Vec::new();
            for row in batch.iter() {
                let line = i64::try_from(row.line).unwrap_or(i64::MAX);
                binary::fields(row.data, &mut fields)
                    .map_err(|e| LoadError::Internal(e.to_owned()))?;
                let mut twins = 0i32;
                for (bit, (repeat, seen)) in repeats.iter().zip(&mut seen).enumerate() {
                    if key_of(&fields, &repeat.places, &mut key) && seen.insert(key.as_slice()) {
                        twins |= 1 << bit;
                    }
                }
                binary::keys_row(line, &fields, keep, twins, &mut out)
                    .map_err(|e| LoadError::Internal(e.to_owned()))?;
            }
            copy.send(out.as_slice()).await?;
        }
        copy.send(binary::TRAILER).await?;
        copy.finish().await?;
        Ok(())
    }

    /// Copies the spilled rows whose lines are not in `bad` into the table.
    async fn copy_good(
        &mut self,
        conn: &mut PgConnection,
        bad: &HashMap<u64, String>,
    ) -> Result<Copied, LoadError> {
        let statement = format!(
            "COPY {} ({}) FROM STDIN{}",
            self.plan.table.qualified(),
            self.plan.column_list(),
            self.format.options()
        );
        let mut copy = conn.copy_in_raw(&statement).await?;
        copy.send(self.format.header()).await?;
        let mut reader = self.spill.reader().await?;
        let (mut rows, mut out) = (0u64, Vec::new());
        while let Some(batch) = reader.next().await? {
            out.clear();
            for row in batch.iter().filter(|row| !bad.contains_key(&row.line)) {
                out.extend_from_slice(row.data);
                rows += 1;
            }
            copy.send(out.as_slice()).await?;
        }
        copy.send(self.format.trailer()).await?;
        finished(copy.finish().await, rows)
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
            rows: "ferry_rows",
            repeats: &[],
        };
        let constraints = scratch.constraints;
        violations::find(conn, &scope, &constraints).await?;
        if self.plan.mode == Mode::Replace {
            execute(conn, &format!("TRUNCATE {}", self.plan.table.qualified())).await?;
        }
        probe::insert_good(conn, &self.good_rows_statement()).await?;
        let bad = bad_lines(conn).await?;
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

/// Whether equal values of type `t` always have equal binary forms, and different values
/// different ones.
fn bytes_tell_equality(t: &ColumnType) -> bool {
    matches!(
        t,
        ColumnType::SmallInt
            | ColumnType::Integer
            | ColumnType::BigInt
            | ColumnType::Boolean
            | ColumnType::Text
            | ColumnType::Varchar(_)
            | ColumnType::Uuid
            | ColumnType::Date
            | ColumnType::Timestamp
            | ColumnType::Timestamptz
            | ColumnType::Enum(_)
    )
}

/// A Bloom filter for the keys of a chunk of `rows` rows: 12 bits a row (about 0.3% of new
/// keys taken for repeats), at most [`MAX_FILTER_BITS`].
fn filter(rows: u64) -> BloomFilter {
    let bits = rows.saturating_mul(12).clamp(4096, MAX_FILTER_BITS);
    BloomFilter::with_num_bits(usize::try_from(bits).unwrap_or(4096))
        .expected_items(usize::try_from(rows.max(1)).unwrap_or(usize::MAX))
}

/// The fields at `places` (length words included, so that keys of several columns cannot run
/// into each other) into `key`; false when one of them is NULL (such a key repeats nothing).
fn key_of(fields: &[&[u8]], places: &[usize], key: &mut Vec<u8>) -> bool {
    key.clear();
    for &place in places {
        match fields.get(place) {
            Some(field) if !binary::is_null(field) => key.extend_from_slice(field),
            _ => return false,
        }
    }
    true
}

/// The lines in `ferry_bad`, each with its reasons.
async fn bad_lines(conn: &mut PgConnection) -> Result<HashMap<u64, String>, LoadError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT line, string_agg(reason, '; ' ORDER BY reason) FROM ferry_bad GROUP BY line",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(line, reason)| (line.max(0) as u64, reason))
        .collect())
}
