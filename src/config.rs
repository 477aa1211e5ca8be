//! Ferry's configuration: one typed tree.
//!
//! Sources, later ones winning: the defaults written here < a TOML file (`--config FILE` or
//! `FERRY_CONFIG`) < environment variables `FERRY_<KEY>` with `__` between levels
//! (`FERRY_STORAGE__URL`). Durations are human-readable (`90s`, `24h`, `7d`), sizes too
//! (`512MiB`). Unknown keys are refused, and [`Settings::validate`] checks the whole tree at
//! start-up, so a bad setting stops the process at boot rather than a job at 3 a.m.

pub mod duckdb;
mod email;

pub use email::EmailSettings;

use bytesize::ByteSize;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the embedded SQLite data connection in the data directory.
pub const LOCAL_CONNECTION: &str = "local";
/// Environment variables with the `FERRY_` prefix that are not configuration keys.
const NOT_SETTINGS: [&str; 6] = [
    "FERRY_CONFIG",
    "FERRY_LOG_FORMAT",
    "FERRY_LOG",
    "FERRY_TEST_",
    // The client commands' server and token (`ferry export`, …): a shell that sets them for
    // the clients may start a server too.
    "FERRY_SERVER",
    "FERRY_TOKEN",
];
/// The longest a signed link may live (what S3 allows for a pre-signed URL).
const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A secret string: never printed by `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Directory for the embedded metadata database, local files and the `local` connection.
    pub data_dir: PathBuf,
    /// Metadata and queue database; SQLite in `data_dir` when unset.
    pub database_url: Option<Secret>,
    /// Base URL of the links Ferry signs itself; `http://{listen}` when unset.
    pub public_url: Option<String>,
    /// Where files are kept.
    pub storage: StorageSettings,
    /// The worker pool and the job lifecycle's timings.
    pub workers: WorkerSettings,
    /// Who may call the API.
    pub auth: AuthSettings,
    /// Data connections, by name.
    pub connections: BTreeMap<String, ConnectionSettings>,
    /// Named queries with typed parameters, by name.
    pub templates: BTreeMap<String, TemplateSettings>,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
    /// E-mail notifications; off (requests naming an address are refused) when unset.
    pub email: Option<EmailSettings>,
    /// Back-pressure limits.
    pub limits: LimitSettings,
    /// Origins of web pages that may call the API from a browser (CORS), such as
    /// `https://app.example.com`, or `"*"` for any: the pages that embed `ferry.js`. Empty (the
    /// default): only the page Ferry serves itself. `FERRY_ALLOWED_ORIGINS` takes a
    /// comma-separated list.
    pub allowed_origins: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./ferry-data"),
            database_url: None,
            public_url: None,
            storage: StorageSettings::default(),
            workers: WorkerSettings::default(),
            auth: AuthSettings::default(),
            connections: BTreeMap::new(),
            templates: BTreeMap::new(),
            webhooks: WebhookSettings::default(),
            email: None,
            limits: LimitSettings::default(),
            allowed_origins: Vec::new(),
        }
    }
}

/// `[storage]`: the object store for exported files and uploads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// `s3://bucket/prefix` or `file:///path`; `data_dir/files` when unset.
    pub url: Option<String>,
    /// Any S3-compatible endpoint; AWS when unset.
    pub endpoint: Option<String>,
    /// The S3 region.
    pub region: String,
    /// S3 credentials; the `AWS_*` environment variables when unset.
    pub access_key_id: Option<String>,
    /// See `access_key_id`.
    pub secret_access_key: Option<Secret>,
    /// How long a download link lives (at most 7 days).
    #[serde(with = "humantime_serde")]
    pub link_ttl: Duration,
    /// How long a finished job's file is kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long the record of an expired job is kept after its file was deleted.
    #[serde(with = "humantime_serde")]
    pub record_retention: Duration,
    /// Key for the links Ferry signs for the local store; made and kept in `data_dir` when unset.
    pub signing_key: Option<Secret>,
    /// Size of one part of a multipart upload.
    pub part_size: ByteSize,
    /// Parts uploaded at once; memory held is about `part_size × (this + 1)`.
    pub max_parts_in_flight: usize,
    /// Keep an import's uploaded file after it loaded (it is always kept after a failure).
    pub keep_uploads: bool,
    /// A resumable (multipart) upload not completed this long after it was created is aborted
    /// by the sweeper, and its import fails with `upload_abandoned`.
    #[serde(with = "humantime_serde")]
    pub abandon_uploads_after: Duration,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            url: None,
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            link_ttl: Duration::from_secs(3600),
            retention: Duration::from_secs(7 * 24 * 3600),
            record_retention: Duration::from_secs(30 * 24 * 3600),
            signing_key: None,
            part_size: ByteSize::mib(8),
            max_parts_in_flight: 2,
            keep_uploads: false,
            abandon_uploads_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// `[workers]`: concurrency and the lifecycle's timings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Jobs one process runs at once; `0` makes `ferry serve` an API-only process.
    pub concurrency: usize,
    /// How long a claimed job stays a worker's without a heartbeat.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// A job running longer than this fails as transient.
    #[serde(with = "humantime_serde")]
    pub job_timeout: Duration,
    /// Runs of a job before it fails for good.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// The longest retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
    /// On SIGTERM, how long running jobs may take to finish before they are handed back.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How often an idle worker looks for work when no wake-up arrives.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often the sweeper deletes expired files and records.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::from_secs(30),
            job_timeout: Duration::from_secs(30 * 60),
            max_attempts: 3,
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(60),
        }
    }
}

/// How callers authenticate.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// One tenant `default`, subject `anonymous`; for the embedded default on loopback.
    #[default]
    None,
    /// Bearer keys listed in configuration.
    ApiKeys,
    /// Bearer JWTs.
    Jwt,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The mode.
    pub mode: AuthMode,
    /// Keys for `api_keys` mode.
    pub api_keys: Vec<ApiKey>,
    /// How JWTs are verified in `jwt` mode.
    pub jwt: JwtSettings,
    /// Allow `none` mode on an address other than loopback: anyone who reaches it is tenant
    /// `default`.
    pub allow_insecure_none: bool,
}

/// `[auth.jwt]`: how bearer JWTs are verified and read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtSettings {
    /// Shared secret of HS256 tokens (at least 32 bytes).
    pub hs256_secret: Option<Secret>,
    /// PEM public keys; an RSA key verifies RS256 tokens, a P-256 EC key ES256 tokens.
    pub public_keys: Vec<String>,
    /// Required `iss` of every token, when set.
    pub issuer: Option<String>,
    /// Required `aud` of every token, when set.
    pub audience: Option<String>,
    /// The claim naming the caller's tenant.
    pub tenant_claim: String,
    /// The claim naming the caller (subject).
    pub subject_claim: String,
    /// The claim holding scopes: a space-separated string or an array of strings.
    pub scope_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            public_keys: Vec::new(),
            issuer: None,
            audience: None,
            tenant_claim: "tenant".to_owned(),
            subject_claim: "sub".to_owned(),
            scope_claim: "scope".to_owned(),
            leeway: Duration::from_secs(30),
        }
    }
}

/// One API key and who it stands for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The bearer token.
    pub key: Secret,
    /// The tenant it acts for.
    pub tenant: String,
    /// The subject (user) it acts as.
    pub subject: String,
    /// Scopes, e.g. `admin`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `[connections.NAME]`: a database to export from (and later import into).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// `postgres://…`, `sqlite:///path/app.db`, or (export only, cargo feature `duckdb`)
    /// `duckdb:///path/app.duckdb[?setting=value&…]` (opened read-only) or `md:database`
    /// (MotherDuck).
    pub url: Secret,
    /// Whether arbitrary SQL exports may run on it.
    #[serde(default)]
    pub allow_sql: bool,
    /// Longest time one export query may run.
    #[serde(default = "default_statement_timeout", with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Connections kept open to it.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Who may use it (export from it, import into it, see it and its tables and templates):
    /// callers holding one of these scopes, or `admin`. Empty (the default): every caller.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_statement_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_max_connections() -> u32 {
    4
}

/// `[templates.NAME]`: a named query with typed parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// The connection it runs on.
    pub connection: String,
    /// The query, with `$1`, `$2`, … for the parameters in order.
    pub query: String,
    /// The parameters, in the order of their placeholders.
    #[serde(default)]
    pub params: Vec<TemplateParam>,
}

/// One typed template parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateParam {
    /// Its name in the request's `params` object.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
}

/// Types a template parameter may have.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    Text,
    Int,
    Bigint,
    Numeric,
    Bool,
    Date,
    Timestamptz,
    Uuid,
}

impl ParamType {
    /// Its name in configuration and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Int => "int",
            Self::Bigint => "bigint",
            Self::Numeric => "numeric",
            Self::Bool => "bool",
            Self::Date => "date",
            Self::Timestamptz => "timestamptz",
            Self::Uuid => "uuid",
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Signing secret (`whsec_…`); without one, jobs with a callback URL are refused.
    pub secret: Option<Secret>,
    /// Allow callback URLs on private, loopback and link-local addresses.
    pub allow_private: bool,
    /// How long one delivery attempt may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secret: None,
            allow_private: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Largest upload accepted.
    pub max_upload: ByteSize,
    /// Largest JSON request body accepted.
    pub max_body: ByteSize,
    /// Queued jobs in total before new ones are refused with `429`.
    pub max_queued: u64,
    /// Queued jobs per tenant before new ones are refused with `429`.
    pub max_queued_per_tenant: u64,
    /// Jobs of one tenant running at once.
    pub max_running_per_tenant: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_upload: ByteSize::gib(10),
            max_body: ByteSize::mib(1),
            max_queued: 10_000,
            max_queued_per_tenant: 100,
            max_running_per_tenant: 2,
        }
    }
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or does not fit the tree.
    #[error("cannot read the configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// The tree was read but is invalid.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Reads defaults < `file` < `FERRY_*` variables of `env`, then validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(key, _)| key.starts_with("FERRY_"))
            .filter(|(key, _)| !NOT_SETTINGS.iter().any(|skip| key.starts_with(skip)))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("FERRY")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("allowed_origins")
                .source(Some(vars)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot: ranges, URL schemes, references between sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Some(url) = &self.database_url
            && !is_postgres(url.expose())
            && !url.expose().starts_with("sqlite:")
        {
            problems.push("database_url must be a postgres:// or sqlite: URL".to_owned());
        }
        if let Some(url) = &self.storage.url
            && !url.starts_with("s3://")
            && !url.starts_with("file://")
        {
            problems.push(format!(
                "storage.url {url:?} must start with s3:// or file://"
            ));
        }
        if self.storage.abandon_uploads_after.is_zero() {
            problems.push("storage.abandon_uploads_after must be more than 0s".to_owned());
        }
        if self.storage.link_ttl > MAX_LINK_TTL || self.storage.link_ttl.is_zero() {
            problems.push("storage.link_ttl must be between 1s and 7d".to_owned());
        }
        if self.storage.part_size < ByteSize::mib(5) || self.storage.max_parts_in_flight == 0 {
            problems.push(
                "storage.part_size must be at least 5MiB and storage.max_parts_in_flight at least 1"
                    .to_owned(),
            );
        }
        if self.workers.max_attempts == 0 {
            problems.push("workers.max_attempts must be at least 1".to_owned());
        }
        if self.workers.lease < Duration::from_secs(1) {
            problems.push("workers.lease must be at least 1s".to_owned());
        }
        problems.extend(self.auth_problems());
        problems.extend(self.email.iter().flat_map(EmailSettings::problems));
        for (name, connection) in &self.connections {
            problems.extend(connection_url_problem(name, connection.url.expose()));
            if name == LOCAL_CONNECTION && !connection.scopes.is_empty() {
                problems.push(format!(
                    "connections.{LOCAL_CONNECTION}.scopes: the local connection is every caller's; \
                     give a connection with scopes another name"
                ));
            }
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !is_origin(origin) {
                problems.push(format!(
                    "allowed_origins: {origin:?} is not an origin like https://app.example.com \
                     (a scheme and a host, an optional port, no path) or \"*\""
                ));
            }
        }
        for (name, template) in &self.templates {
            if self.connection(&template.connection).is_none() {
                problems.push(format!(
                    "templates.{name}.connection names an unknown connection {:?}",
                    template.connection
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// What is wrong with `[auth]`. Whether the public keys parse is checked where they are
    /// parsed, by [`crate::auth::Authenticator::new`] at start-up.
    fn auth_problems(&self) -> Vec<String> {
        let auth = &self.auth;
        let mut problems = Vec::new();
        match auth.mode {
            AuthMode::None if !self.listen.ip().is_loopback() && !auth.allow_insecure_none => {
                problems.push(format!(
                    "auth.mode = \"none\" serves everyone as tenant `default`, so it only listens \
                     on a loopback address, and listen = {} is not one: use api_keys or jwt, or set \
                     auth.allow_insecure_none = true if something in front of Ferry authenticates",
                    self.listen
                ));
            }
            AuthMode::None => {}
            AuthMode::ApiKeys if auth.api_keys.is_empty() => problems
                .push("auth.mode = \"api_keys\" needs at least one [[auth.api_keys]]".to_owned()),
            AuthMode::ApiKeys => {}
            AuthMode::Jwt => problems.extend(jwt_problems(&auth.jwt)),
        }
        problems
    }

    /// A data connection by name, including the embedded `local` one.
    pub fn connection(&self, name: &str) -> Option<ConnectionSettings> {
        if let Some(connection) = self.connections.get(name) {
            return Some(connection.clone());
        }
        (name == LOCAL_CONNECTION).then(|| self.local_connection())
    }

    /// The embedded SQLite data connection `local` in the data directory.
    pub fn local_connection(&self) -> ConnectionSettings {
        let path = self.data_dir.join("local.db");
        ConnectionSettings {
            url: Secret::new(format!("sqlite://{}?mode=rwc", path.display())),
            allow_sql: true,
            statement_timeout: default_statement_timeout(),
            max_connections: default_max_connections(),
            scopes: Vec::new(),
        }
    }

    /// The metadata database URL: the configured one, or SQLite in the data directory.
    pub fn metadata_url(&self) -> Secret {
        match &self.database_url {
            Some(url) => url.clone(),
            None => Secret::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("ferry.db").display()
            )),
        }
    }

    /// The base of links Ferry signs itself.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// The shortest HS256 secret accepted: the hash's output size (RFC 7518 §3.2).
const MIN_HS256_SECRET: usize = 32;

/// What is wrong with `[auth.jwt]` in `jwt` mode.
fn jwt_problems(jwt: &JwtSettings) -> Vec<String> {
    let mut problems = Vec::new();
    match &jwt.hs256_secret {
        None if jwt.public_keys.is_empty() => problems.push(
            "auth.mode = \"jwt\" needs auth.jwt.hs256_secret or at least one auth.jwt.public_keys"
                .to_owned(),
        ),
        Some(secret) if secret.expose().len() < MIN_HS256_SECRET => problems.push(format!(
            "auth.jwt.hs256_secret must be at least {MIN_HS256_SECRET} bytes"
        )),
        _ => {}
    }
    let names = [
        ("tenant_claim", &jwt.tenant_claim),
        ("subject_claim", &jwt.subject_claim),
        ("scope_claim", &jwt.scope_claim),
    ];
    for (key, name) in names {
        if name.trim().is_empty() {
            problems.push(format!("auth.jwt.{key} must not be empty"));
        }
    }
    problems
}

/// What is wrong with the URL of `connections.NAME`, if anything.
fn connection_url_problem(name: &str, url: &str) -> Option<String> {
    if is_duckdb(url) {
        if let Err(problem) = duckdb::target(url) {
            return Some(format!("connections.{name}.url: {problem}"));
        }
        return (!duckdb::AVAILABLE).then(|| {
            format!(
                "connections.{name} is a DuckDB connection, and this ferry was built without \
                 DuckDB: build it with `cargo build --release --features duckdb` (docs/duckdb.md)"
            )
        });
    }
    (!is_postgres(url) && !url.starts_with("sqlite:")).then(|| {
        format!("connections.{name}.url must be a postgres://, sqlite:, duckdb:// or md: URL")
    })
}

/// Whether `text` is a web origin: `http(s)://host[:port]`, nothing after it.
fn is_origin(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.origin().ascii_serialization() == text
    })
}

/// Whether a URL names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Whether a URL names a DuckDB database: a file (`duckdb://…`) or MotherDuck (`md:…`).
pub fn is_duckdb(url: &str) -> bool {
    url.starts_with("duckdb:") || url.starts_with("md:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = Settings::load(None, env(&[])).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.workers.lease, Duration::from_secs(30));
        assert!(settings.connection(LOCAL_CONNECTION).unwrap().allow_sql);
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let mut file = tempfile();
        writeln!(file.1, "listen = \"127.0.0.1:9000\"\n[workers]\nlease = \"10s\"\nconcurrency = 2\n[storage]\nretention = \"2d\"").unwrap();
        let settings = Settings::load(
            Some(&file.0),
            env(&[
                ("FERRY_WORKERS__CONCURRENCY", "7"),
                ("FERRY_STORAGE__URL", "s3://bucket/prefix"),
                ("FERRY_TEST_S3_ENDPOINT", "ignored"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.listen.port(), 9000);
        assert_eq!(settings.workers.lease, Duration::from_secs(10));
        assert_eq!(settings.workers.concurrency, 7);
        assert_eq!(settings.storage.retention, Duration::from_secs(2 * 86400));
        assert_eq!(settings.storage.url.as_deref(), Some("s3://bucket/prefix"));
    }

    #[test]
    fn the_client_commands_variables_are_not_settings() {
        let settings = Settings::load(
            None,
            env(&[("FERRY_SERVER", "http://h:1"), ("FERRY_TOKEN", "t")]),
        );
        assert!(settings.is_ok(), "{:?}", settings.err());
    }

    #[test]
    fn unknown_keys_and_bad_values_stop_the_start() {
        let unknown = Settings::load(None, env(&[("FERRY_WORKERS__CONCURENCY", "2")]));
        assert!(unknown.is_err());
        let bad = Settings::load(None, env(&[("FERRY_STORAGE__LINK_TTL", "30d")])).unwrap_err();
        assert!(bad.to_string().contains("link_ttl"), "{bad}");
    }

    fn problems(settings: &Settings) -> String {
        settings
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_duckdb_connection_needs_the_feature_and_a_read_only_file_url() {
        let with = |url: &str| Settings::load(None, env(&[("FERRY_CONNECTIONS__LAKE__URL", url)]));
        let plain = with("duckdb:///var/lib/a.duckdb");
        if cfg!(feature = "duckdb") {
            assert!(plain.is_ok(), "{plain:?}");
            assert!(with("md:my_db").is_ok());
        } else {
            let message = plain.unwrap_err().to_string();
            assert!(message.contains("connections.lake"), "{message}");
            assert!(message.contains("--features duckdb"), "{message}");
        }
        let writable = with("duckdb:///a.duckdb?access_mode=read_write").unwrap_err();
        assert!(
            writable.to_string().contains("access_mode cannot be set"),
            "{writable}"
        );
        let unknown = with("mysql://h/db").unwrap_err().to_string();
        assert!(unknown.contains("duckdb:// or md:"), "{unknown}");
    }

    #[test]
    fn email_settings_read_from_the_environment_and_are_checked_at_start() {
        let settings = Settings::load(
            None,
            env(&[
                ("FERRY_EMAIL__SMTP_URL", "smtp://127.0.0.1:2525"),
                ("FERRY_EMAIL__FROM", "Ferry <exports@example.com>"),
                ("FERRY_EMAIL__LINK_TTL", "2d"),
            ]),
        )
        .unwrap();
        let email = settings.email.unwrap();
        assert_eq!(email.link_ttl, Duration::from_secs(2 * 86400));
        assert_eq!(email.timeout, Duration::from_secs(30));
        let too_long = Settings::load(
            None,
            env(&[
                ("FERRY_EMAIL__SMTP_URL", "smtp://127.0.0.1:2525"),
                ("FERRY_EMAIL__FROM", "exports@example.com"),
                ("FERRY_EMAIL__LINK_TTL", "8d"),
            ]),
        );
        let message = too_long.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("email.link_ttl"), "{message}");
        let without_sender = Settings::load(None, env(&[("FERRY_EMAIL__SMTP_URL", "smtp://h:25")]));
        assert!(without_sender.is_err(), "[email] needs from");
        assert!(Settings::load(None, env(&[])).unwrap().email.is_none());
    }

    #[test]
    fn none_mode_on_a_public_address_is_refused_with_the_way_out() {
        let settings = Settings::load(None, env(&[("FERRY_LISTEN", "0.0.0.0:8080")]));
        let message = settings.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("loopback"), "{message}");
        assert!(
            message.contains("auth.allow_insecure_none = true"),
            "{message}"
        );
    }

    #[test]
    fn none_mode_on_loopback_or_when_explicitly_allowed_starts() {
        for listen in ["127.0.0.1:8080", "[::1]:8080"] {
            assert!(Settings::load(None, env(&[("FERRY_LISTEN", listen)])).is_ok());
        }
        let allowed = env(&[
            ("FERRY_LISTEN", "0.0.0.0:8080"),
            ("FERRY_AUTH__ALLOW_INSECURE_NONE", "true"),
        ]);
        assert!(Settings::load(None, allowed).is_ok());
    }

    #[test]
    fn other_modes_may_listen_on_any_address() {
        let mut settings = Settings {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Settings::default()
        };
        settings.auth.mode = AuthMode::Jwt;
        settings.auth.jwt.hs256_secret = Some(Secret::new("x".repeat(32)));
        assert_eq!(problems(&settings), "");
    }

    #[test]
    fn jwt_mode_needs_a_secret_or_a_key() {
        let settings = Settings::load(None, env(&[("FERRY_AUTH__MODE", "jwt")]));
        let message = settings.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("auth.jwt.hs256_secret or at least one"),
            "{message}"
        );
    }

    #[test]
    fn jwt_settings_read_from_toml_with_defaults_for_the_rest() {
        let mut file = tempfile();
        writeln!(file.1, "[auth]\nmode = \"jwt\"\n[auth.jwt]\npublic_keys = [\"PEM\"]\nscope_claim = \"scp\"\nleeway = \"1m\"").unwrap();
        let settings = Settings::load(Some(&file.0), env(&[])).unwrap();
        let jwt = &settings.auth.jwt;
        assert_eq!(jwt.public_keys, vec!["PEM".to_owned()]);
        assert_eq!(
            (jwt.scope_claim.as_str(), jwt.leeway),
            ("scp", Duration::from_secs(60))
        );
        assert_eq!(
            (jwt.tenant_claim.as_str(), jwt.subject_claim.as_str()),
            ("tenant", "sub")
        );
    }

    #[test]
    fn a_short_hs256_secret_or_an_empty_claim_name_is_refused() {
        let mut settings = Settings::default();
        settings.auth.mode = AuthMode::Jwt;
        settings.auth.jwt.hs256_secret = Some(Secret::new("short"));
        settings.auth.jwt.tenant_claim = String::new();
        let message = problems(&settings);
        assert!(message.contains("at least 32 bytes"), "{message}");
        assert!(message.contains("auth.jwt.tenant_claim"), "{message}");
    }

    #[test]
    fn allowed_origins_come_from_a_comma_separated_variable_and_must_be_origins() {
        let settings = Settings::load(
            None,
            env(&[(
                "FERRY_ALLOWED_ORIGINS",
                "https://app.example.com,http://127.0.0.1:3000",
            )]),
        )
        .unwrap();
        assert_eq!(
            settings.allowed_origins,
            ["https://app.example.com", "http://127.0.0.1:3000"]
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "ftp://x.example",
            "https://a.example/path",
        ] {
            let settings = Settings {
                allowed_origins: vec![bad.to_owned()],
                ..Settings::default()
            };
            assert!(problems(&settings).contains("allowed_origins"), "{bad}");
        }
        let any = Settings {
            allowed_origins: vec!["*".to_owned()],
            ..Settings::default()
        };
        assert!(any.validate().is_ok());
    }

    fn tempfile() -> (PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("ferry-config-{}.toml", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&path).unwrap();
        (path, file)
    }
}
