//! `/openapi.json`: the API as OpenAPI 3.1, generated from the handlers' own annotations and
//! types. Every route is registered through [`utoipa_axum::routes!`], so a route cannot exist
//! without its documentation (tests check both directions and validate the test suite's
//! responses against the document).
//!
//! The error answers every operation shares are the response sets below; each is an
//! `application/problem+json` [`Problem`].

use super::error::Problem;
use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, PathItem};
use utoipa::{IntoResponses, Modify};

/// The document's fixed parts; the paths and schemas come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Ferry",
        description = "Durable export and import jobs: stream query results into files in object \
                       storage, and load uploaded CSV files into tables. Errors are RFC 9457 \
                       `application/problem+json` with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "exports", description = "Query results and synthetic data into files"),
        (name = "imports", description = "CSV files into tables"),
        (name = "discovery", description = "Templates, connections and tables a caller may use"),
        (name = "files", description = "Ferry-signed links of the local file store"),
        (name = "operations", description = "Health, metrics and this document"),
        (name = "web", description = "The web page and the JavaScript client `ferry.js`"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <token>`: an API key or a JWT, depending on `auth.mode`; nothing in
/// the embedded default (`none`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`auth.mode = \"api_keys\"`) or a JWT (`\"jwt\"`); not checked \
                         with `auth.mode = \"none\"` (the embedded default).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Makes the final document: axum's catch-all segments (`{*key}`) become plain OpenAPI
/// parameters (`{key}`, which may then contain `/`).
pub fn finish(mut openapi: OpenApi) -> OpenApi {
    let paths = std::mem::take(&mut openapi.paths.paths);
    openapi.paths.paths = paths
        .into_iter()
        .map(|(path, item): (String, PathItem)| (openapi_path(&path), item))
        .collect();
    openapi
}

/// The OpenAPI form of an axum path template.
pub fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// The rendered document, served as it is.
#[derive(Clone)]
pub struct Document(pub Bytes);

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn document(Extension(document): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.0)
}

/// The caller's credentials are missing or invalid.
#[derive(IntoResponses)]
#[response(status = 401, content_type = "application/problem+json")]
pub struct Unauthorized(pub Problem);

/// No such job, or not one the caller may see (the two are indistinguishable).
#[derive(IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// The job's state forbids the action (`invalid_state`).
#[derive(IntoResponses)]
#[response(status = 409, content_type = "application/problem+json")]
pub struct Conflict(pub Problem);

/// The body or an upload is larger than allowed (`too_large`).
#[derive(IntoResponses)]
#[response(status = 413, content_type = "application/problem+json")]
pub struct TooLarge(pub Problem);

/// The file is refused at the door: it is plainly not delimited text (`415 not_csv`: an image,
/// a PDF, an archive or office file, binary data). An empty file is `422 empty_file`.
#[derive(IntoResponses)]
#[response(status = 415, content_type = "application/problem+json")]
pub struct NotCsv(pub Problem);

/// The file is empty (`422 empty_file`), found at the door.
#[derive(IntoResponses)]
#[response(status = 422, content_type = "application/problem+json")]
pub struct EmptyFile(pub Problem);

/// Too many queued jobs, in all or for the tenant (`too_many_jobs`): come back later.
#[derive(IntoResponses)]
#[response(
    status = 429,
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait"))
)]
pub struct TooBusy(pub Problem);

/// A request that cannot be parsed (`400 malformed_request`) or that names something unknown or
/// invalid (`422 invalid_request`, with `errors` naming the fields).
#[derive(IntoResponses)]
pub enum Rejected {
    /// The body cannot be parsed at all.
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(Problem),
    /// Well-formed, but invalid: `errors` names the fields.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
}

/// The metadata database or the object store is not answering (`503`), or a bug (`500`).
#[derive(IntoResponses)]
pub enum Unavailable {
    /// A bug; the details are in the server's log only.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// A dependency is not answering; try again.
    #[response(status = 503, content_type = "application/problem+json")]
    Down(Problem),
}
