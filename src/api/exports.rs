//! `/v1/exports`: create, list, read, follow, download, cancel, retry, delete.

use super::AppState;
use super::discovery::allowed;
use super::error::{ApiError, parse_json};
use super::events;
use super::jobs::{self, JobPath};
use super::openapi::{Conflict, NotFound, Rejected, TooBusy, TooLarge, Unauthorized, Unavailable};
use super::view::{JobEvent, JobView, download_link, render};
use crate::auth::Caller;
use crate::domain::export::Part;
use crate::domain::{ExportRequest, Invalid, JobId, JobKind, JobState, Progress, Source};
use crate::jobs::sources::{Resolved, check, resolve};
use crate::pipeline::sources::SourceError;
use crate::queue::{Inserted, NewJob};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The export routes, each documented by its handler.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, delete))
        .routes(routes!(events))
        .routes(routes!(cancel))
        .routes(routes!(retry))
        .routes(routes!(download))
}

/// Starts an export.
///
/// Answers at once with the queued job (`202`), or with the job an earlier request with the same
/// `Idempotency-Key` made (`200`). With `Accept: text/event-stream` the answer is the job's event
/// stream instead.
#[utoipa::path(
    post,
    path = "/v1/exports",
    operation_id = "create_export",
    tag = "exports",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "Makes retries of this request safe for 24 hours (1 to 255 visible ASCII characters)"),
    ),
    request_body = ExportRequest,
    responses(
        (status = 202, description = "The export is queued", body = JobView,
            headers(("Location" = String, description = "The job's URL")),
            links(
                ("GetExport" = (operation_id = "get_export", parameters(("id" = "$response.body#/id")))),
                ("FollowExport" = (operation_id = "export_events", parameters(("id" = "$response.body#/id")))),
                ("CancelExport" = (operation_id = "cancel_export", parameters(("id" = "$response.body#/id")))),
                ("RetryExport" = (operation_id = "retry_export", parameters(("id" = "$response.body#/id")))),
                ("DownloadExport" = (operation_id = "download_export", parameters(("id" = "$response.body#/id")))),
                ("DeleteExport" = (operation_id = "delete_export", parameters(("id" = "$response.body#/id")))),
            ),
        ),
        (status = 200, description = "The job an earlier request with this Idempotency-Key made; \
            or, with `Accept: text/event-stream`, the new job's event stream",
            content((JobView = "application/json"), (JobEvent = "text/event-stream")),
            headers(("Location" = String, description = "The job's URL (JSON answers)"))),
        Rejected, Unauthorized, TooLarge, TooBusy, Unavailable,
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge("the request body is too large".into())
        } else {
            ApiError::Malformed(rejection.body_text())
        }
    })?;
    let request: ExportRequest = parse_json(&body)?;
    super::limits::admit(&state, &caller).await?;
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let spec = request.parse(&today)?;
    let mut resolved = Vec::with_capacity(spec.parts.len());
    for part in &spec.parts {
        usable_source(&state, &caller, part)?;
        resolved.push(resolve(&state.settings, part)?);
    }
    let webhook_url = request
        .notify
        .as_ref()
        .and_then(|n| n.webhook_url.as_deref());
    super::callbacks::check(&state.settings.webhooks, webhook_url, "notify.webhook_url").await?;
    let email = request.notify.as_ref().and_then(|n| n.email.as_deref());
    super::callbacks::check_email(state.settings.email.as_ref(), email, "notify.email")?;
    for (part, resolved) in spec.parts.iter().zip(&resolved) {
        if let Err(SourceError::Permanent { message, .. }) = check(resolved).await {
            return Err(Invalid::field(
                format!("{}.query", part.field),
                format!("the query cannot run: {message}"),
            )
            .into());
        }
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
        progress: initial_progress(&resolved),
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

/// Redirects to a fresh signed link to the file of a succeeded export.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}/download",
    operation_id = "download_export",
    tag = "exports",
    params(JobPath),
    responses(
        (status = 303, description = "The file is at the signed link in `Location`",
            headers(("Location" = String, description = "A signed link to the file"))),
        Conflict, NotFound, Unauthorized, Unavailable,
    )
)]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    JobPath(id): JobPath,
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

jobs::operations! {
    kind: JobKind::Export,
    tag: "exports",
    list: ("/v1/exports", "list_exports", "Lists the caller's exports, newest first."),
    read: ("/v1/exports/{id}", "get_export",
        "Reads an export; a succeeded one carries a fresh download link."),
    delete: ("delete_export", "Deletes an export and its file (cancelling it first if it runs)."),
    events: ("/v1/exports/{id}/events", "export_events",
        "Follows an export: Server-Sent Events `state`, `progress` and a final `done`, each with \
         the job as data and its sequence number as id (send `Last-Event-ID` to resume)."),
    cancel: ("/v1/exports/{id}/cancel", "cancel_export",
        "Cancels an export: at once if it waits, within a second if it runs."),
    retry: ("/v1/exports/{id}/retry", "retry_export", "Runs a failed or cancelled export again."),
}

/// A new export's progress: the generator's row count is known before it starts (a bundle's
/// total when every file is generated).
fn initial_progress(resolved: &[Resolved]) -> Progress {
    let total = resolved
        .iter()
        .try_fold(0u64, |sum, resolved| match resolved {
            Resolved::Generate(spec) => Some(sum.saturating_add(spec.rows)),
            _ => None,
        });
    Progress {
        total_rows_estimate: total,
        ..Progress::default()
    }
}

/// Refuses a source on a connection the caller may not use, with the answer an unknown
/// connection or template gets.
fn usable_source(state: &AppState, caller: &Caller, part: &Part) -> Result<(), Invalid> {
    let settings = &state.settings;
    match &part.source {
        Source::Sql { connection, .. } if !allowed(settings, caller, connection) => {
            Err(Invalid::field(
                format!("{}.connection", part.field),
                format!("unknown connection {connection:?}"),
            ))
        }
        Source::Template { template, .. }
            if settings
                .templates
                .get(template)
                .is_some_and(|t| !allowed(settings, caller, &t.connection)) =>
        {
            Err(Invalid::field(
                format!("{}.template", part.field),
                format!("unknown template {template:?}"),
            ))
        }
        _ => Ok(()),
    }
}
