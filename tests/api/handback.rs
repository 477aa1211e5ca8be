//! SIGTERM with four jobs running and a 2 s grace period: the stopping `ferry serve` hands all
//! four back, a `ferry worker` beside it on the same PostgreSQL and bucket finishes them, and
//! nothing is lost or doubled — one object per export, no incomplete multipart upload.

use crate::helpers::{Shape, eventually, incomplete_uploads, objects, test_settings};
use crate::workers::{Processes, config_file};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const JOBS: usize = 4;

fn ferry(command: &str, config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([command, "--config"])
        .arg(config)
        .env("FERRY_WORKERS__CONCURRENCY", JOBS.to_string())
        .env("FERRY_WORKERS__SHUTDOWN_GRACE", "2s")
        .env("FERRY_LIMITS__MAX_RUNNING_PER_TENANT", JOBS.to_string())
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry")
}

#[tokio::test]
async fn sigterm_hands_four_running_jobs_back_and_another_process_finishes_each_once() {
    let (settings, data_url, prefix) = test_settings(Shape::Production).await;
    let prefix = prefix.expect("an S3 prefix");
    let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = config_file(
        &settings,
        &data_url,
        &dir,
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut serve = ferry("serve", &config);
    eventually(Duration::from_secs(30), "the server to listen", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(drop)
    })
    .await;
    let body = serde_json::json!({"source": {"type": "generate", "rows": 8_000_000u64,
        "columns": [{"name": "a", "kind": "int"}]}});
    let mut urls = Vec::new();
    for _ in 0..JOBS {
        let job: Value = client
            .post(format!("{base}/v1/exports"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        urls.push(format!("{base}/v1/exports/{}", job["id"].as_str().unwrap()));
    }
    let state = |url: &str| {
        let request = client.get(url);
        async move {
            let job: Value = request.send().await.ok()?.json().await.ok()?;
            Some(job)
        }
    };
    eventually(Duration::from_secs(30), "all four to run", || async {
        for url in &urls {
            (state(url).await?["state"] == "running").then_some(())?;
        }
        Some(())
    })
    .await;
    let stopped_at = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let status = serve.wait().unwrap();
    assert!(status.success(), "ferry exits cleanly on SIGTERM: {status}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "stopped after its grace period"
    );

    // Another process (the API is gone: read the jobs from a new API-only server) finishes them.
    let _worker = Processes(vec![ferry("worker", &config)]);
    let api_config = config_file(
        &settings,
        &data_url,
        &dir.join("api"),
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let mut api = Command::new(env!("CARGO_BIN_EXE_ferry"));
    api.args(["serve", "--config"])
        .arg(&api_config)
        .env("FERRY_WORKERS__CONCURRENCY", "0")
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _api = Processes(vec![api.spawn().expect("start the API")]);
    for url in &urls {
        let job = eventually(
            Duration::from_secs(300),
            "the export to finish elsewhere",
            || async {
                let job = state(url).await?;
                ["succeeded", "failed", "cancelled"]
                    .contains(&job["state"].as_str()?)
                    .then_some(job)
            },
        )
        .await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["result"]["file"]["rows"], 8_000_000u64);
        assert_eq!(
            job["attempt"], 1,
            "a handed-back attempt does not count: {job}"
        );
    }
    assert_eq!(objects(&prefix).len(), JOBS, "one object per export");
    assert_eq!(incomplete_uploads(&prefix), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
