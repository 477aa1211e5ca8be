//! `/v1/exports`: create, list, read, follow, download, cancel, retry, delete.

use super::AppState;
use super::error::{ApiError, parse_json};
use super::events;
use super::jobs;
use super::view::{download_link, render};
use crate::auth::Caller;
use crate::domain::{ExportRequest, Invalid, JobId, JobKind, JobState};
use crate::jobs::sources::{check, resolve};
use crate::pipeline::sources::SourceError;
use crate::queue::{Inserted, NewJob};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The export routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/exports",
            post(create).get(|s, c, q| jobs::list(JobKind::Export, s, c, q)),
        )
        .route("/v1/exports/{id}/download", get(download))
        .merge(jobs::routes(JobKind::Export))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ExportRequest = parse_json(&body)?;
    super::limits::admit(&state, &caller).await?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let spec = request.parse(&today)?;
    let resolved = resolve(&state.settings, &spec)?;
    let webhook_url = request
        .notify
        .as_ref()
        .and_then(|n| n.webhook_url.as_deref());
    super::callbacks::check(&state.settings.webhooks, webhook_url, "notify.webhook_url").await?;
    if let Err(SourceError::Permanent { message, .. }) = check(&resolved).await {
        return Err(
            Invalid::field("source.query", format!("the query cannot run: {message}")).into(),
        );
    }
    let idempotency = idempotency_key(&headers)?.map(|key| {
        let canonical = serde_json::to_vec(&request).unwrap_or_default();
        (key, hex::encode(Sha256::digest(&canonical)))
    });
    let new = NewJob {
        id: JobId::new(),
        kind: JobKind::Export,
        tenant: caller.tenant.clone(),
        owner: caller.subject.clone(),
        name: spec.name.clone(),
        spec: serde_json::to_value(&request).unwrap_or(Value::Null),
        share_with: spec.share_with.clone(),
        max_attempts: state.settings.workers.max_attempts,
        timeout: state.settings.workers.job_timeout,
        state: JobState::Queued,
        idempotency,
        progress: Default::default(),
        callback_url: request.notify.as_ref().and_then(|n| n.webhook_url.clone()),
    };
    let (status, job) = match state.store.insert(new).await? {
        Inserted::Created(job) => (StatusCode::ACCEPTED, job),
        Inserted::Existing(job) => (StatusCode::OK, job),
        Inserted::KeyReused => return Err(ApiError::KeyReused),
    };
    if wants_event_stream(&headers) {
        return Ok(events::stream(state, job.id, 0).into_response());
    }
    let location = format!("/v1/exports/{}", job.id);
    Ok((
        status,
        [(header::LOCATION, location)],
        axum::Json(render(&state, &job).await),
    )
        .into_response())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Invalid::field("Idempotency-Key", "must be visible ASCII"))?;
    if key.is_empty() || key.len() > 255 {
        return Err(Invalid::field("Idempotency-Key", "1 to 255 characters").into());
    }
    Ok(Some(key.to_owned()))
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = jobs::visible(&state, &caller, JobKind::Export, &id).await?;
    let result = match (&job.state, &job.result) {
        (JobState::Succeeded, Some(result)) => result,
        _ => {
            return Err(ApiError::Conflict(format!(
                "the export is {}, not succeeded",
                job.state
            )));
        }
    };
    let (url, _) = download_link(&state, result)
        .await
        .map_err(ApiError::Internal)?;
    Ok(Redirect::to(&url).into_response())
}
