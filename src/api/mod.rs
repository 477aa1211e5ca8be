//! The HTTP API: this module only merges the resources' routers and adds the layers.

pub mod callbacks;
pub mod error;
pub mod events;
pub mod exports;
pub mod health;
pub mod imports;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod view;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::queue::Store;
use crate::storage::Storage;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub storage: Storage,
    pub auth: Authenticator,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let max_body = usize::try_from(state.settings.limits.max_body.as_u64()).unwrap_or(usize::MAX);
    Router::new()
        .merge(exports::router())
        .merge(imports::router())
        .merge(health::router())
        .merge(metrics::router())
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state.clone())
        .merge(crate::storage::router(state.storage.clone()))
        .fallback(|| async { error::ApiError::NotFound })
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
}
