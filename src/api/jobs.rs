//! What every kind of job shares over HTTP: list, read, follow, cancel, retry, delete. The
//! exports and imports resources mount these for their collection, each with its own documented
//! handlers.

use super::AppState;
use super::error::ApiError;
use super::events;
use super::view::{JobList, JobView, render};
use crate::auth::Caller;
use crate::domain::{Invalid, Job, JobId, JobKind, JobState};
use crate::queue::{CancelOutcome, ListQuery};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Largest page of a list.
const MAX_LIMIT: u32 = 100;

/// The `{id}` of a job's path. One that cannot be read names no job: `404`, like any other.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct JobPath(
    /// The job's id.
    pub String,
);

impl<S: Send + Sync> FromRequestParts<S> for JobPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|_| ApiError::NotFound)
    }
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    state: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's jobs of `kind`, newest first.
pub async fn list(
    kind: JobKind,
    state: &AppState,
    caller: &Caller,
    params: ListParams,
) -> Result<axum::Json<JobList>, ApiError> {
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
        items.push(render(state, job).await);
    }
    Ok(axum::Json(JobList { items, next_cursor }))
}

pub async fn read(
    kind: JobKind,
    state: AppState,
    caller: Caller,
    JobPath(id): JobPath,
) -> Result<axum::Json<JobView>, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    Ok(axum::Json(render(&state, &job).await))
}

pub async fn follow(
    kind: JobKind,
    state: AppState,
    caller: Caller,
    JobPath(id): JobPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, kind, &id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    // A client that already has the last event of a job that is over is told to stop
    // reconnecting (a standard `EventSource` stops on `204`).
    if job.state.is_final() && after >= job.event_seq {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(events::stream(state, job.id, after).into_response())
}

pub async fn cancel(
    kind: JobKind,
    state: AppState,
    caller: Caller,
    JobPath(id): JobPath,
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

pub async fn retry(
    kind: JobKind,
    state: AppState,
    caller: Caller,
    JobPath(id): JobPath,
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

pub async fn delete(
    kind: JobKind,
    state: AppState,
    caller: Caller,
    JobPath(id): JobPath,
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

/// Defines, in the calling module, the handlers every kind of job shares — `list`, `read`,
/// `delete`, `events`, `cancel`, `retry` — each documented under the kind's own path, operation
/// id, tag and words, and each calling the function of the same name above for `kind`.
macro_rules! operations {
    (
        kind: $kind:expr,
        tag: $tag:literal,
        list: ($list_path:literal, $list_id:literal, $list_doc:literal),
        read: ($item_path:literal, $read_id:literal, $read_doc:literal),
        delete: ($delete_id:literal, $delete_doc:literal),
        events: ($events_path:literal, $events_id:literal, $events_doc:literal),
        cancel: ($cancel_path:literal, $cancel_id:literal, $cancel_doc:literal),
        retry: ($retry_path:literal, $retry_id:literal, $retry_doc:literal) $(,)?
    ) => {
        #[doc = $list_doc]
        #[utoipa::path(
            get,
            path = $list_path,
            operation_id = $list_id,
            tag = $tag,
            params($crate::api::jobs::ListParams),
            responses(
                (status = 200, description = "A page of jobs", body = $crate::api::view::JobList),
                $crate::api::openapi::Rejected,
                $crate::api::openapi::Unauthorized,
                $crate::api::openapi::Unavailable,
            )
        )]
        async fn list(
            axum::extract::State(state): axum::extract::State<$crate::api::AppState>,
            caller: $crate::auth::Caller,
            $crate::api::error::Params(params): $crate::api::error::Params<
                $crate::api::jobs::ListParams,
            >,
        ) -> Result<axum::Json<$crate::api::view::JobList>, $crate::api::error::ApiError> {
            $crate::api::jobs::list($kind, &state, &caller, params).await
        }

        #[doc = $read_doc]
        #[utoipa::path(
            get,
            path = $item_path,
            operation_id = $read_id,
            tag = $tag,
            params($crate::api::jobs::JobPath),
            responses(
                (status = 200, description = "The job", body = $crate::api::view::JobView),
                $crate::api::openapi::NotFound,
                $crate::api::openapi::Unauthorized,
                $crate::api::openapi::Unavailable,
            )
        )]
        async fn read(
            axum::extract::State(state): axum::extract::State<$crate::api::AppState>,
            caller: $crate::auth::Caller,
            id: $crate::api::jobs::JobPath,
        ) -> Result<axum::Json<$crate::api::view::JobView>, $crate::api::error::ApiError> {
            $crate::api::jobs::read($kind, state, caller, id).await
        }

        #[doc = $delete_doc]
        #[utoipa::path(
            delete,
            path = $item_path,
            operation_id = $delete_id,
            tag = $tag,
            params($crate::api::jobs::JobPath),
            responses(
                (status = 204, description = "Deleted"),
                $crate::api::openapi::NotFound,
                $crate::api::openapi::Unauthorized,
                $crate::api::openapi::Unavailable,
            )
        )]
        async fn delete(
            axum::extract::State(state): axum::extract::State<$crate::api::AppState>,
            caller: $crate::auth::Caller,
            id: $crate::api::jobs::JobPath,
        ) -> Result<axum::http::StatusCode, $crate::api::error::ApiError> {
            $crate::api::jobs::delete($kind, state, caller, id).await
        }

        #[doc = $events_doc]
        #[utoipa::path(
            get,
            path = $events_path,
            operation_id = $events_id,
            tag = $tag,
            params(
                $crate::api::jobs::JobPath,
                ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id; an id that is not one of this stream's starts from the beginning"),
            ),
            responses(
                (status = 200, description = "The event stream", content_type = "text/event-stream",
                    body = $crate::api::view::JobEvent),
                (status = 204, description = "The job is over and `Last-Event-ID` is its last event: stop reconnecting"),
                $crate::api::openapi::NotFound,
                $crate::api::openapi::Unauthorized,
                $crate::api::openapi::Unavailable,
            )
        )]
        async fn events(
            axum::extract::State(state): axum::extract::State<$crate::api::AppState>,
            caller: $crate::auth::Caller,
            id: $crate::api::jobs::JobPath,
            headers: axum::http::HeaderMap,
        ) -> Result<axum::response::Response, $crate::api::error::ApiError> {
            $crate::api::jobs::follow($kind, state, caller, id, headers).await
        }

        #[doc = $cancel_doc]
        #[utoipa::path(
            post,
            path = $cancel_path,
            operation_id = $cancel_id,
            tag = $tag,
            params($crate::api::jobs::JobPath),
            responses(
                (status = 202, description = "Cancelled, or asked to stop", body = $crate::api::view::JobView),
                $crate::api::openapi::Conflict,
                $crate::api::openapi::NotFound,
                $crate::api::openapi::Unauthorized,
                $crate::api::openapi::Unavailable,
            )
        )]
        async fn cancel(
            axum::extract::State(state): axum::extract::State<$crate::api::AppState>,
            caller: $crate::auth::Caller,
            id: $crate::api::jobs::JobPath,
        ) -> Result<axum::response::Response, $crate::api::error::ApiError> {
            $crate::api::jobs::cancel($kind, state, caller, id).await
        }

        #[doc = $retry_doc]
        #[utoipa::path(
            post,
            path = $retry_path,
            operation_id = $retry_id,
            tag = $tag,
            params($crate::api::jobs::JobPath),
            responses(
                (status = 202, description = "Queued again", body = $crate::api::view::JobView),
                $crate::api::openapi::Conflict,
                $crate::api::openapi::NotFound,
                $crate::api::openapi::Unauthorized,
                $crate::api::openapi::Unavailable,
            )
        )]
        async fn retry(
            axum::extract::State(state): axum::extract::State<$crate::api::AppState>,
            caller: $crate::auth::Caller,
            id: $crate::api::jobs::JobPath,
        ) -> Result<axum::response::Response, $crate::api::error::ApiError> {
            $crate::api::jobs::retry($kind, state, caller, id).await
        }
    };
}
pub(crate) use operations;
