//! Parquet, XLSX and zip bundles end to end, each file read back by an independent reader
//! (pyarrow, openpyxl, Python's zipfile), which `scripts/test` installs.

use crate::helpers::{Shape, TestApp, incomplete_uploads, objects, spawn_app};
use serde_json::{Value, json};
use std::io::Write;

/// Runs a Python script with `file` (saved with the extension `ext`, which openpyxl insists
/// on) as its argument and parses what it prints as JSON.
pub fn python(script: &str, file: &[u8], ext: &str) -> Value {
    let mut temp = tempfile_path(ext);
    temp.write_all(file).unwrap();
    let path = temp.path().to_owned();
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs (scripts/test installs pyarrow and openpyxl)");
    assert!(
        output.status.success(),
        "the Python reader failed (run the tests with scripts/test, which installs pyarrow and \
         openpyxl): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A named temporary file, removed on drop.
struct Temp {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl Temp {
    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Write for Temp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_path(ext: &str) -> Temp {
    let path = std::env::temp_dir().join(format!("ferry-test-{}.{ext}", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).unwrap();
    Temp { path, file }
}

/// Prints `{"schema": [[name, type], …], "rows": [[value, …], …]}` of a Parquet file, every
/// value in a form JSON holds exactly: floats as `repr`, decimals as `str`, dates and times in
/// ISO 8601.
pub const READ_PARQUET: &str = r#"
import sys, json, datetime, decimal
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
def plain(v):
    if isinstance(v, float): return repr(v)
    if isinstance(v, decimal.Decimal): return str(v)
    if isinstance(v, (datetime.datetime, datetime.date)): return v.isoformat()
    return v
meta = pq.ParquetFile(sys.argv[1]).metadata
print(json.dumps({
    "schema": [[f.name, str(f.type)] for f in table.schema],
    "rows": [[plain(v) for v in row.values()] for row in table.to_pylist()],
    "compression": meta.row_group(0).column(0).compression if meta.num_row_groups else None,
    "row_groups": meta.num_row_groups,
}))
"#;

/// Prints every sheet of a workbook: its name, and each row's cells as [type, value], with the
/// first row's bold flags.
pub const READ_XLSX: &str = r#"
import sys, json, datetime
import openpyxl
book = openpyxl.load_workbook(sys.argv[1])
def cell(c):
    v = c.value
    if isinstance(v, (datetime.datetime, datetime.date)): v = v.isoformat()
    return [c.data_type, v]
print(json.dumps([{
    "name": ws.title,
    "bold": [c.font.b for c in ws[1]],
    "rows": [[cell(c) for c in row] for row in ws.iter_rows()],
} for ws in book.worksheets]))
"#;

pub async fn export(app: &TestApp, body: Value) -> (Value, bytes::Bytes) {
    let id = app.create_export(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let (_, bytes) = app.download(&id).await;
    (done, bytes)
}

const EVERY_TYPE: &str = r#"
CREATE TABLE typed (i2 smallint, i4 integer, i8 bigint, dec numeric(12,2), num numeric,
  r4 real, f8 double precision, b boolean, d date, ts timestamp, tstz timestamptz, u uuid,
  j json, jb jsonb, t text, v varchar(20), c char(3), iv interval);
INSERT INTO typed VALUES
 (-32768, -2147483648, -9223372036854775808, -1234567890.12, 3.14159265358979323846, 1.5,
  -2.25e100, true, '2024-02-29', '2000-01-01 00:00:00.000001', '2026-03-29 01:30:00+02',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null, "a": 1}',
  E'tëxt, "quoted"\nline', 'short', 'ab', '1 day 02:03:04'),
 (32767, 2147483647, 9223372036854775807, 9999999999.99, -0.5, 'NaN', 'Infinity', false,
  '1969-12-31', '1969-07-20 20:17:40', '1970-01-01 00:00:00+00',
  '00000000-0000-0000-0000-000000000000', 'null', '[]', '', 'ü', 'xyz', '-1 mons'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL);
"#;

#[tokio::test]
async fn every_postgres_type_reads_back_from_parquet_in_pyarrow_value_for_value_nulls_included() {
    let app = spawn_app(Shape::Production).await;
    app.data_sql(EVERY_TYPE).await;
    let body = json!({"source": {"type": "sql", "connection": "main",
        "query": "SELECT * FROM typed ORDER BY i2"}, "format": "parquet"});
    let (done, bytes) = export(&app, body).await;
    let file = &done["result"]["file"];
    assert_eq!(file["rows"], 3);
    assert_eq!(file["content_type"], "application/vnd.apache.parquet");
    let read = python(READ_PARQUET, &bytes, "parquet");
    assert_eq!(
        read["schema"],
        json!([
            ["i2", "int16"],
            ["i4", "int32"],
            ["i8", "int64"],
            ["dec", "decimal128(12, 2)"],
            ["num", "string"],
            ["r4", "float"],
            ["f8", "double"],
            ["b", "bool"],
            ["d", "date32[day]"],
            ["ts", "timestamp[us]"],
            ["tstz", "timestamp[us, tz=UTC]"],
            ["u", "string"],
            ["j", "string"],
            ["jb", "string"],
            ["t", "string"],
            ["v", "string"],
            ["c", "string"],
            ["iv", "string"]
        ])
    );
    assert_eq!(read["compression"], "ZSTD");
    assert_eq!(
        read["rows"],
        json!([
            [
                -32768,
                -2147483648i64,
                i64::MIN,
                "-1234567890.12",
                "3.14159265358979323846",
                "1.5",
                "-2.25e+100",
                true,
                "2024-02-29",
                "2000-01-01T00:00:00.000001",
                "2026-03-28T23:30:00+00:00",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "{\"a\": [1, 2]}",
                "{\"a\": 1, \"b\": null}",
                "tëxt, \"quoted\"\nline",
                "short",
                "ab ",
                "1 day 02:03:04"
            ],
            [
                32767,
                2147483647,
                i64::MAX,
                "9999999999.99",
                "-0.5",
                "nan",
                "inf",
                false,
                "1969-12-31",
                "1969-07-20T20:17:40",
                "1970-01-01T00:00:00+00:00",
                "00000000-0000-0000-0000-000000000000",
                "null",
                "[]",
                "",
                "ü",
                "xyz",
                "-1 mons"
            ],
            [
                null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null
            ]
        ])
    );
    app.stop().await;
}

#[tokio::test]
async fn generated_parquet_has_the_kinds_types_and_the_same_values_as_its_csv() {
    let app = spawn_app(Shape::Embedded).await;
    let source = json!({"type": "generate", "rows": 3000, "seed": 7, "columns": [
        {"name": "id", "kind": "uuid"},
        {"name": "n", "kind": "int", "min": -1000, "max": 1000, "null_fraction": 0.1},
        {"name": "x", "kind": "float", "min": -100, "max": 100},
        {"name": "ok", "kind": "bool", "null_fraction": 0.2},
        {"name": "name", "kind": "name"},
        {"name": "day", "kind": "date"},
        {"name": "at", "kind": "timestamp"},
        {"name": "meta", "kind": "json"}]});
    let (_, csv) = export(&app, json!({"source": source, "format": "csv"})).await;
    let (done, parquet) = export(&app, json!({"source": source, "format": "parquet"})).await;
    assert_eq!(done["result"]["file"]["rows"], 3000);
    let read = python(READ_PARQUET, &parquet, "parquet");
    let types: Vec<&str> = read["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[1].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "string",
            "int64",
            "double",
            "bool",
            "string",
            "date32[day]",
            "timestamp[us, tz=UTC]",
            "string"
        ]
    );
    let mut reader = csv::Reader::from_reader(&csv[..]);
    let rows = read["rows"].as_array().unwrap();
    let mut compared = 0;
    for (record, row) in reader.records().zip(rows) {
        let record = record.unwrap();
        for (field, value) in record.iter().zip(row.as_array().unwrap()) {
            let as_csv = match value {
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::String(s) if s.ends_with("+00:00") => s.replace("+00:00", "Z"),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(field, as_csv, "row {compared}");
        }
        compared += 1;
    }
    assert_eq!(compared, 3000);
}

#[tokio::test]
async fn sqlite_declared_types_shape_parquet_and_a_value_that_does_not_fit_fails_the_job() {
    let app = spawn_app(Shape::Embedded).await;
    let local = app.settings.local_connection();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(local.url.expose())
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE s (a INTEGER, b REAL, c TEXT, d BOOLEAN, e DATE, f DATETIME);
         INSERT INTO s VALUES (1, 1.5, 'x', 1, '2024-01-02', '2024-01-02 03:04:05'),
                              (NULL, NULL, NULL, 0, NULL, '2024-01-02T03:04:05.25Z');
         CREATE TABLE bad (n INTEGER); INSERT INTO bad VALUES (1), ('abc');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let body = json!({"source": {"type": "sql", "connection": "local",
        "query": "SELECT a, b, c, d, e, f, a * 2 AS doubled FROM s ORDER BY rowid"}, "format": "parquet"});
    let (_, bytes) = export(&app, body).await;
    let read = python(READ_PARQUET, &bytes, "parquet");
    assert_eq!(
        read["schema"],
        json!([
            ["a", "int64"],
            ["b", "double"],
            ["c", "string"],
            ["d", "bool"],
            ["e", "date32[day]"],
            ["f", "timestamp[us]"],
            ["doubled", "int64"]
        ])
    );
    assert_eq!(
        read["rows"],
        json!([
            [1, "1.5", "x", true, "2024-01-02", "2024-01-02T03:04:05", 2],
            [
                null,
                null,
                null,
                false,
                null,
                "2024-01-02T03:04:05.250000",
                null
            ]
        ])
    );
    let body = json!({"source": {"type": "sql", "connection": "local",
        "query": "SELECT n FROM bad"}, "format": "parquet"});
    let id = app.create_export(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "invalid_value");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"n\"") && message.contains("abc"),
        "{message}"
    );
}

#[tokio::test]
async fn postgres_rows_become_typed_xlsx_cells_under_a_bold_header() {
    let app = spawn_app(Shape::Production).await;
    app.data_sql(EVERY_TYPE).await;
    let body = json!({"source": {"type": "sql", "connection": "main",
        "query": "SELECT i4, i8, dec, f8, b, d, ts, tstz, u, jb, t FROM typed ORDER BY i2"},
        "format": "xlsx", "name": "Typed"});
    let (done, bytes) = export(&app, body).await;
    assert_eq!(done["result"]["file"]["filename"], "Typed.xlsx");
    let sheets = python(READ_XLSX, &bytes, "xlsx");
    assert_eq!(sheets.as_array().unwrap().len(), 1);
    let sheet = &sheets[0];
    assert_eq!(sheet["name"], "Sheet1");
    assert_eq!(sheet["bold"], Value::Array(vec![json!(true); 11]));
    let header: Vec<&str> = sheet["rows"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[1].as_str().unwrap())
        .collect();
    assert_eq!(
        header,
        [
            "i4", "i8", "dec", "f8", "b", "d", "ts", "tstz", "u", "jb", "t"
        ]
    );
    // Excel keeps times to the millisecond, and an empty string is an empty cell (as Excel
    // writes it): those are the two places where a workbook cannot hold the value as it is.
    assert_eq!(
        sheet["rows"][1],
        json!([
            ["n", -2147483648i64],
            ["s", "-9223372036854775808"],
            ["n", -1234567890.12],
            ["n", -2.25e100],
            ["b", true],
            ["d", "2024-02-29T00:00:00"],
            ["d", "2000-01-01T00:00:00"],
            ["d", "2026-03-28T23:30:00"],
            ["s", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
            ["s", "{\"a\": 1, \"b\": null}"],
            ["s", "tëxt, \"quoted\"\nline"]
        ])
    );
    assert_eq!(
        sheet["rows"][2],
        json!([
            ["n", 2147483647],
            ["s", "9223372036854775807"],
            ["n", 9999999999.99],
            ["s", "Infinity"],
            ["b", false],
            ["d", "1969-12-31T00:00:00"],
            ["d", "1969-07-20T20:17:40"],
            ["d", "1970-01-01T00:00:00"],
            ["s", "00000000-0000-0000-0000-000000000000"],
            ["s", "[]"],
            ["n", null]
        ])
    );
    // The all-NULL row has no cells: openpyxl reads it (if at all) as empty ones.
    let rows = sheet["rows"].as_array().unwrap();
    assert!(rows.len() <= 4, "{rows:?}");
    if let Some(last) = rows.get(3) {
        assert!(
            last.as_array().unwrap().iter().all(|c| c[1].is_null()),
            "{last}"
        );
    }
    app.stop().await;
}

#[test]
fn rows_past_a_sheets_limit_continue_on_new_sheets_that_repeat_the_header() {
    use ferry::pipeline::codecs::Encoder;
    use ferry::pipeline::codecs::xlsx::XlsxConfig;
    use ferry::pipeline::types::{Column, ColumnType};
    let mut encoder = XlsxConfig {
        max_sheet_rows: 4,
        ..XlsxConfig::default()
    }
    .build();
    let columns = [Column::new("n", ColumnType::Int64), Column::text("label")];
    let mut out = Vec::new();
    encoder.begin(&columns, &mut out).unwrap();
    let rows: Vec<Vec<Value>> = (1..=8)
        .map(|n| vec![json!(n), json!(format!("row {n}"))])
        .collect();
    encoder.encode(&rows[..5], &mut out).unwrap();
    encoder.encode(&rows[5..], &mut out).unwrap();
    encoder.finish(&mut out).unwrap();
    let sheets = python(READ_XLSX, &out, "xlsx");
    let names: Vec<&str> = sheets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Sheet1", "Sheet2", "Sheet3"]);
    let mut n = 0;
    for sheet in sheets.as_array().unwrap() {
        let rows = sheet["rows"].as_array().unwrap();
        assert_eq!(rows[0], json!([["s", "n"], ["s", "label"]]));
        assert_eq!(sheet["bold"], json!([true, true]));
        for row in &rows[1..] {
            n += 1;
            assert_eq!(*row, json!([["n", n], ["s", format!("row {n}")]]));
        }
    }
    assert_eq!(n, 8);
}

/// Prints each entry of a zip: name, size, compression, and for CSV its line count, for
/// Parquet its rows (pyarrow), for XLSX its first sheet's rows (openpyxl).
const READ_ZIP: &str = r#"
import sys, json, zipfile, io
import pyarrow.parquet as pq, openpyxl
out = []
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    for info in z.infolist():
        data = z.read(info)
        entry = {"name": info.filename, "size": info.file_size, "deflated": info.compress_type == zipfile.ZIP_DEFLATED}
        if info.filename.endswith(".csv"):
            entry["lines"] = data.decode().splitlines()
        elif info.filename.endswith(".parquet"):
            entry["rows"] = pq.read_table(io.BytesIO(data)).to_pylist()
        elif info.filename.endswith(".xlsx"):
            ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
            entry["rows"] = [[c.value for c in row] for row in ws.iter_rows()]
        out.append(entry)
print(json.dumps(out, default=str))
"#;

#[tokio::test]
async fn a_bundle_streams_its_files_in_turn_into_one_zip_with_entries_in_the_result() {
    let app = spawn_app(Shape::Production).await;
    app.data_sql("CREATE TABLE orders (id int, amount numeric(8,2)); INSERT INTO orders SELECT g, g * 1.25 FROM generate_series(1, 300) g;").await;
    let generate = json!({"type": "generate", "rows": 1000, "seed": 1,
        "columns": [{"name": "id", "kind": "int", "min": 1, "max": 9}]});
    let body = json!({"name": "Monthly", "format": "zip", "files": [
        {"name": "users", "source": generate, "format": "csv"},
        {"name": "orders", "source": {"type": "sql", "connection": "main",
            "query": "SELECT id, amount FROM orders ORDER BY id"}, "format": "parquet"},
        {"name": "summary", "source": {"type": "sql", "connection": "main",
            "query": "SELECT count(*) AS n, sum(amount) AS total FROM orders"}, "format": "xlsx"}
    ]});
    let (done, bytes) = export(&app, body).await;
    let file = &done["result"]["file"];
    assert_eq!(file["format"], "zip");
    assert_eq!(file["content_type"], "application/zip");
    assert_eq!(file["filename"], "Monthly.zip");
    assert_eq!(file["rows"], 1301);
    assert_eq!(done["progress"]["rows"], 1301);
    let entries = file["entries"].as_array().unwrap();
    let read = python(READ_ZIP, &bytes, "zip");
    let read = read.as_array().unwrap();
    assert_eq!(read.len(), 3);
    for (entry, (name, format, rows)) in entries.iter().zip([
        ("users.csv", "csv", 1000),
        ("orders.parquet", "parquet", 300),
        ("summary.xlsx", "xlsx", 1),
    ]) {
        assert_eq!(entry["name"], name);
        assert_eq!(entry["format"], format);
        assert_eq!(entry["rows"], rows);
    }
    for (entry, read) in entries.iter().zip(read) {
        assert_eq!(entry["name"], read["name"]);
        assert_eq!(entry["bytes"], read["size"]);
    }
    assert_eq!(read[0]["deflated"], true);
    assert_eq!(read[1]["deflated"], false);
    let lines = read[0]["lines"].as_array().unwrap();
    assert_eq!((lines.len(), &lines[0]), (1001, &json!("id")));
    let orders = read[1]["rows"].as_array().unwrap();
    assert_eq!(orders.len(), 300);
    assert_eq!(orders[299], json!({"id": 300, "amount": "375.00"}));
    // sum(numeric(8,2)) is a plain numeric: text, as PostgreSQL prints it.
    assert_eq!(read[2]["rows"], json!([["n", "total"], [300, "56437.50"]]));
    app.stop().await;
}

#[tokio::test]
async fn one_failing_file_fails_the_bundle_and_leaves_no_object_or_upload() {
    let app = spawn_app(Shape::Production).await;
    let generate = json!({"type": "generate", "rows": 20000, "seed": 1,
        "columns": [{"name": "t", "kind": "text", "length": 200}]});
    let body = json!({"format": "zip", "files": [
        {"name": "fine", "source": generate, "format": "csv"},
        {"name": "broken", "source": {"type": "sql", "connection": "main",
            "query": "SELECT 1 / (g - 3) AS x FROM generate_series(1, 5) g"}, "format": "xlsx"}
    ]});
    let id = app.create_export(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "query_failed", "{done}");
    assert!(done["result"].is_null());
    let prefix = app.s3_prefix.clone().unwrap();
    assert!(
        objects(&prefix).iter().all(|key| !key.contains(&id)),
        "{:?}",
        objects(&prefix)
    );
    assert!(incomplete_uploads(&prefix).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn gzip_levels_trade_size_for_speed_and_every_level_reads_back_the_same_csv() {
    let app = spawn_app(Shape::Embedded).await;
    let source = json!({"type": "generate", "rows": 20000, "seed": 3, "columns": [
        {"name": "id", "kind": "uuid"}, {"name": "email", "kind": "email"},
        {"name": "city", "kind": "city"}, {"name": "at", "kind": "timestamp"}]});
    let mut sizes = Vec::new();
    let mut plain = Vec::new();
    for level in [None, Some(1), Some(9)] {
        let mut body = json!({"source": source, "format": "csv.gz"});
        if let Some(level) = level {
            body["compression"] = json!({"level": level});
        }
        let (done, bytes) = export(&app, body).await;
        assert_eq!(done["result"]["file"]["size_bytes"], bytes.len() as u64);
        sizes.push(bytes.len());
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
            &mut text,
        )
        .unwrap();
        plain.push(text);
    }
    assert!(plain.iter().all(|p| *p == plain[0]));
    assert!(plain[0].starts_with("id,email,city,at\n"));
    assert_eq!(plain[0].lines().count(), 20_001);
    assert_eq!(sizes[0], sizes[1], "the default is level 1");
    assert!(
        sizes[2] < sizes[1],
        "level 9 {} vs level 1 {}",
        sizes[2],
        sizes[1]
    );
    let refused = app
        .post_json(
            "/v1/exports",
            &json!({"source": source, "format": "csv.gz", "compression": {"level": 12}}),
        )
        .await;
    assert_eq!(refused.status(), 422);
}
