//! The real `ferry serve` binary as a child process in the embedded shape (SQLite metadata,
//! local files, the `local` SQLite connection), with a webhook secret and loopback callbacks
//! allowed, and its stderr kept in a file. A process of its own has its own metrics recorder
//! and its own log subscriber, so tests can assert exact counts and every log line.

use crate::helpers::eventually;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The Standard Webhooks documentation's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A running `ferry serve`, killed when dropped.
pub struct Served {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Served {
    /// Creates a data directory, lets `prepare` put things in it (e.g. tables in `local.db`),
    /// then starts `ferry serve` with `env` and waits until it answers.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, "").await
    }

    /// As [`Served::start`], with `toml` appended to the configuration file (e.g. an `[auth]`
    /// section with `[[auth.api_keys]]`, which environment variables cannot express).
    pub async fn start_with(env: &[(&str, &str)], toml: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the data directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("ferry.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\
                 [workers]\nlease = \"2s\"\npoll_interval = \"200ms\"\nbackoff_base = \"100ms\"\nbackoff_cap = \"500ms\"\n\
                 [webhooks]\nsecret = \"{SECRET}\"\nallow_private = true\n{toml}\n",
                dir.display()
            ),
        )
        .expect("write the configuration");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("create the log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("FERRY_LOG_FORMAT")
            .env("FERRY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start ferry serve");
        let served = Self {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            dir,
            child: Some(child),
        };
        eventually(Duration::from_secs(30), "ferry serve to answer", || async {
            let response = served.client.get(served.url("/healthz")).send().await;
            response.ok().filter(|r| r.status() == 200).map(drop)
        })
        .await;
        served
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates `sql`'s tables in the embedded `local` SQLite connection.
    pub async fn local_sql(&self, sql: &str) {
        let url = format!("sqlite://{}?mode=rwc", self.dir.join("local.db").display());
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("open local.db");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("run SQL on local.db");
    }

    /// Creates an export (`202`) and returns the new job.
    pub async fn create_export(&self, body: &serde_json::Value) -> serde_json::Value {
        let response = self
            .client
            .post(self.url("/v1/exports"))
            .json(body)
            .send()
            .await
            .expect("POST /v1/exports");
        assert_eq!(response.status(), 202);
        response.json().await.expect("a job")
    }

    /// Creates an export (`202`) and waits until it is final; returns the final job.
    pub async fn export(&self, body: &serde_json::Value) -> serde_json::Value {
        let job = self.create_export(body).await;
        self.wait_final(&format!(
            "/v1/exports/{}",
            job["id"].as_str().expect("an id")
        ))
        .await
    }

    /// Uploads `file` as multipart with `spec` (`202`) and waits until the import is final.
    pub async fn import(&self, spec: &serde_json::Value, file: &str) -> serde_json::Value {
        let form = reqwest::multipart::Form::new()
            .text("spec", spec.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(file.as_bytes().to_vec()).file_name("data.csv"),
            );
        let response = self
            .client
            .post(self.url("/v1/imports"))
            .multipart(form)
            .send()
            .await
            .expect("POST /v1/imports");
        assert_eq!(response.status(), 202);
        let job: serde_json::Value = response.json().await.expect("a job");
        self.wait_final(&format!(
            "/v1/imports/{}",
            job["id"].as_str().expect("an id")
        ))
        .await
    }

    async fn wait_final(&self, path: &str) -> serde_json::Value {
        eventually(Duration::from_secs(60), "the job to finish", || async {
            let job: serde_json::Value = self
                .client
                .get(self.url(path))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            ["succeeded", "failed", "cancelled"]
                .contains(&job["state"].as_str()?)
                .then_some(job)
        })
        .await
    }

    /// Stops the server with SIGTERM (a clean shutdown) and returns its stderr.
    pub fn stop(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let status = child.wait().expect("wait for ferry");
            assert!(status.success(), "ferry exits cleanly on SIGTERM: {status}");
        }
        std::fs::read_to_string(self.dir.join("stderr.log")).expect("read the log file")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A webhook receiver on 127.0.0.1 that answers `204` and counts the calls; stopped when dropped.
pub struct Receiver {
    pub url: String,
    pub calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::http::StatusCode::NO_CONTENT }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let port = listener.local_addr().expect("an address").port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver runs");
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            calls,
            server,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
