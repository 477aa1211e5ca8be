//! Authentication over HTTP: the app started in `jwt` mode takes its callers from token claims.

use crate::helpers::{Shape, TestApp, spawn_with, test_settings};
use ferry::config::{AuthMode, Secret};
use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

const SECRET: &str = "an-integration-test-secret-of-32-bytes-or-more";

async fn spawn_jwt_app() -> TestApp {
    let (mut settings, data_url, prefix) = test_settings(Shape::Embedded).await;
    settings.auth.mode = AuthMode::Jwt;
    settings.auth.jwt.hs256_secret = Some(Secret::new(SECRET));
    spawn_with(settings, data_url, prefix).await
}

fn token(tenant: &str, subject: &str) -> String {
    let claims = json!({"tenant": tenant, "sub": subject, "exp": get_current_timestamp() + 600});
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    encode(&Header::default(), &claims, &key).expect("sign a test token")
}

fn one_row_export() -> Value {
    json!({"source": {"type": "generate", "rows": 1, "columns": [{"name": "a", "kind": "int"}]}})
}

#[tokio::test]
async fn jwt_mode_refuses_a_request_without_a_token_with_a_401_problem() {
    let app = spawn_jwt_app().await;
    let response = app.post_json("/v1/exports", &one_row_export()).await;
    assert_eq!(response.status(), 401);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("");
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.expect("a problem body");
    assert_eq!(problem["status"], 401, "{problem}");
}

#[tokio::test]
async fn jwt_mode_refuses_a_token_signed_with_another_secret() {
    let app = spawn_jwt_app().await;
    let claims = json!({"tenant": "acme", "sub": "u", "exp": get_current_timestamp() + 600});
    let forged = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"not-the-configured-secret-at-all-no"),
    )
    .expect("sign");
    let response = app
        .client
        .post(app.url("/v1/exports"))
        .bearer_auth(&forged)
        .json(&one_row_export())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap_or_default();
    assert!(
        !body.contains(&forged),
        "the refusal echoes the token: {body}"
    );
}

#[tokio::test]
async fn a_job_belongs_to_the_token_claims_and_is_hidden_from_another_tenant() {
    let app = spawn_jwt_app().await;
    let response = app
        .client
        .post(app.url("/v1/exports"))
        .bearer_auth(token("acme", "user-1"))
        .json(&one_row_export())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.expect("a job");
    assert_eq!(
        (&job["tenant"], &job["owner"]),
        (&json!("acme"), &json!("user-1"))
    );

    let path = format!("/v1/exports/{}", job["id"].as_str().expect("an id"));
    let get_as = |tenant: &'static str| {
        app.client
            .get(app.url(&path))
            .bearer_auth(token(tenant, "user-1"))
            .send()
    };
    assert_eq!(get_as("acme").await.expect("request").status(), 200);
    assert_eq!(get_as("globex").await.expect("request").status(), 404);
}
