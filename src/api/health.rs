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
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    state
        .storage
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok("ready")
}
