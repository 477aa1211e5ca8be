//! The job as clients see it (SPEC §2): the stored record plus links, `percent`, and — for a
//! succeeded export — a fresh download link on every read. These types are also the API's
//! documented response bodies (`/openapi.json`).

use super::AppState;
use crate::domain::{
    EventKind, ExportRequest, ExportResult, ImportRequest, ImportResult, Job, JobError, JobKind,
    JobState, Progress,
};
use crate::storage::ObjectKey;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// A job: an export or an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// Its id (a UUIDv7).
    #[schema(value_type = String, format = Uuid)]
    pub id: crate::domain::JobId,
    /// `export` or `import`.
    pub kind: JobKind,
    /// Its name, as chosen or made from the source and the date.
    pub name: String,
    /// Where it is in its lifecycle.
    pub state: JobState,
    /// How far it has got.
    pub progress: ProgressView,
    /// The attempt running or last run (0 before the first).
    pub attempt: u32,
    /// Attempts allowed before it fails for good.
    pub max_attempts: u32,
    /// Why the last attempt failed.
    pub error: Option<JobError>,
    /// What it produced, once succeeded.
    #[schema(value_type = Option<JobResult>)]
    pub result: Option<Value>,
    /// The subject that created it.
    pub owner: String,
    /// Its tenant.
    pub tenant: String,
    /// Other subjects of the tenant who may see it.
    pub share_with: Vec<String>,
    /// The request that created it.
    #[schema(value_type = JobSpec)]
    pub spec: Value,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When its current or last attempt started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When it reached a final state.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// When its file is deleted.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Where to read and follow it.
    pub links: JobLinks,
    /// The signed upload link of a direct upload (only in the answer that creates it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadLink>,
}

/// Counters of a job, plus `percent` when a total is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    /// The counters.
    #[serde(flatten)]
    pub counts: Progress,
    /// Percent done, when a total is known.
    pub percent: Option<f64>,
}

/// The result of a succeeded job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobResult {
    /// An export's file.
    Export(ExportResult),
    /// An import's counts.
    Import(ImportResult),
}

/// The request that created a job, as sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JobSpec {
    /// `POST /v1/exports`.
    Export(ExportRequest),
    /// `POST /v1/imports`.
    Import(ImportRequest),
}

/// Links of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobLinks {
    /// The job itself.
    #[serde(rename = "self")]
    pub self_: String,
    /// Its event stream.
    pub events: String,
}

/// Where and how to put the file of a direct upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadLink {
    /// The signed link.
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers to send with it (none so far).
    pub headers: std::collections::BTreeMap<String, String>,
    /// When the link stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// One Server-Sent Event of a job's stream (the text `id:`, `event:` and `data:` lines, as
/// OpenAPI 3.1 describes each event of `text/event-stream`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: `events::stream` writes the lines
pub struct JobEvent {
    /// The job's event sequence number: send it back as `Last-Event-ID` to resume.
    id: String,
    /// `state`, `progress` or `done` (the last one).
    event: EventKind,
    /// The job ([`JobView`]) as JSON text.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// One page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// The jobs.
    pub items: Vec<JobView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// RFC 3339, as every timestamp of the API.
pub fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The collection path of a kind.
pub fn collection(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Import => "/v1/imports",
        JobKind::Export | JobKind::Webhook | JobKind::Email => "/v1/exports",
    }
}

/// Renders `job` for a client.
pub async fn render(state: &AppState, job: &Job) -> JobView {
    let base = format!("{}/{}", collection(job.kind), job.id);
    JobView {
        id: job.id,
        kind: job.kind,
        name: job.name.clone(),
        state: job.state,
        progress: ProgressView {
            counts: job.progress.clone(),
            percent: job.progress.percent(job.state == JobState::Succeeded),
        },
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        error: job.error.clone(),
        result: result(state, job).await,
        owner: job.owner.clone(),
        tenant: job.tenant.clone(),
        share_with: job.share_with.clone(),
        spec: job.spec.clone(),
        created_at: timestamp(job.created_at),
        started_at: job.started_at.map(timestamp),
        finished_at: job.finished_at.map(timestamp),
        expires_at: job.expires_at.map(timestamp),
        links: JobLinks {
            events: format!("{base}/events"),
            self_: base,
        },
        upload: None,
    }
}

async fn result(state: &AppState, job: &Job) -> Option<Value> {
    let mut result = job.result.clone()?;
    if job.state != JobState::Succeeded || job.kind != JobKind::Export {
        return Some(result);
    }
    match download_link(state, &result).await {
        Ok((url, expires)) => {
            if let Value::Object(map) = &mut result {
                map.insert("download_url".into(), Value::String(url));
                map.insert(
                    "download_url_expires_at".into(),
                    Value::String(timestamp(expires)),
                );
            }
        }
        Err(error) => {
            tracing::warn!(job.id = %job.id, error = %error, "could not sign a download link")
        }
    }
    Some(result)
}

/// A fresh signed link to the file of a succeeded export's result.
pub async fn download_link(
    state: &AppState,
    result: &Value,
) -> anyhow::Result<(String, OffsetDateTime)> {
    let file = result
        .get("file")
        .ok_or_else(|| anyhow::anyhow!("the result has no file"))?;
    let field = |name: &str| {
        file.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let key = ObjectKey::parse(&field("key"))?;
    let link = state
        .storage
        .download_url(
            &key,
            &field("filename"),
            &field("content_type"),
            state.settings.storage.link_ttl,
        )
        .await?;
    Ok(link)
}
