//! Exports end to end over HTTP, in both deployment shapes.

use crate::helpers::{Shape, incomplete_uploads, spawn_app};
use flate2::read::GzDecoder;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Read;

fn generate(rows: u64, format: &str) -> Value {
    json!({
        "name": "Test data",
        "source": {"type": "generate", "rows": rows, "seed": 42, "columns": [
            {"name": "id", "kind": "uuid"},
            {"name": "email", "kind": "email"},
            {"name": "plan", "kind": "enum", "values": ["free", "pro"]},
            {"name": "score", "kind": "int", "min": 0, "max": 100},
        ]},
        "format": format,
    })
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("valid gzip");
    text
}

#[tokio::test]
async fn a_generated_export_on_the_embedded_default_downloads_identically_twice() {
    let app = spawn_app(Shape::Embedded).await;
    let mut files = Vec::new();
    for _ in 0..2 {
        let job = app.create_export(generate(1000, "csv")).await;
        assert_eq!(job["state"], "queued");
        let id = job["id"].as_str().unwrap().to_owned();
        let done = app.wait_final(&id).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        let file = &done["result"]["file"];
        assert_eq!(file["rows"], 1000);
        assert_eq!(file["filename"], "Test data.csv");
        let (headers, bytes) = app.download(&id).await;
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment")
        );
        assert_eq!(file["size_bytes"], bytes.len() as u64);
        assert_eq!(file["sha256"], hex::encode(Sha256::digest(&bytes)));
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(text.lines().count(), 1001);
        assert!(text.starts_with("id,email,plan,score\n"));
        files.push(bytes);
    }
    assert_eq!(files[0], files[1], "the same seed must give the same file");
}

#[tokio::test]
async fn a_postgres_query_exports_to_s3_as_csv_gz_and_jsonl() {
    let app = spawn_app(Shape::Production).await;
    app.data_sql(
        "CREATE TABLE users (id int PRIMARY KEY, email text, plan text, note text);
         INSERT INTO users SELECT g, 'u' || g || '@example.com', CASE WHEN g % 2 = 0 THEN 'pro' ELSE 'free' END,
                CASE WHEN g = 4 THEN 'has, comma and \"quote\"' END FROM generate_series(1, 5000) g;",
    )
    .await;
    let sql = json!({"source": {"type": "sql", "connection": "main", "query": "SELECT id, email, note FROM users WHERE plan = $1 ORDER BY id", "params": ["pro"]}, "format": "csv.gz"});
    let job = app.create_export(sql).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["file"]["rows"], 2500);
    assert!(done["progress"]["total_rows_estimate"].as_u64().is_some());
    let key = done["result"]["file"]["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("exports/default/{id}/")), "{key}");
    let (_, bytes) = app.download(&id).await;
    let text = gunzip(&bytes);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,email,note"));
    assert_eq!(lines.next(), Some("2,u2@example.com,"));
    assert_eq!(
        lines.next(),
        Some("4,u4@example.com,\"has, comma and \"\"quote\"\"\"")
    );
    assert_eq!(text.lines().count(), 2501);

    let jsonl = json!({"source": {"type": "sql", "connection": "main", "query": "SELECT id, plan FROM users WHERE id <= $1 ORDER BY id", "params": [3]}, "format": "jsonl"});
    let id = app.create_export(jsonl).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_final(&id).await["state"], "succeeded");
    let (_, bytes) = app.download(&id).await;
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        "{\"id\":1,\"plan\":\"free\"}\n{\"id\":2,\"plan\":\"pro\"}\n{\"id\":3,\"plan\":\"free\"}\n"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_sqlite_query_on_the_local_connection_exports() {
    let app = spawn_app(Shape::Embedded).await;
    let local = app.settings.local_connection();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(local.url.expose())
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE t (a INTEGER, b TEXT, c REAL); INSERT INTO t VALUES (1, 'x', 1.5), (2, NULL, 2.5);")
        .execute(&mut conn)
        .await
        .unwrap();
    let body = json!({"source": {"type": "sql", "connection": "local", "query": "SELECT a, b, c FROM t WHERE a >= ? ORDER BY a", "params": [1]}, "format": "csv"});
    let id = app.create_export(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_final(&id).await["state"], "succeeded");
    let (_, bytes) = app.download(&id).await;
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        "a,b,c\n1,x,1.5\n2,,2.5\n"
    );
}

#[tokio::test]
async fn bad_requests_get_problem_details_and_create_nothing() {
    let app = spawn_app(Shape::Embedded).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"source": {"type": "sql", "connection": "nope", "query": "SELECT 1"}}),
            422,
            "source.connection",
        ),
        (
            json!({"source": {"type": "sql", "connection": "main", "query": "SELEC oops"}}),
            422,
            "source.query",
        ),
        (
            json!({"source": {"type": "sql", "connection": "main", "query": "SELECT * FROM missing_table"}}),
            422,
            "source.query",
        ),
        (
            json!({"source": {"type": "template", "template": "nope"}}),
            422,
            "source.template",
        ),
        (
            json!({"source": {"type": "generate", "rows": 1, "columns": [{"name": "a", "kind": "wat"}]}}),
            422,
            "source.columns[0].kind",
        ),
        (json!({"format": "zip"}), 422, "files"),
        (
            json!({"format": "zip", "files": [{"name": "a", "source": {"type": "sql", "connection": "nope", "query": "SELECT 1"}}]}),
            422,
            "files[0].source.connection",
        ),
        (
            json!({"format": "zip", "files": [{"name": "a", "source": {"type": "sql", "connection": "main", "query": "SELECT * FROM missing_table"}}]}),
            422,
            "files[0].source.query",
        ),
        (
            json!({"source": {"type": "generate", "rows": 1, "columns": []}, "colour": "red"}),
            422,
            "colour",
        ),
    ];
    for (body, status, field) in cases {
        let response = app.post_json("/v1/exports", &body).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], status);
        assert!(problem["code"].is_string());
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{body} → {problem}");
    }
    let malformed = app
        .client
        .post(app.url("/v1/exports"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["code"],
        "malformed_request"
    );
    assert_eq!(app.get("/v1/exports/not-a-uuid").await.status(), 404);
    assert_eq!(
        app.get(&format!("/v1/exports/{}", uuid::Uuid::new_v4()))
            .await
            .status(),
        404
    );
    let list: Value = app.get("/v1/exports").await.json().await.unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "no bad request may create a job"
    );
}

#[tokio::test]
async fn events_stream_to_done_and_replay_after_last_event_id() {
    let app = spawn_app(Shape::Embedded).await;
    let id = app.create_export(generate(20_000, "csv.gz")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = read_events(&app, &id, None).await;
    let names: Vec<&str> = events.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"state"));
    assert_eq!(names.last(), Some(&"done"));
    let ids: Vec<u64> = events.iter().map(|(id, _, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    let done = &events.last().unwrap().2;
    assert_eq!(done["state"], "succeeded");
    assert!(done["result"]["download_url"].is_string());
    let replay = read_events(&app, &id, Some(ids[ids.len() - 3])).await;
    assert_eq!(
        replay.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        ids[ids.len() - 2..]
    );
}

async fn read_events(
    app: &crate::helpers::TestApp,
    id: &str,
    last: Option<u64>,
) -> Vec<(u64, String, Value)> {
    let mut request = app.client.get(app.url(&format!("/v1/exports/{id}/events")));
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(std::time::Duration::from_secs(60), response.text())
        .await
        .expect("the stream ends after done")
        .unwrap();
    parse_sse(&text)
}

pub(crate) fn parse_sse(text: &str) -> Vec<(u64, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            Some((
                field("id:")?.parse().ok()?,
                field("event:")?,
                serde_json::from_str(&field("data:")?).ok()?,
            ))
        })
        .collect()
}

#[tokio::test]
async fn cancelling_a_running_s3_export_stops_it_within_a_second_and_leaves_nothing() {
    let app = spawn_app(Shape::Production).await;
    let id = app.create_export(generate(50_000_000, "csv")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::helpers::eventually(
        std::time::Duration::from_secs(30),
        "the export to write some bytes",
        || async {
            let job: Value = app
                .get(&format!("/v1/exports/{id}"))
                .await
                .json()
                .await
                .ok()?;
            (job["progress"]["bytes"].as_u64()? > 6 * 1024 * 1024).then_some(())
        },
    )
    .await;
    let asked = std::time::Instant::now();
    let response = app
        .client
        .post(app.url(&format!("/v1/exports/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "cancelled");
    assert!(
        asked.elapsed() < std::time::Duration::from_millis(1500),
        "took {:?}",
        asked.elapsed()
    );
    let prefix = app.s3_prefix.clone().unwrap();
    assert!(
        incomplete_uploads(&prefix).is_empty(),
        "no multipart upload may remain"
    );
    let again = app
        .client
        .post(app.url(&format!("/v1/exports/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(
        app.get(&format!("/v1/exports/{id}/download"))
            .await
            .status(),
        409
    );
    let retried = app
        .client
        .post(app.url(&format!("/v1/exports/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    app.client
        .post(app.url(&format!("/v1/exports/{id}/cancel")))
        .send()
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_job_and_refuses_a_different_body() {
    let app = spawn_app(Shape::Embedded).await;
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/exports"))
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
    };
    let first = send(generate(10, "csv")).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = send(generate(10, "csv")).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    let other = send(generate(11, "csv")).await.unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(
        other.json::<Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );
}

#[tokio::test]
async fn listing_pages_newest_first_with_a_cursor_and_filters_by_state() {
    let app = spawn_app(Shape::Embedded).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.create_export(generate(5, "csv")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids {
        app.wait_final(id).await;
    }
    let page: Value = app.get("/v1/exports?limit=3").await.json().await.unwrap();
    let got: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [&ids[4], &ids[3], &ids[2]]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2: Value = app
        .get(&format!("/v1/exports?limit=3&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let failed: Value = app
        .get("/v1/exports?state=failed")
        .await
        .json()
        .await
        .unwrap();
    assert!(failed["items"].as_array().unwrap().is_empty());
    assert_eq!(app.get("/v1/exports?state=bogus").await.status(), 422);
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/exports/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.get(&format!("/v1/exports/{}", ids[0])).await.status(),
        404
    );
}

#[tokio::test]
async fn a_job_past_its_timeout_fails_as_transient_and_retries_until_attempts_run_out() {
    let (mut settings, data_url, prefix) = crate::helpers::test_settings(Shape::Embedded).await;
    settings.workers.job_timeout = std::time::Duration::from_millis(700);
    settings.workers.max_attempts = 2;
    let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
    let id = app.create_export(generate(100_000_000, "csv")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = app.wait_final(&id).await;
    assert_eq!(done["state"], "failed");
    assert_eq!(done["attempt"], 2);
    assert_eq!(done["error"]["code"], "timeout");
    assert_eq!(done["error"]["transient"], true);
}

#[tokio::test]
async fn the_sweeper_deletes_files_after_retention_and_the_job_expires() {
    let (mut settings, data_url, prefix) = crate::helpers::test_settings(Shape::Production).await;
    settings.storage.retention = std::time::Duration::from_millis(500);
    let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
    let id = app.create_export(generate(10, "csv")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = app.wait_final(&id).await;
    let url = done["result"]["download_url"].as_str().unwrap().to_owned();
    let expired = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the job to expire",
        || async {
            let job: Value = app
                .get(&format!("/v1/exports/{id}"))
                .await
                .json()
                .await
                .ok()?;
            (job["state"] == "expired").then_some(job)
        },
    )
    .await;
    assert!(expired["expires_at"].is_string());
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        404,
        "the file must be gone"
    );
    app.stop().await;
}

#[tokio::test]
async fn templates_bind_typed_parameters_and_refuse_wrong_ones() {
    let (mut settings, data_url, prefix) = crate::helpers::test_settings(Shape::Embedded).await;
    let template: ferry::config::TemplateSettings = toml_template(
        r#"connection = "main"
query = "SELECT id, email FROM users WHERE plan = $1 AND id <= $2 ORDER BY id"
params = [{ name = "plan", type = "text" }, { name = "max_id", type = "int" }]"#,
    );
    settings.templates.insert("users_by_plan".into(), template);
    let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
    app.data_sql("CREATE TABLE users (id int, email text, plan text); INSERT INTO users VALUES (1, 'a@x', 'pro'), (2, 'b@x', 'free'), (3, 'c@x', 'pro');").await;
    let good = json!({"source": {"type": "template", "template": "users_by_plan", "params": {"plan": "pro' OR '1'='1", "max_id": 3}}});
    let id = app.create_export(good).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.wait_final(&id).await["result"]["file"]["rows"],
        0,
        "a quote in a parameter is data, not SQL"
    );
    let good = json!({"source": {"type": "template", "template": "users_by_plan", "params": {"plan": "pro", "max_id": "3"}}});
    let id = app.create_export(good).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_final(&id).await;
    let (_, bytes) = app.download(&id).await;
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        "id,email\n1,a@x\n3,c@x\n"
    );
    for (params, field) in [
        (
            json!({"plan": "pro", "max_id": "three"}),
            "source.params.max_id",
        ),
        (json!({"plan": "pro"}), "source.params.max_id"),
        (
            json!({"plan": "pro", "max_id": 1, "extra": 1}),
            "source.params.extra",
        ),
    ] {
        let response = app.post_json("/v1/exports", &json!({"source": {"type": "template", "template": "users_by_plan", "params": params}})).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

fn toml_template(text: &str) -> ferry::config::TemplateSettings {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap()
}

#[tokio::test]
async fn sql_exports_run_read_only_and_stop_at_the_statement_timeout() {
    let (mut settings, data_url, prefix) = crate::helpers::test_settings(Shape::Embedded).await;
    if let Some(main) = settings.connections.get_mut("main") {
        main.statement_timeout = std::time::Duration::from_millis(500);
    }
    let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
    app.data_sql("CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2);")
        .await;
    let write = json!({"source": {"type": "sql", "connection": "main", "query": "DELETE FROM keep RETURNING id"}});
    let id = app.create_export(write).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = app.wait_final(&id).await;
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["error"]["code"], "read_only", "{failed}");
    assert_eq!(failed["error"]["transient"], false);
    let slow =
        json!({"source": {"type": "sql", "connection": "main", "query": "SELECT pg_sleep(5)"}});
    let id = app.create_export(slow).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = app.wait_final(&id).await;
    assert_eq!(failed["error"]["code"], "query_timeout", "{failed}");
    assert_eq!(failed["attempt"], 1, "a permanent error is not retried");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.data_url)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM keep")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 2, "nothing was deleted");
}

#[tokio::test]
async fn sql_that_writes_is_refused_or_stopped_and_changes_nothing() {
    let app = spawn_app(Shape::Embedded).await;
    app.data_sql(
        "CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2); CREATE SEQUENCE keep_seq;",
    )
    .await;
    let attempts = [
        "INSERT INTO keep VALUES (9) RETURNING id",
        "UPDATE keep SET id = 0 RETURNING id",
        "DELETE FROM keep RETURNING id",
        "DROP TABLE keep",
        "COPY keep TO PROGRAM 'touch /tmp/ferry-pwned'",
        "SELECT 1; DROP TABLE keep",
        "SELECT 1) TO STDOUT; DROP TABLE keep; COPY (SELECT 1",
        "SELECT nextval('keep_seq')",
    ];
    for sql in attempts {
        let body = json!({"source": {"type": "sql", "connection": "main", "query": sql}});
        let response = app.post_json("/v1/exports", &body).await;
        let status = response.status().as_u16();
        let job: Value = response.json().await.unwrap();
        if status == 202 {
            let done = app.wait_final(job["id"].as_str().unwrap()).await;
            assert_eq!(done["state"], "failed", "{sql}: {done}");
            assert_eq!(done["error"]["transient"], false, "{sql}");
        } else {
            assert_eq!(status, 422, "{sql}: {job}");
            assert_eq!(job["errors"][0]["field"], "source.query", "{sql}");
        }
        assert_eq!(
            app.data_count("SELECT count(*) FROM keep WHERE id IN (1, 2)")
                .await,
            2,
            "{sql} changed the table"
        );
        assert_eq!(
            app.data_count("SELECT count(*) FROM keep").await,
            2,
            "{sql} changed the table"
        );
    }
    assert_eq!(
        app.data_count("SELECT last_value FROM keep_seq").await,
        1,
        "the sequence did not move"
    );
    assert_eq!(
        app.data_count("SELECT count(*) FROM keep_seq WHERE NOT is_called")
            .await,
        1
    );
    assert!(!std::path::Path::new("/tmp/ferry-pwned").exists());
}

#[tokio::test]
async fn hostile_job_names_give_safe_keys_and_a_correct_content_disposition() {
    for shape in [Shape::Embedded, Shape::Production] {
        let app = spawn_app(shape).await;
        let names = [
            "../../etc/passwd",
            "a/b\\c",
            "new\nline \"quoted\"",
            "Résumé 日本語 отчёт",
            &"x".repeat(199),
        ];
        for name in names {
            let mut body = generate(3, "csv");
            body["name"] = json!(name);
            let id = app.create_export(body).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let done = app.wait_final(&id).await;
            assert_eq!(done["state"], "succeeded", "{name:?}: {done}");
            let key = done["result"]["file"]["key"].as_str().unwrap();
            let file = key.rsplit('/').next().unwrap();
            assert!(key.starts_with(&format!("exports/default/{id}/")), "{key}");
            assert!(
                file.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{key}"
            );
            let (headers, _) = app.download(&id).await;
            let disposition = headers["content-disposition"].to_str().unwrap();
            assert!(
                disposition.starts_with("attachment; filename=\""),
                "{disposition}"
            );
            let encoded = disposition.split("filename*=UTF-8''").nth(1).unwrap();
            let decoded = percent_encoding::percent_decode_str(encoded)
                .decode_utf8()
                .unwrap();
            assert!(
                !decoded.contains('/') && !decoded.contains('\\') && !decoded.contains('\n'),
                "{decoded}"
            );
            assert!(decoded.ends_with(".csv"), "{decoded}");
            if name.starts_with("Résumé") {
                assert_eq!(decoded, "Résumé 日本語 отчёт.csv");
            }
        }
        app.stop().await;
    }
}
