//! The HTTP API: this module only merges the resources' routers and adds the layers.

pub mod callbacks;
mod caller;
mod cors;
pub mod discovery;
mod door;
pub mod error;
pub mod events;
pub mod exports;
pub mod files;
pub mod health;
pub mod imports;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod page;
mod unread;
pub mod uploads;
pub mod view;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::queue::Store;
use crate::storage::Storage;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::{Extension, Router};
use std::sync::Arc;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The whole API. It serves its own OpenAPI document at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let max_body = usize::try_from(state.settings.limits.max_body.as_u64()).unwrap_or(usize::MAX);
    let storage = state.storage.clone();
    let origins = state.settings.allowed_origins.clone();
    let (router, document) = routes()
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
        .merge(files::routes().with_state(storage))
        .split_for_parts();
    let json = openapi::finish(document).to_json().unwrap_or_default();
    let router = router
        .layer(Extension(openapi::Document(json.into())))
        .fallback(|| async { error::ApiError::NotFound })
        .layer(axum::middleware::from_fn(metrics::track));
    let router = match cors::layer(&origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(unread::close_if_unread))
}

/// The API's routes (the signed-link routes of the local store aside), each registered with
/// its documentation.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(exports::router())
        .merge(imports::router())
        .merge(uploads::router())
        .merge(discovery::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(page::router())
        .routes(routes!(openapi::document))
}

/// The OpenAPI document [`router`] serves, without starting anything.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    document.merge(files::routes().into_openapi());
    openapi::finish(document)
}
