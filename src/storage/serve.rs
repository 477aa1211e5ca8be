//! Serving Ferry-signed links to the local store: `GET /files/{*key}`.
//!
//! The link's signature and expiry are checked before anything touches the disk; a tampered,
//! incomplete or foreign link and an expired one get a `403` problem (`invalid_link`,
//! `link_expired`). A genuine link is answered by tower-http's `ServeFile`, which streams the
//! file and handles `Range`, `HEAD` and conditional requests; the signed name and type become
//! `Content-Disposition` and `Content-Type`. With S3 the store serves its own links and this
//! router answers `404`.

use super::disposition::content_disposition;
use super::links::{self, Grant, Refusal};
use super::{Backend, Storage};
use crate::api::error::Problem;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use time::OffsetDateTime;
use tower_http::services::ServeFile;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes that serve local files by signed link; mount at the root of the public URL.
pub fn router<S: Clone + Send + Sync + 'static>(storage: Storage) -> OpenApiRouter<S> {
    routes().with_state(storage)
}

/// The same routes before they are given their store (for the OpenAPI document).
pub fn routes() -> OpenApiRouter<Storage> {
    OpenApiRouter::default().routes(routes!(serve_file, receive_file))
}

/// The query of a Ferry-signed link, exactly as Ferry wrote it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the signature covers the raw query, read as it is
struct LinkQuery {
    /// Unix time after which the link is refused.
    expires: i64,
    /// The name the file is downloaded as.
    filename: String,
    /// The `Content-Type` it is served with (or the upload marker of a `PUT` link).
    #[param(rename = "type")]
    kind: String,
    /// HMAC-SHA256 of the rest, by Ferry's link-signing key.
    sig: String,
}

/// The grant of a request's link, if it is genuine, current and of the right kind (an upload
/// link for `PUT`, a download link for `GET`); the refusal as a response otherwise.
fn granted(
    storage: &Storage,
    key: Result<Path<String>, PathRejection>,
    query: Option<&str>,
    upload: bool,
) -> Result<Grant, Box<Response>> {
    let Backend::Local(local) = &storage.inner.backend else {
        return Err(Box::new(problem(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
            "no files are served here",
        )));
    };
    let Ok(Path(key)) = key else {
        return Err(Box::new(invalid_link("the link's path is malformed")));
    };
    let grant = match links::verify(
        &local.signer,
        &key,
        query.unwrap_or(""),
        OffsetDateTime::now_utc(),
    ) {
        Ok(grant) => grant,
        Err(Refusal::Invalid(why)) => return Err(Box::new(invalid_link(why))),
        Err(Refusal::Expired) => {
            let detail = "the link has expired; ask for a fresh one";
            return Err(Box::new(problem(
                StatusCode::FORBIDDEN,
                "link_expired",
                "Link expired",
                detail,
            )));
        }
    };
    match (upload, grant.content_type == links::UPLOAD_TYPE) {
        (true, false) => Err(Box::new(invalid_link(
            "this link downloads a file; it does not upload one",
        ))),
        (false, true) => Err(Box::new(invalid_link(
            "this link uploads a file; it does not download one",
        ))),
        _ => Ok(grant),
    }
}

/// Downloads a file by a signed link (`Range`, `HEAD` and conditional requests supported).
#[utoipa::path(
    get,
    path = "/files/{*key}",
    operation_id = "download_file",
    tag = "files",
    security(()),
    params(
        ("key" = String, Path, description = "The object's key (may contain `/`)"),
        LinkQuery,
    ),
    responses(
        (status = 200, description = "The file, with the signed name in `Content-Disposition`",
            content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "*/*", body = Vec<u8>),
        (status = 403, description = "Tampered, incomplete or expired link (`invalid_link`, `link_expired`)",
            content_type = "application/problem+json", body = Problem),
        (status = 404, description = "The file no longer exists, or files are not served here",
            content_type = "application/problem+json", body = Problem),
        (status = 500, description = "The file cannot be read", content_type = "application/problem+json", body = Problem),
    )
)]
async fn serve_file(
    State(storage): State<Storage>,
    key: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let grant = match granted(&storage, key, query.as_deref(), false) {
        Ok(grant) => grant,
        Err(refused) => return *refused,
    };
    let Backend::Local(local) = &storage.inner.backend else {
        return invalid_link("the link names no valid file");
    };
    match local.store.path_to_filesystem(&grant.key.path()) {
        Ok(file) => stream_file(file, &grant, request).await,
        Err(_) => invalid_link("the link names no valid file"),
    }
}

/// Receives the body of a signed upload link (`PUT`) into the store, streamed and bounded by the
/// largest upload allowed; a failed or oversized upload leaves nothing behind.
#[utoipa::path(
    put,
    path = "/files/{*key}",
    operation_id = "upload_file",
    tag = "files",
    security(()),
    params(
        ("key" = String, Path, description = "The object's key (may contain `/`)"),
        LinkQuery,
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "The upload was interrupted", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Tampered, incomplete or expired link", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "Files are not received here", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Larger than the maximum upload", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is not answering", content_type = "application/problem+json", body = Problem),
    )
)]
async fn receive_file(
    State(storage): State<Storage>,
    key: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let grant = match granted(&storage, key, query.as_deref(), true) {
        Ok(grant) => grant,
        Err(refused) => return *refused,
    };
    match receive(&storage, &grant.key, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(response) => response,
    }
}

async fn receive(storage: &Storage, key: &super::ObjectKey, body: Body) -> Result<(), Response> {
    use futures::StreamExt;
    let internal = |e: super::StorageError| {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            &e.to_string(),
        )
    };
    let mut upload = storage.begin_upload(key).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    let failure = loop {
        match stream.next().await {
            None => break None,
            Some(Err(e)) => {
                break Some(problem(
                    StatusCode::BAD_REQUEST,
                    "upload_interrupted",
                    "Upload interrupted",
                    &e.to_string(),
                ));
            }
            Some(Ok(chunk)) => {
                size += chunk.len() as u64;
                crate::metrics::uploaded(chunk.len());
                if size > storage.inner.max_upload {
                    break Some(problem(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        "Request too large",
                        "the file is larger than the maximum upload",
                    ));
                }
                if let Err(e) = upload.write(chunk).await {
                    break Some(internal(e));
                }
            }
        }
    };
    match failure {
        None => upload.finish().await.map(drop).map_err(internal),
        Some(response) => {
            let _ = upload.abort().await;
            Err(response)
        }
    }
}

/// Streams `file` with tower-http (`Range`, `HEAD`, conditional requests) under the grant's
/// name and type.
async fn stream_file(file: PathBuf, grant: &Grant, request: Request) -> Response {
    match ServeFile::new(file).try_call(request).await {
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            let detail = "the file no longer exists";
            problem(
                StatusCode::NOT_FOUND,
                "file_not_found",
                "File not found",
                detail,
            )
        }
        Ok(response) => {
            let mut response = response.map(Body::new);
            if response.status().is_success() {
                add_download_headers(&mut response, &grant.filename, &grant.content_type);
            }
            response
        }
        Err(error) => {
            tracing::error!(key = %grant.key, error = %error, "cannot serve a local file");
            let detail = "the file cannot be read right now";
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            problem(status, "internal", "Internal Server Error", detail)
        }
    }
}

/// `403 invalid_link`.
fn invalid_link(detail: &str) -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "invalid_link",
        "Invalid link",
        detail,
    )
}

/// The signed name and type, and no caching outside the browser or sniffing of the type.
fn add_download_headers(response: &mut Response, filename: &str, content_type: &str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        links::content_type_header(content_type),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(filename)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// An `application/problem+json` answer (RFC 9457) with Ferry's `code`.
fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let content_type = HeaderValue::from_static("application/problem+json");
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}
