//! The loader conformance suite: every behaviour of `pipeline::import` over a `Loader` runs
//! against PostgreSQL and SQLite — modes, a retry after a commit whose success was lost,
//! cancellation, and every kind of constraint violation as a per-row reject. No HTTP, no queue.

use crate::helpers::{fresh_postgres, fresh_sqlite};
use ferry::config::{ConnectionSettings, Secret, Settings};
use ferry::domain::{ImportRequest, Progress};
use ferry::jobs::import::prepare::{Creation, Prepared, connect, created, prepare};
use ferry::pipeline::import::read::Reopen;
use ferry::pipeline::import::{Loaded, Run, run};
use ferry::pipeline::loaders::{Checkpoint, LoadError, TargetConn};
use ferry::pipeline::records::ResumePoint;
use ferry::pipeline::rejects::{Rejected, Rejects};
use serde_json::{Value, json};
use std::io::Read;
use tokio_util::sync::CancellationToken;

/// Parents, and a table with every kind of constraint both databases have.
const ORDERS: &str = "CREATE TABLE customers (id integer PRIMARY KEY, name text);
    INSERT INTO customers (id, name) VALUES (1, 'a'), (2, 'b');
    CREATE TABLE orders (id integer PRIMARY KEY, customer integer REFERENCES customers (id),
        qty integer CONSTRAINT orders_qty_check CHECK (qty > 0), code text UNIQUE,
        flag integer NOT NULL DEFAULT (NULLIF(1, 1)), note text);";

/// One target database.
pub struct Db {
    pub url: String,
    pub postgres: bool,
}

impl Db {
    /// A database of its own on the test PostgreSQL server.
    pub async fn postgres() -> Self {
        Self {
            url: fresh_postgres().await,
            postgres: true,
        }
    }

    /// A database file of its own for SQLite.
    pub fn sqlite() -> Self {
        Self {
            url: fresh_sqlite(),
            postgres: false,
        }
    }

    pub async fn sql(&self, sql: &str) {
        match connect(&self.url).await.unwrap() {
            TargetConn::Postgres(mut c) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            TargetConn::Sqlite(mut c) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
    }

    /// The rows of `SELECT` (one text column) as strings, NULL as `-`.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let rows: Vec<Option<String>> = match connect(&self.url).await.unwrap() {
            TargetConn::Postgres(mut c) => sqlx::query_scalar(sql).fetch_all(&mut c).await,
            TargetConn::Sqlite(mut c) => sqlx::query_scalar(sql).fetch_all(&mut c).await,
        }
        .unwrap();
        rows.into_iter()
            .map(|r| r.unwrap_or_else(|| "-".into()))
            .collect()
    }

    /// The ids of `table`, in order, comma-separated.
    async fn ids(&self, table: &str) -> String {
        self.strings(&format!("SELECT CAST(id AS text) FROM {table} ORDER BY id"))
            .await
            .join(",")
    }

    /// Imports `file` into the table of `spec` as job `job`.
    async fn import_as(
        &self,
        job: &str,
        spec: Value,
        file: impl Read + Send + 'static,
        stop: CancellationToken,
    ) -> (Result<Loaded, LoadError>, Vec<Rejected>) {
        let (result, rejects, _) = self.import_with(job, spec, file, None, stop, None).await;
        (result, rejects)
    }

    /// Imports `file` into the table of `spec` as job `job`; a table to create is inferred
    /// from `sample` (the same file, read again, as the worker reads it again from storage);
    /// `reopen` opens the file again at an offset, for a chunked retry to enter it there.
    pub async fn import_with(
        &self,
        job: &str,
        spec: Value,
        file: impl Read + Send + 'static,
        sample: Option<Vec<u8>>,
        stop: CancellationToken,
        reopen: Option<Reopen>,
    ) -> (Result<Loaded, LoadError>, Vec<Rejected>, Prepared) {
        let mut settings = Settings::default();
        settings.connections.insert(
            "main".into(),
            ConnectionSettings {
                url: Secret::new(self.url.clone()),
                allow_sql: false,
                statement_timeout: std::time::Duration::from_secs(30),
                max_connections: 2,
                scopes: Vec::new(),
            },
        );
        let request: ImportRequest = serde_json::from_value(spec).unwrap();
        let spec = request.parse("2026-12-02").unwrap();
        let mut prepared = prepare(&settings, &spec).await.unwrap();
        if let (Creation::Pending, Some(bytes)) = (&prepared.creation, sample) {
            let new = ferry::pipeline::import::sample::sample(std::io::Cursor::new(bytes), &spec)
                .unwrap();
            prepared = created(prepared, &spec, new).unwrap();
        }
        let mut loader = connect(&self.url).await.unwrap().into_loader();
        assert_eq!(loader.already_loaded(job).await.unwrap(), None);
        let (rejects, mut rx) = Rejects::channel(spec.max_errors);
        let collected = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(group) = rx.recv().await {
                all.extend(group);
            }
            all.sort_by_key(|r| r.line);
            all
        });
        let (header, _) = tokio::sync::oneshot::channel();
        let result = run(
            file,
            loader.as_mut(),
            Run {
                job: job.to_owned(),
                spec: &spec,
                prepared: &prepared,
                rejects,
                header,
                progress: tokio::sync::watch::channel(Progress::default()).0,
                stop,
                reopen,
            },
        )
        .await;
        (result, collected.await.unwrap(), prepared)
    }

    async fn import(&self, spec: Value, file: &str) -> (Loaded, Vec<Rejected>) {
        let job = uuid::Uuid::new_v4().to_string();
        let file = std::io::Cursor::new(file.as_bytes().to_vec());
        let (result, rejects) = self
            .import_as(&job, spec, file, CancellationToken::new())
            .await;
        (result.unwrap(), rejects)
    }
}

/// Lines and `_errors` of rejects.
fn lines(rejects: &[Rejected]) -> Vec<u64> {
    rejects.iter().map(|r| r.line).collect()
}

fn spec(table: &str) -> Value {
    json!({"target": {"table": table}, "max_errors": 100})
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Db::postgres().await).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Db::sqlite()).await;
            })*
        }
    };
}

conformance!(
    append_loads_every_row_once_and_records_the_job,
    replace_swaps_the_rows_and_upsert_merges_on_the_key,
    a_retry_after_a_commit_whose_success_was_lost_finds_the_job_loaded,
    a_cancelled_load_leaves_the_table_untouched,
    values_of_every_type_read_back_as_they_were_validated,
    a_key_already_in_the_table_rejects_only_that_row,
    a_key_repeated_in_the_file_rejects_the_later_row,
    a_foreign_key_without_a_parent_rejects_only_that_row,
    a_failed_check_rejects_only_that_row,
    a_null_in_a_not_null_column_rejects_only_that_row,
    a_row_whose_earlier_twin_was_rejected_is_judged_on_its_own,
    constraint_rejects_count_against_max_errors,
    upsert_applies_a_repeated_key_in_file_order_and_rejects_other_violations,
    replace_rejects_rows_that_break_constraints_and_loads_the_rest,
    a_key_the_database_fills_does_not_make_rows_of_a_refused_chunk_collide,
    a_chunked_load_commits_every_chunk_with_its_checkpoint,
    a_chunked_retry_resumes_after_its_last_checkpoint_and_loads_no_row_twice,
    a_chunked_retry_enters_the_file_at_the_checkpoint_byte_offset,
    a_checkpoint_table_of_an_earlier_version_gets_the_offset_columns,
);

async fn append_loads_every_row_once_and_records_the_job(db: Db) {
    db.sql("CREATE TABLE t (id integer PRIMARY KEY, v text)")
        .await;
    let (loaded, rejects) = db.import(spec("t"), "id,v\n1,a\n2,b\n3,\n").await;
    assert_eq!((loaded.inserted, loaded.rejected), (3, 0));
    assert!(rejects.is_empty());
    assert_eq!(db.ids("t").await, "1,2,3");
    assert_eq!(
        db.strings("SELECT v FROM t ORDER BY id").await,
        ["a", "b", "-"]
    );
}

async fn replace_swaps_the_rows_and_upsert_merges_on_the_key(db: Db) {
    db.sql("CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'old'), (2, 'old');")
        .await;
    let upsert = json!({"target": {"table": "t"}, "mode": "upsert", "key": ["id"]});
    let (loaded, _) = db.import(upsert, "id,v\n2,new\n3,new\n").await;
    assert_eq!(loaded.inserted, 2);
    assert_eq!(
        db.strings("SELECT v FROM t ORDER BY id").await,
        ["old", "new", "new"]
    );
    let replace = json!({"target": {"table": "t"}, "mode": "replace"});
    let (loaded, _) = db.import(replace, "id,v\n9,only\n").await;
    assert_eq!(loaded.inserted, 1);
    assert_eq!(db.ids("t").await, "9");
}

async fn a_retry_after_a_commit_whose_success_was_lost_finds_the_job_loaded(db: Db) {
    db.sql("CREATE TABLE t (id integer)").await;
    let job = uuid::Uuid::new_v4().to_string();
    let file = std::io::Cursor::new(b"id\n1\n2\n".to_vec());
    let (result, _) = db
        .import_as(&job, spec("t"), file, CancellationToken::new())
        .await;
    assert_eq!(result.unwrap().inserted, 2);
    // The worker died after COMMIT: the next attempt asks before it loads anything.
    let mut loader = connect(&db.url).await.unwrap().into_loader();
    assert_eq!(loader.already_loaded(&job).await.unwrap(), Some(2));
    assert_eq!(db.ids("t").await, "1,2");
}

/// Gives the file in pieces (each smaller than the reader's buffer) and cancels the load half
/// way through.
pub struct CancelAfterFirst {
    pub pieces: Vec<Vec<u8>>,
    pub stop: CancellationToken,
}

impl Read for CancelAfterFirst {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pieces.len() < 100 {
            self.stop.cancel();
        }
        let Some(piece) = self.pieces.pop() else {
            return Ok(0);
        };
        assert!(piece.len() <= buf.len());
        buf[..piece.len()].copy_from_slice(&piece);
        Ok(piece.len())
    }
}

async fn a_cancelled_load_leaves_the_table_untouched(db: Db) {
    db.sql("CREATE TABLE t (id integer, v text)").await;
    let mut pieces: Vec<Vec<u8>> = (0..200)
        .map(|p| {
            (0..1000)
                .map(|i| format!("{},{}\n", p * 1000 + i, "x".repeat(30)))
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    pieces.insert(0, b"id,v\n".to_vec());
    pieces.reverse();
    let stop = CancellationToken::new();
    let file = CancelAfterFirst {
        pieces,
        stop: stop.clone(),
    };
    let (result, _) = db.import_as("cancelled", spec("t"), file, stop).await;
    assert!(matches!(result, Err(LoadError::Stopped)), "{result:?}");
    assert_eq!(db.ids("t").await, "");
    let mut loader = connect(&db.url).await.unwrap().into_loader();
    assert_eq!(loader.already_loaded("cancelled").await.unwrap(), None);
}

async fn values_of_every_type_read_back_as_they_were_validated(db: Db) {
    let table = if db.postgres {
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE t (id smallint, i integer, b bigint, n numeric(12,4), r real, d double precision,
            f boolean, t text, v varchar(5), c char(3), u uuid, day date, at timestamp,
            atz timestamptz, j json, jb jsonb, m mood)"
    } else {
        "CREATE TABLE t (id SMALLINT, i INTEGER, b BIGINT, n NUMERIC(12,4), r REAL, d DOUBLE,
            f BOOLEAN, t TEXT, v VARCHAR(5), c CHAR(3), u UUID, day DATE, at TIMESTAMP,
            atz TEXT, j JSON, jb JSON, m TEXT)"
    };
    db.sql(table).await;
    let file = "id,i,b,n,r,d,f,t,v,c,u,day,at,atz,j,jb,m\n\
        1,-2147483648,9223372036854775807,-12345678.0012,1.5,0.1,yes,tab\there,abc,xy,\
        {67E55044-10B1-426F-9247-BB680E5FE0C8},1999-12-31,2000-01-01 00:00:00.000001,\
        2026-12-02T10:00:00.5+02:00,\"{\"\"a\"\": [1, 2]}\",\"{\"\"b\"\": null}\",sad\n\
        2,0,0,0.0001,-0,1e21,f,,,,,0001-01-01,9999-12-31 23:59:59,1970-01-01T00:00:00Z,1,[],happy\n\
        3,,,,,,,,,,,,,,,,\n";
    let (loaded, rejects) = db.import(spec("t"), file).await;
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(loaded.inserted, 3);
    let text = if db.postgres {
        "concat_ws('|', id, i, b, n, r, d, f, t, v, c, u, day, at, atz AT TIME ZONE 'UTC', j, jb, m)"
    } else {
        "CAST(id AS text) || '|' || coalesce(CAST(f AS text), '') || '|' || coalesce(u, '')"
    };
    let rows = db
        .strings(&format!("SELECT {text} FROM t ORDER BY id"))
        .await;
    if db.postgres {
        assert_eq!(
            rows,
            [
                "1|-2147483648|9223372036854775807|-12345678.0012|1.5|0.1|t|tab\there|abc|xy |\
                 67e55044-10b1-426f-9247-bb680e5fe0c8|1999-12-31|2000-01-01 00:00:00.000001|\
                 2026-12-02 08:00:00.5|{\"a\": [1, 2]}|{\"b\": null}|sad",
                "2|0|0|0.0001|-0|1e+21|f|0001-01-01|9999-12-31 23:59:59|1970-01-01 00:00:00|1|[]|happy",
                "3",
            ]
        );
    } else {
        assert_eq!(
            rows,
            ["1|1|67e55044-10b1-426f-9247-bb680e5fe0c8", "2|0|", "3||"]
        );
    }
}

async fn a_key_already_in_the_table_rejects_only_that_row(db: Db) {
    db.sql(ORDERS).await;
    db.sql("INSERT INTO orders (id, customer, qty, flag) VALUES (5, 1, 1, 0)")
        .await;
    let file = "id,customer,qty,flag\n4,1,1,0\n5,2,2,0\n6,2,3,0\n";
    let (loaded, rejects) = db.import(spec("orders"), file).await;
    assert_eq!((loaded.inserted, loaded.rejected), (2, 1));
    assert_eq!(lines(&rejects), [3]);
    let expected = if db.postgres {
        "constraint orders_pkey: Key (id)=(5) already exists"
    } else {
        "constraint orders.id: UNIQUE constraint failed: orders.id"
    };
    assert_eq!(rejects[0].errors, expected);
    assert_eq!(
        rejects[0].fields.iter().collect::<Vec<_>>(),
        [&b"5"[..], b"2", b"2", b"0"],
        "the file's own fields"
    );
    assert_eq!(db.ids("orders").await, "4,5,6");
    assert_eq!(
        db.strings("SELECT CAST(qty AS text) FROM orders WHERE id = 5")
            .await,
        ["1"]
    );
}

async fn a_key_repeated_in_the_file_rejects_the_later_row(db: Db) {
    db.sql(ORDERS).await;
    let file = "id,customer,qty,code,flag\n1,1,1,A,0\n2,1,1,B,0\n1,2,2,C,0\n3,1,1,B,0\n";
    let (loaded, rejects) = db.import(spec("orders"), file).await;
    assert_eq!((loaded.inserted, loaded.rejected), (2, 2));
    assert_eq!(lines(&rejects), [4, 5]);
    if db.postgres {
        assert_eq!(
            rejects[0].errors,
            "constraint orders_pkey: Key (id)=(1) already exists (line 2)"
        );
        assert_eq!(
            rejects[1].errors,
            "constraint orders_code_key: Key (code)=(B) already exists (line 3)"
        );
    } else {
        assert!(rejects[1].errors.contains("orders.code"), "{rejects:?}");
    }
    assert_eq!(db.ids("orders").await, "1,2");
    assert_eq!(
        db.strings("SELECT code FROM orders ORDER BY id").await,
        ["A", "B"]
    );
}

async fn a_foreign_key_without_a_parent_rejects_only_that_row(db: Db) {
    db.sql(ORDERS).await;
    let file = "id,customer,qty,flag\n1,1,1,0\n2,99,1,0\n3,,1,0\n";
    let (loaded, rejects) = db.import(spec("orders"), file).await;
    assert_eq!((loaded.inserted, loaded.rejected), (2, 1));
    assert_eq!(lines(&rejects), [3]);
    let expected = if db.postgres {
        "constraint orders_customer_fkey: Key (customer)=(99) is not present in table \"customers\""
    } else {
        "constraint FOREIGN KEY: FOREIGN KEY constraint failed"
    };
    assert_eq!(rejects[0].errors, expected);
    assert_eq!(db.ids("orders").await, "1,3");
}

async fn a_failed_check_rejects_only_that_row(db: Db) {
    db.sql(ORDERS).await;
    let file = "id,customer,qty,flag\n1,1,0,0\n2,1,5,0\n3,1,-1,0\n";
    let (loaded, rejects) = db.import(spec("orders"), file).await;
    assert_eq!((loaded.inserted, loaded.rejected), (1, 2));
    assert_eq!(lines(&rejects), [2, 4]);
    let expected = if db.postgres {
        "constraint orders_qty_check: new row for relation \"orders\" violates check constraint \"orders_qty_check\""
    } else {
        "constraint orders_qty_check: CHECK constraint failed: orders_qty_check"
    };
    assert_eq!(rejects[0].errors, expected);
    assert_eq!(db.ids("orders").await, "2");
}

async fn a_null_in_a_not_null_column_rejects_only_that_row(db: Db) {
    // `flag` is NOT NULL with a default of NULL: the validator cannot know, the database does.
    db.sql(ORDERS).await;
    let file = "id,customer,qty,flag\n1,1,1,0\n";
    db.import(spec("orders"), file).await;
    let (loaded, rejects) = db.import(spec("orders"), "id,qty\n2,1\n").await;
    assert_eq!((loaded.inserted, loaded.rejected), (0, 1));
    assert_eq!(lines(&rejects), [2]);
    let expected = if db.postgres {
        "constraint orders_flag_not_null: null value in column \"flag\" of relation \"orders\" violates not-null constraint"
    } else {
        "constraint orders.flag: NOT NULL constraint failed: orders.flag"
    };
    assert_eq!(rejects[0].errors, expected);
    assert_eq!(db.ids("orders").await, "1");
}

async fn a_row_whose_earlier_twin_was_rejected_is_judged_on_its_own(db: Db) {
    db.sql(ORDERS).await;
    // Line 2 fails its CHECK, so line 3 with the same id is the first of its key.
    let file = "id,customer,qty,flag\n1,1,0,0\n1,1,1,0\n";
    let (loaded, rejects) = db.import(spec("orders"), file).await;
    assert_eq!((loaded.inserted, loaded.rejected), (1, 1));
    assert_eq!(lines(&rejects), [2]);
    assert_eq!(
        db.strings("SELECT CAST(qty AS text) FROM orders").await,
        ["1"]
    );
}

async fn constraint_rejects_count_against_max_errors(db: Db) {
    db.sql(ORDERS).await;
    let spec = json!({"target": {"table": "orders"}, "max_errors": 1});
    let file = "id,customer,qty,flag\n1,1,1,0\n2,99,1,0\n3,1,0,0\n";
    let job = uuid::Uuid::new_v4().to_string();
    let file = std::io::Cursor::new(file.as_bytes().to_vec());
    let (result, _) = db
        .import_as(&job, spec, file, CancellationToken::new())
        .await;
    match result {
        Err(LoadError::Producer { code, .. }) => assert_eq!(code, "too_many_errors"),
        other => panic!("expected too_many_errors, got {other:?}"),
    }
    assert_eq!(db.ids("orders").await, "", "nothing loaded");
}

async fn upsert_applies_a_repeated_key_in_file_order_and_rejects_other_violations(db: Db) {
    db.sql(ORDERS).await;
    db.sql("INSERT INTO orders (id, customer, qty, code, flag) VALUES (1, 1, 1, 'A', 0), (2, 1, 1, 'B', 0)")
        .await;
    let upsert =
        json!({"target": {"table": "orders"}, "mode": "upsert", "key": ["id"], "max_errors": 10});
    // id 1 three times (last wins); id 1 keeps its own code A; id 3 takes code B, which id 2
    // has; id 4 has no parent.
    let file =
        "id,customer,qty,code,flag\n1,1,5,A,0\n1,2,6,A,0\n3,1,1,B,0\n1,2,7,A,0\n4,99,1,D,0\n";
    let (loaded, rejects) = db.import(upsert, file).await;
    assert_eq!(lines(&rejects), [4, 6], "{rejects:?}");
    assert_eq!((loaded.inserted, loaded.rejected), (3, 2));
    assert_eq!(db.ids("orders").await, "1,2");
    assert_eq!(
        db.strings("SELECT CAST(qty AS text) || customer FROM orders WHERE id = 1")
            .await,
        ["72"]
    );
}

async fn replace_rejects_rows_that_break_constraints_and_loads_the_rest(db: Db) {
    db.sql(ORDERS).await;
    db.sql("INSERT INTO orders (id, customer, qty, flag) VALUES (7, 1, 1, 0)")
        .await;
    let replace = json!({"target": {"table": "orders"}, "mode": "replace"});
    // Id 7 was in the table, but replace empties it first: only the repeat of 8 is a duplicate.
    let file = "id,customer,qty,flag\n7,1,1,0\n8,1,1,0\n8,2,2,0\n9,99,1,0\n10,1,-3,0\n";
    let (loaded, rejects) = db.import(replace, file).await;
    assert_eq!(lines(&rejects), [4, 5, 6]);
    assert_eq!((loaded.inserted, loaded.rejected), (2, 3));
    assert_eq!(db.ids("orders").await, "7,8");
}

async fn a_key_the_database_fills_does_not_make_rows_of_a_refused_chunk_collide(db: Db) {
    let table = if db.postgres {
        "CREATE TABLE t (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
         qty integer CHECK (qty > 0), at date NOT NULL DEFAULT CURRENT_DATE);
         INSERT INTO t (qty) VALUES (1), (1);"
    } else {
        "CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER CHECK (qty > 0), \
         at DATE NOT NULL DEFAULT CURRENT_DATE);
         INSERT INTO t (qty) VALUES (1), (1);"
    };
    db.sql(table).await;
    let (loaded, rejects) = db.import(spec("t"), "qty\n5\n0\n6\n").await;
    assert_eq!(lines(&rejects), [3], "{rejects:?}");
    assert_eq!((loaded.inserted, loaded.rejected), (2, 1));
    assert_eq!(
        db.strings("SELECT CAST(qty AS text) FROM t ORDER BY id")
            .await,
        ["1", "1", "5", "6"]
    );
}

// PostgreSQL only: what SQLite does not have (exclusion constraints, types it cannot store) or
// does not do (chunks, each in a savepoint).

#[tokio::test]
async fn postgres_an_exclusion_constraint_rejects_the_overlapping_row_with_its_reason() {
    let db = Db::postgres().await;
    // `tsrange` has no binary encoder here: this load goes as text COPY.
    db.sql(
        "CREATE TABLE rooms (id integer PRIMARY KEY, during tsrange,
            CONSTRAINT rooms_no_overlap EXCLUDE USING gist (during WITH &&))",
    )
    .await;
    let file = "id,during\n1,\"[2026-01-01,2026-01-05)\"\n2,\"[2026-01-04,2026-01-06)\"\n\
                3,\"[2026-01-05,2026-01-07)\"\n4,\"[2026-01-06,2026-01-08)\"\n";
    let (loaded, rejects) = db.import(spec("rooms"), file).await;
    assert_eq!(lines(&rejects), [3, 5]);
    assert_eq!((loaded.inserted, loaded.rejected), (2, 2));
    assert!(
        rejects[0].errors.starts_with(
            "constraint rooms_no_overlap: conflicting key value violates exclusion constraint"
        ),
        "{rejects:?}"
    );
    assert_eq!(db.ids("rooms").await, "1,3");
}

#[tokio::test]
async fn postgres_a_table_that_refers_to_itself_finds_parents_in_the_table_and_in_the_file() {
    let db = Db::postgres().await;
    db.sql(
        "CREATE TABLE nodes (id integer PRIMARY KEY, parent integer REFERENCES nodes (id));
         INSERT INTO nodes VALUES (1, NULL);",
    )
    .await;
    // 2's parent is in the table, 3's comes later in the file, 99 is nowhere.
    let file = "id,parent\n2,1\n3,4\n4,2\n5,99\n";
    let (loaded, rejects) = db.import(spec("nodes"), file).await;
    assert_eq!(lines(&rejects), [5]);
    assert_eq!(
        rejects[0].errors,
        "constraint nodes_parent_fkey: Key (parent)=(99) is not present in table \"nodes\""
    );
    assert_eq!((loaded.inserted, loaded.rejected), (3, 1));
    assert_eq!(db.ids("nodes").await, "1,2,3,4");
}

#[tokio::test]
async fn postgres_a_refusal_no_query_foresees_in_a_binary_load_is_found_beside_the_foreseen_ones() {
    let db = Db::postgres().await;
    // Every column goes as binary COPY, so the bad rows are first looked for in the narrow
    // temporary table; the exclusion constraint is not among what the set queries know, so the
    // copy of the good rows is refused and the chunk is settled row by row.
    db.sql(
        "CREATE TABLE codes (id integer PRIMARY KEY, code integer CHECK (code > 0), note text,
            CONSTRAINT codes_one_each EXCLUDE USING btree (code WITH =))",
    )
    .await;
    let file = "id,code,note\n1,10,a\n2,0,b\n3,10,c\n1,11,d\n5,12,e\n";
    let (loaded, rejects) = db.import(spec("codes"), file).await;
    assert_eq!(lines(&rejects), [3, 4, 5]);
    assert_eq!((loaded.inserted, loaded.rejected), (2, 3));
    assert!(
        rejects[0].errors.contains("codes_code_check"),
        "{rejects:?}"
    );
    assert!(
        rejects[1]
            .errors
            .starts_with("constraint codes_one_each: conflicting key value"),
        "{rejects:?}"
    );
    assert_eq!(
        rejects[2].errors,
        "constraint codes_pkey: Key (id)=(1) already exists (line 2)"
    );
    assert_eq!(db.ids("codes").await, "1,5");
}

/// One generated row of `postgres_repeated_keys_are_judged_as_the_set_queries_define_them`.
#[derive(Clone)]
struct Pair {
    id: i64,
    a: Option<String>,
    b: Option<i32>,
    qty: i32,
    tag: Option<String>,
}

/// What PostgreSQL's set queries make of `rows` (line 2 onwards) loaded into `pairs` holding
/// `present`: a failed CHECK first; then each unique key in the catalogue's order (the primary
/// key, then by name), among the rows not yet rejected: a key in the table, then a key an
/// earlier row has (its first line named). Returns (line, reason) of each rejected row.
fn judge_pairs(rows: &[Pair], present: &[Pair]) -> Vec<(u64, String)> {
    type Key = fn(&Pair) -> Option<String>;
    let keys: [(&str, &str, Key); 3] = [
        ("pairs_pkey", "id", |p| Some(p.id.to_string())),
        ("pairs_a_b_key", "a, b", |p| {
            Some(format!("{}, {}", p.a.as_ref()?, p.b?))
        }),
        ("pairs_tag", "tag", |p| p.tag.clone()),
    ];
    let mut bad: std::collections::BTreeMap<u64, String> = Default::default();
    for (i, row) in rows.iter().enumerate() {
        if row.qty <= 0 {
            bad.insert(i as u64 + 2, "constraint pairs_qty_check: new row for relation \"pairs\" violates check constraint \"pairs_qty_check\"".into());
        }
    }
    for (name, columns, key) in keys {
        let in_table: std::collections::HashSet<String> = present.iter().filter_map(key).collect();
        let mut marked = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let line = i as u64 + 2;
            if let Some(k) = key(row).filter(|k| !bad.contains_key(&line) && in_table.contains(k)) {
                marked.push((
                    line,
                    format!("constraint {name}: Key ({columns})=({k}) already exists"),
                ));
            }
        }
        bad.extend(marked);
        let mut first: std::collections::HashMap<String, u64> = Default::default();
        let mut marked = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let line = i as u64 + 2;
            let Some(k) = key(row).filter(|_| !bad.contains_key(&line)) else {
                continue;
            };
            match first.get(&k) {
                Some(earlier) => marked.push((
                    line,
                    format!(
                        "constraint {name}: Key ({columns})=({k}) already exists (line {earlier})"
                    ),
                )),
                None => {
                    first.insert(k, line);
                }
            }
        }
        bad.extend(marked);
    }
    bad.into_iter().collect()
}

#[tokio::test]
async fn postgres_repeated_keys_are_judged_as_the_set_queries_define_them() {
    use rand::{Rng, SeedableRng};
    let db = Db::postgres().await;
    // A primary key, a two-column UNIQUE whose columns may be NULL, and a unique index whose
    // operator class orders text differently from the column (so that its key is looked up in
    // the table row by row, where the others are looked up only within the table's range).
    db.sql(
        "CREATE TABLE pairs (id bigint PRIMARY KEY, a text, b integer,
            qty integer CONSTRAINT pairs_qty_check CHECK (qty > 0), tag text, UNIQUE (a, b));
         CREATE UNIQUE INDEX pairs_tag ON pairs (tag text_pattern_ops);",
    )
    .await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let present: Vec<Pair> = (0..200)
        .map(|i| Pair {
            id: 5_000 + 10 * i,
            a: Some(format!("a{}", i % 50)),
            b: Some(10_000 + i as i32),
            qty: 1,
            tag: Some(format!("t{}", 100_000 + i)),
        })
        .collect();
    let values: Vec<String> = present
        .iter()
        .map(|p| {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let b = p.b.unwrap_or_default();
            format!("({}, '{}', {b}, 1, '{}')", p.id, text(&p.a), text(&p.tag))
        })
        .collect();
    db.sql(&format!("INSERT INTO pairs VALUES {}", values.join(", ")))
        .await;
    // Counts the rows the database is asked to insert by anything but COPY (a sequence is not
    // transactional): only a chunk settled row by row, after the copy of its good rows was
    // refused, inserts rows with INSERT.
    db.sql(
        "CREATE SEQUENCE pairs_inserted;
         CREATE FUNCTION pairs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
             IF current_query() NOT ILIKE 'COPY%' THEN PERFORM nextval('pairs_inserted'); END IF;
             RETURN NEW; END $$;
         CREATE TRIGGER pairs_inserted BEFORE INSERT ON pairs
             FOR EACH ROW EXECUTE FUNCTION pairs_inserted();",
    )
    .await;
    let mut rows: Vec<Pair> = Vec::new();
    for n in 0..5_000i64 {
        let earlier = |rng: &mut rand_chacha::ChaCha8Rng, rows: &[Pair]| {
            rows.get(rng.random_range(0..rows.len().max(1))).cloned()
        };
        let id = match rng.random_range(0..100) {
            // a key of an earlier row, a key in the table, a new key below the table's
            0..3 => earlier(&mut rng, &rows).map_or(n, |p| p.id),
            3..5 => present[rng.random_range(0..present.len())].id,
            5..7 => n - 10_000,
            // or, mostly, a new key above it, and between its keys
            7..10 => 5_001 + 10 * rng.random_range(0..200),
            _ => 100_000 + n,
        };
        let (a, b) = match rng.random_range(0..100) {
            0..3 => earlier(&mut rng, &rows).map_or((None, None), |p| (p.a, p.b)),
            3..5 => {
                let p = &present[rng.random_range(0..present.len())];
                (p.a.clone(), p.b)
            }
            5..10 => (None, Some(rng.random_range(0..5))),
            10..15 => (Some(format!("a{}", rng.random_range(0..5))), None),
            _ => (
                Some(format!("a{}", rng.random_range(0..300))),
                Some(rng.random_range(0..3_000)),
            ),
        };
        let tag = match rng.random_range(0..100) {
            0..3 => earlier(&mut rng, &rows).and_then(|p| p.tag),
            3..5 => present[rng.random_range(0..present.len())].tag.clone(),
            5..10 => None,
            _ => Some(format!("t{n}")),
        };
        let qty = if rng.random_range(0..100) < 3 { 0 } else { 1 };
        rows.push(Pair { id, a, b, qty, tag });
    }
    let mut file = String::from("id,a,b,qty,tag\n");
    for p in &rows {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let b = p.b.map(|b| b.to_string()).unwrap_or_default();
        file.push_str(&format!(
            "{},{},{b},{},{}\n",
            p.id,
            text(&p.a),
            p.qty,
            text(&p.tag)
        ));
    }
    let expected = judge_pairs(&rows, &present);
    let spec = json!({"target": {"table": "pairs"}, "max_errors": 100_000});
    let (loaded, mut rejects) = db.import(spec, &file).await;
    rejects.sort_by_key(|r| r.line);
    let got: Vec<(u64, String)> = rejects.iter().map(|r| (r.line, r.errors.clone())).collect();
    assert!(
        expected.len() > 500,
        "the file has many repeats: {}",
        expected.len()
    );
    assert_eq!(got, expected);
    assert_eq!(
        (loaded.inserted, loaded.rejected),
        ((rows.len() - expected.len()) as u64, expected.len() as u64)
    );
    // Every row went in by COPY: the set queries found every repeated key.
    assert_eq!(
        db.strings("SELECT is_called::text FROM pairs_inserted")
            .await,
        ["false"]
    );
    let count = 200 + rows.len() - expected.len();
    assert_eq!(
        db.strings("SELECT count(*)::text FROM pairs").await,
        [count.to_string()]
    );
}

#[tokio::test]
async fn postgres_chunks_that_fail_are_settled_alone_and_clean_chunks_load_as_they_are() {
    let db = Db::postgres().await;
    db.sql("CREATE TABLE t (id integer PRIMARY KEY, qty integer CHECK (qty > 0), note text)")
        .await;
    // About 230 bytes a row: 160,000 rows make five chunks of 8 MiB (about 36,000 rows each).
    // The first is clean; the second and third are dirty, so each is settled while the next one
    // is received; the fourth is clean, so the fifth, received while it was settled, is settled
    // alone. Whichever chunks the rows fall in, the outcome must be the same.
    let note = "n".repeat(200);
    let mut file = String::from("id,qty,note\n");
    for id in 1..=160_000 {
        let (id, qty) = match id {
            60_000 => (5, 1),        // a key of the first chunk, in a later one
            80_000 => (80_000, 0),   // a CHECK in the third chunk
            158_000 => (158_000, 0), // and one in the last
            id => (id, 1),
        };
        file.push_str(&format!("{id},{qty},{note}\n"));
    }
    let (loaded, rejects) = db.import(spec("t"), &file).await;
    assert_eq!(lines(&rejects), [60_001, 80_001, 158_001]);
    assert_eq!(
        rejects[0].errors,
        "constraint t_pkey: Key (id)=(5) already exists"
    );
    assert_eq!((loaded.inserted, loaded.rejected), (159_997, 3));
    assert_eq!(
        db.strings(
            "SELECT count(*)::text || ' ' || count(DISTINCT id)::text || ' ' || \
             bool_and(qty > 0)::text FROM t"
        )
        .await,
        ["159997 159997 true"]
    );
}

async fn a_chunked_load_commits_every_chunk_with_its_checkpoint(db: Db) {
    db.sql("CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t VALUES (9, 'old');")
        .await;
    let job = uuid::Uuid::new_v4().to_string();
    let chunked = json!({"target": {"table": "t"}, "max_errors": 10,
        "commit": "chunked", "chunk_rows": 3});
    // Nine rows pass the validator (x does not): three chunks; 9 is refused by the table.
    let file = "id,v\n1,a\n2,a\n3,a\nx,a\n4,a\n5,a\n9,a\n6,a\n7,a\n8,a\n";
    let file = std::io::Cursor::new(file.as_bytes().to_vec());
    let (result, rejects) = db
        .import_as(&job, chunked, file, CancellationToken::new())
        .await;
    let loaded = result.unwrap();
    assert_eq!((loaded.inserted, loaded.rejected, loaded.chunks), (8, 2, 3));
    assert_eq!(lines(&rejects), [5, 8]);
    assert_eq!(db.ids("t").await, "1,2,3,4,5,6,7,8,9");
    let mut loader = connect(&db.url).await.unwrap().into_loader();
    assert_eq!(
        loader.checkpoint(&job).await.unwrap(),
        Some(Checkpoint {
            line: 11,
            rows: 8,
            rejected: 2,
            chunks: 3,
            resume: None,
        })
    );
    assert_eq!(loader.already_loaded(&job).await.unwrap(), Some(8));
    // An upsert in chunks of one applies a repeated key in file order.
    let upsert = json!({"target": {"table": "t"}, "mode": "upsert", "key": ["id"],
        "commit": "chunked", "chunk_rows": 1});
    let (loaded, _) = db.import(upsert, "id,v\n1,b\n9,b\n1,c\n").await;
    assert_eq!((loaded.inserted, loaded.chunks), (3, 3));
    assert_eq!(
        db.strings("SELECT v FROM t WHERE id IN (1, 9) ORDER BY id")
            .await,
        ["c", "b"]
    );
}

/// Gives the file in pieces, then fails as a connection that breaks would.
struct BreaksAfter {
    pieces: Vec<Vec<u8>>,
}

impl Read for BreaksAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pieces.is_empty() {
            return Err(std::io::Error::other("the connection broke"));
        }
        let mut piece = self.pieces.remove(0);
        if piece.len() > buf.len() {
            self.pieces.insert(0, piece.split_off(buf.len()));
        }
        buf[..piece.len()].copy_from_slice(&piece);
        Ok(piece.len())
    }
}

async fn a_chunked_retry_resumes_after_its_last_checkpoint_and_loads_no_row_twice(db: Db) {
    // No key: a row loaded twice would show.
    db.sql("CREATE TABLE t (id integer, v text)").await;
    let job = uuid::Uuid::new_v4().to_string();
    let chunked = |max_errors: u64| {
        json!({"target": {"table": "t"}, "max_errors": max_errors,
            "commit": "chunked", "chunk_rows": 2})
    };
    let head = "id,v\n1,a\n2,b\nx,bad\n3,c\n4,d\n";
    let file = format!("{head}5,e\ny,bad\n6,f\n");
    // The first attempt dies after two chunks, in the middle of the third.
    let broken = BreaksAfter {
        pieces: vec![head.as_bytes().to_vec(), b"5,e\n".to_vec()],
    };
    let (result, _) = db
        .import_as(&job, chunked(10), broken, CancellationToken::new())
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(db.ids("t").await, "1,2,3,4");
    let mut loader = connect(&db.url).await.unwrap().into_loader();
    let kept = Checkpoint {
        line: 6,
        rows: 4,
        rejected: 1,
        chunks: 2,
        resume: None,
    };
    assert_eq!(loader.checkpoint(&job).await.unwrap(), Some(kept));
    // max_errors counts the committed chunks' rejects: one more is one too many.
    let again = std::io::Cursor::new(file.clone().into_bytes());
    let (result, _) = db
        .import_as(&job, chunked(1), again, CancellationToken::new())
        .await;
    assert!(
        matches!(
            result,
            Err(LoadError::Producer {
                code: "too_many_errors",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(db.ids("t").await, "1,2,3,4");
    assert_eq!(loader.checkpoint(&job).await.unwrap(), Some(kept));
    // The retry skips what the checkpoint holds: no row loaded, no reject reported, twice.
    let again = std::io::Cursor::new(file.into_bytes());
    let (result, rejects) = db
        .import_as(&job, chunked(10), again, CancellationToken::new())
        .await;
    let loaded = result.unwrap();
    assert_eq!((loaded.inserted, loaded.rejected, loaded.chunks), (6, 2, 3));
    assert_eq!(lines(&rejects), [8]);
    assert_eq!(db.ids("t").await, "1,2,3,4,5,6");
    assert_eq!(loader.already_loaded(&job).await.unwrap(), Some(6));
}

/// A chunked load of 150,000 rows in CRLF lines, with a record over two lines and rejects
/// before and after the checkpoint: the file's bytes, and the offset and line of the CR that
/// ends row 100,000 (the end of the second chunk).
fn crlf_file() -> (Vec<u8>, ResumePoint, u64) {
    let mut file = b"id,v\r\n".to_vec();
    let (mut line, mut checkpoint, mut bad_line) = (2, None, 0);
    for id in 1..=150_000u64 {
        match id {
            500 => {
                file.extend_from_slice(b"500,\"two\r\nlines\"\r\n");
                line += 2;
                continue;
            }
            40_000 => file.extend_from_slice(b"x,bad before\r\n"),
            120_000 => {
                bad_line = line;
                file.extend_from_slice(b"y,bad after\r\n");
            }
            _ => {}
        }
        if matches!(id, 40_000 | 120_000) {
            line += 1;
        }
        file.extend_from_slice(format!("{id},value {id}").as_bytes());
        if id == 100_000 {
            checkpoint = Some(ResumePoint {
                offset: file.len() as u64,
                line,
            });
        }
        file.extend_from_slice(b"\r\n");
        line += 1;
    }
    (
        file,
        checkpoint.expect("row 100,000 is in the file"),
        bad_line,
    )
}

async fn a_chunked_retry_enters_the_file_at_the_checkpoint_byte_offset(db: Db) {
    db.sql("CREATE TABLE t (id integer, v text)").await;
    let job = uuid::Uuid::new_v4().to_string();
    let chunked = json!({"target": {"table": "t"}, "max_errors": 10,
        "commit": "chunked", "chunk_rows": 50_000});
    let (file, point, bad_line) = crlf_file();
    // The first attempt dies in the third chunk (about 2.3 of 2.6 MB read).
    let broken = BreaksAfter {
        pieces: file[..2_300_000]
            .chunks(64 * 1024)
            .map(<[u8]>::to_vec)
            .collect(),
    };
    let (result, _) = db
        .import_as(&job, chunked.clone(), broken, CancellationToken::new())
        .await;
    assert!(result.is_err(), "{result:?}");
    let mut loader = connect(&db.url).await.unwrap().into_loader();
    let checkpoint = loader.checkpoint(&job).await.unwrap().unwrap();
    assert_eq!(
        (checkpoint.rows, checkpoint.rejected, checkpoint.chunks),
        (100_000, 1, 2)
    );
    assert_eq!(checkpoint.line, point.line);
    assert_eq!(checkpoint.resume, Some(point), "the CR after row 100,000");
    // The retry reads the header from a file that breaks after its first 64 KiB, then reads
    // on from where `reopen` opens it: reading through would fail.
    let start = BreaksAfter {
        pieces: vec![file[..64 * 1024].to_vec()],
    };
    let (offsets, seen) = (
        std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
        file.clone(),
    );
    let asked = offsets.clone();
    let reopen: Reopen = Box::new(move |offset| {
        asked.lock().unwrap().push(offset);
        let rest = seen[offset as usize..].to_vec();
        Ok(Box::new(std::io::Cursor::new(rest)) as Box<dyn Read + Send>)
    });
    let (result, rejects, _) = db
        .import_with(
            &job,
            chunked,
            start,
            None,
            CancellationToken::new(),
            Some(reopen),
        )
        .await;
    let loaded = result.unwrap();
    assert_eq!(*offsets.lock().unwrap(), [point.offset]);
    assert_eq!(
        (loaded.inserted, loaded.rejected, loaded.chunks),
        (150_000, 2, 3)
    );
    // Lines counted on from the checkpoint: the reject after it is on its own line.
    assert_eq!(lines(&rejects), [bad_line]);
    let counts = db
        .strings("SELECT CAST(count(*) AS text) || ' ' || CAST(count(DISTINCT id) AS text) FROM t")
        .await;
    assert_eq!(counts, ["150000 150000"]);
    assert_eq!(
        db.strings("SELECT v FROM t WHERE id = 500").await,
        ["two\r\nlines"]
    );
}

async fn a_checkpoint_table_of_an_earlier_version_gets_the_offset_columns(db: Db) {
    db.sql(
        "CREATE TABLE ferry_import_checkpoint (job_id text PRIMARY KEY, line bigint NOT NULL, \
         rows bigint NOT NULL, rejected bigint NOT NULL, chunks bigint NOT NULL); \
         INSERT INTO ferry_import_checkpoint VALUES ('earlier', 7, 6, 0, 2); \
         CREATE TABLE t (id integer, v text);",
    )
    .await;
    let chunked = json!({"target": {"table": "t"}, "commit": "chunked", "chunk_rows": 2});
    let (loaded, _) = db.import(chunked, "id,v\n1,a\n2,b\n3,c\n").await;
    assert_eq!((loaded.inserted, loaded.chunks), (3, 2));
    let mut loader = connect(&db.url).await.unwrap().into_loader();
    let earlier = loader.checkpoint("earlier").await.unwrap().unwrap();
    assert_eq!((earlier.line, earlier.rows, earlier.resume), (7, 6, None));
    assert_eq!(
        db.strings(
            "SELECT CAST(count(*) AS text) FROM ferry_import_checkpoint WHERE byte_offset IS NULL"
        )
        .await,
        ["2"]
    );
}
