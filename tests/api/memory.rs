//! 512 MiB, as `docker --memory 512m` would give Ferry: the real `ferry serve` runs inside a
//! cgroup v1 memory group limited to 512 MiB (what that flag sets), exports 2,000,000 rows to the
//! S3 store and imports the file again into PostgreSQL, and the group's `memory.failcnt` stays 0:
//! the limit was never reached.

use crate::helpers::{Shape, eventually, test_settings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LIMIT: u64 = 512 * 1024 * 1024;
const ROWS: u64 = 2_000_000;
/// The API key of deploy/ferry.toml.
const API_KEY: &str = "change-me";

fn authorized_client(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A cgroup v1 memory group, removed when dropped (after its processes are gone).
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn new(limit: u64) -> Self {
        let root = Path::new("/sys/fs/cgroup/memory");
        assert!(
            root.join("memory.limit_in_bytes").exists(),
            "the cgroup v1 memory controller is not mounted at {}: this test needs it (and root)",
            root.display()
        );
        let dir = root.join(format!("ferry-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("create a memory cgroup (needs root)");
        std::fs::write(dir.join("memory.limit_in_bytes"), limit.to_string())
            .expect("set the memory limit");
        Self { dir }
    }

    fn read(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.dir.join(file))
            .expect("read a cgroup file")
            .trim()
            .parse()
            .expect("a number")
    }

    /// Starts `command` inside the group: a shell puts itself in, then becomes the command.
    fn spawn(&self, program: &Path, args: &[&str], env: &[(&str, String)]) -> Child {
        Command::new("sh")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(self.dir.join("cgroup.procs"))
            .arg(program)
            .args(args)
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a process in the cgroup")
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_final(client: &reqwest::Client, url: &str) -> Value {
    eventually(Duration::from_secs(900), "the job to finish", || async {
        let job: Value = client.get(url).send().await.ok()?.json().await.ok()?;
        ["succeeded", "failed", "cancelled"]
            .contains(&job["state"].as_str()?)
            .then_some(job)
    })
    .await
}

#[tokio::test]
async fn ferry_serve_exports_and_imports_two_million_rows_within_512_mib() {
    let (settings, data_url, _prefix) = test_settings(Shape::Production).await;
    let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // The configuration users run in compose.yaml, with this machine's addresses over it.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ferry.toml");
    let s3 = crate::helpers::s3();
    let env = [
        ("FERRY_LISTEN", format!("127.0.0.1:{port}")),
        ("FERRY_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("FERRY_DATA_DIR", dir.display().to_string()),
        (
            "FERRY_DATABASE_URL",
            settings.database_url.as_ref().unwrap().expose().to_owned(),
        ),
        ("FERRY_STORAGE__URL", settings.storage.url.clone().unwrap()),
        ("FERRY_STORAGE__ENDPOINT", s3.endpoint),
        ("FERRY_STORAGE__ACCESS_KEY_ID", s3.key),
        ("FERRY_STORAGE__SECRET_ACCESS_KEY", s3.secret),
        ("FERRY_CONNECTIONS__MAIN__URL", data_url.clone()),
    ];
    let group = Cgroup::new(LIMIT);
    let _serve = Killed(group.spawn(
        Path::new(env!("CARGO_BIN_EXE_ferry")),
        &["serve", "--config", config],
        &env,
    ));
    let base = format!("http://127.0.0.1:{port}");
    let client = authorized_client(API_KEY);
    eventually(Duration::from_secs(30), "ferry serve to answer", || async {
        let response = client.get(format!("{base}/healthz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;

    // Export: 2,000,000 generated rows as csv.gz into the bucket.
    let created: Value = client
        .post(format!("{base}/v1/exports"))
        .json(&json!({"name": "people", "format": "csv.gz", "source": {"type": "generate", "rows": ROWS, "seed": 5,
            "columns": [{"name": "id", "kind": "uuid"}, {"name": "name", "kind": "name"},
                        {"name": "email", "kind": "email"}, {"name": "born", "kind": "date"},
                        {"name": "score", "kind": "int"}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let export = wait_final(
        &client,
        &format!("{base}/v1/exports/{}", created["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(export["state"], "succeeded", "{export}");
    assert_eq!(export["result"]["file"]["rows"], ROWS);

    // Download it, streamed to a file.
    let file = dir.join("people.csv.gz");
    let mut body = reqwest::Client::new()
        .get(export["result"]["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let mut out = tokio::fs::File::create(&file).await.unwrap();
    while let Some(chunk) = body.chunk().await.unwrap() {
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
            .await
            .unwrap();
    }
    drop(out);

    // Import it again, streamed as the body of a raw upload.
    let mut data = <sqlx::PgConnection as sqlx::Connection>::connect(&data_url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE people (id uuid PRIMARY KEY, name text, email text, born date, score bigint)",
    )
    .execute(&mut data)
    .await
    .unwrap();
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::open(&file).await.unwrap());
    let created: Value = client
        .post(format!("{base}/v1/imports?connection=main&table=people"))
        .header("content-type", "text/csv")
        .header("content-encoding", "gzip")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let import = wait_final(
        &client,
        &format!("{base}/v1/imports/{}", created["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(import["state"], "succeeded", "{import}");
    assert_eq!(import["result"]["rows_inserted"], ROWS);
    let count: i64 = sqlx::query_scalar("SELECT count(DISTINCT id) FROM people")
        .fetch_one(&mut data)
        .await
        .unwrap();
    assert_eq!(count as u64, ROWS);

    let peak = group.read("memory.max_usage_in_bytes");
    let failcnt = group.read("memory.failcnt");
    eprintln!(
        "memory cgroup: peak {:.1} MiB of {} MiB, failcnt {failcnt}",
        peak as f64 / 1048576.0,
        LIMIT / 1048576
    );
    assert_eq!(
        failcnt, 0,
        "the 512 MiB limit was reached (peak {peak} bytes)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
