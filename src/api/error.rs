//! The API's one error type: every failure a client can see, one status table, one
//! `application/problem+json` body (RFC 9457). Internal causes are logged once, never sent.

use crate::auth::AuthError;
use crate::domain::{FieldError, Invalid};
use crate::pipeline::import::door::Refusal;
use crate::storage::{LinkError, PutError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything that can go wrong in a request, named by meaning.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (or not the JSON shape at all).
    #[error("{0}")]
    Malformed(String),
    /// Well-formed but invalid: the fields at fault are named.
    #[error("{0}")]
    Invalid(Invalid),
    /// No such job, or not one the caller may see.
    #[error("not found")]
    NotFound,
    /// The job's state forbids the action.
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key reused with a different request.
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    /// Missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Too much queued: come back later.
    #[error("{0}")]
    TooBusy(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A dependency (metadata database, object store) is not answering.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A Ferry-signed link that is malformed, altered, or used for what it was not signed for.
    #[error("{0}")]
    LinkRefused(String),
    /// A genuine Ferry-signed link past its expiry.
    #[error("the link has expired; ask for a fresh one")]
    LinkExpired,
    /// The file a genuine link names is gone.
    #[error("the file no longer exists")]
    FileNotFound,
    /// An upload's body stopped before its end.
    #[error("{0}")]
    UploadInterrupted(String),
    /// An upload refused at the door: empty (`422 empty_file`) or not CSV (`415 not_csv`).
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// A dependency `/readyz` checks is not ready: which one and why, without secrets.
    #[error("{0}")]
    NotReady(String),
    /// A bug or an unexpected failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// An error answer (RFC 9457 `application/problem+json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` says what happened.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for a human.
    pub detail: String,
    /// A stable snake_case code, e.g. `invalid_request`, `not_found`.
    pub code: String,
    /// The fields at fault (`422 invalid_request`; `file` for a file refused at the door).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    fn new(status: StatusCode, code: &str, title: &str, detail: String) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors: Vec::new(),
        }
    }
}

impl ApiError {
    /// Status, stable code and title, in one table.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "Malformed request",
            ),
            Self::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "Invalid request",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Self::Conflict(_) => (
                StatusCode::CONFLICT,
                "invalid_state",
                "Conflict with the job's state",
            ),
            Self::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::TooBusy(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_jobs",
                "Too many queued jobs",
            ),
            Self::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "Request too large",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::LinkRefused(_) => (StatusCode::FORBIDDEN, "invalid_link", "Invalid link"),
            Self::LinkExpired => (StatusCode::FORBIDDEN, "link_expired", "Link expired"),
            Self::FileNotFound => (StatusCode::NOT_FOUND, "file_not_found", "File not found"),
            Self::UploadInterrupted(_) => (
                StatusCode::BAD_REQUEST,
                "upload_interrupted",
                "Upload interrupted",
            ),
            Self::Refused(Refusal::Empty) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "empty_file", "Empty file")
            }
            Self::Refused(Refusal::NotCsv(_)) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_csv",
                "Not a CSV file",
            ),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

/// A problem+json response for a status and code that do not come from an [`ApiError`]
/// (e.g. a refused signed link).
pub fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let body = Problem::new(status, code, title, detail.to_owned());
    with_problem_type(status, serde_json::to_vec(&body).unwrap_or_default())
}

fn with_problem_type(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        if let Self::Internal(cause) | Self::Unavailable(cause) = &self {
            tracing::error!(
                error = format!("{cause:#}"),
                status = status.as_u16(),
                "request failed"
            );
        }
        let errors = match &self {
            Self::Invalid(invalid) => invalid.0.clone(),
            Self::Refused(refusal) => Invalid::field("file", refusal.message()).0,
            _ => Vec::new(),
        };
        let body = Problem {
            errors,
            ..Problem::new(status, code, title, self.to_string())
        };
        let mut response = with_problem_type(status, serde_json::to_vec(&body).unwrap_or_default());
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::NotServedHere => Self::NotFound,
            LinkError::Invalid(why) => Self::LinkRefused(why.to_owned()),
            LinkError::Expired => Self::LinkExpired,
        }
    }
}

impl From<PutError> for ApiError {
    fn from(error: PutError) -> Self {
        match error {
            PutError::Interrupted(_) => Self::UploadInterrupted(error.to_string()),
            PutError::TooLarge { .. } => Self::TooLarge(error.to_string()),
            PutError::Store(cause) => Self::Unavailable(cause.into()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::Unauthorized(error.to_string())
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

impl From<crate::queue::StoreError> for ApiError {
    fn from(error: crate::queue::StoreError) -> Self {
        match error {
            crate::queue::StoreError::Database(_) => Self::Unavailable(error.into()),
            other => Self::Internal(other.into()),
        }
    }
}

/// Reads a JSON body: unparseable is `400`, the wrong shape (unknown field, wrong type, unknown
/// value) `422` naming the field's path (`mode`, `target.connection`), or `body` for the whole.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut deserializer, &mut track);
    crate::domain::json::object(tracked)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|error| match error.classify() {
            serde_json::error::Category::Data => ApiError::Invalid(Invalid::field(
                field_path(&track.path(), "body"),
                error.to_string(),
            )),
            _ => ApiError::Malformed(format!("the body is not valid JSON: {error}")),
        })
}

/// A path as the API names fields (`target.table`, `files[1].name`); `whole` for the root.
pub fn field_path(path: &serde_path_to_error::Path, whole: &str) -> String {
    match path.iter().next() {
        None => whole.to_owned(),
        Some(_) => path.to_string(),
    }
}

/// Query parameters whose rejection is a problem+json `422`, not axum's plain-text `400`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Params<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Params)
            .map_err(|error| {
                let field = field_path(error.path(), "query");
                let message = format!("invalid query string: {}", error.inner());
                ApiError::Invalid(Invalid::field(field, message))
            })
    }
}
