//! What every client subcommand (`export`, `import`, `jobs`) shares: the server's address and
//! token, sending a request and turning any failure into one [`CliError`] (an unreachable server
//! in one line, a problem+json answer field by field), the job as the API returns it, and
//! following a job through its Server-Sent Events with `Last-Event-ID` reconnects.

use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// The largest JSON answer read (a job, a page of jobs, a problem); a bigger one is refused
/// rather than buffered without bound.
const MAX_JSON: usize = 16 * 1024 * 1024;
/// How long to wait for the server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--server` and `--token`, shared by the client subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The Ferry server to talk to.
    #[arg(long, env = "FERRY_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// A bearer token (an API key or a JWT), sent as `Authorization: Bearer`.
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Why a client command did not succeed. Each variant says everything the user needs in its
/// `Display`; [`CliError::exit_code`] maps it to the process's exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server could not be reached at all.
    #[error("cannot reach the Ferry server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The connection broke while the request or its answer was under way.
    #[error("the connection to the Ferry server at {url} broke: {reason}")]
    Broken { url: String, reason: String },
    /// The server answered with an error status.
    #[error("{0}")]
    Problem(Problem),
    /// The job ended in another state than `succeeded`.
    #[error("{0}")]
    JobFailed(String),
    /// Reading or writing a local file (or stdout) failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),
    /// The server answered something this client cannot understand.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl CliError {
    /// 2 for a command line that cannot be run (as clap's own usage errors), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            _ => 1,
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// An `application/problem+json` error answer (SPEC §7), read leniently: any field may be
/// missing when something other than Ferry (a proxy) answered.
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    /// The HTTP status (taken from the response when the body lacks it).
    #[serde(default)]
    pub status: u16,
    /// A short summary.
    #[serde(default)]
    pub title: String,
    /// What happened.
    #[serde(default)]
    pub detail: String,
    /// The stable code.
    #[serde(default)]
    pub code: String,
    /// The fields at fault.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// One field at fault in a [`Problem`].
#[derive(Debug, Deserialize)]
pub struct FieldError {
    /// The field's path, e.g. `target.table`.
    #[serde(default)]
    pub field: String,
    /// What is wrong with it.
    #[serde(default)]
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = if self.title.is_empty() {
            "Request failed"
        } else {
            &self.title
        };
        write!(f, "{title} (HTTP {}", self.status)?;
        if !self.code.is_empty() {
            write!(f, ", {}", self.code)?;
        }
        write!(f, ")")?;
        // A detail that only repeats the field errors listed below is left out.
        let repeats =
            !self.errors.is_empty() && self.errors.iter().all(|e| self.detail.contains(&e.message));
        if !self.detail.is_empty() && !repeats {
            write!(f, ": {}", self.detail)?;
        }
        for error in &self.errors {
            write!(f, "\n  {}: {}", error.field, error.message)?;
        }
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            write!(
                f,
                "\n  (give a token with --token or the FERRY_TOKEN variable)"
            )?;
        }
        Ok(())
    }
}

/// The two kinds of job a client deals with, and where each lives in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Exports.
    Export,
    /// Imports.
    Import,
}

impl Kind {
    /// The collection's path.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Export => "/v1/exports",
            Self::Import => "/v1/imports",
        }
    }

    /// `export` or `import`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
        }
    }
}

/// The job as the API returns it (SPEC §2): the fields the CLI reads, plus the whole answer for
/// `--json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// `export` or `import`.
    pub kind: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Where it is in its lifecycle.
    pub state: String,
    /// How far it has got.
    #[serde(default)]
    pub progress: Progress,
    /// The attempt running or last run.
    #[serde(default)]
    pub attempt: u32,
    /// Attempts allowed.
    #[serde(default)]
    pub max_attempts: u32,
    /// Why the last attempt failed.
    #[serde(default)]
    pub error: Option<JobError>,
    /// What it produced, once succeeded.
    #[serde(default)]
    pub result: Option<Value>,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created_at: String,
    /// When its last attempt started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it reached a final state.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// When its file is deleted.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The answer as received.
    #[serde(skip)]
    pub raw: Value,
}

/// A job's counters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Progress {
    /// Rows written (export) or read (import).
    #[serde(default)]
    pub rows: u64,
    /// Bytes written (export) or read (import).
    #[serde(default)]
    pub bytes: u64,
    /// An import's upload size.
    #[serde(default)]
    pub total_bytes: Option<u64>,
    /// Percent done, when a total is known.
    #[serde(default)]
    pub percent: Option<f64>,
    /// Rows loaded (imports).
    #[serde(default)]
    pub rows_inserted: Option<u64>,
    /// Rows rejected (imports).
    #[serde(default)]
    pub rows_rejected: Option<u64>,
}

/// Why a job's last attempt failed.
#[derive(Debug, Clone, Deserialize)]
pub struct JobError {
    /// A stable code, e.g. `query_failed`.
    #[serde(default)]
    pub code: String,
    /// What happened.
    #[serde(default)]
    pub message: String,
}

impl Job {
    /// Reads a job from the API's JSON.
    pub fn from_value(raw: Value) -> Result<Self, CliError> {
        let mut job =
            Self::deserialize(&raw).map_err(|e| CliError::Protocol(format!("not a job: {e}")))?;
        job.raw = raw;
        Ok(job)
    }

    /// Whether the job can change no more (`expired` included: it was final before).
    pub fn is_final(&self) -> bool {
        matches!(
            self.state.as_str(),
            "succeeded" | "failed" | "cancelled" | "expired"
        )
    }

    /// The kind, if it is one the CLI knows.
    pub fn kind(&self) -> Option<Kind> {
        match self.kind.as_str() {
            "export" => Some(Kind::Export),
            "import" => Some(Kind::Import),
            _ => None,
        }
    }

    /// `cancelled` or `failed: query_failed: no such table: missing`, for the user.
    pub fn failure(&self) -> String {
        match &self.error {
            Some(error) if !error.message.is_empty() => {
                format!("{}: {}: {}", self.state, error.code, error.message)
            }
            _ => self.state.clone(),
        }
    }
}

/// A connection to one Ferry server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// Checks `--server` and builds the HTTP client.
    pub fn new(args: &ClientArgs) -> Result<Self, CliError> {
        let base = args.server.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base).map_err(|e| {
            CliError::Usage(format!("--server {:?} is not a URL: {e}", args.server))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!(
                "--server {:?} must be an http:// or https:// URL",
                args.server
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Self {
            http,
            base,
            token: args.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// A request to `path` (from the API's root), with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.header(AUTHORIZATION, format!("Bearer {token}")),
            None => builder,
        }
    }

    /// Sends `request`; any error status becomes [`CliError::Problem`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        if response.status().is_client_error() || response.status().is_server_error() {
            return Err(CliError::Problem(self.problem(response).await));
        }
        Ok(response)
    }

    /// Sends `request` with `body` as JSON and reads the answer as JSON.
    pub async fn send_json(
        &self,
        request: RequestBuilder,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let request = match body {
            Some(body) => request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string()),
            None => request,
        };
        let response = self
            .send(request.header(ACCEPT, "application/json"))
            .await?;
        self.read_json(response).await
    }

    /// The job of `kind` with this id.
    pub async fn job(&self, kind: Kind, id: &str) -> Result<Job, CliError> {
        let path = format!("{}/{}", kind.collection(), encode(id));
        Job::from_value(
            self.send_json(self.request(Method::GET, &path), None)
                .await?,
        )
    }

    /// Reads a JSON answer, at most [`MAX_JSON`] bytes of it.
    pub async fn read_json(&self, response: Response) -> Result<Value, CliError> {
        let body = self.read_bounded(response, MAX_JSON).await?;
        serde_json::from_slice(&body)
            .map_err(|e| CliError::Protocol(format!("the answer is not JSON: {e}")))
    }

    async fn read_bounded(&self, response: Response, max: usize) -> Result<Vec<u8>, CliError> {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.transport(&e))?;
            if body.len() + chunk.len() > max {
                return Err(CliError::Protocol(format!(
                    "the answer is over {max} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn problem(&self, response: Response) -> Problem {
        let status = response.status();
        let body = self.read_bounded(response, MAX_JSON).await.ok();
        let parsed = body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Problem>(b).ok());
        let mut problem = parsed.unwrap_or_else(|| Problem {
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: body
                .as_deref()
                .map(|b| first_line(&String::from_utf8_lossy(b)))
                .unwrap_or_default(),
            ..Problem::default()
        });
        problem.status = status.as_u16();
        problem
    }

    /// The HTTP client itself, for signed links (which carry no token).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's base URL, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A transport failure, in one line that names the server.
    pub fn transport(&self, error: &reqwest::Error) -> CliError {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            reason = inner.to_string();
            source = inner.source();
        }
        let url = self.base.clone();
        if error.is_connect() || error.is_timeout() {
            CliError::Unreachable { url, reason }
        } else {
            CliError::Broken { url, reason }
        }
    }
}

/// Percent-encodes an id for a path segment (ids are UUIDs; anything else still makes a valid
/// URL, answered `404`).
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The largest `--spec` file read (a request or spec is a few hundred bytes, a bundle's a few KB).
const MAX_SPEC: u64 = 1024 * 1024;

/// Reads a `--spec` file holding `what` (e.g. "an import spec"): JSON, at most [`MAX_SPEC`] bytes.
pub fn read_json(path: &std::path::Path, what: &str) -> Result<Value, CliError> {
    let context = || format!("cannot read {}", path.display());
    let size = std::fs::metadata(path)
        .map_err(CliError::io(context()))?
        .len();
    if size > MAX_SPEC {
        return Err(CliError::Usage(format!(
            "{} is over {MAX_SPEC} bytes: not {what}",
            path.display()
        )));
    }
    let text = std::fs::read(path).map_err(CliError::io(context()))?;
    serde_json::from_slice(&text)
        .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", path.display())))
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_prints_its_title_status_code_detail_and_each_field() {
        let problem: Problem = serde_json::from_value(serde_json::json!({
            "type": "about:blank", "title": "Invalid request", "status": 422,
            "detail": "1 field is invalid", "code": "invalid_request",
            "errors": [{"field": "target.table", "message": "no such table"}]
        }))
        .unwrap();
        assert_eq!(
            problem.to_string(),
            "Invalid request (HTTP 422, invalid_request): 1 field is invalid\n  target.table: no such table"
        );
    }

    #[test]
    fn a_detail_that_repeats_the_field_errors_is_left_out() {
        let problem = Problem {
            status: 422,
            title: "Invalid request".into(),
            detail: "invalid request: mode: unknown mode".into(),
            errors: vec![FieldError {
                field: "mode".into(),
                message: "unknown mode".into(),
            }],
            ..Problem::default()
        };
        assert_eq!(
            problem.to_string(),
            "Invalid request (HTTP 422)\n  mode: unknown mode"
        );
    }

    #[test]
    fn an_unauthorized_problem_says_how_to_give_a_token() {
        let problem = Problem {
            status: 401,
            title: "Unauthorized".into(),
            code: "unauthorized".into(),
            ..Problem::default()
        };
        assert!(problem.to_string().contains("--token"), "{problem}");
    }

    #[test]
    fn a_job_failure_names_the_state_and_the_error() {
        let job = Job::from_value(serde_json::json!({
            "id": "1", "kind": "export", "state": "failed",
            "error": {"code": "query_failed", "message": "no such table", "transient": false}
        }))
        .unwrap();
        assert_eq!(job.failure(), "failed: query_failed: no such table");
        assert!(job.is_final());
    }

    #[test]
    fn a_server_that_is_not_a_url_is_a_usage_error() {
        let args = ClientArgs {
            server: "localhost:8080".into(),
            token: None,
        };
        assert!(matches!(Client::new(&args), Err(CliError::Usage(_))));
    }
}
