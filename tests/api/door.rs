//! The checks at the door (SPEC §4.1 and §7): an empty or plainly-not-CSV file is refused from
//! its first bytes, by multipart, raw body and direct upload, on both stores, and leaves no job,
//! no object and no unfinished upload; a `422` names the field's path wherever the spec came
//! from; and a client reusing its connection after an early answer loses no request.

use crate::helpers::{Shape, TestApp, incomplete_uploads, objects, spawn_app};
use serde_json::{Value, json};
use std::io::Write;

const TABLE: &str = "CREATE TABLE people (id int NOT NULL, note text)";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Files refused at the door: name, bytes, status, code.
fn refused_files() -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..4000u32).map(|i| (i * 7 % 256) as u8));
    let mut xlsx = b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0".to_vec();
    xlsx.extend_from_slice(b"[Content_Types].xml");
    vec![
        ("an empty file", Vec::new(), 422, "empty_file"),
        ("a PNG image", png.clone(), 415, "not_csv"),
        (
            "a PDF",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n".to_vec(),
            415,
            "not_csv",
        ),
        ("an xlsx (zip)", xlsx, 415, "not_csv"),
        (
            "binary with NUL bytes",
            b"\0\x01\x02\0id\0\0\x03,\0\n".to_vec(),
            415,
            "not_csv",
        ),
        ("a gzipped PNG", gzip(&png), 415, "not_csv"),
        ("a gzipped empty file", gzip(b""), 422, "empty_file"),
    ]
}

async fn app_with_table(shape: Shape) -> TestApp {
    let app = spawn_app(shape).await;
    app.data_sql(TABLE).await;
    app
}

async fn raw_upload(app: &TestApp, query: &str, file: Vec<u8>, gzip: bool) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/imports?{query}")))
        .header("content-type", "text/csv")
        .body(file);
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    request.send().await.unwrap()
}

/// Checks a refusal's answer: status, code, `file` named.
async fn assert_refused(response: reqwest::Response, status: u16, code: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(body["errors"][0]["field"], "file", "{what}: {body}");
}

/// No import jobs, no stored file, no unfinished upload.
async fn assert_nothing_kept(app: &TestApp, what: &str) {
    let list: Value = app.get("/v1/imports").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]), "{what}: a job was made");
    assert_no_files(app, what);
}

/// No stored file and no unfinished upload.
fn assert_no_files(app: &TestApp, what: &str) {
    match &app.s3_prefix {
        Some(prefix) => {
            assert_eq!(objects(prefix), Vec::<String>::new(), "{what}: objects");
            assert_eq!(
                incomplete_uploads(prefix),
                Vec::<String>::new(),
                "{what}: unfinished multipart uploads"
            );
        }
        None => {
            let files = local_files(&app.settings.data_dir.join("files"));
            assert_eq!(
                files,
                Vec::<String>::new(),
                "{what}: files or staging files"
            );
        }
    }
}

/// Every file under `dir`, staging files (`name#N`) included.
fn local_files(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(local_files(&path));
        } else {
            files.push(path.display().to_string());
        }
    }
    files
}

async fn refused_uploads_leave_nothing_behind(shape: Shape) {
    let app = app_with_table(shape).await;
    let spec = json!({"target": {"table": "people"}});
    for (what, file, status, code) in refused_files() {
        let response = app.import_multipart(&spec, file.clone()).await;
        assert_refused(response, status, code, &format!("multipart: {what}")).await;
        let response = raw_upload(&app, "table=people", file, false).await;
        assert_refused(response, status, code, &format!("raw body: {what}")).await;
        assert_nothing_kept(&app, what).await;
    }
}

#[tokio::test]
async fn refused_uploads_leave_no_job_no_file_and_no_staging_file_locally() {
    refused_uploads_leave_nothing_behind(Shape::Embedded).await;
}

#[tokio::test]
async fn refused_uploads_leave_no_job_no_object_and_no_multipart_upload_on_s3() {
    refused_uploads_leave_nothing_behind(Shape::Production).await;
}

#[tokio::test]
async fn gzip_csv_and_utf16_with_a_bom_pass_the_door() {
    let app = app_with_table(Shape::Embedded).await;
    let csv = "id,note\n".to_owned() + &"1,some words\n".repeat(20_000);
    let job = app
        .import(
            &json!({"target": {"table": "people"}}),
            gzip(csv.as_bytes()),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let response = raw_upload(&app, "table=people", gzip(b"id,note\n2,x\n"), true).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let job = app
        .wait_final_at(&format!("/v1/imports/{}", job["id"].as_str().unwrap()))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(app.data_count("SELECT count(*) FROM people").await, 20_001);
    // UTF-16 with a byte-order mark is text at the door (NULs and all).
    let utf16: Vec<u8> = "\u{feff}id,note\n3,x\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let response = raw_upload(&app, "table=people", utf16, false).await;
    assert_eq!(response.status(), 202);
}

/// Creates a direct upload and puts `file` at its link; returns the job's id.
async fn direct_upload(app: &TestApp, file: Vec<u8>) -> String {
    let created = app
        .post_json(
            "/v1/imports",
            &json!({"target": {"table": "people"}, "upload": "direct"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let job: Value = created.json().await.unwrap();
    put(&job["upload"]["url"], file).await;
    job["id"].as_str().unwrap().to_owned()
}

async fn put(url: &Value, file: Vec<u8>) {
    let response = reqwest::Client::new()
        .put(url.as_str().unwrap())
        .body(file)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

async fn direct_uploads_are_checked_at_start(shape: Shape) {
    let app = app_with_table(shape).await;
    for (what, file, status, code) in refused_files() {
        let id = direct_upload(&app, file).await;
        let started = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/start")))
            .send()
            .await
            .unwrap();
        assert_refused(started, status, code, &format!("direct: {what}")).await;
        let job: Value = app
            .get(&format!("/v1/imports/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(job["state"], "awaiting_upload", "{what}: {job}");
        assert_no_files(&app, what);
        app.client
            .delete(app.url(&format!("/v1/imports/{id}")))
            .send()
            .await
            .unwrap();
    }
    // A refused file is gone; a good one put at the same link starts the same job.
    let created = app
        .post_json(
            "/v1/imports",
            &json!({"target": {"table": "people"}, "upload": "direct"}),
        )
        .await;
    let job: Value = created.json().await.unwrap();
    let (id, url) = (job["id"].as_str().unwrap(), &job["upload"]["url"]);
    put(url, b"\x89PNG\r\n\x1a\n\0\0\0\0".to_vec()).await;
    let start = app.url(&format!("/v1/imports/{id}/start"));
    let refused = app.client.post(&start).send().await.unwrap();
    assert_eq!(refused.status(), 415);
    put(url, b"id,note\n7,fixed\n".to_vec()).await;
    let started = app.client.post(&start).send().await.unwrap();
    assert_eq!(started.status(), 202);
    let job = app.wait_final_at(&format!("/v1/imports/{id}")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
}

#[tokio::test]
async fn a_direct_upload_is_checked_at_start_locally_and_may_be_put_again() {
    direct_uploads_are_checked_at_start(Shape::Embedded).await;
}

#[tokio::test]
async fn a_direct_upload_is_checked_at_start_on_s3_and_may_be_put_again() {
    direct_uploads_are_checked_at_start(Shape::Production).await;
}

/// The `errors[].field` of a `422` answer.
async fn field_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    body["errors"][0]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field named: {body}"))
        .to_owned()
}

#[tokio::test]
async fn a_422_names_the_field_path_in_json_multipart_and_query_specs() {
    let app = app_with_table(Shape::Embedded).await;
    let cases = [
        (
            json!({"target": {"table": "people"}, "mode": "merge"}),
            "mode",
        ),
        (
            json!({"target": {"table": "people", "connection": 5}}),
            "target.connection",
        ),
        (
            json!({"target": {"table": "people"}, "commit": "sometimes"}),
            "commit",
        ),
        (
            json!({"target": {"table": "people"}, "commit": 1}),
            "commit",
        ),
        (
            json!({"target": {"table": "people"}, "columns": {"note": {"pattern": 5}}}),
            "columns.note.pattern",
        ),
        (
            json!({"target": {"table": "people"}, "columns": {"note": {"pattern": "("}}}),
            "columns.note.pattern",
        ),
        (
            json!({"target": {"table": "people"}, "columns": {"note": {"patern": "x"}}}),
            "columns.note.patern",
        ),
        (
            json!({"target": {"table": "people", "tabel": "x"}}),
            "target.tabel",
        ),
        (
            json!({"target": {"table": "people"}, "format": {"header": "yes"}}),
            "format.header",
        ),
    ];
    for (spec, field) in cases {
        let mut direct = spec.clone();
        direct["upload"] = json!("direct");
        let response = app.post_json("/v1/imports", &direct).await;
        assert_eq!(field_of(response).await, field, "JSON: {spec}");
        let response = app.import_multipart(&spec, b"id\n1\n".to_vec()).await;
        assert_eq!(field_of(response).await, field, "multipart: {spec}");
    }
    for (query, field) in [
        ("table=people&mode=merge", "mode"),
        ("table=people&header=maybe", "header"),
        ("table=people&max_errors=-1", "max_errors"),
        ("table=people&commit=sometimes", "commit"),
    ] {
        let response = raw_upload(&app, query, b"id\n1\n".to_vec(), false).await;
        assert_eq!(field_of(response).await, field, "query: {query}");
    }
    for (spec, field) in [
        (json!({"format": "csvv"}), "format"),
        (
            json!({"source": {"type": "sql", "connection": "main", "query": "SELECT 1"},
                   "compression": {"level": "high"}}),
            "compression.level",
        ),
        (
            json!({"format": "zip", "files": [{"name": "a", "source": {"type": "sql",
                   "connection": "main", "query": "SELECT 1"}, "csv": {"delimiter": 5}}]}),
            "files[0].csv.delimiter",
        ),
    ] {
        let response = app.post_json("/v1/exports", &spec).await;
        assert_eq!(field_of(response).await, field, "export: {spec}");
    }
}

#[tokio::test]
async fn a_keep_alive_client_loses_no_request_after_an_early_answer_to_a_large_upload() {
    let app = app_with_table(Shape::Embedded).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let file = "id,note\n1,x\n".repeat(5 * 1024 * 1024 / 11).into_bytes();
    for round in 0..50 {
        let form = reqwest::multipart::Form::new()
            .text(
                "spec",
                r#"{"target": {"table": "people"}, "mode": "merge"}"#,
            )
            .part("file", reqwest::multipart::Part::bytes(file.clone()));
        let refused = client
            .post(app.url("/v1/imports"))
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the refused upload got no answer: {e}"));
        assert_eq!(refused.status(), 422, "round {round}");
        assert_eq!(refused.headers()["connection"], "close", "round {round}");
        assert_eq!(field_of(refused).await, "mode");
        for _ in 0..2 {
            let next = client
                .get(app.url("/v1/imports"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}: the next request was dropped: {e}"));
            assert_eq!(next.status(), 200, "round {round}");
        }
    }
    // A request whose body was read to its end keeps its connection.
    let response = app
        .import_multipart(&json!({"target": {"table": "people"}}), b"id\n1\n".to_vec())
        .await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("connection").is_none());
}
