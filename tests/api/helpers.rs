//! Shared test fixtures: fresh databases and the services `scripts/test` provides.

use sqlx::Connection;
use std::time::Duration;

/// A superuser URL of the PostgreSQL server the tests use.
pub fn admin_database_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_postgres() -> String {
    let admin = admin_database_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {admin} ({e}); run the tests with scripts/test, which starts it")
    });
    // The creation time in the name lets `scripts/test` drop what old runs left behind without
    // touching the databases of a run that is still going.
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // `scripts/test` names its run, and drops that run's databases when it ends.
    let run = std::env::var("FERRY_TEST_RUN")
        .ok()
        .filter(|run| !run.is_empty() && run.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "adhoc".to_owned());
    // At most 63 bytes: PostgreSQL cuts longer names short.
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("ferry_t_{created}_{run}_{}", &unique[..16]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A URL of a fresh SQLite database file.
pub fn fresh_sqlite() -> String {
    let dir = std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    format!("sqlite://{}?mode=rwc", dir.join("ferry.db").display())
}

/// Polls `check` until it returns `Some`, for at most `limit`; panics with `what` otherwise.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the first `kind` job (a follow-up such as a webhook delivery) of the metadata
/// database at `url` is final, and returns it: an event to wait on instead of a sleep.
pub async fn final_follow_up(url: &str, kind: ferry::domain::JobKind) -> ferry::domain::Job {
    let store = ferry::queue::Store::connect(url, ferry::queue::Signals::default())
        .await
        .expect("open the metadata database");
    let query = ferry::queue::ListQuery {
        tenant: "default".into(),
        kind,
        visible_to: None,
        state: None,
        limit: 10,
        before: None,
    };
    eventually(
        Duration::from_secs(30),
        "the follow-up job to end",
        || async {
            let jobs = store.list(&query).await.ok()?;
            jobs.into_iter().find(|j| j.state.is_final())
        },
    )
    .await
}

/// How long a job waited between its creation and the start of its (latest) attempt.
pub fn start_delay(job: &serde_json::Value) -> time::Duration {
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            job[field].as_str().expect("a timestamp"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("an RFC 3339 timestamp")
    };
    at("started_at") - at("created_at")
}

/// How the app under test stores its metadata and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// SQLite metadata, local file store (the embedded default).
    Embedded,
    /// PostgreSQL metadata, S3-compatible store.
    Production,
}

/// The S3 settings `scripts/test` exports; a test that needs them fails without them.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub secret: String,
    pub region: String,
}

/// The S3-compatible server of this test run.
pub fn s3() -> S3 {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test, which starts an S3-compatible server"))
    };
    S3 {
        endpoint: var("FERRY_TEST_S3_ENDPOINT"),
        bucket: var("FERRY_TEST_S3_BUCKET"),
        key: var("FERRY_TEST_S3_ACCESS_KEY_ID"),
        secret: var("FERRY_TEST_S3_SECRET_ACCESS_KEY"),
        region: std::env::var("FERRY_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
    }
}

/// Keys of in-progress multipart uploads under `prefix`, listed with an independent SigV4
/// implementation (curl's).
pub fn incomplete_uploads(prefix: &str) -> Vec<String> {
    s3_keys(prefix, "uploads=")
}

/// Keys of the objects under `prefix`, listed the same way.
pub fn objects(prefix: &str) -> Vec<String> {
    s3_keys(prefix, "list-type=2")
}

/// The objects under `prefix` with their sizes (the first 1,000, one listing page).
pub fn object_sizes(prefix: &str) -> Vec<(String, u64)> {
    let xml = s3_listing(prefix, "list-type=2");
    xml.split("<Contents>")
        .skip(1)
        .filter_map(|entry| {
            let field = |name: &str| {
                let rest = entry.split(&format!("<{name}>")).nth(1)?;
                rest.split(&format!("</{name}>")).next()
            };
            Some((field("Key")?.to_owned(), field("Size")?.parse().ok()?))
        })
        .collect()
}

/// `<Key>`s of a bucket listing. curl signs the query as written, so the parameters must be
/// sorted and fully encoded: `list-type=2&prefix=…` and `prefix=…&uploads=`.
fn s3_keys(prefix: &str, listing: &str) -> Vec<String> {
    let xml = s3_listing(prefix, listing);
    xml.split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split("</Key>").next())
        .map(str::to_owned)
        .collect()
}

/// The XML of a bucket listing (`listing` as for [`s3_keys`]).
fn s3_listing(prefix: &str, listing: &str) -> String {
    let s3 = s3();
    let encoded: String = url::form_urlencoded::byte_serialize(prefix.as_bytes()).collect();
    let query = if listing < "prefix" {
        format!("{listing}&prefix={encoded}")
    } else {
        format!("prefix={encoded}&{listing}")
    };
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--aws-sigv4",
            &format!("aws:amz:{}:s3", s3.region),
            "--user",
            &format!("{}:{}", s3.key, s3.secret),
        ])
        .arg(format!("{}/{}?{query}", s3.endpoint, s3.bucket))
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "listing the bucket failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A running Ferry on a random port.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: ferry::config::Settings,
    /// A PostgreSQL database for data, configured as the connection `main` (allow_sql).
    pub data_url: String,
    pub s3_prefix: Option<String>,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Checks every answer against the OpenAPI document.
    pub checker: crate::conformance::Checker,
}

/// Settings for a test app of `shape`, before it starts.
pub async fn test_settings(shape: Shape) -> (ferry::config::Settings, String, Option<String>) {
    use ferry::config::{ConnectionSettings, Secret, Settings};
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("an address"),
        data_dir: std::env::temp_dir().join(format!("ferry-test-{}", uuid::Uuid::new_v4())),
        ..Settings::default()
    };
    settings.workers.lease = Duration::from_secs(2);
    settings.workers.poll_interval = Duration::from_millis(200);
    settings.workers.backoff_base = Duration::from_millis(100);
    settings.workers.backoff_cap = Duration::from_millis(500);
    settings.workers.shutdown_grace = Duration::from_secs(2);
    settings.workers.sweep_interval = Duration::from_millis(200);
    settings.workers.concurrency = 2;
    let data_url = fresh_postgres().await;
    settings.connections.insert(
        "main".into(),
        ConnectionSettings {
            url: Secret::new(data_url.clone()),
            allow_sql: true,
            statement_timeout: Duration::from_secs(30),
            max_connections: 2,
            scopes: Vec::new(),
        },
    );
    let mut prefix = None;
    if shape == Shape::Production {
        settings.database_url = Some(Secret::new(fresh_postgres().await));
        let s3 = s3();
        let p = format!("test-{}", uuid::Uuid::new_v4().simple());
        settings.storage.url = Some(format!("s3://{}/{p}", s3.bucket));
        settings.storage.endpoint = Some(s3.endpoint);
        settings.storage.region = s3.region;
        settings.storage.access_key_id = Some(s3.key);
        settings.storage.secret_access_key = Some(Secret::new(s3.secret));
        settings.storage.part_size = bytesize::ByteSize::mib(5);
        prefix = Some(p);
    }
    (settings, data_url, prefix)
}

/// Starts Ferry (`ferry serve`) in this process with test timings.
pub async fn spawn_app(shape: Shape) -> TestApp {
    let (settings, data_url, s3_prefix) = test_settings(shape).await;
    spawn_with(settings, data_url, s3_prefix).await
}

/// Starts Ferry with the given settings.
pub async fn spawn_with(
    settings: ferry::config::Settings,
    data_url: String,
    s3_prefix: Option<String>,
) -> TestApp {
    // Set FERRY_LOG (e.g. `FERRY_LOG=ferry=debug`) to see the app's logs while debugging.
    if std::env::var("FERRY_LOG").is_ok() {
        ferry::telemetry::init();
    }
    let checker = crate::conformance::Checker::default();
    let app = ferry::startup::Application::build(settings.clone(), ferry::startup::Role::Serve)
        .await
        .expect("build the app")
        .wrap_api({
            let checker = checker.clone();
            move |router| checker.wrap(router)
        });
    let address = format!("http://{}", app.local_addr().expect("a bound address"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    TestApp {
        address,
        client,
        settings,
        data_url,
        s3_prefix,
        shutdown,
        task: Some(task),
        checker,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Creates an export and returns its job.
    pub async fn create_export(&self, body: serde_json::Value) -> serde_json::Value {
        let response = self.post_json("/v1/exports", &body).await;
        let status = response.status();
        let job: serde_json::Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 202, "{job}");
        job
    }

    /// Polls a job until it is in a final state, and returns it.
    pub async fn wait_final(&self, id: &str) -> serde_json::Value {
        self.wait_final_at(&format!("/v1/exports/{id}")).await
    }

    /// Polls the job at `path` until it is in a final state, and returns it.
    pub async fn wait_final_at(&self, path: &str) -> serde_json::Value {
        self.wait_final_within(path, Duration::from_secs(60)).await
    }

    /// Polls the job at `path` until it is in a final state, for at most `limit`.
    pub async fn wait_final_within(&self, path: &str, limit: Duration) -> serde_json::Value {
        eventually(limit, "the job to finish", || async {
            let job: serde_json::Value = self.get(path).await.json().await.ok()?;
            let state = job["state"].as_str()?.to_owned();
            ["succeeded", "failed", "cancelled", "expired"]
                .contains(&state.as_str())
                .then_some(job)
        })
        .await
    }

    /// Downloads a succeeded export through `/download` and its signed link.
    pub async fn download(&self, id: &str) -> (reqwest::header::HeaderMap, bytes::Bytes) {
        let redirect = self.get(&format!("/v1/exports/{id}/download")).await;
        assert_eq!(redirect.status(), 303);
        let link = redirect.headers()["location"]
            .to_str()
            .expect("a location")
            .to_owned();
        let file = reqwest::get(&link).await.expect("fetch the signed link");
        assert_eq!(file.status(), 200, "fetching {link}");
        let headers = file.headers().clone();
        (headers, file.bytes().await.expect("the file"))
    }

    /// Uploads `file` with `spec` as multipart/form-data.
    pub async fn import_multipart(
        &self,
        spec: &serde_json::Value,
        file: Vec<u8>,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("spec", spec.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(file)
                    .file_name("data.csv")
                    .mime_str("text/csv")
                    .expect("a mime type"),
            );
        self.client
            .post(self.url("/v1/imports"))
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Imports `file` with `spec` and waits for the job to end; returns it.
    pub async fn import(
        &self,
        spec: &serde_json::Value,
        file: impl Into<Vec<u8>>,
    ) -> serde_json::Value {
        let response = self.import_multipart(spec, file.into()).await;
        let status = response.status();
        let job: serde_json::Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 202, "{job}");
        self.wait_final_at(&format!(
            "/v1/imports/{}",
            job["id"].as_str().expect("an id")
        ))
        .await
    }

    /// A single number from the data database.
    pub async fn data_count(&self, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.data_url)
            .await
            .expect("connect to the data database");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .expect("run SQL")
    }

    /// Runs SQL on the data database.
    pub async fn data_sql(&self, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(&self.data_url)
            .await
            .expect("connect to the data database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("run SQL");
    }

    /// Stops the app and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.settings.data_dir);
        let violations = self.checker.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!("answers that break the OpenAPI document: {violations:#?}");
        }
    }
}
