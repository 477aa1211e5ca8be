//! Outages of the services Ferry depends on, in the production shape (PostgreSQL metadata, S3):
//! every connection to the metadata database terminated twice while a job runs, and the S3
//! endpoint down for 20 s in the middle of a multipart upload, and the metadata PostgreSQL (a
//! cluster of the test's own) restarted while a job runs. Jobs finish, exactly once.

use crate::helpers::{Shape, eventually, incomplete_uploads, objects, spawn_with, test_settings};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

fn export(rows: u64) -> Value {
    json!({"source": {"type": "generate", "rows": rows, "columns": [{"name": "id", "kind": "uuid"}, {"name": "e", "kind": "email"}]}})
}

/// Terminates every backend connected to the database at `url` but this one.
async fn terminate_all(admin: &str, url: &str) -> i64 {
    let database = url.rsplit('/').next().unwrap_or_default().to_owned();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(database)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn metadata_connections_terminated_twice_lose_no_job_and_listen_comes_back() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    // Only a wake-up can start a job within a second: the poll is a minute away.
    settings.workers.poll_interval = Duration::from_secs(60);
    let metadata = settings.database_url.as_ref().unwrap().expose().to_owned();
    let app = spawn_with(settings, data_url, prefix).await;
    let running = app.create_export(export(3_000_000)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = crate::helpers::admin_database_url();
    for round in 0..2 {
        eventually(Duration::from_secs(30), "the job to be running", || async {
            let job: Value = app
                .get(&format!("/v1/exports/{running}"))
                .await
                .json()
                .await
                .ok()?;
            (job["state"] == "running" || job["state"] == "succeeded").then_some(())
        })
        .await;
        let killed = terminate_all(&admin, &metadata).await;
        assert!(
            killed > 0,
            "round {round}: there were connections to {metadata} to terminate"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A 3,000,000-row export of a debug build, restarted after its connections were cut, can
    // take more than the usual minute on a machine busy with other builds and tests.
    let job = app
        .wait_final_within(&format!("/v1/exports/{running}"), Duration::from_secs(240))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["file"]["rows"], 3_000_000);
    // LISTEN came back: a new job starts at once although the next poll is a minute away.
    let fresh = app.create_export(export(10)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = app.wait_final(&fresh).await;
    let waited = crate::helpers::start_delay(&job);
    assert!(
        waited < time::Duration::seconds(1),
        "the new job waited {waited}"
    );
    app.stop().await;
}

/// A TCP proxy to `target` that can be taken down: while down it drops every connection, open
/// or new, as an unreachable endpoint would.
struct Outage {
    address: String,
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Outage {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let flag = down.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let (flag, target) = (flag.clone(), target.clone());
                tokio::spawn(async move { pipe(client, &target, &flag).await });
            }
        });
        Self {
            address,
            down,
            task,
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes or the outage begins.
async fn pipe(mut client: TcpStream, target: &str, down: &AtomicBool) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
    let watch = async {
        while !down.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = copy => {}
        () = watch => {}
    }
}

#[tokio::test]
async fn the_s3_endpoint_down_for_twenty_seconds_mid_upload_still_gives_one_object() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    let prefix = prefix.unwrap();
    let endpoint = settings.storage.endpoint.clone().unwrap();
    let proxy = Outage::start(endpoint.trim_start_matches("http://").to_owned()).await;
    settings.storage.endpoint = Some(proxy.address.clone());
    let app = spawn_with(settings, data_url, Some(prefix.clone())).await;
    let id = app.create_export(export(2_000_000)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(
        Duration::from_secs(60),
        "a part or two to be sent",
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
    proxy.down.store(true, Ordering::SeqCst);
    // The outage is the point of the test: it lasts as long as the issue asks.
    tokio::time::sleep(Duration::from_secs(20)).await;
    proxy.down.store(false, Ordering::SeqCst);
    let job = app
        .wait_final_within(&format!("/v1/exports/{id}"), Duration::from_secs(300))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["file"]["rows"], 2_000_000);
    assert_eq!(objects(&prefix).len(), 1, "one object");
    assert_eq!(incomplete_uploads(&prefix), Vec::<String>::new());
    app.stop().await;
}

/// A PostgreSQL cluster of this test's own (initdb, pg_ctl as the `postgres` user, trust auth,
/// a free port), stopped and removed when dropped: restarting the machine's shared server would
/// disturb every other test.
struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Cluster {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed under /usr/lib/postgresql")
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|bin| bin.join("initdb").exists())
            .expect("an initdb");
        let dir = std::env::temp_dir().join(format!("ferry-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Command::new("chown")
            .arg("postgres")
            .arg(&dir)
            .status()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let cluster = Self { dir, port, bin };
        let data = cluster.dir.join("data");
        cluster.run(&["initdb", "-A", "trust", "-U", "postgres", "-D"], &data);
        cluster.ctl("start");
        cluster
    }

    fn run(&self, args: &[&str], last: &Path) {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(args[0]))
            .args(&args[1..])
            .arg(last)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run a PostgreSQL tool");
        assert!(status.success(), "{args:?} failed");
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args([action, "-w", "-m", "fast", "-o", &options, "-l"])
            .arg(&log)
            .arg("-D")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {action} failed");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn postgresql_restarted_while_a_job_runs_and_the_job_still_succeeds_once() {
    let cluster = Cluster::start();
    let (mut settings, data_url, prefix) = test_settings(Shape::Production).await;
    let prefix = prefix.unwrap();
    settings.database_url = Some(ferry::config::Secret::new(cluster.url()));
    let app = spawn_with(settings, data_url, Some(prefix.clone())).await;
    let id = app.create_export(export(3_000_000)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(Duration::from_secs(60), "the export to write", || async {
        let job: Value = app
            .get(&format!("/v1/exports/{id}"))
            .await
            .json()
            .await
            .ok()?;
        (job["progress"]["bytes"].as_u64()? > 1024 * 1024).then_some(())
    })
    .await;
    cluster.ctl("restart");
    let job = app
        .wait_final_within(&format!("/v1/exports/{id}"), Duration::from_secs(300))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["file"]["rows"], 3_000_000);
    assert_eq!(objects(&prefix).len(), 1, "one object");
    assert_eq!(incomplete_uploads(&prefix), Vec::<String>::new());
    app.stop().await;
}
