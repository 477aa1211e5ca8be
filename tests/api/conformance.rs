//! Every answer of every in-process test app is checked against Ferry's own OpenAPI document:
//! the route and method must be documented, the status must be one the operation lists, the
//! `Content-Type` one it declares, and a JSON body must validate against the declared schema
//! (JSON Schema 2020-12, formats included). A violation is remembered and the answer replaced by
//! a `599` naming it, so the test that made the request fails there; the app's `Drop` fails the
//! test too if a violation went unnoticed.

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The header the checker adds: the documented path template the request was routed to.
pub const ROUTE_HEADER: &str = "x-test-route";

/// The largest JSON body the checker buffers.
const MAX_JSON: usize = 16 << 20;

/// Ferry's OpenAPI document, as JSON.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(ferry::api::document()).expect("the document"))
}

/// One app's checker: what it found wrong.
#[derive(Clone, Default)]
pub struct Checker {
    violations: Arc<Mutex<Vec<String>>>,
}

impl Checker {
    /// Wraps `router` so that every answer is checked.
    pub fn wrap(&self, router: axum::Router) -> axum::Router {
        let checker = self.clone();
        router.layer(axum::middleware::from_fn(move |request, next| {
            let checker = checker.clone();
            async move { checker.check(request, next).await }
        }))
    }

    /// What was found wrong so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    async fn check(&self, request: Request, next: Next) -> Response {
        let method = request.method().clone();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().replace("{*", "{"));
        let response = next.run(request).await;
        let Some(route) = route else {
            // The fallback: nothing matched, which must be a problem+json 404.
            let problem = content_type(&response) == "application/problem+json";
            if response.status() == StatusCode::NOT_FOUND && problem {
                return response;
            }
            return self.refuse(format!(
                "{method} without a route answered {} {}",
                response.status(),
                content_type(&response)
            ));
        };
        match conform(&method, &route, response).await {
            Ok(mut response) => {
                if let Ok(value) = HeaderValue::from_str(&route) {
                    response.headers_mut().insert(ROUTE_HEADER, value);
                }
                response
            }
            Err(violation) => self.refuse(format!("{method} {route}: {violation}")),
        }
    }

    fn refuse(&self, violation: String) -> Response {
        eprintln!("OpenAPI violation: {violation}");
        if let Ok(mut all) = self.violations.lock() {
            all.push(violation.clone());
        }
        let status = StatusCode::from_u16(599).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, format!("OpenAPI violation: {violation}")).into_response()
    }
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Checks one answer against the operation `method route`; gives the answer back if it conforms.
async fn conform(method: &Method, route: &str, response: Response) -> Result<Response, String> {
    let documented_method = if method == Method::HEAD {
        "get".to_owned()
    } else {
        method.as_str().to_ascii_lowercase()
    };
    let Some(operation) = document()["paths"]
        .get(route)
        .and_then(|path| path.get(&documented_method))
    else {
        // A method the path does not have: axum's 405 is the right answer, anything else means
        // an undocumented operation.
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(response);
        }
        return Err("the operation is not documented".to_owned());
    };
    let status = response.status().as_u16().to_string();
    let declared = operation["responses"]
        .get(&status)
        .or_else(|| operation["responses"].get("default"))
        .ok_or_else(|| format!("status {status} is not documented"))?;
    let Some(content) = declared.get("content").and_then(Value::as_object) else {
        return Ok(response);
    };
    let actual = content_type(&response);
    let media = content
        .get(&actual)
        .or_else(|| content.get("*/*"))
        .ok_or_else(|| {
            let known: Vec<&String> = content.keys().collect();
            format!("status {status} answered {actual:?}, documented {known:?}")
        })?;
    let json = actual == "application/json" || actual.ends_with("+json");
    if !json || method == Method::HEAD {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    // A JSON answer is small, and the limit bounds it: the checker must see it whole.
    #[allow(clippy::disallowed_methods)]
    let bytes = axum::body::to_bytes(body, MAX_JSON)
        .await
        .map_err(|e| format!("the body cannot be read: {e}"))?;
    let instance: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("the body is not JSON: {e}"))?;
    let schema = media.get("schema").cloned().unwrap_or(json!({}));
    validate(&schema, &instance).map_err(|errors| {
        format!("status {status} body does not match its schema: {errors}; body: {instance}")
    })?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Validates `instance` against a schema of the document (which may `$ref` its components).
pub fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
        OnceLock::new();
    let key = schema.to_string();
    let cache = VALIDATORS.get_or_init(Default::default);
    let cached = cache.lock().ok().and_then(|c| c.get(&key).cloned());
    let validator = match cached {
        Some(validator) => validator,
        None => {
            let mut root = match schema {
                Value::Object(map) => map.clone(),
                other => {
                    let mut map = serde_json::Map::new();
                    map.insert("allOf".into(), json!([other]));
                    map
                }
            };
            root.insert("components".into(), document()["components"].clone());
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&Value::Object(root))
                .map_err(|e| format!("the schema does not compile: {e}"))?;
            let validator = Arc::new(validator);
            if let Ok(mut cache) = cache.lock() {
                cache.insert(key, validator.clone());
            }
            validator
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
