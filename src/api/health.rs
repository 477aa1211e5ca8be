//! `/healthz` (the process is up) and `/readyz` (its database and object store answer).

use super::AppState;
use super::error::ApiError;
use super::openapi::Unavailable;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String))
)]
async fn live() -> &'static str {
    "ok"
}

/// The metadata database and the object store answer.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "`ready`", content_type = "text/plain", body = String),
        Unavailable,
    )
)]
async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let mut problems = Vec::new();
    if let Err(error) = state.store.ping().await {
        problems.push(format!("metadata database: {error}"));
    }
    if let Err(error) = state.storage.ping().await {
        let why = crate::storage::explain(&error, &state.settings.storage);
        problems.push(format!("object store: {why}"));
    }
    if problems.is_empty() {
        return Ok("ready");
    }
    let detail = problems.join("; ");
    tracing::warn!(error = %detail, "not ready");
    Err(ApiError::NotReady(detail))
}
