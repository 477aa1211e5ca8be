//! `/v1/imports/{id}/upload`: resumable uploads. A JSON import spec with
//! `"upload": "multipart"` and the file's `size` creates the job (`awaiting_upload`) and the
//! upload; the client asks for a short-lived `PUT` link per part, sends the parts in any order
//! (again after a dropped connection — a part sent twice replaces itself), reads which parts
//! are stored to resume, completes, and `start`s the job. Every step reads the upload's record
//! from the metadata database, so any Ferry process serves any step. With S3 the parts go
//! straight to the bucket (pre-signed `UploadPart`); on the local store Ferry receives them
//! through its own signed `/files/…` links. `storage::resumable` does the store's side.

use super::AppState;
use super::error::ApiError;
use super::jobs::{JobPath, visible};
use super::openapi::{Conflict, NotFound, Rejected, TooLarge, Unauthorized, Unavailable};
use super::view::{JobView, UploadLink, render, timestamp};
use crate::auth::Caller;
use crate::domain::{ImportRequest, Invalid, Job, JobId, JobKind, JobState};
use crate::queue::UploadRecord;
use crate::storage::{
    ObjectKey, StorageError, StoredPart, check_parts, import_key, part_count, part_size_for,
};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The longest a part's link lives (less if `storage.link_ttl` is shorter).
const PART_LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// The upload routes, each documented by its handler.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read, abort))
        .routes(routes!(part_link))
        .routes(routes!(complete))
}

/// A resumable upload in progress: what to send, and what is stored already.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// The file's size in bytes, as announced.
    pub size: u64,
    /// Bytes of every part but the last (which holds the rest).
    pub part_size: u64,
    /// How many parts the file has.
    pub parts: u64,
    /// The parts stored so far, by number; send the others.
    pub uploaded: Vec<PartView>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the sweeper aborts the upload if it is not completed.
    #[schema(format = DateTime)]
    pub abandoned_at: String,
}

/// One stored part.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartView {
    /// 1-based.
    pub number: u32,
    /// Bytes.
    pub size: u64,
}

/// Creates the job and its resumable upload (called by `POST /v1/imports` for
/// `"upload": "multipart"`, once the spec is checked).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: &ImportRequest,
    name: &str,
) -> Result<Response, ApiError> {
    let size = request.size.unwrap_or_default();
    let max = state.settings.limits.max_upload;
    if size > max.as_u64() {
        return Err(ApiError::TooLarge(format!(
            "size: {size} bytes is larger than the maximum upload of {max}"
        )));
    }
    let id = JobId::new();
    let key = import_key(&caller.tenant, id, "upload");
    let upload_id = state
        .storage
        .create_resumable(&key)
        .await
        .map_err(unavailable)?;
    let record = UploadRecord {
        job_id: id,
        tenant: caller.tenant.clone(),
        key: key.as_str().to_owned(),
        upload_id,
        size,
        part_size: part_size_for(size, state.settings.storage.part_size.as_u64()),
        created_at: OffsetDateTime::now_utc(),
    };
    let job = match begin(state, caller, &record, request, name).await {
        Ok(job) => job,
        Err(error) => {
            let _ = state
                .storage
                .abort_resumable(&key, record.upload_id.as_deref())
                .await;
            return Err(error);
        }
    };
    let location = format!("/v1/imports/{}", job.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(render(state, &job).await),
    )
        .into_response())
}

/// Writes the upload's record, then the job (the sweeper leaves a record without its job
/// alone for a minute).
async fn begin(
    state: &AppState,
    caller: &Caller,
    record: &UploadRecord,
    request: &ImportRequest,
    name: &str,
) -> Result<Job, ApiError> {
    state.store.insert_upload(record).await?;
    let inserted = super::imports::insert(
        state,
        caller,
        record.job_id,
        request,
        name,
        JobState::AwaitingUpload,
        crate::domain::Progress::default(),
    )
    .await;
    if inserted.is_err() {
        let _ = state.store.delete_upload(record.job_id).await;
    }
    inserted
}

/// The import and its upload in progress; `409` when it has none.
async fn waiting(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Job, UploadRecord, ObjectKey), ApiError> {
    let job = visible(state, caller, JobKind::Import, id).await?;
    let none = || {
        ApiError::Conflict(format!(
            "the import is {}, with no upload in progress",
            job.state
        ))
    };
    if job.state != JobState::AwaitingUpload {
        return Err(none());
    }
    let record = state.store.upload(job.id).await?.ok_or_else(none)?;
    let key = ObjectKey::parse(&record.key).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((job, record, key))
}

/// Reads a resumable upload: its part size and the parts stored so far (to resume).
#[utoipa::path(
    get,
    path = "/v1/imports/{id}/upload",
    operation_id = "get_import_upload",
    tag = "imports",
    params(JobPath),
    responses(
        (status = 200, description = "The upload", body = UploadView),
        Conflict, NotFound, Unauthorized, Unavailable,
    )
)]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    JobPath(id): JobPath,
) -> Result<axum::Json<UploadView>, ApiError> {
    let (_, record, key) = waiting(&state, &caller, &id).await?;
    let parts = stored(&state, &record, &key).await?;
    let abandoned = record.created_at + state.settings.storage.abandon_uploads_after;
    Ok(axum::Json(UploadView {
        size: record.size,
        part_size: record.part_size,
        parts: part_count(record.size, record.part_size),
        uploaded: parts
            .iter()
            .map(|part| PartView {
                number: part.number,
                size: part.size,
            })
            .collect(),
        created_at: timestamp(record.created_at),
        abandoned_at: timestamp(abandoned),
    }))
}

/// The parts the store holds.
async fn stored(
    state: &AppState,
    record: &UploadRecord,
    key: &ObjectKey,
) -> Result<Vec<StoredPart>, ApiError> {
    match state
        .storage
        .stored_parts(key, record.upload_id.as_deref())
        .await
    {
        Ok(parts) => Ok(parts),
        Err(StorageError::NotFound { .. }) => Err(ApiError::Conflict(
            "the upload was completed or aborted meanwhile".into(),
        )),
        Err(error) => Err(unavailable(error)),
    }
}

/// The `{id}` and `{number}` of a part's path.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("id", "number"), parameter_in = Path)]
#[allow(dead_code)] // documentation only: read as two strings so that a bad number is a 422
struct PartPath(
    /// The job's id.
    String,
    /// The part's number, from 1.
    u32,
);

/// A short-lived `PUT` link for one part: send exactly `part_size` bytes (the last part: the
/// rest). On S3 the `ETag` the store answers is all it takes; Ferry lists the parts itself.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}/upload/parts/{number}",
    operation_id = "import_upload_part_link",
    tag = "imports",
    params(PartPath),
    responses(
        (status = 200, description = "The part's link", body = UploadLink),
        Rejected, Conflict, NotFound, Unauthorized, Unavailable,
    )
)]
async fn part_link(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<axum::Json<UploadLink>, ApiError> {
    let Ok(Path((id, number))) = path else {
        return Err(ApiError::NotFound);
    };
    let (_, record, key) = waiting(&state, &caller, &id).await?;
    let count = part_count(record.size, record.part_size);
    let number = number
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=count).contains(&u64::from(*n)))
        .ok_or_else(|| Invalid::field("number", format!("a part number from 1 to {count}")))?;
    let ttl = PART_LINK_TTL.min(state.settings.storage.link_ttl);
    let (url, expires_at) = state
        .storage
        .part_link(&key, record.upload_id.as_deref(), number, ttl)
        .await
        .map_err(unavailable)?;
    Ok(axum::Json(UploadLink {
        url,
        method: "PUT".to_owned(),
        headers: BTreeMap::new(),
        expires_at: timestamp(expires_at),
    }))
}

/// Completes a resumable upload once every part is stored: checks each part's size and the
/// total against the announced size and the maximum upload, and makes the file. Then call
/// `start`.
#[utoipa::path(
    post,
    path = "/v1/imports/{id}/upload/complete",
    operation_id = "complete_import_upload",
    tag = "imports",
    params(JobPath),
    responses(
        (status = 200, description = "The file is stored; call `start`", body = JobView),
        Conflict, NotFound, TooLarge, Unauthorized, Unavailable,
    )
)]
async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    JobPath(id): JobPath,
) -> Result<axum::Json<JobView>, ApiError> {
    let (job, record, key) = waiting(&state, &caller, &id).await?;
    let parts = stored(&state, &record, &key).await?;
    let total: u64 = parts.iter().map(|part| part.size).sum();
    let max = state.settings.limits.max_upload;
    if total > max.as_u64() {
        return Err(ApiError::TooLarge(format!(
            "the parts hold {total} bytes, more than the maximum upload of {max}"
        )));
    }
    check_parts(&parts, record.size, record.part_size)
        .map_err(|problem| ApiError::Conflict(problem.to_string()))?;
    let upload_id = record.upload_id.as_deref();
    match state
        .storage
        .complete_resumable(&key, upload_id, &parts, max.as_u64())
        .await
    {
        Ok(_) => {}
        Err(crate::storage::PutError::Store(StorageError::NotFound { .. })) => {
            return Err(ApiError::Conflict(
                "the upload was completed or aborted meanwhile".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    state.store.delete_upload(job.id).await?;
    Ok(axum::Json(render(&state, &job).await))
}

/// Aborts a resumable upload: the stored parts are discarded and the import is cancelled.
#[utoipa::path(
    delete,
    path = "/v1/imports/{id}/upload",
    operation_id = "abort_import_upload",
    tag = "imports",
    params(JobPath),
    responses(
        (status = 204, description = "Aborted; the import is cancelled"),
        Conflict, NotFound, Unauthorized, Unavailable,
    )
)]
async fn abort(
    State(state): State<AppState>,
    caller: Caller,
    JobPath(id): JobPath,
) -> Result<StatusCode, ApiError> {
    let (job, record, key) = waiting(&state, &caller, &id).await?;
    state
        .storage
        .abort_resumable(&key, record.upload_id.as_deref())
        .await
        .map_err(unavailable)?;
    state.store.delete_upload(job.id).await?;
    state.store.cancel(job.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn unavailable(error: StorageError) -> ApiError {
    ApiError::Unavailable(error.into())
}
