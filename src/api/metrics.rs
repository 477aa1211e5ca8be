//! `GET /metrics` in the Prometheus text format, and the middleware that counts every HTTP
//! request by its route template.
//!
//! A scrape renders this process's counters and histograms, then the job and queue gauges read
//! from the metadata database at that moment (see [`crate::metrics`] and `docs/operations.md`).
//! Like `/healthz`, the endpoint needs no token: it shows counts, never a tenant or a job.

use super::AppState;
use crate::metrics::{handle, http_request, render_job_gauges};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `route` label of a request that matched no route: raw paths never become labels.
pub const UNMATCHED: &str = "unmatched";
/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// Prometheus metrics: jobs by kind and state, queue depth and age, job durations, rows and
/// bytes moved, upload bytes, webhook deliveries, HTTP requests by route and status.
///
/// Renders the process's series and the database gauges. When the database does not answer,
/// the gauges are left out (and the failure logged) rather than the whole scrape failing: the
/// HTTP and job counters matter most when the database is in trouble.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The Prometheus text format (see docs/operations.md)",
        content_type = "text/plain", body = String))
)]
async fn scrape(State(state): State<AppState>) -> Response {
    let mut body = handle().render();
    match state.store.job_counts().await {
        Ok(counts) => body.push_str(&render_job_gauges(&counts)),
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the job counts for /metrics; the job gauges are left out");
        }
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Middleware: counts the request and times it until the response head, labelled with the
/// matched route template (`/v1/exports/{id}`), or [`UNMATCHED`].
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    http_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The standard methods by name; any other is `other`, so a client cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_become_labels() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::TRACE), "other");
        let made_up = Method::from_bytes(b"BREW").ok();
        assert_eq!(made_up.as_ref().map(method_label), Some("other"));
    }
}
