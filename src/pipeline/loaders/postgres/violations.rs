//! Finding the rows the database would refuse, with set queries over a temporary table of the
//! rows (`ferry_rows`: the table's columns without NOT NULL, plus `ferry_line`), rather than row
//! by row. Each bad row goes into `ferry_bad (line, reason)` with the constraint's name and the
//! database's own wording:
//!
//! | constraint | query | reason |
//! |---|---|---|
//! | NOT NULL | `col IS NULL` | `constraint t_col_not_null: null value in column "col" of relation "t" violates not-null constraint` |
//! | CHECK | `(expr) IS FALSE` | `constraint t_qty_check: new row for relation "t" violates check constraint "t_qty_check"` |
//! | FOREIGN KEY | no parent (`NOT EXISTS`) | `constraint t_customer_fkey: Key (customer)=(99) is not present in table "customers"` |
//! | PRIMARY KEY, UNIQUE (and unique indexes) | the key is in the table (looked up only when its first column lies within the table's values for it) | `constraint t_pkey: Key (id)=(42) already exists` |
//! | the same, within the file | an earlier row has the key (a window over the rows; on the narrow path only over the keys Ferry marked as maybe repeated, [`Repeats`]) | `constraint t_pkey: Key (id)=(42) already exists (line 7)` |
//!
//! Row checks come first; keys are judged only among the rows that passed them, one constraint
//! after the other, so a row whose earlier twin was rejected is judged on its own. In `upsert`
//! the key is not a violation (the last row of a key wins) and a row that updates itself does
//! not collide with itself. A key with a column the file does not fill (an identity, a serial)
//! is not checked here: only the table gives it its value. What no query here foresees — an exclusion constraint, a trigger, a
//! key another session inserted meanwhile — the loader finds by probing (`settle`).

use crate::domain::import::Mode;
use crate::pipeline::loaders::schema::quote_ident;
use crate::pipeline::loaders::{LoadError, LoadPlan};
use sqlx::{AssertSqlSafe, PgConnection, Row};

/// One constraint of the target table, as the catalogue describes it.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub name: String,
    pub kind: Kind,
}

/// What a constraint demands.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `CHECK (expression)` over these columns.
    Check {
        expression: String,
        columns: Vec<String>,
    },
    /// A primary key, unique constraint or plain unique index on these columns; `ordered` when
    /// its index orders the first column as the column itself does (a constraint's own index:
    /// default operator class and collation), so that the index gives that column's least and
    /// greatest value at once.
    Unique { columns: Vec<String>, ordered: bool },
    /// These columns must match `columns` of `table` (MATCH SIMPLE: a NULL passes).
    ForeignKey {
        columns: Vec<String>,
        table: String,
        parent: Vec<String>,
    },
}

/// The target's checkable constraints: CHECK, FOREIGN KEY, PRIMARY KEY, UNIQUE and unique
/// indexes on plain columns without a predicate.
pub async fn catalogue(conn: &mut PgConnection, table: &str) -> Result<Vec<Constraint>, LoadError> {
    // SQL: whether the index with the oid `index` orders its first column as the column does
    // (default operator class, the column's collation).
    let ordered = |index: &str| {
        format!(
            "EXISTS (SELECT 1 FROM pg_index x JOIN pg_opclass o ON o.oid = x.indclass[0]
                JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
                WHERE x.indexrelid = {index} AND o.opcdefault AND x.indcollation[0] = a.attcollation)"
        )
    };
    let sql = format!(
        "SELECT c.conname::text, c.contype::text, pg_get_expr(c.conbin, c.conrelid),
            ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
            c.confrelid::regclass::text,
            ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o),
            {}
         FROM pg_constraint c
         WHERE c.conrelid = $1::regclass AND c.contype IN ('c', 'f', 'p', 'u')
         UNION ALL
         SELECT i.indexrelid::regclass::text, 'u', NULL,
            ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
            NULL, NULL, {}
         FROM pg_index i
         WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL
           AND NOT 0 = ANY (i.indkey::int2[])
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
         ORDER BY 2, 1",
        ordered("c.conindid"),
        ordered("i.indexrelid")
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
    let mut constraints = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0)?;
        let kind = match row.try_get::<String, _>(1)?.as_str() {
            "c" => Kind::Check {
                expression: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                columns: row.try_get(3)?,
            },
            "f" => Kind::ForeignKey {
                columns: row.try_get(3)?,
                table: row.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
                parent: row
                    .try_get::<Option<Vec<String>>, _>(5)?
                    .unwrap_or_default(),
            },
            _ => Kind::Unique {
                columns: row.try_get(3)?,
                ordered: row.try_get(6)?,
            },
        };
        constraints.push(Constraint { name, kind });
    }
    Ok(constraints)
}

impl Constraint {
    /// The columns of the loaded rows that finding this constraint's violations reads.
    pub fn reads<'c>(&'c self, plan: &LoadPlan) -> Vec<&'c str> {
        let names = |columns: &'c [String]| columns.iter().map(String::as_str);
        match &self.kind {
            Kind::Check { columns, .. } | Kind::Unique { columns, .. } => names(columns).collect(),
            Kind::ForeignKey {
                columns,
                table,
                parent,
            } => {
                let mut read: Vec<&str> = names(columns).collect();
                if refers_to_itself(plan, table) {
                    read.extend(names(parent));
                }
                read
            }
        }
    }
}

/// Whether a foreign key's parent `table` is the table being loaded.
fn refers_to_itself(plan: &LoadPlan, table: &str) -> bool {
    table == plan.table.qualified() || table == plan.table.table
}

/// What the queries need to know besides the constraints.
pub struct Scope<'a> {
    pub plan: &'a LoadPlan,
    /// The table's columns that are NOT NULL.
    pub not_null: Vec<String>,
    /// Whether rows already in the table count (not for `replace`, which empties it).
    pub against_table: bool,
    /// The temporary table that holds the rows: `ferry_rows` (every column) or `ferry_keys`
    /// (only the columns the constraints read).
    pub rows: &'a str,
    /// The unique keys whose repeats Ferry marked in the rows' `ferry_twins` as it wrote them.
    pub repeats: &'a [Repeats],
}

/// A unique key whose repeats Ferry marks as it writes the rows: the bit of `ferry_twins` at its
/// place in [`Scope::repeats`] (at most 31 of them) is set on each row whose key an earlier row of the chunk may have had (a Bloom filter's answer:
/// every such row, and a few others). A key that is there more than once has all its rows
/// after the first marked, so the rows with an earlier twin are among the rows whose key a
/// marked row has — a few thousand of a chunk, not all of them.
#[derive(Debug, Clone)]
pub struct Repeats {
    /// The constraint's name.
    pub name: String,
    /// Its columns' places in the file's columns, ascending.
    pub places: Vec<usize>,
}

const NOT_BAD: &str = "NOT EXISTS (SELECT 1 FROM ferry_bad b WHERE b.line = r.ferry_line)";

/// Ends a subquery that looks rows up in the table being loaded. `OFFSET 0` keeps PostgreSQL
/// from turning the `EXISTS` into a join, so each row is one probe of the key's index (the
/// constraint's own, or the parent's key): a hash or merge join would read the whole table for
/// every chunk, and the table grows with the load — at 5,000,000 rows that was 1–2 s a chunk.
const PROBE: &str = " OFFSET 0";

/// Fills `ferry_bad` with the rows of `scope.rows` that break a constraint.
pub async fn find(
    conn: &mut PgConnection,
    scope: &Scope<'_>,
    constraints: &[Constraint],
) -> Result<(), LoadError> {
    let relation = scope.plan.table.table.replace('\'', "''");
    for column in &scope.not_null {
        let reason = format!(
            "constraint {}_{}_not_null: null value in column \"{}\" of relation \"{relation}\" violates not-null constraint",
            scope.plan.table.table, column, column
        );
        let condition = format!("r.{} IS NULL", quote_ident(column));
        mark(conn, scope.rows, &literal(&reason), &condition).await?;
    }
    for constraint in constraints {
        if let Kind::Check { expression, .. } = &constraint.kind {
            let reason = format!(
                "constraint {0}: new row for relation \"{relation}\" violates check constraint \"{0}\"",
                constraint.name
            );
            let condition = format!("({expression}) IS FALSE");
            mark(conn, scope.rows, &literal(&reason), &condition).await?;
        }
    }
    for constraint in constraints {
        if let Kind::ForeignKey {
            columns,
            table,
            parent,
        } = &constraint.kind
        {
            let (reason, condition) = orphan(scope, &constraint.name, columns, table, parent);
            mark(conn, scope.rows, &reason, &condition).await?;
        }
    }
    for constraint in constraints {
        // A key with a column the file does not fill gets its value from the table's default
        // (an identity, a sequence) only when inserted: the temporary table's values say
        // nothing about it, so such a key is left to the database.
        if let Kind::Unique { columns, ordered } = &constraint.kind
            && columns.iter().all(|c| scope.plan.columns.contains(c))
        {
            duplicates(conn, scope, &constraint.name, columns, *ordered).await?;
        }
    }
    Ok(())
}

/// Inserts into `ferry_bad` every row of `rows` not yet there that meets `condition`, with
/// `reason` (an SQL expression).
async fn mark(
    conn: &mut PgConnection,
    rows: &str,
    reason: &str,
    condition: &str,
) -> Result<(), LoadError> {
    let sql = format!(
        "INSERT INTO ferry_bad (line, reason) SELECT r.ferry_line, {reason} FROM {rows} r \
         WHERE {NOT_BAD} AND ({condition})"
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The reason and condition of a foreign key without a parent row.
fn orphan(
    scope: &Scope<'_>,
    name: &str,
    columns: &[String],
    table: &str,
    parent: &[String],
) -> (String, String) {
    let present: Vec<String> = columns
        .iter()
        .map(|c| format!("r.{} IS NOT NULL", quote_ident(c)))
        .collect();
    let matches = |alias: &str| {
        columns
            .iter()
            .zip(parent)
            .map(|(c, p)| format!("{alias}.{} = r.{}", quote_ident(p), quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    // The parent is the table being loaded: it grows chunk by chunk, so look each key up.
    let itself = refers_to_itself(scope.plan, table);
    let mut condition = format!(
        "{} AND NOT EXISTS (SELECT 1 FROM {table} p WHERE {}{})",
        present.join(" AND "),
        matches("p"),
        if itself { PROBE } else { "" }
    );
    // A table that refers to itself may find the parent among the rows being loaded.
    if itself {
        condition.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM {} q WHERE {})",
            scope.rows,
            matches("q")
        ));
    }
    let reason = format!(
        "{} || ') is not present in table \"{}\"'",
        key_text(name, columns),
        table.replace('\'', "''").replace('"', "")
    );
    (reason, condition)
}

/// `'constraint name: Key (a, b)=(' || a::text || ', ' || b::text` as SQL.
fn key_text(name: &str, columns: &[String]) -> String {
    let names = columns.join(", ");
    let values = columns
        .iter()
        .map(|c| format!("coalesce(r.{}::text, 'null')", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" || ', ' || ");
    format!(
        "{} || {values}",
        literal(&format!("constraint {name}: Key ({names})=("))
    )
}

/// Marks rows whose key is in the table already, then rows whose key an earlier row of the
/// file has. `ordered`: the key's index gives its first column's least and greatest value.
async fn duplicates(
    conn: &mut PgConnection,
    scope: &Scope<'_>,
    name: &str,
    columns: &[String],
    ordered: bool,
) -> Result<(), LoadError> {
    let plan = scope.plan;
    let is_upsert_key = plan.mode == Mode::Upsert && same_set(columns, &plan.key);
    if is_upsert_key {
        return Ok(());
    }
    let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let present: Vec<String> = quoted
        .iter()
        .map(|c| format!("r.{c} IS NOT NULL"))
        .collect();
    let present = present.join(" AND ");
    let equal = |alias: &str| {
        quoted
            .iter()
            .map(|c| format!("{alias}.{c} = r.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    // In an upsert, a row that meets its own key in the table updates it, so that row does not
    // collide with it; and only the last row of each key is written.
    let (not_itself, last_of_key) = if plan.mode == Mode::Upsert {
        let key: Vec<String> = plan.key.iter().map(|c| quote_ident(c)).collect();
        let same = |alias: &str| {
            key.iter()
                .map(|c| format!("{alias}.{c} = r.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        (
            format!(" AND NOT ({})", same("t")),
            format!(
                " AND NOT EXISTS (SELECT 1 FROM {} l WHERE {} AND l.ferry_line > r.ferry_line \
                 AND NOT EXISTS (SELECT 1 FROM ferry_bad b WHERE b.line = l.ferry_line))",
                scope.rows,
                same("l")
            ),
        )
    } else {
        (String::new(), String::new())
    };
    let exists = format!("{} || ') already exists'", key_text(name, columns));
    let table = plan.table.qualified();
    if scope.against_table {
        // A key whose first column lies outside the values the table has for it cannot be
        // there: only the others are looked up (new keys that grow, as ids and times do, cost
        // two index lookups a chunk instead of one per row).
        let within = match quoted.first() {
            Some(first) if ordered => format!(
                " AND r.{first} >= (SELECT t.{first} FROM {table} t WHERE t.{first} IS NOT NULL \
                 ORDER BY t.{first} LIMIT 1) \
                 AND r.{first} <= (SELECT t.{first} FROM {table} t WHERE t.{first} IS NOT NULL \
                 ORDER BY t.{first} DESC LIMIT 1)"
            ),
            _ => String::new(),
        };
        let condition = format!(
            "{present}{last_of_key}{within} AND EXISTS (SELECT 1 FROM {table} t WHERE {}{not_itself}{PROBE})",
            equal("t")
        );
        mark(conn, scope.rows, &exists, &condition).await?;
    }
    let listed = |alias: &str| {
        quoted
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let partition = listed("r");
    let rows = scope.rows;
    // Only the rows whose key a marked row has can have an earlier twin.
    let repeated = match scope.repeats.iter().position(|r| r.name == name) {
        Some(bit) => format!(
            " AND ({partition}) IN (SELECT {} FROM {rows} c WHERE c.ferry_twins & {} <> 0)",
            listed("c"),
            1i32 << bit
        ),
        None => String::new(),
    };
    let sql = format!(
        "INSERT INTO ferry_bad (line, reason)
         SELECT s.ferry_line, s.reason || ' (line ' || s.first || ')' FROM (
             SELECT r.ferry_line, {exists} AS reason,
                    row_number() OVER w AS n, first_value(r.ferry_line) OVER w AS first
             FROM {rows} r WHERE {NOT_BAD} AND {present}{last_of_key}{repeated}
             WINDOW w AS (PARTITION BY {partition} ORDER BY r.ferry_line)) s
         WHERE s.n > 1"
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|c| b.contains(c))
}

/// A string as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
