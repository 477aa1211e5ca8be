//! Scale-out under chaos: several real `ferry` processes on one metadata PostgreSQL and one
//! bucket run a mix of exports and imports submitted round-robin, while one process is SIGKILLed
//! mid-run and replaced and a second is killed later. Every job must succeed exactly once: one
//! object of the right size per export, no multipart upload left open, every imported row loaded
//! once. An SSE client of one process follows a job that another process runs.
//!
//! The first half of the jobs is submitted before the first kill, the second half after it (to
//! the replacement too), so that work is left for the second kill.
//!
//! Two shapes: all-in-one (three `ferry serve`) and split (API-only `ferry serve` processes with
//! `workers.concurrency = 0` in front of three `ferry worker`s). The default size is small enough
//! for every `scripts/test` run; `FERRY_TEST_CHAOS=full` (set by `.ci/run`; a `FERRY_TEST_` name
//! because `ferry` reads every other `FERRY_*` variable as configuration) runs the issue's
//! sizes: 60 jobs, exports of 300,000–600,000 rows, imports of 50,000-row files.

use crate::helpers::{Shape, eventually, incomplete_uploads, object_sizes, s3, test_settings};
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// How much work a run does.
#[derive(Debug, Clone, Copy)]
struct Load {
    jobs: usize,
    export_rows: (u64, u64),
    import_rows: u64,
    /// How long all jobs together may take.
    limit: Duration,
}

impl Load {
    fn from_env() -> Self {
        if std::env::var("FERRY_TEST_CHAOS").is_ok_and(|v| v == "full") {
            Load {
                jobs: 60,
                export_rows: (300_000, 600_000),
                import_rows: 50_000,
                limit: Duration::from_secs(40 * 60),
            }
        } else {
            Load {
                jobs: 16,
                export_rows: (60_000, 120_000),
                import_rows: 10_000,
                limit: Duration::from_secs(10 * 60),
            }
        }
    }

    /// Job `i`: even ones are exports (alternately from the generator and from SQL), odd ones
    /// imports. Export sizes spread evenly over the range.
    fn job(&self, i: usize) -> Planned {
        if i % 2 == 1 {
            return Planned::Import {
                file: i,
                rows: self.import_rows,
            };
        }
        let (low, high) = self.export_rows;
        let step = (high - low) / (self.jobs as u64 / 2).max(1);
        Planned::Export {
            rows: low + step * (i as u64 / 2),
            sql: i % 4 == 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Planned {
    Export { rows: u64, sql: bool },
    Import { file: usize, rows: u64 },
}

/// Which processes run: all-in-one serves, or API-only serves in front of workers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    AllInOne,
    Split,
}

/// One `ferry` child process, SIGKILLed when dropped.
struct Process {
    child: Child,
    /// `serve` or `worker`.
    command: &'static str,
    /// The API's base URL (serves only).
    base: Option<String>,
    /// Whether it runs jobs.
    works: bool,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes of one test, sharing a metadata database, a bucket and a data database.
struct Cluster {
    settings: ferry::config::Settings,
    data_url: String,
    dir: PathBuf,
    processes: Vec<Process>,
    started: usize,
}

impl Cluster {
    /// Starts `command` with `concurrency` workers and waits until its API answers (serves).
    async fn start(&mut self, command: &'static str, concurrency: usize) {
        self.started += 1;
        let dir = self.dir.join(format!("p{}", self.started));
        let port = free_port();
        let config = config_file(&self.settings, &self.data_url, &dir, port, concurrency);
        let child = crate::workers::start_ferry(command, &config);
        let base = (command == "serve").then(|| format!("http://127.0.0.1:{port}"));
        if let Some(base) = &base {
            let client = reqwest::Client::new();
            eventually(Duration::from_secs(60), "ferry serve to answer", || async {
                let response = client.get(format!("{base}/healthz")).send().await.ok()?;
                (response.status() == 200).then_some(())
            })
            .await;
        }
        self.processes.push(Process {
            child,
            command,
            base,
            works: concurrency > 0,
        });
    }

    /// The base URLs of the API processes, in start order.
    fn apis(&self) -> Vec<String> {
        self.processes
            .iter()
            .filter_map(|p| p.base.clone())
            .collect()
    }

    /// SIGKILLs our process with `pid` and reaps it; returns its command, for a replacement.
    fn kill(&mut self, pid: u32) -> &'static str {
        let at = self
            .processes
            .iter()
            .position(|p| p.child.id() == pid)
            .expect("the victim is one of ours");
        let mut victim = self.processes.remove(at);
        victim.child.kill().expect("SIGKILL");
        victim.child.wait().expect("reap the killed process");
        victim.command
    }
}

/// A TOML configuration for one process of the cluster.
fn config_file(
    settings: &ferry::config::Settings,
    data_url: &str,
    dir: &Path,
    port: u16,
    concurrency: usize,
) -> PathBuf {
    let s3 = s3();
    // A short lease so that a killed process's jobs are taken again soon (30 s by default), but
    // not the other tests' 2 s: this test loads the (shared, 2-core) machine so much that a
    // live worker's renewals, twice a second, were seen to stall for over 3 s and lose jobs.
    // Five attempts: one job may be cut off by both kills and then lose a lease to the load.
    let toml = format!(
        r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"
database_url = "{db}"
[storage]
url = "{url}"
endpoint = "{endpoint}"
region = "{region}"
access_key_id = "{key}"
secret_access_key = "{secret}"
part_size = "5MiB"
[workers]
concurrency = {concurrency}
lease = "10s"
poll_interval = "200ms"
backoff_base = "100ms"
backoff_cap = "500ms"
job_timeout = "30m"
max_attempts = 5
[limits]
max_queued_per_tenant = 1000
max_running_per_tenant = 100
[connections.main]
url = "{data_url}"
allow_sql = true
"#,
        data = dir.display(),
        db = settings.database_url.as_ref().expect("PostgreSQL").expose(),
        url = settings.storage.url.as_ref().expect("a bucket"),
        endpoint = s3.endpoint,
        region = s3.region,
        key = s3.key,
        secret = s3.secret,
    );
    std::fs::create_dir_all(dir).expect("create the process's directory");
    let path = dir.join("ferry.toml");
    std::fs::write(&path, toml).expect("write the configuration");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A submitted job: where its record is, and what it should have produced.
#[derive(Debug)]
struct Submitted {
    id: String,
    path: String,
    planned: Planned,
}

/// Writes import file `file` (header + `rows` rows, ids unique across files) to disk, streamed.
fn write_import_file(dir: &Path, file: usize, rows: u64) -> PathBuf {
    let path = dir.join(format!("import-{file}.csv"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create a file"));
    writeln!(out, "id,file,payload").expect("write");
    let first = file as u64 * 1_000_000;
    for n in 1..=rows {
        writeln!(out, "{},{file},row {n} of file {file}", first + n).expect("write");
    }
    out.flush().expect("flush");
    path
}

fn export_body(rows: u64, sql: bool) -> Value {
    let source = if sql {
        json!({"type": "sql", "connection": "main", "query": format!("SELECT g AS n, md5(g::text) AS a, now()::date AS d FROM generate_series(1, {rows}) g")})
    } else {
        json!({"type": "generate", "rows": rows, "seed": rows, "columns": [
            {"name": "n", "kind": "int"}, {"name": "email", "kind": "email"},
            {"name": "t", "kind": "text", "length": 30}]})
    };
    json!({"source": source, "format": "csv"})
}

/// Submits job `i` of `load` to `base`; imports stream their file from disk.
async fn submit(client: &reqwest::Client, base: &str, dir: &Path, planned: Planned) -> Submitted {
    let response = match planned {
        Planned::Export { rows, sql } => {
            client
                .post(format!("{base}/v1/exports"))
                .json(&export_body(rows, sql))
                .send()
                .await
        }
        Planned::Import { file, rows } => {
            let path = write_import_file(dir, file, rows);
            let body = tokio::fs::File::open(&path).await.expect("open the file");
            let response = client
                .post(format!(
                    "{base}/v1/imports?connection=main&table=chaos_rows&mode=append"
                ))
                .header("content-type", "text/csv")
                .body(reqwest::Body::wrap_stream(
                    tokio_util::io::ReaderStream::new(body),
                ))
                .send()
                .await;
            // `202` means the file is stored: it is not needed any more.
            let _ = std::fs::remove_file(&path);
            response
        }
    }
    .expect("submit a job");
    assert_eq!(response.status(), 202, "submitting {planned:?} to {base}");
    let job: Value = response.json().await.expect("a job");
    Submitted {
        id: job["id"].as_str().expect("an id").to_owned(),
        path: job["links"]["self"].as_str().expect("a link").to_owned(),
        planned,
    }
}

/// The metadata database, read directly to see which process holds which job.
struct Metadata(sqlx::PgPool);

impl Metadata {
    /// Running jobs with the pid of their lease owner and the rows done so far.
    async fn running(&self) -> Vec<(String, u32, i64)> {
        let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT id, lease_owner, (progress::jsonb->>'rows')::bigint FROM ferry_jobs
             WHERE state = 'running' AND kind IN ('export', 'import')",
        )
        .fetch_all(&self.0)
        .await
        .unwrap_or_default();
        rows.into_iter()
            .filter_map(|(id, owner, done)| {
                let pid = owner?.rsplit('-').nth(1)?.parse().ok()?;
                Some((id, pid, done.unwrap_or(0)))
            })
            .collect()
    }

    async fn finished(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM ferry_jobs WHERE kind IN ('export', 'import')
             AND state IN ('succeeded', 'failed', 'cancelled', 'expired')",
        )
        .fetch_one(&self.0)
        .await
        .unwrap_or(0)
    }
}

/// Waits until a process in `candidates` runs a job that has made progress; SIGKILLs it and
/// returns the ids of the jobs it held.
async fn kill_one_mid_run(
    cluster: &mut Cluster,
    metadata: &Metadata,
    spare: u32,
) -> (&'static str, BTreeSet<String>) {
    let candidates: BTreeSet<u32> = cluster
        .processes
        .iter()
        .filter(|p| p.works && p.child.id() != spare)
        .map(|p| p.child.id())
        .collect();
    let pid = eventually(
        Duration::from_secs(300),
        "a job running with progress on a process we may kill",
        || async {
            let running = metadata.running().await;
            running
                .into_iter()
                .find(|(_, pid, done)| *done > 0 && candidates.contains(pid))
                .map(|(_, pid, _)| pid)
        },
    )
    .await;
    let command = cluster.kill(pid);
    // Read after the kill: a dead process finishes nothing, so these jobs were surely cut off.
    let held = metadata
        .running()
        .await
        .into_iter()
        .filter(|(_, owner, _)| *owner == pid)
        .map(|(id, _, _)| id)
        .collect();
    (command, held)
}

/// Follows `path`'s events on `base` to their end; returns the events.
async fn follow(base: String, path: String) -> Vec<(u64, String, Value)> {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}/events"))
        .send()
        .await
        .expect("open the event stream");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("the stream ends");
    crate::exports::parse_sse(&text)
}

/// Counts the newlines of the export at `path` on `base`, streaming its signed link.
async fn count_lines(client: &reqwest::Client, base: &str, path: &str) -> u64 {
    // The client follows the `303` to the signed link.
    let mut file = client
        .get(format!("{base}{path}/download"))
        .send()
        .await
        .expect("download");
    assert_eq!(file.status(), 200, "{path}/download");
    let mut lines = 0;
    while let Some(chunk) = file.chunk().await.expect("a chunk") {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    lines
}

/// Starts the processes of `layout` on fresh databases and a fresh bucket prefix, with an empty
/// `chaos_rows` table to import into.
async fn start_cluster(layout: Layout) -> (Cluster, Metadata, String) {
    let (settings, data_url, prefix) = test_settings(Shape::Production).await;
    let mut data = sqlx::PgConnection::connect(&data_url)
        .await
        .expect("the data database");
    sqlx::raw_sql(
        "CREATE TABLE chaos_rows (id bigint NOT NULL, file int NOT NULL, payload text NOT NULL)",
    )
    .execute(&mut data)
    .await
    .expect("create the import table");
    let metadata = Metadata(
        sqlx::PgPool::connect(settings.database_url.as_ref().expect("PostgreSQL").expose())
            .await
            .expect("the metadata database"),
    );
    let mut cluster = Cluster {
        dir: settings.data_dir.clone(),
        settings,
        data_url,
        processes: Vec::new(),
        started: 0,
    };
    // One after another: the first process runs the migrations alone.
    let (serves, serve_workers, workers) = match layout {
        Layout::AllInOne => (3, 2, 0),
        Layout::Split => (2, 0, 3),
    };
    for _ in 0..serves {
        cluster.start("serve", serve_workers).await;
    }
    for _ in 0..workers {
        cluster.start("worker", 2).await;
    }
    (cluster, metadata, prefix.expect("a bucket prefix"))
}

/// Starts an SSE client on `base` (process A) following an export that another process runs.
async fn follow_one_run_elsewhere(
    metadata: &Metadata,
    jobs: &[Submitted],
    a_pid: u32,
    base: &str,
) -> tokio::task::JoinHandle<Vec<(u64, String, Value)>> {
    let exports: BTreeMap<&str, &Submitted> = jobs
        .iter()
        .filter(|j| matches!(j.planned, Planned::Export { .. }))
        .map(|j| (j.id.as_str(), j))
        .collect();
    let (id, _, _) = eventually(
        Duration::from_secs(300),
        "an export to start on a process other than A",
        || async {
            metadata
                .running()
                .await
                .into_iter()
                .find(|(id, pid, _)| *pid != a_pid && exports.contains_key(id.as_str()))
        },
    )
    .await;
    tokio::spawn(follow(base.to_owned(), exports[id.as_str()].path.clone()))
}

/// Submits jobs `range` of `load`, round-robin over the cluster's APIs as they are now.
async fn submit_all(
    cluster: &Cluster,
    load: &Load,
    range: std::ops::Range<usize>,
    jobs: &mut Vec<Submitted>,
) {
    let apis = cluster.apis();
    let client = reqwest::Client::new();
    for i in range {
        let base = &apis[i % apis.len()];
        jobs.push(submit(&client, base, &cluster.dir, load.job(i)).await);
    }
}

/// Submits half the jobs, kills a process mid-run and replaces it, submits the other half and,
/// once a third of the rest have ended, kills another. Returns the jobs the killed processes
/// held, and an SSE client's events of a job that another process than A ran.
async fn run_with_kills(
    cluster: &mut Cluster,
    metadata: &Metadata,
    load: &Load,
    jobs: &mut Vec<Submitted>,
) -> (
    BTreeSet<String>,
    tokio::task::JoinHandle<Vec<(u64, String, Value)>>,
) {
    let a_pid = cluster.processes[0].child.id();
    let a_base = cluster.processes[0].base.clone().expect("an API");
    let half = load.jobs / 2;
    submit_all(cluster, load, 0..half, jobs).await;
    let sse = follow_one_run_elsewhere(metadata, jobs, a_pid, &a_base).await;
    let (role, mut held) = kill_one_mid_run(cluster, metadata, a_pid).await;
    cluster.start(role, 2).await;
    eprintln!("killed a {role} holding {held:?} and started another");
    submit_all(cluster, load, half..load.jobs, jobs).await;
    let ended = metadata.finished().await;
    let later = ended + (load.jobs as i64 - ended) / 3;
    eventually(load.limit, "more jobs to end", || async {
        (metadata.finished().await >= later).then_some(())
    })
    .await;
    let (role, second) = kill_one_mid_run(cluster, metadata, a_pid).await;
    eprintln!("killed a {role} holding {second:?}");
    held.extend(second);
    (held, sse)
}

async fn run(layout: Layout) {
    let load = Load::from_env();
    let started_at = std::time::Instant::now();
    let (mut cluster, metadata, prefix) = start_cluster(layout).await;
    // Process A: its API carries the SSE client; it is never killed.
    let a_base = cluster.processes[0].base.clone().expect("an API");
    let mut jobs = Vec::new();
    let (killed, sse) = run_with_kills(&mut cluster, &metadata, &load, &mut jobs).await;
    let all = load.jobs as i64;
    eventually(load.limit, "every job to end", || async {
        (metadata.finished().await >= all).then_some(())
    })
    .await;
    eprintln!(
        "{layout:?}: {load:?} ended after {:?}",
        started_at.elapsed()
    );

    let events = tokio::time::timeout(Duration::from_secs(60), sse)
        .await
        .expect("the followed stream ends")
        .expect("the SSE client");
    let names: Vec<&str> = events.iter().map(|(_, n, _)| n.as_str()).collect();
    assert!(names.contains(&"progress"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let done = &events.last().expect("events").2;
    assert_eq!(done["state"], "succeeded", "{done}");

    let mut data = sqlx::PgConnection::connect(&cluster.data_url)
        .await
        .expect("the data database");
    let client = reqwest::Client::new();
    check_exactly_once(
        &metadata, &client, &a_base, &prefix, &jobs, &mut data, &load,
    )
    .await;
    for job in jobs.iter().filter(|j| killed.contains(&j.id)) {
        let record: Value = client
            .get(format!("{a_base}{}", job.path))
            .send()
            .await
            .expect("get a job")
            .json()
            .await
            .expect("a job");
        assert!(
            record["attempt"].as_u64() >= Some(2),
            "a job held by a killed process counts that attempt: {record}"
        );
    }
    let dir = cluster.dir.clone();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every job succeeded; one object of the right size per export and no other; no open
/// multipart upload; every imported row loaded once.
async fn check_exactly_once(
    metadata: &Metadata,
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    jobs: &[Submitted],
    data: &mut sqlx::PgConnection,
    load: &Load,
) {
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ferry_jobs WHERE kind IN ('export', 'import')")
            .fetch_one(&metadata.0)
            .await
            .expect("count jobs");
    assert_eq!(stored, jobs.len() as i64, "no job lost or doubled");

    let objects: BTreeMap<String, u64> = object_sizes(&format!("{prefix}/exports/"))
        .into_iter()
        .collect();
    let mut exports = 0;
    let mut imported = 0;
    let mut counted = 0;
    for job in jobs {
        let record: Value = client
            .get(format!("{base}{}", job.path))
            .send()
            .await
            .expect("get a job")
            .json()
            .await
            .expect("a job");
        assert_eq!(record["state"], "succeeded", "{record}");
        match job.planned {
            Planned::Export { rows, .. } => {
                exports += 1;
                let file = &record["result"]["file"];
                assert_eq!(file["rows"], rows, "{record}");
                let under = format!("{prefix}/exports/default/{}/", job.id);
                let mine: Vec<(&String, &u64)> = objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&under))
                    .collect();
                assert_eq!(mine.len(), 1, "one object for export {}: {mine:?}", job.id);
                assert_eq!(Some(*mine[0].1), file["size_bytes"].as_u64(), "{record}");
                if counted < 2 {
                    counted += 1;
                    let lines = count_lines(client, base, &job.path).await;
                    assert_eq!(lines, rows + 1, "rows + header of {}", job.id);
                }
            }
            Planned::Import { rows, .. } => {
                assert_eq!(record["result"]["rows_inserted"], rows, "{record}");
                assert_eq!(record["result"]["rows_rejected"], 0, "{record}");
                imported += rows;
            }
        }
    }
    assert_eq!(
        objects.len(),
        exports,
        "no export object beside the jobs' files"
    );
    assert!(
        incomplete_uploads(prefix).is_empty(),
        "no incomplete multipart upload"
    );
    let (count, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM chaos_rows")
            .fetch_one(data)
            .await
            .expect("count the imported rows");
    assert_eq!(count as u64, imported, "every imported row, once");
    assert_eq!(distinct, count, "no row twice");
    assert_eq!(imported, load.import_rows * (load.jobs as u64 / 2));
}

#[tokio::test]
async fn three_serves_lose_no_job_when_two_are_killed_mid_run() {
    run(Layout::AllInOne).await;
}

#[tokio::test]
async fn api_serves_in_front_of_workers_lose_no_job_when_two_workers_are_killed_mid_run() {
    run(Layout::Split).await;
}
