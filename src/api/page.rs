//! `GET /` (the web page), its script and style, and `GET /ferry.js` (the client any web
//! application may import). The files live in `web/` and are compiled into the binary, so the
//! page needs nothing at run time but Ferry itself: no CDN, no build step, no Node.
//!
//! Like `/healthz`, these are public: static files that hold no tenant's data; every call the
//! page makes afterwards carries the caller's token. The page's responses carry a strict
//! `Content-Security-Policy` (scripts, styles and requests to Ferry's own origin only, plus the
//! origin of the store's upload links so a direct upload can reach S3), and `Cache-Control:
//! no-cache` so a browser revalidates after an upgrade instead of mixing old and new files.

use super::AppState;
use crate::domain::JobId;
use crate::storage::import_key;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");
const FERRY_JS: &str = include_str!("../../web/ferry.js");
const FAVICON: &str = include_str!("../../web/favicon.svg");

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The page's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(app_js))
        .routes(routes!(app_css))
        .routes(routes!(ferry_js))
        .routes(routes!(favicon))
}

/// The web page: a downloads panel, forms to start an export and to upload a file.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "web_page",
    tag = "web",
    security(()),
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
async fn index(State(state): State<AppState>) -> Response {
    let policy = content_security_policy(upload_origin(&state).await.as_deref());
    let mut response = static_file(HTML, INDEX_HTML);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The page's script (an ES module that imports `./ferry.js`).
#[utoipa::path(
    get,
    path = "/app.js",
    operation_id = "web_script",
    tag = "web",
    security(()),
    responses((status = 200, description = "The page's script", content_type = "text/javascript", body = String))
)]
async fn app_js() -> Response {
    static_file(JAVASCRIPT, APP_JS)
}

/// The page's style sheet.
#[utoipa::path(
    get,
    path = "/app.css",
    operation_id = "web_style",
    tag = "web",
    security(()),
    responses((status = 200, description = "The page's style sheet", content_type = "text/css", body = String))
)]
async fn app_css() -> Response {
    static_file(CSS, APP_CSS)
}

/// The JavaScript client as an ES module: `import {Ferry} from "…/ferry.js"`. Any origin may
/// import it (it is public and holds nothing secret); see docs/web.md.
#[utoipa::path(
    get,
    path = "/ferry.js",
    operation_id = "web_client",
    tag = "web",
    security(()),
    responses((status = 200, description = "The client module", content_type = "text/javascript", body = String))
)]
async fn ferry_js() -> Response {
    let mut response = static_file(JAVASCRIPT, FERRY_JS);
    let headers = response.headers_mut();
    // A module script from another origin is fetched in CORS mode.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

/// The page's icon.
#[utoipa::path(
    get,
    path = "/favicon.svg",
    operation_id = "web_icon",
    tag = "web",
    security(()),
    responses((status = 200, description = "The icon", content_type = "image/svg+xml", body = String))
)]
async fn favicon() -> Response {
    static_file(SVG, FAVICON)
}

/// A compiled-in file with its type, revalidated on every use and never sniffed.
fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The page's policy: everything from Ferry's own origin, nothing inline, no plugins, no
/// framing; requests (`connect-src`) may also go to `upload_origin`, where direct uploads go.
fn content_security_policy(upload_origin: Option<&str>) -> String {
    let connect = match upload_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'self'; connect-src {connect}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The origin (`scheme://host[:port]`) of the store's upload links, found by signing one (a
/// local computation, for S3 and for Ferry's own links alike); `None` if it cannot be made.
async fn upload_origin(state: &AppState) -> Option<String> {
    let key = import_key("page", JobId::new(), "upload");
    let (link, _) = state
        .storage
        .upload_url(&key, Duration::from_secs(60))
        .await
        .ok()?;
    let url = url::Url::parse(&link).ok()?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::content_security_policy;

    #[test]
    fn the_policy_allows_only_the_own_origin_and_the_upload_origin() {
        let policy = content_security_policy(Some("https://bucket.s3.amazonaws.com"));
        assert!(policy.starts_with("default-src 'self';"), "{policy}");
        assert!(
            policy.contains("connect-src 'self' https://bucket.s3.amazonaws.com;"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        let policy = content_security_policy(None);
        assert!(policy.contains("connect-src 'self';"), "{policy}");
    }
}
