//! DuckDB as an export source (cargo feature `duckdb`): files made by DuckDB's own Python
//! package (1.5.6, the library's version; `scripts/test` installs it into
//! `.cache/duckdb/python`), exported through the real API in every format and read back by
//! independent readers (pyarrow, openpyxl, Python's csv and json).

use crate::formats::{READ_PARQUET, READ_XLSX, export, python};
use crate::helpers::{Shape, TestApp, spawn_with, test_settings};
use ferry::config::{ConnectionSettings, Secret, TemplateSettings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where `scripts/test` installs DuckDB's Python package, pinned to the library's version.
fn duckdb_python_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/duckdb/python")
}

/// A `python3` that imports DuckDB 1.5.6.
fn duckdb_python() -> Command {
    let mut command = Command::new("python3");
    command.env("PYTHONPATH", duckdb_python_path());
    command
}

/// Makes a DuckDB file by running `sql` in DuckDB's Python package; returns its path.
fn duckdb_file(sql: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ferry-test-{}.duckdb", uuid::Uuid::new_v4()));
    let output = duckdb_python()
        .args(["-c", MAKE_FILE])
        .arg(&path)
        .arg(sql)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "making the DuckDB file failed (run the tests with scripts/test, which installs duckdb \
         1.5.6 into {}): {}",
        duckdb_python_path().display(),
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

const MAKE_FILE: &str = r#"
import sys, duckdb
assert duckdb.__version__ == "1.5.6", f"duckdb {duckdb.__version__}, not 1.5.6"
con = duckdb.connect(sys.argv[1])
con.execute(sys.argv[2])
con.close()
"#;

/// Every type SPEC §3.1 names, and DuckDB's own (unsigned and huge integers, lists, structs,
/// maps, enums, times, intervals, blobs): extremes, ordinary values, and a row of NULLs.
const EVERY_TYPE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE typed (
  i1 TINYINT, i2 SMALLINT, i4 INTEGER, i8 BIGINT, i16 HUGEINT, u1 UTINYINT, u2 USMALLINT,
  u4 UINTEGER, u8 UBIGINT, dec DECIMAL(12,2), wide DECIMAL(38,10), r4 REAL, f8 DOUBLE,
  b BOOLEAN, t VARCHAR, d DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, u UUID, bl BLOB, j JSON,
  l INTEGER[], s STRUCT(a INTEGER, b VARCHAR), m MAP(VARCHAR, INTEGER), e mood, tm TIME,
  iv INTERVAL);
INSERT INTO typed VALUES
 (-128, -32768, -2147483648, -9223372036854775808, -12345678901234567890123456789, 0, 0, 0, 0,
  -1234567890.12, 1234567890123456789012345678.0123456789, 1.5, -2.25e100, true,
  'tëxt, "quoted"' || chr(10) || 'line', DATE '2024-02-29', TIMESTAMP '2000-01-01 00:00:00.000001',
  TIMESTAMPTZ '2026-03-29 01:30:00+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '\x00\xFFab'::BLOB, '{"a": [1, 2]}', [1, NULL, 3], {'a': 1, 'b': 'x'}, MAP {'k': 7}, 'happy',
  TIME '12:00:01.5', INTERVAL '1 year 2 months 3 days 04:05:06.5'),
 (127, 32767, 2147483647, 9223372036854775807, 99, 255, 65535, 4294967295,
  18446744073709551615, 9999999999.99, -0.5, 'NaN', 'Infinity', false, '', DATE '1969-12-31',
  TIMESTAMP '1969-07-20 20:17:40', TIMESTAMPTZ '1970-01-01 00:00:00+00',
  '00000000-0000-0000-0000-000000000000', ''::BLOB, 'null', [], {'a': NULL, 'b': NULL}, MAP {},
  'sad', TIME '00:00:00', INTERVAL '-1 month'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

/// Ferry with the DuckDB file at `file` as the connection `lake` (SQL allowed) and a template
/// `moods_since` on it.
async fn lake_app(shape: Shape, file: &Path, statement_timeout: Duration) -> TestApp {
    let (mut settings, data_url, prefix) = test_settings(shape).await;
    settings.connections.insert(
        "lake".into(),
        ConnectionSettings {
            url: Secret::new(format!("duckdb://{}", file.display())),
            allow_sql: true,
            statement_timeout,
            max_connections: 2,
            scopes: Vec::new(),
        },
    );
    settings.templates.insert(
        "moods_since".into(),
        TemplateSettings {
            connection: "lake".into(),
            query:
                "SELECT i1, e, d, dec FROM typed WHERE d >= $1 AND e = $2 AND dec > $3 ORDER BY i1"
                    .into(),
            params: serde_json::from_value(json!([
                {"name": "since", "type": "date"},
                {"name": "mood", "type": "text"},
                {"name": "above", "type": "numeric"}
            ]))
            .unwrap(),
        },
    );
    spawn_with(settings, data_url, prefix).await
}

fn sql(query: &str, format: &str) -> Value {
    json!({"source": {"type": "sql", "connection": "lake", "query": query}, "format": format})
}

const ALL_ROWS: &str = "SELECT * FROM typed ORDER BY i1 NULLS LAST";

#[tokio::test]
async fn every_duckdb_type_reads_back_from_parquet_in_pyarrow_value_for_value_nulls_included() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Production, &file, Duration::from_secs(30)).await;
    let (done, bytes) = export(&app, sql(ALL_ROWS, "parquet")).await;
    assert_eq!(done["result"]["file"]["rows"], 3);
    let read = python(READ_PARQUET, &bytes, "parquet");
    assert_eq!(read["compression"], "ZSTD");
    assert_eq!(
        read["schema"],
        json!([
            ["i1", "int16"],
            ["i2", "int16"],
            ["i4", "int32"],
            ["i8", "int64"],
            ["i16", "decimal128(38, 0)"],
            ["u1", "int16"],
            ["u2", "int32"],
            ["u4", "int64"],
            ["u8", "decimal128(20, 0)"],
            ["dec", "decimal128(12, 2)"],
            ["wide", "decimal128(38, 10)"],
            ["r4", "float"],
            ["f8", "double"],
            ["b", "bool"],
            ["t", "string"],
            ["d", "date32[day]"],
            ["ts", "timestamp[us]"],
            ["tstz", "timestamp[us, tz=UTC]"],
            ["u", "string"],
            ["bl", "string"],
            ["j", "string"],
            ["l", "string"],
            ["s", "string"],
            ["m", "string"],
            ["e", "string"],
            ["tm", "string"],
            ["iv", "string"]
        ])
    );
    assert_eq!(
        read["rows"],
        json!([
            [
                -128,
                -32768,
                -2147483648i64,
                i64::MIN,
                "-12345678901234567890123456789",
                0,
                0,
                0,
                "0",
                "-1234567890.12",
                "1234567890123456789012345678.0123456789",
                "1.5",
                "-2.25e+100",
                true,
                "tëxt, \"quoted\"\nline",
                "2024-02-29",
                "2000-01-01T00:00:00.000001",
                "2026-03-28T23:30:00+00:00",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "00ff6162",
                "{\"a\": [1, 2]}",
                "[1,null,3]",
                "{\"a\":1,\"b\":\"x\"}",
                "{\"k\":7}",
                "happy",
                "12:00:01.5",
                "P1Y2M3DT4H5M6.5S"
            ],
            [
                127,
                32767,
                2147483647,
                i64::MAX,
                "99",
                255,
                65535,
                4294967295u64,
                "18446744073709551615",
                "9999999999.99",
                "-0.5000000000",
                "nan",
                "inf",
                false,
                "",
                "1969-12-31",
                "1969-07-20T20:17:40",
                "1970-01-01T00:00:00+00:00",
                "00000000-0000-0000-0000-000000000000",
                "",
                "null",
                "[]",
                "{\"a\":null,\"b\":null}",
                "{}",
                "sad",
                "00:00:00",
                "P-1M"
            ],
            vec![Value::Null; 27]
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn duckdb_rows_reach_csv_and_json_lines_as_text_numbers_and_nested_json() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Embedded, &file, Duration::from_secs(30)).await;
    let query = "SELECT i1, u8, dec, r4, b, t, d, ts, tstz, u, bl, j, l, s, m, e, tm, iv \
                 FROM typed ORDER BY i1 NULLS LAST";
    let (done, jsonl) = export(&app, sql(query, "jsonl")).await;
    assert_eq!(done["result"]["file"]["rows"], 3);
    let lines: Vec<Value> = std::str::from_utf8(&jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        json!({"i1": -128, "u8": 0, "dec": "-1234567890.12", "r4": 1.5, "b": true,
            "t": "tëxt, \"quoted\"\nline", "d": "2024-02-29", "ts": "2000-01-01T00:00:00.000001",
            "tstz": "2026-03-28T23:30:00Z", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "bl": "00ff6162", "j": {"a": [1, 2]}, "l": [1, null, 3], "s": {"a": 1, "b": "x"},
            "m": {"k": 7}, "e": "happy", "tm": "12:00:01.5", "iv": "P1Y2M3DT4H5M6.5S"})
    );
    assert_eq!(lines[1]["u8"], json!(18446744073709551615u64));
    assert_eq!(lines[1]["r4"], "NaN");
    assert_eq!(
        lines[1]["j"], "null",
        "a JSON scalar stays its text, apart from SQL NULL"
    );
    assert!(lines[2].as_object().unwrap().values().all(Value::is_null));

    let (_, csv) = export(&app, sql(query, "csv")).await;
    let csv = std::str::from_utf8(&csv).unwrap();
    let expected = "i1,u8,dec,r4,b,t,d,ts,tstz,u,bl,j,l,s,m,e,tm,iv\n\
        -128,0,-1234567890.12,1.5,true,\"tëxt, \"\"quoted\"\"\nline\",2024-02-29,\
        2000-01-01T00:00:00.000001,2026-03-28T23:30:00Z,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,\
        00ff6162,\"{\"\"a\"\":[1,2]}\",\"[1,null,3]\",\"{\"\"a\"\":1,\"\"b\"\":\"\"x\"\"}\",\
        \"{\"\"k\"\":7}\",happy,12:00:01.5,P1Y2M3DT4H5M6.5S\n\
        127,18446744073709551615,9999999999.99,NaN,false,\"\",1969-12-31,1969-07-20T20:17:40,\
        1970-01-01T00:00:00Z,00000000-0000-0000-0000-000000000000,\"\",null,[],\
        \"{\"\"a\"\":null,\"\"b\"\":null}\",{},sad,00:00:00,P-1M\n\
        ,,,,,,,,,,,,,,,,,\n";
    assert_eq!(csv, expected);
    app.stop().await;
}

#[tokio::test]
async fn duckdb_xlsx_cells_are_numbers_booleans_dates_and_text() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Embedded, &file, Duration::from_secs(30)).await;
    let query = "SELECT i4, u8, dec, f8, b, d, tstz, t, l FROM typed ORDER BY i1 NULLS LAST";
    let (_, bytes) = export(&app, sql(query, "xlsx")).await;
    let sheets = python(READ_XLSX, &bytes, "xlsx");
    let rows = &sheets[0]["rows"];
    assert_eq!(
        rows[0],
        json!([
            ["s", "i4"],
            ["s", "u8"],
            ["s", "dec"],
            ["s", "f8"],
            ["s", "b"],
            ["s", "d"],
            ["s", "tstz"],
            ["s", "t"],
            ["s", "l"]
        ])
    );
    assert_eq!(sheets[0]["bold"], json!(vec![true; 9]));
    assert_eq!(
        rows[1],
        json!([
            ["n", -2147483648i64],
            ["s", "0"],
            ["n", -1234567890.12],
            ["n", -2.25e100],
            ["b", true],
            ["d", "2024-02-29T00:00:00"],
            ["d", "2026-03-28T23:30:00"],
            ["s", "tëxt, \"quoted\"\nline"],
            ["s", "[1,null,3]"]
        ])
    );
    assert_eq!(
        rows[2],
        json!([
            ["n", 2147483647],
            ["s", "18446744073709551615"],
            ["n", 9999999999.99],
            ["s", "Infinity"],
            ["b", false],
            ["d", "1969-12-31T00:00:00"],
            ["d", "1970-01-01T00:00:00"],
            ["n", null],
            ["s", "[]"]
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_duckdb_template_binds_its_typed_parameters_natively() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Embedded, &file, Duration::from_secs(30)).await;
    let body = |mood: &str| {
        json!({"source": {"type": "template", "template": "moods_since",
            "params": {"since": "2024-01-01", "mood": mood, "above": "-1234567890.5"}},
            "format": "csv"})
    };
    let (done, csv) = export(&app, body("happy")).await;
    assert_eq!(done["result"]["file"]["rows"], 1);
    assert_eq!(
        std::str::from_utf8(&csv).unwrap(),
        "i1,e,d,dec\n-128,happy,2024-02-29,-1234567890.12\n"
    );
    let (_, csv) = export(&app, body("x' OR e IS NOT NULL OR e = 'y")).await;
    assert_eq!(std::str::from_utf8(&csv).unwrap(), "i1,e,d,dec\n");
    let bad = json!({"source": {"type": "template", "template": "moods_since",
        "params": {"since": "yesterday", "mood": "sad", "above": "1"}}});
    let response = app.post_json("/v1/exports", &bad).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "source.params.since");
    app.stop().await;
}

#[tokio::test]
async fn a_python_reader_and_ferry_read_one_duckdb_file_at_the_same_time() {
    let file = duckdb_file("CREATE TABLE big AS SELECT i, i * 2 AS twice FROM range(100000) t(i)");
    // DuckDB's own reader holds the file open read-only for the whole export, and reads it
    // again after.
    let mut reader = duckdb_python()
        .args(["-c", HOLD_READ_ONLY])
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(reader.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "open 100000");
    let app = lake_app(Shape::Embedded, &file, Duration::from_secs(30)).await;
    let query = "SELECT i, twice FROM big ORDER BY i";
    let first = app.create_export(sql(query, "parquet")).await;
    let second = app.create_export(sql(query, "csv")).await;
    for job in [first, second] {
        let done = app.wait_final(job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["result"]["file"]["rows"], 100_000);
    }
    drop(reader.stdin.take());
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "sum 9999900000");
    assert!(reader.wait().unwrap().success());
    app.stop().await;
}

const HOLD_READ_ONLY: &str = r#"
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("open", con.sql("SELECT count(*) FROM big").fetchone()[0], flush=True)
sys.stdin.read()
print("sum", con.sql("SELECT sum(twice) FROM big").fetchone()[0], flush=True)
"#;

#[tokio::test]
async fn a_failing_duckdb_query_fails_the_job_with_the_databases_message() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Embedded, &file, Duration::from_secs(30)).await;
    // Fails while it runs: the request's check (a prepare) cannot see it.
    let id = app
        .create_export(sql("SELECT CAST(t || 'x' AS INTEGER) FROM typed", "csv"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = app.wait_final(&id).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "query_failed");
    assert_eq!(failed["attempt"], 1, "a query's own error is not retried");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Conversion Error:"), "{message}");
    // Fails to prepare: refused when it is requested, with DuckDB's message.
    let response = app
        .post_json("/v1/exports", &sql("SELECT * FROM nowhere", "csv"))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    let detail = problem.to_string();
    assert!(
        detail.contains("Table with name nowhere does not exist"),
        "{problem}"
    );
    app.stop().await;
}

#[tokio::test]
async fn duckdb_exports_are_read_only_contained_and_stop_at_the_statement_timeout() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Embedded, &file, Duration::from_millis(500)).await;
    let outside = std::env::temp_dir().join(format!("ferry-test-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(&outside, "secret\n1\n").unwrap();
    for (query, expected) in [
        ("CREATE TABLE more AS SELECT 1 AS x", "read-only"),
        ("DELETE FROM typed", "read-only"),
        (
            &format!("SELECT * FROM read_csv('{}')", outside.display()),
            "disabled",
        ),
        (
            &format!("COPY typed TO '{}.out'", outside.display()),
            "disabled",
        ),
        ("SET lock_configuration = false", "locked"),
    ] {
        let response = app.post_json("/v1/exports", &sql(query, "csv")).await;
        let refused = if response.status() == 422 {
            response.json::<Value>().await.unwrap().to_string()
        } else {
            assert_eq!(response.status(), 202, "{query}");
            let job: Value = response.json().await.unwrap();
            let done = app.wait_final(job["id"].as_str().unwrap()).await;
            assert_eq!(done["state"], "failed", "{query}: {done}");
            done["error"]["message"].to_string()
        };
        assert!(refused.contains(expected), "{query}: {refused}");
    }
    assert!(!outside.with_extension("csv.out").exists());
    let slow = sql("SELECT sum(i) FROM range(1000000000000) t(i)", "csv");
    let id = app.create_export(slow).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = app.wait_final(&id).await;
    assert_eq!(failed["error"]["code"], "query_timeout", "{failed}");
    assert_eq!(failed["attempt"], 1, "a permanent error is not retried");
    let count = duckdb_python()
        .args([
            "-c",
            "import sys, duckdb; print(duckdb.connect(sys.argv[1], read_only=True).sql('SELECT count(*) FROM typed').fetchone()[0])",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "3");
    let _ = std::fs::remove_file(&outside);
    app.stop().await;
}

#[tokio::test]
async fn a_duckdb_connection_is_listed_as_such_has_no_import_tables_and_refuses_imports() {
    let file = duckdb_file(EVERY_TYPE);
    let app = lake_app(Shape::Embedded, &file, Duration::from_secs(30)).await;
    let list: Value = app.get("/v1/connections").await.json().await.unwrap();
    let lake = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lake")
        .cloned();
    assert_eq!(
        lake,
        Some(json!({"name": "lake", "kind": "duckdb", "allow_sql": true}))
    );
    let tables = app.get("/v1/connections/lake/tables").await;
    assert_eq!(tables.status(), 200);
    assert_eq!(tables.json::<Value>().await.unwrap(), json!({"items": []}));
    let spec = json!({"target": {"connection": "lake", "table": "typed"}});
    let response = app.import_multipart(&spec, b"i1\n1\n".to_vec()).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "target.connection",
        "{problem}"
    );
    app.stop().await;
}
