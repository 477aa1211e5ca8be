//! Worker processes: a `ferry worker` killed mid-export loses nothing.

use crate::helpers::{Shape, eventually, incomplete_uploads, objects, s3, test_settings};
use ferry::domain::{JobId, JobKind, JobState, Progress};
use ferry::queue::{Inserted, NewJob, Signals, Store};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A TOML file for `ferry` processes sharing the test app's metadata database and bucket.
/// `top` goes before the first table (e.g. `listen = …`). The lease is 5 s: short, so that a
/// killed worker's job is rescued soon, yet long enough that a live worker starved of CPU by
/// the tests beside it (on two cores) still renews it in time.
pub(crate) fn config_file(
    settings: &ferry::config::Settings,
    data_url: &str,
    dir: &std::path::Path,
    top: &str,
) -> std::path::PathBuf {
    let s3 = s3();
    let toml = format!(
        r#"data_dir = "{data}"
database_url = "{db}"
{top}
[storage]
url = "{url}"
endpoint = "{endpoint}"
region = "{region}"
access_key_id = "{key}"
secret_access_key = "{secret}"
part_size = "5MiB"
[workers]
lease = "5s"
poll_interval = "200ms"
backoff_base = "100ms"
backoff_cap = "500ms"
concurrency = 1
[connections.main]
url = "{data_url}"
allow_sql = true
"#,
        data = dir.display(),
        db = settings.database_url.as_ref().unwrap().expose(),
        url = settings.storage.url.as_ref().unwrap(),
        endpoint = s3.endpoint,
        region = s3.region,
        key = s3.key,
        secret = s3.secret,
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ferry.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Child processes that are killed when the test ends, even when it panics.
pub(crate) struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn start_worker(config: &std::path::Path) -> Child {
    start_ferry("worker", config)
}

pub(crate) fn start_ferry(command: &str, config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([command, "--config"])
        .arg(config)
        .env(
            "FERRY_LOG",
            std::env::var("FERRY_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ferry worker")
}

/// A `ferry worker` whose log, filtered by `filter` and in JSON, goes to the file `log`.
pub(crate) fn start_worker_logging(
    config: &std::path::Path,
    log: &std::path::Path,
    filter: &str,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["worker", "--config"])
        .arg(config)
        .env("FERRY_LOG", filter)
        .env("FERRY_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the worker's log"))
        .spawn()
        .expect("start ferry worker")
}

#[tokio::test]
async fn a_worker_killed_mid_export_is_replaced_and_exactly_one_file_remains() {
    let (settings, data_url, prefix) = test_settings(Shape::Production).await;
    let prefix = prefix.unwrap();
    let dir = settings.data_dir.clone();
    let config = config_file(&settings, &data_url, &dir, "");
    let store = Store::connect(
        settings.database_url.as_ref().unwrap().expose(),
        Signals::default(),
    )
    .await
    .unwrap();
    let spec = serde_json::json!({
        "name": "big",
        "source": {"type": "sql", "connection": "main", "query": "SELECT g, md5(g::text) AS a, md5((g * 7)::text) AS b FROM generate_series(1, 2500000) g"},
        "format": "csv",
    });
    let new = NewJob {
        id: JobId::new(),
        kind: JobKind::Export,
        tenant: "default".into(),
        owner: "anonymous".into(),
        name: "big".into(),
        spec,
        share_with: vec![],
        max_attempts: 3,
        timeout: Duration::from_secs(600),
        state: JobState::Queued,
        idempotency: None,
        progress: Progress::default(),
    };
    let Inserted::Created(job) = store.insert(new).await.unwrap() else {
        panic!("not created")
    };
    let mut workers = Processes(vec![start_worker(&config), start_worker(&config)]);

    let owner_pid = eventually(
        Duration::from_secs(60),
        "a worker to upload part of the file",
        || async {
            let current = store.get(job.id).await.ok()??;
            (current.state == JobState::Running && current.progress.bytes > 12 * 1024 * 1024)
                .then_some(())?;
            lease_owner_pid(&settings).await
        },
    )
    .await;
    let victim = workers
        .0
        .iter()
        .position(|w| w.id() == owner_pid)
        .expect("the owner is one of our workers");
    workers.0[victim].kill().expect("SIGKILL the worker");
    workers.0[victim].wait().unwrap();

    let done = eventually(
        Duration::from_secs(120),
        "the other worker to finish the export",
        || async {
            let current = store.get(job.id).await.ok()??;
            current.state.is_final().then_some(current)
        },
    )
    .await;
    drop(workers);
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempt, 2, "the killed attempt counts");
    assert_eq!(done.result.as_ref().unwrap()["file"]["rows"], 2_500_000);
    assert_eq!(objects(&prefix).len(), 1, "exactly one file");
    assert!(
        incomplete_uploads(&prefix).is_empty(),
        "no incomplete multipart upload"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

pub(crate) async fn lease_owner_pid(settings: &ferry::config::Settings) -> Option<u32> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(settings.database_url.as_ref()?.expose())
        .await
        .ok()?;
    let owner: Option<String> =
        sqlx::query_scalar("SELECT lease_owner FROM ferry_jobs WHERE state = 'running'")
            .fetch_optional(&mut conn)
            .await
            .ok()??;
    owner?.rsplit('-').nth(1)?.parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn events_of_a_job_run_by_another_process_reach_the_stream() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    settings.workers.concurrency = 0;
    let dir = settings.data_dir.join("worker");
    let config = config_file(&settings, &data_url, &dir, "");
    let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
    let worker = Processes(vec![start_worker(&config)]);
    let body = serde_json::json!({"source": {"type": "generate", "rows": 300_000, "seed": 1, "columns": [{"name": "t", "kind": "text", "length": 40}]}, "format": "csv.gz"});
    let response = app
        .client
        .post(app.url("/v1/exports"))
        .header("Accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(120), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    drop(worker);
    let events = crate::exports::parse_sse(&text);
    let names: Vec<&str> = events.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(names.contains(&"progress"), "{names:?}");
    let done = &events.last().unwrap().2;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["result"]["file"]["rows"], 300_000);
    app.stop().await;
}

#[tokio::test]
async fn a_new_job_starts_at_once_on_a_wake_up_not_a_poll() {
    for shape in [Shape::Embedded, Shape::Production] {
        let (mut settings, data_url, prefix) = test_settings(shape).await;
        settings.workers.poll_interval = Duration::from_secs(60);
        let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
        let body = serde_json::json!({"source": {"type": "generate", "rows": 10, "columns": [{"name": "a", "kind": "int"}]}});
        // A first job, run to its end, leaves every worker idle on its (60 s) poll.
        let first = app.create_export(body.clone()).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.wait_final(&first).await;
        let id = app.create_export(body).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let job = app.wait_final(&id).await;
        let waited = crate::helpers::start_delay(&job);
        assert!(
            waited < time::Duration::milliseconds(500),
            "{shape:?}: the job waited {waited}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn sigterm_hands_a_running_job_back_and_a_restart_finishes_it() {
    let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let config = dir.join("ferry.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[workers]\nshutdown_grace = \"1s\"\nlease = \"2s\"\n", dir.display())).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_ferry("serve", &config);
    eventually(Duration::from_secs(20), "the server to listen", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(drop)
    })
    .await;
    let body = serde_json::json!({"source": {"type": "generate", "rows": 200_000_000u64, "columns": [{"name": "a", "kind": "int"}]}});
    let job: serde_json::Value = client
        .post(format!("{base}/v1/exports"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let job_url = format!("{base}/v1/exports/{id}");
    eventually(Duration::from_secs(20), "the job to run", || async {
        let job: serde_json::Value = client.get(&job_url).send().await.ok()?.json().await.ok()?;
        (job["state"] == "running").then_some(())
    })
    .await;
    let stopped_at = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "ferry exits cleanly on SIGTERM: {status}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "stopped within the grace period"
    );

    let mut server = start_ferry("serve", &config);
    let job = eventually(
        Duration::from_secs(20),
        "the restarted server to answer",
        || async {
            client
                .get(&job_url)
                .send()
                .await
                .ok()?
                .json::<serde_json::Value>()
                .await
                .ok()
        },
    )
    .await;
    assert!(
        ["queued", "running"].contains(&job["state"].as_str().unwrap()),
        "{job}"
    );
    assert!(
        job["attempt"].as_u64().unwrap() <= 1,
        "the handed-back attempt does not count: {job}"
    );
    let running = eventually(Duration::from_secs(20), "the job to run again", || async {
        let job: serde_json::Value = client.get(&job_url).send().await.ok()?.json().await.ok()?;
        (job["state"] == "running").then_some(job)
    })
    .await;
    assert_eq!(running["attempt"], 1);
    client
        .post(format!("{job_url}/cancel"))
        .send()
        .await
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
