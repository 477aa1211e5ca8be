//! `/files/{*key}`: Ferry-signed links to the local store — `GET` downloads a file, `PUT`
//! receives a direct upload. `storage` checks the link ([`Storage::redeem`]) and streams the
//! upload ([`Storage::put_stream`]); this module answers, with the API's one error type. A
//! genuine download is served by tower-http's `ServeFile` (`Range`, `HEAD`, conditional
//! requests) under the signed name and type. With S3 the store serves its own links and these
//! routes answer `404`.

use super::error::{ApiError, Problem};
use crate::storage::{LinkUse, Redeemed, Storage, content_disposition, content_type_header};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
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

/// The link of a request, checked for `purpose`.
fn redeem(
    storage: &Storage,
    key: Result<Path<String>, PathRejection>,
    query: Option<&str>,
    purpose: LinkUse,
) -> Result<Redeemed, ApiError> {
    let Ok(Path(key)) = key else {
        return Err(ApiError::LinkRefused("the link's path is malformed".into()));
    };
    Ok(storage.redeem(&key, query.unwrap_or(""), purpose)?)
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
) -> Result<Response, ApiError> {
    let link = redeem(&storage, key, query.as_deref(), LinkUse::Download)?;
    let response = ServeFile::new(&link.file)
        .try_call(request)
        .await
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context(format!("serving {}", link.key)))
        })?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::FileNotFound);
    }
    let mut response = response.map(Body::new);
    if response.status().is_success() {
        add_download_headers(&mut response, &link);
    }
    Ok(response)
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
) -> Result<StatusCode, ApiError> {
    let link = redeem(&storage, key, query.as_deref(), LinkUse::Upload)?;
    storage
        .put_stream(&link.key, body.into_data_stream(), storage.max_upload())
        .await?;
    Ok(StatusCode::OK)
}

/// The signed name and type, and no caching outside the browser or sniffing of the type.
fn add_download_headers(response: &mut Response, link: &Redeemed) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type_header(&link.content_type),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&link.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}
