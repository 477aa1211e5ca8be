//! Resumable uploads: a file sent in parts survives the Ferry process that took the first parts
//! (state in the metadata database, parts in the store), an abandoned upload is aborted by the
//! sweeper, and sizes over `max_upload` are refused. On S3 and on the local store.

use crate::helpers::{
    Shape, eventually, fresh_postgres, incomplete_uploads, s3, spawn_with, test_settings,
};
use crate::workers::Processes;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Bytes per part in these tests (S3's smallest part).
const PART: u64 = 5 * 1024 * 1024;

/// A CSV of `rows` rows (`id,v`) a little over two parts long.
fn csv(rows: u64) -> Vec<u8> {
    let mut file = b"id,v\n".to_vec();
    for id in 1..=rows {
        file.extend_from_slice(format!("{id},row {id:08} of a file sent in parts\n").as_bytes());
    }
    file
}

/// A TOML file for a `ferry serve` sharing `settings`' metadata database, store and data
/// directory (so, on the local store, its link-signing key).
fn config_file(
    settings: &ferry::config::Settings,
    data_url: &str,
    port: u16,
) -> std::path::PathBuf {
    let storage = match &settings.storage.url {
        Some(url) => {
            let s3 = s3();
            format!(
                "url = \"{url}\"\nendpoint = \"{}\"\nregion = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
                s3.endpoint, s3.region, s3.key, s3.secret
            )
        }
        None => String::new(),
    };
    let toml = format!(
        "data_dir = \"{data}\"\ndatabase_url = \"{db}\"\nlisten = \"127.0.0.1:{port}\"\n\
         [storage]\n{storage}part_size = \"5MiB\"\n\
         [connections.main]\nurl = \"{data_url}\"\nallow_sql = true\n",
        data = settings.data_dir.display(),
        db = settings
            .database_url
            .as_ref()
            .expect("PostgreSQL metadata")
            .expose(),
    );
    std::fs::create_dir_all(&settings.data_dir).expect("the data directory");
    let path = settings.data_dir.join("first.toml");
    std::fs::write(&path, toml).expect("write the config");
    path
}

/// Settings of `shape` with PostgreSQL metadata (shared by two processes) and 5 MiB parts.
async fn shared_settings(shape: Shape) -> (ferry::config::Settings, String, Option<String>) {
    let (mut settings, data_url, prefix) = test_settings(shape).await;
    if settings.database_url.is_none() {
        settings.database_url = Some(ferry::config::Secret::new(fresh_postgres().await));
    }
    settings.storage.part_size = bytesize::ByteSize::b(PART);
    (settings, data_url, prefix)
}

/// Sends part `number` of `file` through a link that `base` hands out.
async fn send_part(client: &reqwest::Client, base: &str, id: &str, number: u64, file: &[u8]) {
    let link: Value = client
        .get(format!("{base}/v1/imports/{id}/upload/parts/{number}"))
        .send()
        .await
        .expect("ask for a part link")
        .json()
        .await
        .expect("a link");
    assert_eq!(link["method"], "PUT", "{link}");
    let start = usize::try_from((number - 1) * PART).unwrap();
    let end = (start + PART as usize).min(file.len());
    let put = client
        .put(link["url"].as_str().expect("a url"))
        .body(file[start..end].to_vec())
        .send()
        .await
        .expect("send the part");
    assert!(put.status().is_success(), "part {number}: {}", put.status());
}

/// What is left of unfinished uploads: the bucket's incomplete multipart uploads under
/// `prefix` on S3, the part files under `dir` on the local store.
fn leftovers(prefix: &Option<String>, dir: &std::path::Path) -> Vec<String> {
    match prefix {
        Some(prefix) => incomplete_uploads(prefix),
        None => local_parts(dir),
    }
}

/// Part files the local store still holds under `dir`.
fn local_parts(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains(".part-") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn an_upload_interrupted_after_two_parts_is_resumed_through_another_process_and_loads_once() {
    for shape in [Shape::Production, Shape::Embedded] {
        let (settings, data_url, prefix) = shared_settings(shape).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = config_file(&settings, &data_url, port);
        let first_base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let first = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ferry");
        let mut first = Processes(vec![first]);
        eventually(
            Duration::from_secs(30),
            "the first process to listen",
            || async {
                client
                    .get(format!("{first_base}/healthz"))
                    .send()
                    .await
                    .ok()
                    .map(drop)
            },
        )
        .await;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&data_url)
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (id bigint, v text)")
            .execute(&mut conn)
            .await
            .unwrap();
        let rows = 260_000u64;
        let file = csv(rows);
        let spec = json!({"target": {"table": "t"}, "upload": "multipart", "size": file.len()});
        let created = client
            .post(format!("{first_base}/v1/imports"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{shape:?}");
        let job: Value = created.json().await.unwrap();
        assert_eq!(job["state"], "awaiting_upload");
        let id = job["id"].as_str().unwrap().to_owned();
        send_part(&client, &first_base, &id, 1, &file).await;
        send_part(&client, &first_base, &id, 2, &file).await;
        // The connection drops: the first process is gone (SIGKILL), mid-upload.
        for child in &mut first.0 {
            child.kill().expect("kill the first process");
            child.wait().expect("reap it");
        }
        first.0.clear();

        let app = spawn_with(settings, data_url, prefix.clone()).await;
        let upload: Value = app
            .get(&format!("/v1/imports/{id}/upload"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(upload["part_size"], PART, "{shape:?}: {upload}");
        assert_eq!(upload["parts"], 3, "{upload}");
        let stored: Vec<u64> = upload["uploaded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|part| part["number"].as_u64().unwrap())
            .collect();
        assert_eq!(
            stored,
            [1, 2],
            "{shape:?}: the parts the first process took are there"
        );
        let early = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/upload/complete")))
            .send()
            .await
            .unwrap();
        assert_eq!(early.status(), 409, "{shape:?}: part 3 is missing");
        let problem: Value = early.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("part 3"),
            "{problem}"
        );
        send_part(&app.client, &app.address, &id, 3, &file).await;
        let completed = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/upload/complete")))
            .send()
            .await
            .unwrap();
        assert_eq!(completed.status(), 200, "{shape:?}");
        let started = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "{shape:?}");
        let done = app.wait_final_at(&format!("/v1/imports/{id}")).await;
        assert_eq!(done["state"], "succeeded", "{shape:?}: {done}");
        assert_eq!(done["result"]["rows_inserted"], rows);
        let count = app.data_count("SELECT count(DISTINCT id) FROM t").await;
        assert_eq!(count, rows as i64, "{shape:?}: every row once");
        assert_eq!(app.data_count("SELECT count(*) FROM t").await, rows as i64);
        assert_eq!(
            leftovers(&prefix, &app.settings.data_dir),
            Vec::<String>::new()
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_abandoned_upload_is_aborted_by_the_sweeper_and_its_import_fails() {
    for shape in [Shape::Embedded, Shape::Production] {
        let (mut settings, data_url, prefix) = test_settings(shape).await;
        settings.storage.part_size = bytesize::ByteSize::b(PART);
        settings.storage.abandon_uploads_after = Duration::from_secs(2);
        let app = spawn_with(settings, data_url, prefix.clone()).await;
        app.data_sql("CREATE TABLE t (id bigint, v text)").await;
        let file = csv(260_000);
        let spec = json!({"target": {"table": "t"}, "upload": "multipart", "size": file.len()});
        let created = app.post_json("/v1/imports", &spec).await;
        assert_eq!(created.status(), 201, "{shape:?}");
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        send_part(&app.client, &app.address, &id, 1, &file).await;
        assert_eq!(leftovers(&prefix, &app.settings.data_dir).len(), 1);
        let job = app
            .wait_final_within(&format!("/v1/imports/{id}"), Duration::from_secs(30))
            .await;
        assert_eq!(job["state"], "failed", "{shape:?}: {job}");
        assert_eq!(job["error"]["code"], "upload_abandoned", "{job}");
        assert_eq!(
            leftovers(&prefix, &app.settings.data_dir),
            Vec::<String>::new()
        );
        let gone = app.get(&format!("/v1/imports/{id}/upload")).await;
        assert_eq!(
            gone.status(),
            409,
            "{shape:?}: no upload in progress any more"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_multipart_upload_over_the_maximum_or_with_a_wrong_part_is_refused() {
    for shape in [Shape::Embedded, Shape::Production] {
        let (mut settings, data_url, prefix) = test_settings(shape).await;
        settings.storage.part_size = bytesize::ByteSize::b(PART);
        settings.limits.max_upload = bytesize::ByteSize::mib(8);
        let app = spawn_with(settings, data_url, prefix.clone()).await;
        app.data_sql("CREATE TABLE t (id bigint, v text)").await;
        let too_big =
            json!({"target": {"table": "t"}, "upload": "multipart", "size": 9 * 1024 * 1024});
        let refused = app.post_json("/v1/imports", &too_big).await;
        assert_eq!(refused.status(), 413, "{shape:?}");
        let problem: Value = refused.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("size"),
            "{problem}"
        );
        let no_size = json!({"target": {"table": "t"}, "upload": "multipart"});
        let refused = app.post_json("/v1/imports", &no_size).await;
        assert_eq!(refused.status(), 422, "{shape:?}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "size", "{problem}");

        // Announced 6 MiB (two parts), but the first part is short.
        let size = 6 * 1024 * 1024;
        let spec = json!({"target": {"table": "t"}, "upload": "multipart", "size": size});
        let created = app.post_json("/v1/imports", &spec).await;
        assert_eq!(created.status(), 201, "{shape:?}");
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let file = vec![b'x'; size];
        send_part(&app.client, &app.address, &id, 2, &file).await;
        let link: Value = app
            .get(&format!("/v1/imports/{id}/upload/parts/1"))
            .await
            .json()
            .await
            .unwrap();
        let short = app
            .client
            .put(link["url"].as_str().unwrap())
            .body(vec![b'y'; 100])
            .send()
            .await
            .unwrap();
        assert!(short.status().is_success());
        let complete = app
            .client
            .post(app.url(&format!("/v1/imports/{id}/upload/complete")))
            .send()
            .await
            .unwrap();
        assert_eq!(complete.status(), 409, "{shape:?}");
        let problem: Value = complete.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("part 1 has 100 bytes"),
            "{problem}"
        );
        let beyond = app.get(&format!("/v1/imports/{id}/upload/parts/3")).await;
        assert_eq!(beyond.status(), 422, "{shape:?}: there are two parts");
        let aborted = app
            .client
            .delete(app.url(&format!("/v1/imports/{id}/upload")))
            .send()
            .await
            .unwrap();
        assert_eq!(aborted.status(), 204);
        let job: Value = app
            .get(&format!("/v1/imports/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(job["state"], "cancelled");
        assert_eq!(
            leftovers(&prefix, &app.settings.data_dir),
            Vec::<String>::new()
        );
        app.stop().await;
    }
}
