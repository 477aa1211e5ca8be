//! The job as clients see it (SPEC §2): the stored record plus links, `percent`, and — for a
//! succeeded export — a fresh download link on every read.

use super::AppState;
use crate::domain::{Job, JobKind, JobState};
use crate::storage::ObjectKey;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

fn timestamp(at: Option<time::OffsetDateTime>) -> Value {
    at.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// The collection path of a kind.
pub fn collection(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Import => "/v1/imports",
        JobKind::Export | JobKind::Webhook => "/v1/exports",
    }
}

/// Renders `job` for a client.
pub async fn render(state: &AppState, job: &Job) -> Value {
    let base = format!("{}/{}", collection(job.kind), job.id);
    let mut progress = serde_json::to_value(&job.progress).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut progress {
        map.insert(
            "percent".into(),
            job.progress.percent().map_or(Value::Null, Value::from),
        );
    }
    json!({
        "id": job.id,
        "kind": job.kind,
        "name": job.name,
        "state": job.state,
        "progress": progress,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "error": job.error,
        "result": result(state, job).await,
        "owner": job.owner,
        "tenant": job.tenant,
        "share_with": job.share_with,
        "spec": job.spec,
        "created_at": timestamp(Some(job.created_at)),
        "started_at": timestamp(job.started_at),
        "finished_at": timestamp(job.finished_at),
        "expires_at": timestamp(job.expires_at),
        "links": {"self": base, "events": format!("{base}/events")},
    })
}

async fn result(state: &AppState, job: &Job) -> Value {
    let Some(result) = &job.result else {
        return Value::Null;
    };
    let mut result = result.clone();
    if job.state != JobState::Succeeded || job.kind != JobKind::Export {
        return result;
    }
    match download_link(state, &result).await {
        Ok((url, expires)) => {
            if let Value::Object(map) = &mut result {
                map.insert("download_url".into(), Value::String(url));
                map.insert("download_url_expires_at".into(), timestamp(Some(expires)));
            }
        }
        Err(error) => {
            tracing::warn!(job.id = %job.id, error = %error, "could not sign a download link")
        }
    }
    result
}

/// A fresh signed link to the file of a succeeded export's result.
pub async fn download_link(
    state: &AppState,
    result: &Value,
) -> anyhow::Result<(String, time::OffsetDateTime)> {
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
