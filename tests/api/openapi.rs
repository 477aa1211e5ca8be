//! `/openapi.json` is the document the code generates, it documents every route the router has
//! and nothing else, and (through `conformance`) every answer of the other tests matches it.

use crate::conformance::{ROUTE_HEADER, document, validate};
use crate::helpers::{Shape, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// Every (path, method) the document lists.
fn operations() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for (path, item) in document()["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                all.push((path.clone(), method.to_owned()));
            }
        }
    }
    all
}

/// A concrete URL path for a documented template.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "0190b7e4-0000-7000-8000-000000000000")
        .replace("{key}", "exports/default/x/file.csv")
}

#[tokio::test]
async fn the_served_document_is_the_generated_openapi_3_1_document() {
    let app = spawn_app(Shape::Embedded).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(&served, document());
    assert_eq!(served["openapi"], "3.1.0");

    // Operation ids are unique; every `$ref` points at a schema that exists.
    let mut ids = BTreeSet::new();
    for (path, method) in operations() {
        let id = served["paths"][&path][&method]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
    }
    let mut refs = Vec::new();
    collect_refs(&served, &mut refs);
    assert!(refs.len() > 20, "{refs:?}");
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
        assert!(
            served["components"]["schemas"].get(name).is_some(),
            "{reference} points nowhere"
        );
    }
    // The request bodies are the handlers' own types.
    let create = &served["paths"]["/v1/exports"]["post"]["requestBody"]["content"];
    assert_eq!(
        create["application/json"]["schema"]["$ref"],
        "#/components/schemas/ExportRequest"
    );
    let upload = &served["paths"]["/v1/imports"]["post"]["requestBody"]["content"];
    for media in ["multipart/form-data", "application/json", "text/csv"] {
        assert!(
            upload.get(media).is_some(),
            "{media} upload is not documented"
        );
    }
    app.stop().await;
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

/// Documented ⊆ routed: each documented operation reaches the route of its own template (the
/// checker reports the template it was routed to), and its answer is one it documents (or the
/// checker would have answered 599).
#[tokio::test]
async fn every_documented_operation_has_its_route() {
    let app = spawn_app(Shape::Embedded).await;
    let operations = operations();
    assert!(operations.len() >= 21, "{operations:?}");
    for (template, method) in &operations {
        let url = app.url(&concrete(template));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = app
            .client
            .request(method.clone(), url)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let route = response
            .headers()
            .get(ROUTE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 599, "{method} {template}: {body}");
        assert_eq!(
            route.as_deref(),
            Some(template.as_str()),
            "{method} {template} answered {status} without reaching its route: {body}"
        );
    }
    app.stop().await;
}

/// Routed ⊆ documented: a method a documented path does not list is not routed either (405), a
/// path the document does not list is the fallback's 404, and the source registers routes only
/// through `utoipa_axum::routes!` (axum cannot list its routes, so this is checked where they are
/// written).
#[tokio::test]
async fn no_route_exists_without_its_documentation() {
    let app = spawn_app(Shape::Embedded).await;
    for (template, item) in document()["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                continue;
            }
            let url = app.url(&concrete(template));
            let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("m");
            let response = app.client.request(verb, url).send().await.expect("request");
            assert_eq!(
                response.status(),
                405,
                "{method} {template} is routed but not documented"
            );
        }
    }
    let response = app.get("/v2/exports").await;
    assert_eq!(response.status(), 404);
    let problem: Value = response.json().await.expect("problem+json");
    assert_eq!(problem["code"], "not_found");

    let mut offenders = Vec::new();
    scan(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .as_path(),
        &mut offenders,
    );
    assert!(
        offenders.is_empty(),
        "routes registered without documentation: {offenders:#?}"
    );
    app.stop().await;
}

/// Lines of `src` that add a route other than through `routes!`.
fn scan(dir: &std::path::Path, offenders: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            scan(&path, offenders);
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
                if code.contains(call) {
                    offenders.push(format!("{}:{}: {code}", path.display(), number + 1));
                }
            }
        }
    }
}

/// The checker the other tests rely on can fail.
#[test]
fn the_checker_refuses_answers_that_break_the_document() {
    let job = json!({"$ref": "#/components/schemas/JobView"});
    assert!(validate(&job, &json!({})).is_err());
    assert!(validate(&job, &json!({"id": "not a uuid"})).is_err());
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    let good = json!({"type": "about:blank", "title": "Not found", "status": 404,
                      "detail": "not found", "code": "not_found"});
    assert_eq!(validate(&problem, &good), Ok(()));
    let mut bad = good.clone();
    bad["status"] = json!("404");
    assert!(validate(&problem, &bad).is_err());
}
