//! Start-up checks and readiness (SPEC §8), on the real binary: a store that cannot be used stops
//! the start with one message that names what to fix; an unreachable data connection is a
//! warning; `/readyz` names the dependency that is not ready; `workers.concurrency = 0` makes an
//! API-only `ferry serve` whose jobs a `ferry worker` runs.

use crate::helpers::{eventually, fresh_postgres, s3};
use crate::process::Served;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `ferry serve` in a fresh data directory with `env` and returns its exit status and
/// stderr, for a start that must fail.
fn failed_start(env: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .arg("serve")
        .env("FERRY_LISTEN", "127.0.0.1:0")
        .env("FERRY_DATA_DIR", &dir)
        .env("FERRY_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .env_remove("FERRY_CONFIG")
        .stdin(Stdio::null());
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run ferry serve");
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The environment of an S3 store in the test server, with `changes` over it.
fn s3_env(bucket: &str, key: &str, secret: &str) -> Vec<(&'static str, String)> {
    let s3 = s3();
    vec![
        ("FERRY_STORAGE__URL", format!("s3://{bucket}/startup")),
        ("FERRY_STORAGE__ENDPOINT", s3.endpoint),
        ("FERRY_STORAGE__ACCESS_KEY_ID", key.to_owned()),
        ("FERRY_STORAGE__SECRET_ACCESS_KEY", secret.to_owned()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_store_that_cannot_be_used_stops_the_start_with_one_message_naming_the_fix() {
    let s3 = s3();
    let cases = [
        (
            s3_env("no-such-bucket", &s3.key, &s3.secret),
            "the object store cannot be used: the bucket \"no-such-bucket\" does not exist at",
        ),
        (
            s3_env(&s3.bucket, &s3.key, "not-the-secret"),
            "correct storage.secret_access_key",
        ),
        (
            s3_env(&s3.bucket, "nobody", "not-the-secret"),
            "does not know the access key id: correct storage.access_key_id",
        ),
    ];
    for (env, expected) in &cases {
        let (code, stderr) = failed_start(&borrowed(env));
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert_eq!(stderr.matches(expected).count(), 1, "said once: {stderr}");
        assert!(!stderr.contains("backtrace"), "no backtrace: {stderr}");
        assert!(!stderr.contains("not-the-secret"), "no secret: {stderr}");
    }
    // Without credentials object_store would ask the cloud's metadata address; Ferry says what
    // to set instead (the address answers nothing here: no network).
    let no_credentials = [
        ("FERRY_STORAGE__URL", format!("s3://{}/x", s3.bucket)),
        ("FERRY_STORAGE__ENDPOINT", s3.endpoint.clone()),
    ];
    let (code, stderr) = failed_start(&borrowed(&no_credentials));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no S3 credentials are set: set storage.access_key_id"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_worker_without_slots_is_refused_at_start() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    let output = command
        .arg("worker")
        .env("FERRY_DATA_DIR", &dir)
        .env("FERRY_WORKERS__CONCURRENCY", "0")
        .env_remove("FERRY_CONFIG")
        .output()
        .expect("run ferry worker");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("workers.concurrency = 0 runs none"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_data_connection_is_a_warning_that_names_it() {
    let served = Served::start(&[
        (
            "FERRY_CONNECTIONS__WAREHOUSE__URL",
            "postgres://ferry:hunter2@127.0.0.1:1/warehouse",
        ),
        ("FERRY_LOG", "warn"),
    ])
    .await;
    let job = served
        .export(&json!({"source": {"type": "generate", "rows": 3,
                                   "columns": [{"name": "n", "kind": "int"}]}}))
        .await;
    assert_eq!(job["state"], "succeeded", "the other sources work");
    let log = served.stop();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("data connection \"warehouse\" is not reachable"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(!log.contains("hunter2"), "no password in the log: {log}");
}

#[tokio::test]
async fn readyz_names_the_dependency_that_is_not_ready() {
    let served = Served::start(&[]).await;
    let ready = served
        .client
        .get(served.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    std::fs::remove_dir_all(served.dir.join("files")).expect("remove the file store");
    let not_ready = served
        .client
        .get(served.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    let problem: Value = not_ready.json().await.unwrap();
    assert_eq!(problem["code"], "not_ready");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("object store: "), "{detail}");
    assert!(!detail.contains("metadata database"), "{detail}");
}

#[tokio::test]
async fn an_api_only_serve_queues_jobs_that_a_separate_worker_runs() {
    let metadata = fresh_postgres().await;
    let s3 = s3();
    let prefix = format!("s3://{}/split-{}", s3.bucket, uuid::Uuid::new_v4().simple());
    let shared = [
        ("FERRY_DATABASE_URL", metadata.as_str()),
        ("FERRY_STORAGE__URL", prefix.as_str()),
        ("FERRY_STORAGE__ENDPOINT", s3.endpoint.as_str()),
        ("FERRY_STORAGE__ACCESS_KEY_ID", s3.key.as_str()),
        ("FERRY_STORAGE__SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    let mut api_env = shared.to_vec();
    api_env.push(("FERRY_WORKERS__CONCURRENCY", "0"));
    api_env.push(("FERRY_LOG", "info"));
    let api = Served::start(&api_env).await;
    let created = api
        .create_export(&json!({"source": {"type": "generate", "rows": 1000,
                                 "columns": [{"name": "n", "kind": "int"}]}}))
        .await;
    let path = format!("/v1/exports/{}", created["id"].as_str().unwrap());
    let state = |api: &Served| {
        let request = api.client.get(api.url(&path));
        async move {
            let job: Value = request.send().await.ok()?.json().await.ok()?;
            Some(job["state"].as_str()?.to_owned())
        }
    };
    assert_eq!(state(&api).await.as_deref(), Some("queued"));

    let worker_dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    let mut worker = Command::new(env!("CARGO_BIN_EXE_ferry"));
    worker
        .arg("worker")
        .env("FERRY_DATA_DIR", &worker_dir)
        .env("FERRY_WORKERS__POLL_INTERVAL", "200ms")
        .env("FERRY_LOG", "warn")
        .env_remove("FERRY_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in shared {
        worker.env(name, value);
    }
    let mut worker = worker.spawn().expect("start ferry worker");
    let finished = eventually(Duration::from_secs(30), "the worker to run it", || async {
        state(&api).await.filter(|s| s == "succeeded")
    })
    .await;
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = std::fs::remove_dir_all(&worker_dir);
    assert_eq!(finished, "succeeded");
    // The API-only process started no worker pool at all.
    let log = api.stop();
    assert!(log.contains("Ferry is listening"), "{log}");
    assert!(!log.contains("workers started"), "{log}");
}
