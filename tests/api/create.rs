//! Imports that create their table (`"target": {"create": true}`, SPEC §4.1 "New tables"): the
//! pipeline cases run against PostgreSQL and SQLite like the loader conformance suite (the file
//! sampled, then loaded, as the worker does); the API and CLI cases run through a real server.

use crate::helpers::{Shape, spawn_app};
use crate::loaders::{CancelAfterFirst, Db};
use ferry::jobs::import::prepare::{Creation, Prepared};
use ferry::pipeline::import::Loaded;
use ferry::pipeline::loaders::LoadError;
use ferry::pipeline::rejects::Rejected;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::loaders::Db::postgres().await).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::loaders::Db::sqlite())
                .await;
            })*
        }
    };
}

both!(
    every_inferred_type_lands_as_its_column_type_with_its_values,
    column_names_are_normalised_and_made_unique,
    a_later_value_that_does_not_fit_is_a_per_row_reject,
    an_import_that_fails_past_its_error_limit_leaves_no_table,
    a_cancelled_import_leaves_no_table,
    an_existing_table_is_left_as_it_is,
    a_chunked_import_creates_the_table_in_its_first_chunk,
    an_upsert_creates_its_key_as_the_primary_key,
);

/// Imports `file` with `spec`, sampling it first when the table is to be created.
async fn import(
    db: &Db,
    spec: Value,
    file: &str,
) -> (Result<Loaded, LoadError>, Vec<Rejected>, Prepared) {
    let job = uuid::Uuid::new_v4().to_string();
    let bytes = file.as_bytes().to_vec();
    db.import_with(
        &job,
        spec,
        std::io::Cursor::new(bytes.clone()),
        Some(bytes),
        CancellationToken::new(),
        None,
    )
    .await
}

fn create(table: &str) -> Value {
    json!({"target": {"table": table, "create": true}, "max_errors": 100})
}

/// The table's columns as `name type`, as the database describes them.
async fn columns(db: &Db, table: &str) -> Vec<String> {
    let sql = if db.postgres {
        format!(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns \
             WHERE table_name = '{table}' ORDER BY ordinal_position"
        )
    } else {
        // SQLite spells some declared types its own way (`INTEGER`, `TEXT`).
        format!("SELECT name || ' ' || lower(type) FROM pragma_table_info('{table}') ORDER BY cid")
    };
    db.strings(&sql).await
}

async fn exists(db: &Db, table: &str) -> bool {
    !columns(db, table).await.is_empty()
}

async fn every_inferred_type_lands_as_its_column_type_with_its_values(db: Db) {
    let file = "Active,Count,Price,Ratio,Day,At Z,At,Id,Doc,Name,Empty,Zip\n\
        yes,1,1.50,1e3,2026-11-23,2026-11-23T10:00:00Z,2026-11-23 10:00:00,\
        0192f1e4-7c1a-7b3e-9d2f-0123456789ab,\"{\"\"a\"\": 1}\",Ann,,007\n\
        no,-2,2,2.5,2024-02-29,2026-11-23 12:00:00+02:00,2026-11-23T11:30:00,\
        0192F1E4-7C1A-7B3E-9D2F-0123456789AC,[1],Bo,,12345\n\
        ,,,,,,,,,,,\n";
    let (loaded, rejects, prepared) = import(&db, create("people"), file).await;
    let loaded = loaded.unwrap();
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!((loaded.inserted, loaded.rejected), (3, 0));
    let expected = if db.postgres {
        [
            "active boolean",
            "count bigint",
            "price numeric",
            "ratio double precision",
            "day date",
            "at_z timestamp with time zone",
            "at timestamp without time zone",
            "id uuid",
            "doc jsonb",
            "name text",
            "empty text",
            "zip text",
        ]
    } else {
        [
            "active boolean",
            "count integer",
            "price numeric",
            "ratio real",
            "day date",
            "at_z timestamptz",
            "at timestamp",
            "id uuid",
            "doc json",
            "name text",
            "empty text",
            "zip text",
        ]
    };
    assert_eq!(columns(&db, "people").await, expected);
    let created = prepared
        .new_table()
        .expect("the table was created")
        .describe("people", db.postgres);
    let described: Vec<String> = created
        .columns
        .iter()
        .map(|c| format!("{}:{}:{}", c.header, c.name, c.kind))
        .collect();
    assert_eq!(described[5], "At Z:at_z:timestamptz");
    let count = if db.postgres { "bigint" } else { "integer" };
    assert_eq!(described[1], format!("Count:count:{count}"));
    assert_eq!(described[0], "Active:active:boolean");
    let rows = if db.postgres {
        db.strings(
            "SELECT concat_ws('|', active, count, price, ratio, day, at_z AT TIME ZONE 'UTC', at, \
             id, doc, name, coalesce(empty, '-'), zip) FROM people ORDER BY count DESC NULLS LAST",
        )
        .await
    } else {
        db.strings(
            "SELECT concat_ws('|', active, count, price, ratio, day, at_z, at, id, doc, name, \
             coalesce(empty, '-'), zip, typeof(active), typeof(count), typeof(ratio)) \
             FROM people ORDER BY count IS NULL, count DESC",
        )
        .await
    };
    let expected = if db.postgres {
        [
            "t|1|1.50|1000|2026-11-23|2026-11-23 10:00:00|2026-11-23 10:00:00|\
             0192f1e4-7c1a-7b3e-9d2f-0123456789ab|{\"a\": 1}|Ann|-|007",
            "f|-2|2|2.5|2024-02-29|2026-11-23 10:00:00|2026-11-23 11:30:00|\
             0192f1e4-7c1a-7b3e-9d2f-0123456789ac|[1]|Bo|-|12345",
            "-",
        ]
    } else {
        [
            "1|1|1.5|1000.0|2026-11-23|2026-11-23T10:00:00Z|2026-11-23 10:00:00|\
             0192f1e4-7c1a-7b3e-9d2f-0123456789ab|{\"a\": 1}|Ann|-|007|integer|integer|real",
            "0|-2|2|2.5|2024-02-29|2026-11-23T10:00:00Z|2026-11-23 11:30:00|\
             0192f1e4-7c1a-7b3e-9d2f-0123456789ac|[1]|Bo|-|12345|integer|integer|real",
            "-|null|null|null",
        ]
    };
    assert_eq!(rows, expected);
}

async fn column_names_are_normalised_and_made_unique(db: Db) {
    let file = "Signed Up,Name,NAME,E-Mail (work),,_line\n2026-01-01,a,b,c,d,9\n";
    let (loaded, _, _) = import(&db, create("t"), file).await;
    assert_eq!(loaded.unwrap().inserted, 1);
    let names: Vec<String> = columns(&db, "t")
        .await
        .into_iter()
        .map(|c| c.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        names,
        ["signed_up", "name", "name_2", "e_mail_work_", "column_5"]
    );
    assert_eq!(
        db.strings("SELECT name || name_2 || e_mail_work_ || column_5 FROM t")
            .await,
        ["abcd"]
    );
}

/// A column of integers in its sample whose value after the sample is not one.
fn misfit_after_the_sample() -> String {
    let mut file = String::from("n,label\n");
    for i in 0..10_000 {
        file.push_str(&format!("{i},x\n"));
    }
    file.push_str("twelve,late\n,empty\n");
    file
}

async fn a_later_value_that_does_not_fit_is_a_per_row_reject(db: Db) {
    let (loaded, rejects, _) = import(&db, create("t"), &misfit_after_the_sample()).await;
    let loaded = loaded.unwrap();
    assert_eq!((loaded.inserted, loaded.rejected), (10_001, 1));
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].line, 10_002);
    assert!(
        rejects[0].errors.starts_with("n: "),
        "{}",
        rejects[0].errors
    );
    assert_eq!(
        columns(&db, "t").await[0],
        if db.postgres { "n bigint" } else { "n integer" }
    );
}

async fn an_import_that_fails_past_its_error_limit_leaves_no_table(db: Db) {
    let spec = json!({"target": {"table": "gone", "create": true}, "max_errors": 0});
    let (loaded, _, _) = import(&db, spec, &misfit_after_the_sample()).await;
    assert!(loaded.is_err(), "{loaded:?}");
    assert!(!exists(&db, "gone").await);
}

async fn a_cancelled_import_leaves_no_table(db: Db) {
    let mut pieces: Vec<Vec<u8>> = (0..200)
        .map(|p| {
            (0..1000)
                .map(|i| format!("{},{}\n", p * 1000 + i, "x".repeat(30)))
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    pieces.insert(0, b"id,v\n".to_vec());
    let sample = pieces.concat();
    pieces.reverse();
    let stop = CancellationToken::new();
    let file = CancelAfterFirst {
        pieces,
        stop: stop.clone(),
    };
    let (result, _, _) = db
        .import_with("cancelled", create("gone"), file, Some(sample), stop, None)
        .await;
    assert!(matches!(result, Err(LoadError::Stopped)), "{result:?}");
    assert!(!exists(&db, "gone").await);
}

async fn an_existing_table_is_left_as_it_is(db: Db) {
    db.sql("CREATE TABLE t (id text, v text)").await;
    let (loaded, _, prepared) = import(&db, create("t"), "id,v\n1,2\n").await;
    assert_eq!(loaded.unwrap().inserted, 1);
    assert_eq!(prepared.creation, Creation::Exists);
    assert_eq!(columns(&db, "t").await, ["id text", "v text"]);
}

async fn a_chunked_import_creates_the_table_in_its_first_chunk(db: Db) {
    let spec = json!({"target": {"table": "t", "create": true}, "commit": "chunked",
        "chunk_rows": 2});
    let (loaded, _, _) = import(&db, spec, "id\n1\n2\n3\n4\n5\n").await;
    let loaded = loaded.unwrap();
    assert_eq!((loaded.inserted, loaded.chunks), (5, 3));
    assert_eq!(
        db.strings("SELECT CAST(sum(id) AS text) FROM t").await,
        ["15"]
    );
}

async fn an_upsert_creates_its_key_as_the_primary_key(db: Db) {
    let spec = json!({"target": {"table": "t", "create": true}, "mode": "upsert",
        "key": ["id"], "max_errors": 10});
    let (loaded, rejects, _) = import(&db, spec, "ID,V\n1,a\n2,b\n1,c\n,d\n").await;
    // Rows applied: the repeated key's two rows both count, as for any upsert.
    assert_eq!(loaded.unwrap().inserted, 3);
    assert_eq!(lines(&rejects), [5]);
    assert_eq!(
        db.strings("SELECT CAST(id AS text) || v FROM t ORDER BY id")
            .await,
        ["1c", "2b"]
    );
}

fn lines(rejects: &[Rejected]) -> Vec<u64> {
    rejects.iter().map(|r| r.line).collect()
}

#[tokio::test]
async fn the_api_reports_the_created_table_and_then_loads_into_it() {
    let app = spawn_app(Shape::Production).await;
    let spec = json!({"target": {"connection": "main", "table": "people", "create": true}});
    let job = app
        .import(&spec, "Name,Signed Up\nAnn,2026-11-23\nBo,2026-11-24\n")
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["result"]["created"],
        json!({"table": "people", "columns": [
            {"name": "name", "type": "text", "header": "Name"},
            {"name": "signed_up", "type": "date", "header": "Signed Up"},
        ]})
    );
    let again = app.import(&spec, "Name,Signed Up\nCy,2026-11-25\n").await;
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["result"]["created"], Value::Null);
    assert_eq!(
        app.data_count("SELECT count(*) FROM people WHERE signed_up > '2026-11-23'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_new_table_is_sampled_from_the_decoded_text_of_utf16_and_windows_1252_files() {
    let app = spawn_app(Shape::Production).await;
    let text = "Stadt,Größe\nKöln,1084\nMünchen,1512\n";
    let utf16: Vec<u8> = std::iter::once('\u{feff}')
        .chain(text.chars())
        .collect::<String>()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let windows_1252 = b"Stadt,Gr\xf6\xdfe\nK\xf6ln,1084\nM\xfcnchen,1512\n".to_vec();
    for (table, label, file) in [
        ("utf16", "utf-16", utf16),
        ("cp1252", "windows-1252", windows_1252),
    ] {
        let spec = json!({
            "target": {"connection": "main", "table": table, "create": true},
            "format": {"encoding": label},
        });
        let job = app.import(&spec, file).await;
        assert_eq!(job["state"], "succeeded", "{label}: {job}");
        assert_eq!(
            job["result"]["created"]["columns"],
            json!([
                {"name": "stadt", "type": "text", "header": "Stadt"},
                {"name": "gr_e", "type": "bigint", "header": "Größe"},
            ]),
            "{label}"
        );
        let found = format!(
            "SELECT count(*) FROM {table} WHERE (stadt, gr_e) IN (('Köln', 1084), ('München', 1512))"
        );
        assert_eq!(app.data_count(&found).await, 2, "{label}");
    }
}

#[tokio::test]
async fn the_door_takes_an_unknown_table_with_create_but_not_an_unknown_connection() {
    let app = spawn_app(Shape::Embedded).await;
    let cases = [
        (
            json!({"target": {"connection": "nope", "table": "new", "create": true}}),
            "target.connection",
        ),
        (
            json!({"target": {"connection": "main", "table": "new", "create": true},
                "mode": "upsert", "key": ["User ID"]}),
            "key",
        ),
        (
            json!({"target": {"connection": "main", "table": "new", "create": true},
                "columns": {"Email": {"required": true}}}),
            "columns.Email",
        ),
    ];
    for (spec, field) in cases {
        let response = app.import_multipart(&spec, b"id\n1\n".to_vec()).await;
        assert_eq!(response.status(), 422, "{spec}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // A key the file does not have fails the job, naming it.
    let spec = json!({"target": {"connection": "main", "table": "new", "create": true},
        "mode": "upsert", "key": ["user_id"]});
    let job = app.import(&spec, "id\n1\n").await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("user_id"),
        "{job}"
    );
    assert_eq!(
        app.data_count("SELECT count(*) FROM information_schema.tables WHERE table_name = 'new'")
            .await,
        0
    );
}
