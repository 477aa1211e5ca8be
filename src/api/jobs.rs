//! What every kind of job shares over HTTP: list, read, follow, cancel, retry, delete. The
//! exports and imports resources mount these for their collection.

use super::AppState;
use super::error::{ApiError, Params};
use super::events;
use super::view::{collection, render};
use crate::auth::Caller;
use crate::domain::{Invalid, Job, JobId, JobKind, JobState};
use crate::queue::{CancelOutcome, ListQuery};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest page of a list.
const MAX_LIMIT: u32 = 100;

/// The per-job routes of `kind` (the collection's own `GET` and `POST` are the resource's).
pub fn routes(kind: JobKind) -> Router<AppState> {
    let base = collection(kind);
    Router::new()
        .route(
            &format!("{base}/{{id}}"),
            get(move |s, c, p| read(kind, s, c, p)).delete(move |s, c, p| delete(kind, s, c, p)),
        )
        .route(
            &format!("{base}/{{id}}/events"),
            get(move |s, c, p, h| follow(kind, s, c, p, h)),
        )
        .route(
            &format!("{base}/{{id}}/cancel"),
            post(move |s, c, p| cancel(kind, s, c, p)),
        )
        .route(
            &format!("{base}/{{id}}/retry"),
            post(move |s, c, p| retry(kind, s, c, p)),
        )
}

/// The job of `kind` with this id, if the caller may see it; anything else is `404`.
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    id: &str,
) -> Result<Job, ApiError> {
    let id = JobId::parse(id).ok_or(ApiError::NotFound)?;
    let job = state.store.get(id).await?.ok_or(ApiError::NotFound)?;
    if job.kind != kind || !caller.may_see(&job) {
        return Err(ApiError::NotFound);
    }
    Ok(job)
}

/// `?state=&limit=&cursor=` of a list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The caller's jobs of `kind`, newest first.
pub async fn list(
    kind: JobKind,
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListParams>,
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
        kind,
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
    kind: JobKind,
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    Ok(axum::Json(render(&state, &job).await))
}

async fn follow(
    kind: JobKind,
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok(events::stream(state, job.id, after).into_response())
}

async fn cancel(
    kind: JobKind,
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    let job = match state.store.cancel(job.id).await? {
        CancelOutcome::Cancelled(job) | CancelOutcome::Requested(job) => job,
        CancelOutcome::AlreadyFinal(job) => {
            return Err(ApiError::Conflict(format!(
                "the job is already {}",
                job.state
            )));
        }
        CancelOutcome::NotFound => return Err(ApiError::NotFound),
    };
    Ok((StatusCode::ACCEPTED, axum::Json(render(&state, &job).await)).into_response())
}

async fn retry(
    kind: JobKind,
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    let retried = state.store.retry(job.id).await?;
    let job = retried.ok_or_else(|| {
        ApiError::Conflict(format!(
            "only failed or cancelled jobs can be retried; this one is {}",
            job.state
        ))
    })?;
    Ok((StatusCode::ACCEPTED, axum::Json(render(&state, &job).await)).into_response())
}

async fn delete(
    kind: JobKind,
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    if job.state == JobState::Running {
        state.store.cancel(job.id).await?;
    }
    for key in crate::jobs::files_of(&job) {
        state
            .storage
            .delete(&key)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
    }
    state.store.delete(job.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
