//! `/healthz` (the process is up) and `/readyz` (its database and object store answer).

use super::AppState;
use super::error::ApiError;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// The health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

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
