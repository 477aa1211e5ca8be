//! Faults in the middle of an import: the loading connection terminated, the worker killed.
//! After the retry the table holds every valid row exactly once.

use crate::helpers::{Shape, TestApp, eventually, spawn_with, test_settings};
use crate::workers::{Processes, config_file, lease_owner_pid, start_worker, start_worker_logging};
use serde_json::Value;
use std::time::Duration;

const ROWS: usize = 400_000;

/// A CSV of `ROWS` valid rows and one bad one.
fn big_csv() -> Vec<u8> {
    csv_of(ROWS)
}

/// A CSV of `rows` valid rows and one bad one.
fn csv_of(rows: usize) -> Vec<u8> {
    let mut csv = String::with_capacity(rows * 24);
    csv.push_str("id,t\n");
    for i in 1..=rows {
        csv.push_str(&format!("{i},text number {i}\n"));
    }
    csv.push_str("oops,bad\n");
    csv.into_bytes()
}

/// The pid of the backend running the import's COPY, once it runs.
async fn copy_backend(app: &TestApp) -> i32 {
    eventually(Duration::from_secs(60), "the COPY to start", || async {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.data_url).await.ok()?;
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%FROM STDIN%' AND pid <> pg_backend_pid()")
            .fetch_optional(&mut conn)
            .await
            .ok()?
    })
    .await
}

async fn start_import(app: &TestApp) -> String {
    app.data_sql("CREATE TABLE big (id int PRIMARY KEY, t text)")
        .await;
    let response = app
        .client
        .post(app.url("/v1/imports?table=big"))
        .body(big_csv())
        .send()
        .await
        .unwrap();
    let job: Value = response.json().await.unwrap();
    job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"))
        .to_owned()
}

async fn assert_loaded_once(app: &TestApp, id: &str) {
    let job = app.wait_final_at(&format!("/v1/imports/{id}")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 2, "the interrupted attempt counts: {job}");
    assert_eq!(job["result"]["rows_inserted"], ROWS);
    assert_eq!(job["result"]["rows_rejected"], 1);
    assert_eq!(
        app.data_count("SELECT count(*) FROM big").await,
        ROWS as i64
    );
    assert_eq!(
        app.data_count("SELECT count(DISTINCT id) FROM big").await,
        ROWS as i64
    );
}

#[tokio::test]
async fn a_terminated_copy_is_retried_and_every_row_is_loaded_once() {
    let (settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    let app = spawn_with(settings, data_url, prefix).await;
    let id = start_import(&app).await;
    let pid = copy_backend(&app).await;
    app.data_sql(&format!("SELECT pg_terminate_backend({pid})"))
        .await;
    let job = app
        .get(&format!("/v1/imports/{id}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_ne!(
        job["state"], "succeeded",
        "the COPY was cut before it finished"
    );
    assert_loaded_once(&app, &id).await;
}

#[tokio::test]
async fn a_worker_killed_mid_load_is_replaced_and_every_row_is_loaded_once() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    settings.workers.concurrency = 0;
    let dir = settings.data_dir.join("workers");
    let config = config_file(&settings, &data_url, &dir, "");
    let app = spawn_with(settings.clone(), data_url, prefix).await;
    let mut workers = Processes(vec![start_worker(&config), start_worker(&config)]);
    let id = start_import(&app).await;
    copy_backend(&app).await;
    let owner = eventually(Duration::from_secs(20), "the lease owner", || {
        lease_owner_pid(&settings)
    })
    .await;
    let victim = workers
        .0
        .iter()
        .position(|w| w.id() == owner)
        .expect("one of our workers runs it");
    workers.0[victim].kill().unwrap();
    workers.0[victim].wait().unwrap();
    assert_loaded_once(&app, &id).await;
    drop(workers);
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_import_rolls_the_load_back() {
    let (settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    let app = spawn_with(settings, data_url, prefix).await;
    let id = start_import(&app).await;
    copy_backend(&app).await;
    let asked = std::time::Instant::now();
    let response = app
        .client
        .post(app.url(&format!("/v1/imports/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job = app.wait_final_at(&format!("/v1/imports/{id}")).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert_eq!(
        app.data_count("SELECT count(*) FROM big").await,
        0,
        "the transaction was rolled back"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_no_job_and_no_object() {
    let app = crate::helpers::spawn_app(Shape::Production).await;
    app.data_sql("CREATE TABLE t (a text)").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"a\n".to_vec()),
        Ok(vec![b'x'; 6 * 1024 * 1024]),
        Ok(vec![b'y'; 1024 * 1024]),
        Err(std::io::Error::other("the client went away")),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let sent = app
        .client
        .post(app.url("/v1/imports?table=t"))
        .body(body)
        .send()
        .await;
    assert!(sent.is_err() || !sent.unwrap().status().is_success());
    let prefix = app.s3_prefix.clone().unwrap();
    eventually(
        Duration::from_secs(10),
        "the partial upload to be aborted",
        || async {
            crate::helpers::incomplete_uploads(&prefix)
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert!(crate::helpers::objects(&prefix).is_empty(), "no object");
    let list: Value = app.get("/v1/imports").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty(), "no job");
    app.stop().await;
}

/// Rows of a chunked import, and per chunk: enough chunks to stop it between two of them.
const CHUNKED_ROWS: usize = 2_000_000;
const CHUNK_ROWS: usize = 50_000;

/// Starts a chunked import of `CHUNKED_ROWS` rows (and a bad one) into a table without a key,
/// where a row loaded twice would show.
async fn start_chunked_import(app: &TestApp) -> String {
    app.data_sql("CREATE TABLE chunked (id int, t text)").await;
    let response = app
        .client
        .post(app.url(&format!(
            "/v1/imports?table=chunked&commit=chunked&chunk_rows={CHUNK_ROWS}"
        )))
        .body(csv_of(CHUNKED_ROWS))
        .send()
        .await
        .unwrap();
    let job: Value = response.json().await.unwrap();
    job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"))
        .to_owned()
}

/// Waits until the chunked import has committed at least `chunks` chunks; returns how many.
async fn committed(app: &TestApp, chunks: i64) -> i64 {
    eventually(Duration::from_secs(60), "chunks to commit", || async {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.data_url)
            .await
            .ok()?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT max(chunks) FROM ferry_import_checkpoint")
                .fetch_one(&mut conn)
                .await
                .ok()?;
        done.filter(|&done| done >= chunks)
    })
    .await
}

#[tokio::test]
async fn a_worker_killed_after_two_chunks_is_replaced_and_the_other_resumes_the_import() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    settings.workers.concurrency = 0;
    let dir = settings.data_dir.join("workers");
    let config = config_file(&settings, &data_url, &dir, "");
    let app = spawn_with(settings.clone(), data_url, prefix).await;
    let logs = [dir.join("worker-1.log"), dir.join("worker-2.log")];
    let filter = "warn,ferry::pipeline::import=info";
    let mut workers = Processes(vec![
        start_worker_logging(&config, &logs[0], filter),
        start_worker_logging(&config, &logs[1], filter),
    ]);
    let id = start_chunked_import(&app).await;
    let owner = eventually(Duration::from_secs(20), "the lease owner", || {
        lease_owner_pid(&settings)
    })
    .await;
    committed(&app, 2).await;
    let victim = workers
        .0
        .iter()
        .position(|w| w.id() == owner)
        .expect("one of our workers runs it");
    workers.0[victim].kill().unwrap();
    workers.0[victim].wait().unwrap();
    let kept = app.data_count("SELECT count(*) FROM chunked").await;
    assert!(
        kept >= 2 * CHUNK_ROWS as i64 && kept < CHUNKED_ROWS as i64,
        "killed between chunks, {kept} rows kept"
    );
    let job = app.wait_final_at(&format!("/v1/imports/{id}")).await;
    drop(workers);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 2, "the killed attempt counts: {job}");
    assert_eq!(job["result"]["rows_inserted"], CHUNKED_ROWS);
    assert_eq!(job["result"]["rows_rejected"], 1);
    assert_eq!(job["result"]["chunks_committed"], CHUNKED_ROWS / CHUNK_ROWS);
    assert!(job["result"].get("rows_kept").is_none(), "{job}");
    // The survivor read the header, then entered the file right after the last committed row.
    let survivor = std::fs::read_to_string(&logs[1 - victim]).unwrap();
    let entered: Vec<Value> = survivor
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["message"] == "entering the stored file at the checkpoint")
        .collect();
    assert_eq!(entered.len(), 1, "{survivor}");
    let (offset, line) = (&entered[0]["offset"], &entered[0]["line"]);
    let rows = line.as_u64().unwrap() - 2;
    assert!(
        rows >= 2 * CHUNK_ROWS as u64 && rows % CHUNK_ROWS as u64 == 0,
        "entered after row {rows}"
    );
    let before = csv_of(CHUNKED_ROWS)
        .split(|&b| b == b'\n')
        .take(rows as usize + 1)
        .map(|line| line.len() as u64 + 1)
        .sum::<u64>();
    assert_eq!(
        offset.as_u64(),
        Some(before),
        "the byte after row {rows}'s line break"
    );
    assert_eq!(
        app.data_count("SELECT count(*) FROM chunked").await,
        CHUNKED_ROWS as i64
    );
    assert_eq!(
        app.data_count("SELECT count(DISTINCT id) FROM chunked")
            .await,
        CHUNKED_ROWS as i64
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_chunked_import_keeps_its_committed_chunks_and_says_so() {
    let (settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    let app = spawn_with(settings, data_url, prefix).await;
    let id = start_chunked_import(&app).await;
    committed(&app, 2).await;
    let response = app
        .client
        .post(app.url(&format!("/v1/imports/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job = app.wait_final_at(&format!("/v1/imports/{id}")).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    let kept = app.data_count("SELECT count(*) FROM chunked").await;
    assert!(
        kept >= 2 * CHUNK_ROWS as i64 && kept < CHUNKED_ROWS as i64,
        "{kept} rows kept"
    );
    assert_eq!(kept % CHUNK_ROWS as i64, 0, "whole chunks only");
    assert_eq!(job["result"]["rows_kept"], kept, "{job}");
    assert_eq!(job["result"]["rows_inserted"], kept, "{job}");
    assert_eq!(job["result"]["chunks_committed"], kept / CHUNK_ROWS as i64);
    app.stop().await;
}
