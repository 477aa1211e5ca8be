//! Worker processes: a `ferry worker` killed mid-export loses nothing.

use crate::helpers::{Shape, eventually, incomplete_uploads, s3, test_settings};
use ferry::domain::{JobId, JobKind, JobState, Progress};
use ferry::queue::{Inserted, NewJob, Signals, Store};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn config_file(settings: &ferry::config::Settings, data_url: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let s3 = s3();
    let toml = format!(
        r#"data_dir = "{data}"
database_url = "{db}"
[storage]
url = "{url}"
endpoint = "{endpoint}"
region = "{region}"
access_key_id = "{key}"
secret_access_key = "{secret}"
part_size = "5MiB"
[workers]
lease = "2s"
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

fn start_worker(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["worker", "--config"])
        .arg(config)
        .env("FERRY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ferry worker")
}

/// Object keys under `prefix`, listed with curl's SigV4.
fn objects(prefix: &str) -> Vec<String> {
    let s3 = s3();
    let encoded: String = url::form_urlencoded::byte_serialize(prefix.as_bytes()).collect();
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--aws-sigv4", &format!("aws:amz:{}:s3", s3.region), "--user", &format!("{}:{}", s3.key, s3.secret)])
        .arg(format!("{}/{}?list-type=2&prefix={encoded}", s3.endpoint, s3.bucket))
        .output()
        .expect("run curl");
    let xml = String::from_utf8_lossy(&output.stdout);
    xml.split("<Key>").skip(1).filter_map(|r| r.split("</Key>").next()).map(str::to_owned).collect()
}

#[tokio::test]
async fn a_worker_killed_mid_export_is_replaced_and_exactly_one_file_remains() {
    let (settings, data_url, prefix) = test_settings(Shape::Production).await;
    let prefix = prefix.unwrap();
    let dir = settings.data_dir.clone();
    let config = config_file(&settings, &data_url, &dir);
    let store = Store::connect(settings.database_url.as_ref().unwrap().expose(), Signals::default()).await.unwrap();
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
    let Inserted::Created(job) = store.insert(new).await.unwrap() else { panic!("not created") };
    let mut workers = vec![start_worker(&config), start_worker(&config)];

    let owner_pid = eventually(Duration::from_secs(60), "a worker to upload part of the file", || async {
        let current = store.get(job.id).await.ok()??;
        (current.state == JobState::Running && current.progress.bytes > 12 * 1024 * 1024).then_some(())?;
        lease_owner_pid(&settings).await
    })
    .await;
    let victim = workers.iter().position(|w| w.id() == owner_pid).expect("the owner is one of our workers");
    workers[victim].kill().expect("SIGKILL the worker");
    workers[victim].wait().unwrap();

    let done = eventually(Duration::from_secs(120), "the other worker to finish the export", || async {
        let current = store.get(job.id).await.ok()??;
        current.state.is_final().then_some(current)
    })
    .await;
    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.attempt, 2, "the killed attempt counts");
    assert_eq!(done.result.as_ref().unwrap()["file"]["rows"], 2_500_000);
    assert_eq!(objects(&prefix).len(), 1, "exactly one file");
    assert!(incomplete_uploads(&prefix).is_empty(), "no incomplete multipart upload");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn lease_owner_pid(settings: &ferry::config::Settings) -> Option<u32> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(settings.database_url.as_ref()?.expose()).await.ok()?;
    let owner: Option<String> = sqlx::query_scalar("SELECT lease_owner FROM ferry_jobs WHERE state = 'running'").fetch_optional(&mut conn).await.ok()??;
    owner?.rsplit('-').nth(1)?.parse().ok()
}
