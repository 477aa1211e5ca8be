//! `/v1/imports`: a file arrives as `multipart/form-data` (a `spec` part, then a `file` part)
//! or as the raw body with the spec in the query string. The spec is checked against the target
//! table before a byte is stored; the file streams into object storage (never held whole) and
//! the job is queued once it is stored. Plus the rejects report.

use super::AppState;
use super::error::{ApiError, Params, Problem, parse_json, problem};
use super::jobs::{self, JobPath, visible};
use super::openapi::{
    Conflict, EmptyFile, NotCsv, NotFound, Rejected, TooBusy, TooLarge, Unauthorized, Unavailable,
};
use super::view::{JobView, UploadLink, render, timestamp};
use crate::auth::Caller;
use crate::domain::import::{Compression, FileFormat, Mode, Target, UploadMode};
use crate::domain::{ImportRequest, Invalid, JobId, JobKind, JobState, Progress};
use crate::jobs::import::prepare::{PrepareError, connection_name, prepare};
use crate::pipeline::sources::SourceError;
use crate::queue::{Inserted, NewJob};
use crate::storage::{StorageError, import_key};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The import routes, each documented by its handler.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list).layer(DefaultBodyLimit::disable()))
        .routes(routes!(read, delete))
        .routes(routes!(events))
        .routes(routes!(cancel))
        .routes(routes!(retry))
        .routes(routes!(rejects))
        .routes(routes!(start))
}

/// The multipart form of an import: the spec first, then the file.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the form is read part by part, never whole
struct ImportForm {
    /// The import spec, as JSON.
    spec: ImportRequest,
    /// The CSV file (gzip allowed).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The spec of a raw-body upload, in the query string (the fields of the JSON spec of the same
/// name; only with a raw body).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RawParams {
    /// The data connection (may be left out when exactly one is configured).
    connection: Option<String>,
    /// The target table (required with a raw body).
    #[param(min_length = 1)]
    table: Option<String>,
    /// Create the table from the file when it does not exist (default false).
    #[serde(default)]
    create: bool,
    /// `append` (default), `replace` or `upsert`.
    #[serde(default)]
    #[param(value_type = Option<Mode>)]
    mode: Mode,
    /// Comma-separated key columns of an upsert.
    key: Option<String>,
    /// An http(s) URL to notify when the import ends.
    callback_url: Option<String>,
    /// An address to e-mail when the import ends (needs `[email]` on the server).
    #[param(format = Email, max_length = 254)]
    notify_email: Option<String>,
    /// The job's name.
    name: Option<String>,
    /// The field delimiter, one ASCII character.
    #[param(min_length = 1, max_length = 1)]
    delimiter: Option<String>,
    /// The quote character, one ASCII character.
    #[param(min_length = 1, max_length = 1)]
    quote: Option<String>,
    /// Whether the first line names the columns (default true).
    header: Option<bool>,
    /// The file's text encoding, any WHATWG label (default `utf-8`; a BOM overrides it).
    encoding: Option<String>,
    /// More rejected rows than this fail the import.
    max_errors: Option<u64>,
    /// `single` (default) or `chunked` (append and upsert only).
    commit: Option<String>,
    /// Rows per committed chunk with `commit=chunked` (default 500000).
    #[param(minimum = 1)]
    chunk_rows: Option<u64>,
}

impl RawParams {
    fn into_request(self, gzip: bool) -> Result<ImportRequest, ApiError> {
        let table = self
            .table
            .ok_or_else(|| Invalid::field("table", "the target table is required"))?;
        let defaults = FileFormat::default();
        Ok(ImportRequest {
            target: Target {
                connection: self.connection,
                table,
                create: self.create,
            },
            mode: self.mode,
            key: self
                .key
                .map(|k| k.split(',').map(|c| c.trim().to_owned()).collect())
                .unwrap_or_default(),
            format: FileFormat {
                delimiter: self.delimiter.unwrap_or(defaults.delimiter),
                quote: self.quote.unwrap_or(defaults.quote),
                header: self.header.unwrap_or(defaults.header),
                encoding: self.encoding.unwrap_or(defaults.encoding),
                compression: if gzip {
                    Compression::Gzip
                } else {
                    Compression::Auto
                },
                ..defaults
            },
            columns: BTreeMap::new(),
            mapping: BTreeMap::new(),
            max_errors: self
                .max_errors
                .unwrap_or(crate::domain::import::DEFAULT_MAX_ERRORS),
            callback_url: self.callback_url,
            notify_email: self.notify_email,
            name: self.name,
            upload: None,
            size: None,
            commit: self.commit,
            chunk_rows: self.chunk_rows,
        })
    }
}

/// Uploads a file to import, or creates a direct upload.
///
/// Three ways: `multipart/form-data` with a `spec` part, then a `file` part; the raw file as the
/// body with the spec in the query string (`Content-Encoding: gzip` honoured); or a JSON spec with
/// `"upload": "direct"`, answered with a signed `PUT` link (then call `start`). The spec is
/// checked against the target table before a byte is stored; the job is queued once the file is
/// stored.
#[utoipa::path(
    post,
    path = "/v1/imports",
    operation_id = "create_import",
    tag = "imports",
    params(RawParams),
    request_body(content(
        (ImportForm = "multipart/form-data"),
        (ImportRequest = "application/json"),
        (Vec<u8> = "text/csv"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses(
        (status = 202, description = "The file is stored and the import queued", body = JobView,
            headers(("Location" = String, description = "The job's URL")),
            links(
                ("GetImport" = (operation_id = "get_import", parameters(("id" = "$response.body#/id")))),
                ("FollowImport" = (operation_id = "import_events", parameters(("id" = "$response.body#/id")))),
                ("StartImport" = (operation_id = "start_import", parameters(("id" = "$response.body#/id")))),
                ("CancelImport" = (operation_id = "cancel_import", parameters(("id" = "$response.body#/id")))),
                ("RetryImport" = (operation_id = "retry_import", parameters(("id" = "$response.body#/id")))),
                ("DeleteImport" = (operation_id = "delete_import", parameters(("id" = "$response.body#/id")))),
            ),
        ),
        (status = 201, description = "A direct upload: put the file at `upload.url`, then call `start`; or a multipart upload: see `…/upload`", body = JobView,
            headers(("Location" = String, description = "The job's URL")),
            links(
                ("GetImport" = (operation_id = "get_import", parameters(("id" = "$response.body#/id")))),
                ("FollowImport" = (operation_id = "import_events", parameters(("id" = "$response.body#/id")))),
                ("StartImport" = (operation_id = "start_import", parameters(("id" = "$response.body#/id")))),
                ("CancelImport" = (operation_id = "cancel_import", parameters(("id" = "$response.body#/id")))),
                ("RetryImport" = (operation_id = "retry_import", parameters(("id" = "$response.body#/id")))),
                ("DeleteImport" = (operation_id = "delete_import", parameters(("id" = "$response.body#/id")))),
            ),
        ),
        Rejected, NotCsv, Unauthorized, TooLarge, TooBusy, Unavailable,
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<RawParams>,
    request: Request,
) -> Result<Response, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let spec_in_body = content_type.starts_with("multipart/form-data")
        || content_type.starts_with("application/json");
    if spec_in_body && request.uri().query().is_some_and(|q| !q.is_empty()) {
        // The query string describes a raw-body upload; never ignore what a client sent.
        return Err(Invalid::field(
            "query",
            "query parameters describe a raw-body upload; with a JSON or multipart spec, put them in the spec",
        )
        .into());
    }
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::Malformed(e.body_text()))?;
        return from_multipart(state, caller, multipart).await;
    }
    if content_type.starts_with("application/json") {
        let max = usize::try_from(state.settings.limits.max_body.as_u64()).unwrap_or(usize::MAX);
        let body = read_json_body(request.into_body(), max).await?;
        let request: ImportRequest = parse_json(&body)?;
        if request.upload == Some(UploadMode::Multipart) {
            let spec = checked(&state, &caller, &request, true).await?;
            return super::uploads::create(&state, &caller, &request, &spec.name).await;
        }
        return direct(&state, &caller, request).await;
    }
    let gzip = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let spec = params.into_request(gzip)?;
    store(
        &state,
        &caller,
        spec,
        request.into_body().into_data_stream(),
    )
    .await
}

async fn from_multipart(
    state: AppState,
    caller: Caller,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let max_spec = usize::try_from(state.settings.limits.max_body.as_u64()).unwrap_or(usize::MAX);
    let malformed =
        |e: axum::extract::multipart::MultipartError| ApiError::Malformed(e.body_text());
    let request: ImportRequest = {
        // The spec part must be dropped before the next part can be read.
        let Some(mut field) = multipart.next_field().await.map_err(malformed)? else {
            return Err(ApiError::Malformed(
                "the form is empty; send a spec part, then a file part".into(),
            ));
        };
        if field.name() != Some("spec") {
            return Err(ApiError::Malformed(
                "the first part must be the spec, before the file".into(),
            ));
        }
        let mut spec = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            spec.extend_from_slice(&chunk);
            if spec.len() > max_spec {
                return Err(ApiError::TooLarge("the spec part is too large".into()));
            }
        }
        parse_json(&spec)?
    };
    let Some(file) = multipart.next_field().await.map_err(malformed)? else {
        return Err(ApiError::Malformed(
            "the form has no file part after the spec".into(),
        ));
    };
    if file.name() != Some("file") {
        return Err(ApiError::Malformed(
            "the second part must be the file".into(),
        ));
    }
    store(&state, &caller, request, file).await
}

/// Checks the spec, streams the file into storage, then queues the job.
async fn store<S, E>(
    state: &AppState,
    caller: &Caller,
    request: ImportRequest,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
    E: std::fmt::Display + Send,
{
    let spec = checked(state, caller, &request, false).await?;
    let body = super::door::admit(body, spec.compression, spec.encoding.is_utf16()).await?;
    let id = JobId::new();
    let key = import_key(&caller.tenant, id, "upload");
    let max = state.settings.limits.max_upload.as_u64();
    let size = state.storage.put_stream(&key, body, max).await?;
    let progress = stored(size);
    let job = match insert(
        state,
        caller,
        id,
        &request,
        &spec.name,
        JobState::Queued,
        progress,
    )
    .await
    {
        Ok(job) => job,
        Err(error) => {
            let _ = state.storage.delete(&key).await;
            return Err(error);
        }
    };
    let location = format!("/v1/imports/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(render(state, &job).await),
    )
        .into_response())
}

/// Checks a spec completely before anything is stored: its own rules, that it is (or is not) a
/// direct upload, the callback URL, and the target table.
async fn checked(
    state: &AppState,
    caller: &Caller,
    request: &ImportRequest,
    direct: bool,
) -> Result<crate::domain::ImportSpec, ApiError> {
    let spec = request.parse(&time::OffsetDateTime::now_utc().date().to_string())?;
    if spec.direct != direct {
        let message = if direct {
            "a JSON request creates a direct upload: set \"upload\": \"direct\", or send the file as multipart/form-data or as the body"
        } else {
            "a direct upload is created with a JSON request, without a file"
        };
        return Err(Invalid::field("upload", message).into());
    }
    super::callbacks::check(
        &state.settings.webhooks,
        request.callback_url.as_deref(),
        "callback_url",
    )
    .await?;
    super::callbacks::check_email(
        state.settings.email.as_ref(),
        request.notify_email.as_deref(),
        "notify_email",
    )?;
    let connection = connection_name(&state.settings, &spec)?;
    if !super::discovery::allowed(&state.settings, caller, &connection) {
        return Err(Invalid::field(
            "target.connection",
            format!("unknown connection {connection:?}"),
        )
        .into());
    }
    prepare(&state.settings, &spec)
        .await
        .map_err(prepare_error)?;
    super::limits::admit(state, caller).await?;
    Ok(spec)
}

/// The progress of an import whose file of `size` bytes is stored.
fn stored(size: u64) -> Progress {
    Progress {
        total_bytes: Some(size),
        rows_inserted: Some(0),
        rows_rejected: Some(0),
        ..Progress::default()
    }
}

/// Reads a small JSON body, at most `max` bytes, chunk by chunk.
async fn read_json_body(body: Body, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::Malformed(e.to_string()))?;
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::TooLarge("the request body is too large".into()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Way 3: the job waits for its file, which the client puts straight into object storage with
/// a signed link, then calls `start`.
async fn direct(
    state: &AppState,
    caller: &Caller,
    request: ImportRequest,
) -> Result<Response, ApiError> {
    let spec = checked(state, caller, &request, true).await?;
    let id = JobId::new();
    let key = import_key(&caller.tenant, id, "upload");
    let (url, expires_at) = state
        .storage
        .upload_url(&key, state.settings.storage.link_ttl)
        .await
        .map_err(unavailable)?;
    let job = insert(
        state,
        caller,
        id,
        &request,
        &spec.name,
        JobState::AwaitingUpload,
        Progress::default(),
    )
    .await?;
    let mut body = render(state, &job).await;
    body.upload = Some(UploadLink {
        url,
        method: "PUT".to_owned(),
        headers: BTreeMap::new(),
        expires_at: timestamp(expires_at),
    });
    let location = format!("/v1/imports/{}", job.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response())
}

/// Queues a direct upload once its file is in storage.
#[utoipa::path(
    post,
    path = "/v1/imports/{id}/start",
    operation_id = "start_import",
    tag = "imports",
    params(JobPath),
    responses(
        (status = 202, description = "The import is queued", body = JobView),
        NotCsv, EmptyFile, Conflict, NotFound, TooLarge, Unauthorized, Unavailable,
    )
)]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    JobPath(id): JobPath,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, JobKind::Import, &id).await?;
    if job.state != JobState::AwaitingUpload {
        return Err(ApiError::Conflict(format!(
            "the import is {}, not awaiting_upload",
            job.state
        )));
    }
    let key = import_key(&job.tenant, job.id, "upload");
    let size = state.storage.size(&key).await.map_err(unavailable)?;
    let size = size.ok_or_else(|| {
        ApiError::Conflict("no file has been uploaded to the upload link yet".into())
    })?;
    if size > state.settings.limits.max_upload.as_u64() {
        let _ = state.storage.delete(&key).await;
        return Err(ApiError::TooLarge(format!(
            "the file is larger than the maximum upload of {}",
            state.settings.limits.max_upload
        )));
    }
    admit_direct(&state, &job, &key, size).await?;
    let started = state.store.start(job.id, &stored(size)).await?;
    let job = started.ok_or_else(|| {
        ApiError::Conflict("the import was started or cancelled meanwhile".into())
    })?;
    Ok((StatusCode::ACCEPTED, axum::Json(render(&state, &job).await)).into_response())
}

/// Checks a direct upload's file at the door. Refused, the object goes and the job keeps
/// waiting for a better file (as after a `413`).
async fn admit_direct(
    state: &AppState,
    job: &crate::domain::Job,
    key: &crate::storage::ObjectKey,
    size: u64,
) -> Result<(), ApiError> {
    let request: ImportRequest = serde_json::from_value(job.spec.clone())
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading a stored spec")))?;
    let compression = request.format.compression;
    // A stored spec was parsed when the job was created, so its label is known to be valid.
    let utf16 = crate::domain::TextEncoding::parse(&request.format.encoding)
        .is_ok_and(|encoding| encoding.is_utf16());
    match super::door::admit_stored(&state.storage, key, size, compression, utf16).await {
        Err(refused @ ApiError::Refused(_)) => {
            let _ = state.storage.delete(key).await;
            Err(refused)
        }
        other => other,
    }
}

/// Creates the job record.
pub(super) async fn insert(
    state: &AppState,
    caller: &Caller,
    id: JobId,
    request: &ImportRequest,
    name: &str,
    job_state: JobState,
    progress: Progress,
) -> Result<crate::domain::Job, ApiError> {
    let new = NewJob {
        id,
        kind: JobKind::Import,
        tenant: caller.tenant.clone(),
        owner: caller.subject.clone(),
        name: name.to_owned(),
        spec: serde_json::to_value(request).unwrap_or_default(),
        share_with: vec![],
        max_attempts: state.settings.workers.max_attempts,
        timeout: state.settings.workers.job_timeout,
        state: job_state,
        idempotency: None,
        progress,
    };
    match state.store.insert(new).await? {
        Inserted::Created(job) | Inserted::Existing(job) => Ok(job),
        Inserted::KeyReused => Err(ApiError::KeyReused),
    }
}

fn unavailable(error: StorageError) -> ApiError {
    ApiError::Unavailable(error.into())
}

fn prepare_error(error: PrepareError) -> ApiError {
    match error {
        PrepareError::Invalid(invalid) => ApiError::Invalid(invalid),
        PrepareError::Source(SourceError::Permanent { message, .. }) => {
            Invalid::field("target", message).into()
        }
        PrepareError::Source(transient) => ApiError::Unavailable(transient.into()),
    }
}

/// The rejects report of an import: the rejected rows as CSV, with the file's header plus
/// `_line`, `_errors` and `_raw`. Fix the rows in it and upload it again.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}/rejects",
    operation_id = "import_rejects",
    tag = "imports",
    params(JobPath),
    responses(
        (status = 200, description = "The report", content_type = "text/csv", body = String),
        (status = 404, description = "No such import, or no rejected rows (`no_rejects`)",
            content_type = "application/problem+json", body = Problem),
        Unauthorized, Unavailable,
    )
)]
async fn rejects(
    State(state): State<AppState>,
    caller: Caller,
    JobPath(id): JobPath,
) -> Result<Response, ApiError> {
    let job = visible(&state, &caller, JobKind::Import, &id).await?;
    match state
        .storage
        .read(&import_key(&job.tenant, job.id, "rejects.csv"))
        .await
    {
        Ok(stream) => {
            let disposition = format!("attachment; filename=\"rejects-{}.csv\"", job.id);
            let headers = [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ];
            Ok((headers, Body::from_stream(stream)).into_response())
        }
        Err(StorageError::NotFound { .. }) => Ok(problem(
            StatusCode::NOT_FOUND,
            "no_rejects",
            "No rejected rows",
            "this import has no rejected rows (yet)",
        )),
        Err(error) => Err(unavailable(error)),
    }
}

jobs::operations! {
    kind: JobKind::Import,
    tag: "imports",
    list: ("/v1/imports", "list_imports", "Lists the caller's imports, newest first."),
    read: ("/v1/imports/{id}", "get_import", "Reads an import."),
    delete: ("delete_import", "Deletes an import and its files (cancelling it first if it runs)."),
    events: ("/v1/imports/{id}/events", "import_events",
        "Follows an import: Server-Sent Events `state`, `progress` and a final `done`, each with \
         the job as data and its sequence number as id (send `Last-Event-ID` to resume)."),
    cancel: ("/v1/imports/{id}/cancel", "cancel_import",
        "Cancels an import: at once if it waits, within a second if it loads (rolled back)."),
    retry: ("/v1/imports/{id}/retry", "retry_import",
        "Runs a failed or cancelled import again (its file is kept after a failure)."),
}
