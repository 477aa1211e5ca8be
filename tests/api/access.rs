//! Tenancy and back pressure: a job is visible to its owner, the subjects it is shared with and
//! admins of its tenant, and to nobody else — on every endpoint; full queues answer 429.

use crate::helpers::{Shape, TestApp, spawn_with, test_settings};
use ferry::config::{ApiKey, AuthMode, Secret};
use serde_json::{Value, json};

fn key(key: &str, tenant: &str, subject: &str, scopes: &[&str]) -> ApiKey {
    ApiKey {
        key: Secret::new(key),
        tenant: tenant.into(),
        subject: subject.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

async fn app_with_keys() -> TestApp {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.auth.mode = AuthMode::ApiKeys;
    settings.auth.api_keys = vec![
        key("owner-key", "acme", "user-1", &[]),
        key("colleague-key", "acme", "user-2", &[]),
        key("friend-key", "acme", "user-3", &[]),
        key("admin-key", "acme", "boss", &["admin"]),
        key("other-key", "globex", "user-1", &["admin"]),
    ];
    spawn_with(settings, data_url, prefix).await
}

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn export_body(rows: u64) -> Value {
    json!({"source": {"type": "generate", "rows": rows, "columns": [{"name": "a", "kind": "int"}]}, "share_with": ["user-3"]})
}

#[tokio::test]
async fn nothing_of_a_job_leaks_to_another_tenant_or_a_same_tenant_stranger() {
    let app = app_with_keys().await;
    app.data_sql("CREATE TABLE t (n int)").await;
    assert_eq!(app.get("/v1/exports").await.status(), 401, "no token");
    assert_eq!(
        call(&app, "forged", reqwest::Method::GET, "/v1/exports", None)
            .await
            .status(),
        401
    );
    let created = app
        .client
        .post(app.url("/v1/exports"))
        .bearer_auth("owner-key")
        .header("Idempotency-Key", "same")
        .json(&export_body(5))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let export: Value = created.json().await.unwrap();
    let id = export["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (export["tenant"].as_str(), export["owner"].as_str()),
        (Some("acme"), Some("user-1"))
    );
    crate::helpers::eventually(std::time::Duration::from_secs(30), "the export", || async {
        let job: Value = call(
            &app,
            "owner-key",
            reqwest::Method::GET,
            &format!("/v1/exports/{id}"),
            None,
        )
        .await
        .json()
        .await
        .ok()?;
        (job["state"] == "succeeded").then_some(())
    })
    .await;
    let form = reqwest::multipart::Form::new()
        .text("spec", json!({"target": {"table": "t"}}).to_string())
        .text("file", "n\n1\nx\n");
    let import: Value = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth("owner-key")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let import_id = import["id"].as_str().unwrap().to_owned();

    let endpoints: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::GET, format!("/v1/exports/{id}")),
        (reqwest::Method::GET, format!("/v1/exports/{id}/events")),
        (reqwest::Method::GET, format!("/v1/exports/{id}/download")),
        (reqwest::Method::POST, format!("/v1/exports/{id}/cancel")),
        (reqwest::Method::POST, format!("/v1/exports/{id}/retry")),
        (reqwest::Method::DELETE, format!("/v1/exports/{id}")),
        (reqwest::Method::GET, format!("/v1/imports/{import_id}")),
        (
            reqwest::Method::GET,
            format!("/v1/imports/{import_id}/rejects"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/imports/{import_id}/start"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/imports/{import_id}/cancel"),
        ),
        (reqwest::Method::DELETE, format!("/v1/imports/{import_id}")),
    ];
    let unknown = call(
        &app,
        "other-key",
        reqwest::Method::GET,
        &format!("/v1/exports/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await;
    let unknown_body: Value = unknown.json().await.unwrap();
    for stranger in ["other-key", "colleague-key"] {
        for (method, path) in &endpoints {
            let response = call(&app, stranger, method.clone(), path, None).await;
            assert_eq!(response.status(), 404, "{stranger} {method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body, unknown_body,
                "{stranger} {method} {path}: the same answer as for a job that does not exist"
            );
        }
        for list in ["/v1/exports", "/v1/imports", "/v1/exports?state=succeeded"] {
            let page: Value = call(&app, stranger, reqwest::Method::GET, list, None)
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(
                page["items"].as_array().unwrap().len(),
                0,
                "{stranger} lists nothing at {list}"
            );
        }
    }
    // Another tenant re-using the idempotency key gets a job of its own.
    let theirs = app
        .client
        .post(app.url("/v1/exports"))
        .bearer_auth("other-key")
        .header("Idempotency-Key", "same")
        .json(&export_body(5))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 202);
    assert_ne!(theirs.json::<Value>().await.unwrap()["id"], id.as_str());
    // The owner, a subject it is shared with and an admin of the tenant see it.
    for allowed in ["owner-key", "friend-key", "admin-key"] {
        assert_eq!(
            call(
                &app,
                allowed,
                reqwest::Method::GET,
                &format!("/v1/exports/{id}"),
                None
            )
            .await
            .status(),
            200,
            "{allowed}"
        );
        assert_eq!(
            call(
                &app,
                allowed,
                reqwest::Method::GET,
                &format!("/v1/exports/{id}/download"),
                None
            )
            .await
            .status(),
            303,
            "{allowed}"
        );
    }
    let admin_list: Value = call(&app, "admin-key", reqwest::Method::GET, "/v1/exports", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        admin_list["items"].as_array().unwrap().len(),
        1,
        "an admin sees the tenant's jobs, not another tenant's"
    );
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.limits.max_queued_per_tenant = 2;
    settings.workers.concurrency = 0;
    let app = spawn_with(settings, data_url, prefix).await;
    app.data_sql("CREATE TABLE t (n int)").await;
    for _ in 0..2 {
        assert_eq!(
            app.post_json("/v1/exports", &export_body(1)).await.status(),
            202
        );
    }
    let refused = app.post_json("/v1/exports", &export_body(1)).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let import = app
        .client
        .post(app.url("/v1/imports?table=t"))
        .body("n\n1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(
        import.status(),
        429,
        "uploads are refused before a byte is stored"
    );
}

#[tokio::test]
async fn a_busy_tenant_does_not_hold_up_another_tenants_job() {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.auth.mode = AuthMode::ApiKeys;
    settings.auth.api_keys = vec![
        key("busy", "busy", "u", &[]),
        key("quiet", "quiet", "u", &[]),
    ];
    settings.workers.concurrency = 3;
    settings.limits.max_running_per_tenant = 2;
    let app = spawn_with(settings, data_url, prefix).await;
    for _ in 0..50 {
        let response = call(
            &app,
            "busy",
            reqwest::Method::POST,
            "/v1/exports",
            Some(export_body(500_000_000)),
        )
        .await;
        assert_eq!(response.status(), 202);
    }
    // The busy tenant holds its two running slots before the quiet one asks.
    crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "two of the busy tenant's jobs running",
        || async {
            let list: Value = call(
                &app,
                "busy",
                reqwest::Method::GET,
                "/v1/exports?state=running",
                None,
            )
            .await
            .json()
            .await
            .ok()?;
            (list["items"].as_array()?.len() == 2).then_some(())
        },
    )
    .await;
    let quiet: Value = call(
        &app,
        "quiet",
        reqwest::Method::POST,
        "/v1/exports",
        Some(export_body(10)),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = quiet["id"].as_str().unwrap().to_owned();
    let done = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the quiet tenant's job",
        || async {
            let job: Value = call(
                &app,
                "quiet",
                reqwest::Method::GET,
                &format!("/v1/exports/{id}"),
                None,
            )
            .await
            .json()
            .await
            .ok()?;
            (job["state"] == "succeeded").then_some(job)
        },
    )
    .await;
    assert_eq!(done["state"], "succeeded");
    let running: Value = call(
        &app,
        "busy",
        reqwest::Method::GET,
        "/v1/exports?state=running",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        running["items"].as_array().unwrap().len() <= 2,
        "the busy tenant never runs more than its share"
    );
    let page: Value = call(
        &app,
        "busy",
        reqwest::Method::GET,
        "/v1/exports?limit=100",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    for job in page["items"].as_array().unwrap() {
        call(
            &app,
            "busy",
            reqwest::Method::POST,
            &format!("/v1/exports/{}/cancel", job["id"].as_str().unwrap()),
            None,
        )
        .await;
    }
}
