//! `/v1/exports`: create, list, read, follow, download, cancel, retry, delete.

use super::AppState;
use super::error::{ApiError, parse_json};
use super::events;
use super::view::{download_link, render};
use crate::auth::Caller;
use crate::domain::{ExportRequest, Invalid, Job, JobId, JobKind, JobState};
use crate::jobs::sources::{check, resolve};
use crate::pipeline::sources::SourceError;
use crate::queue::{CancelOutcome, Inserted, ListQuery, NewJob};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Largest page of a list.
const MAX_LIMIT: u32 = 100;

/// The export routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/exports", post(create).get(list))
        .route("/v1/exports/{id}", get(read).delete(delete))
        .route("/v1/exports/{id}/events", get(follow))
        .route("/v1/exports/{id}/download", get(download))
        .route("/v1/exports/{id}/cancel", post(cancel))
        .route("/v1/exports/{id}/retry", post(retry))
}

/// Parses a path id: not a UUID is the same as not found.
fn job_id(text: &str) -> Result<JobId, ApiError> {
    JobId::parse(text).ok_or(ApiError::NotFound)
}

/// The export with this id, if the caller may see it.
pub async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    let job = state
        .store
        .get(job_id(id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    if job.kind != JobKind::Export || !caller.may_see(&job) {
        return Err(ApiError::NotFound);
    }
    Ok(job)
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ExportRequest = parse_json(&body)?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let spec = request.parse(&today)?;
    let resolved = resolve(&state.settings, &spec)?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    state: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let wanted_state = params
        .state
        .as_deref()
        .map(|s| {
            s.parse::<JobState>()
                .map_err(|_| Invalid::field("state", format!("unknown state {s:?}")))
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Invalid::field("limit", format!("between 1 and {MAX_LIMIT}")).into());
    }
    let before = params
        .cursor
        .as_deref()
        .map(|c| {
            JobId::parse(c).ok_or_else(|| Invalid::field("cursor", "not a cursor from this API"))
        })
        .transpose()?;
    let query = ListQuery {
        tenant: caller.tenant.clone(),
        kind: JobKind::Export,
        visible_to: (!caller.is_admin()).then(|| caller.subject.clone()),
        state: wanted_state,
        limit,
        before,
    };
    let jobs = state.store.list(&query).await?;
    let next_cursor = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    let mut items = Vec::with_capacity(jobs.len());
    for job in &jobs {
        items.push(render(&state, job).await);
    }
    Ok(axum::Json(
        json!({"items": items, "next_cursor": next_cursor}),
    ))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = visible(&state, &caller, &id).await?;
    Ok(axum::Json(render(&state, &job).await))
}

async fn follow(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, &id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok(events::stream(state, job.id, after).into_response())
}

async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, &id).await?;
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

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, &id).await?;
    let job = match state.store.cancel(job.id).await? {
        CancelOutcome::Cancelled(job) | CancelOutcome::Requested(job) => job,
        CancelOutcome::AlreadyFinal(job) => {
            return Err(ApiError::Conflict(format!(
                "the export is already {}",
                job.state
            )));
        }
        CancelOutcome::NotFound => return Err(ApiError::NotFound),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(render(&state, &job).await)).into_response())
}

async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, &id).await?;
    let retried = state.store.retry(job.id).await?;
    let job = retried.ok_or_else(|| {
        ApiError::Conflict(format!(
            "only failed or cancelled exports can be retried; this one is {}",
            job.state
        ))
    })?;
    Ok((StatusCode::ACCEPTED, axum::Json(render(&state, &job).await)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let job = visible(&state, &caller, &id).await?;
    if job.state == JobState::Running {
        state.store.cancel(job.id).await?;
    }
    if let Some(key) = job
        .result
        .as_ref()
        .and_then(|r| r.pointer("/file/key"))
        .and_then(Value::as_str)
    {
        let key =
            crate::storage::ObjectKey::parse(key).map_err(|e| ApiError::Internal(e.into()))?;
        state
            .storage
            .delete(&key)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
    }
    state.store.delete(job.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
