//! Webhook delivery against a real HTTP receiver on loopback: retries, time limits, the SSRF
//! guard, redirects, cancellation, and signatures checked by the Standard Webhooks reference
//! implementation (the `standardwebhooks` Python package), not by Ferry's own code.

use crate::helpers::{eventually, final_follow_up, fresh_sqlite};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ferry::config::{Secret, WebhookSettings};
use ferry::domain::{Job, JobId, JobKind, JobState, Progress};
use ferry::notify::{Delivery, WebhookHandler, build_payload};
use ferry::queue::{Handler, JobContext, JobFailure, Signals, Store};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

/// The example secret of the Standard Webhooks documentation.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The reference implementation the signatures are checked with.
const REFERENCE: &str = "standardwebhooks==1.1.0";

/// What the receiver does with each request.
#[derive(Clone)]
enum Behaviour {
    /// Answers these statuses in order, then the last one again and again.
    Answers(Vec<StatusCode>),
    /// Redirects to itself.
    Redirects,
    /// Never answers (sleeps a minute).
    Hangs,
}

/// One request as the receiver saw it.
#[derive(Clone)]
struct Captured {
    headers: HeaderMap,
    body: Bytes,
}

struct ReceiverState {
    behaviour: Behaviour,
    calls: AtomicUsize,
    captured: Mutex<Vec<Captured>>,
}

/// A webhook receiver on 127.0.0.1, stopped when dropped.
struct Receiver {
    port: u16,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(behaviour: Behaviour) -> Self {
        let state = Arc::new(ReceiverState {
            behaviour,
            calls: AtomicUsize::new(0),
            captured: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let port = listener
            .local_addr()
            .expect("the receiver's address")
            .port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver runs");
        });
        Self {
            port,
            state,
            server,
        }
    }

    /// The callback URL, on `host`.
    fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/hook", self.port)
    }

    fn captured(&self) -> Vec<Captured> {
        self.state
            .captured
            .lock()
            .expect("the capture lock")
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state
        .captured
        .lock()
        .expect("the capture lock")
        .push(Captured { headers, body });
    let call = state.calls.fetch_add(1, Ordering::SeqCst);
    match &state.behaviour {
        Behaviour::Answers(statuses) => statuses
            .get(call)
            .or(statuses.last())
            .copied()
            .unwrap_or(StatusCode::OK)
            .into_response(),
        Behaviour::Redirects => (StatusCode::FOUND, [(header::LOCATION, "/hook")]).into_response(),
        Behaviour::Hangs => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK.into_response()
        }
    }
}

fn handler(secret: Option<&str>, allow_private: bool) -> WebhookHandler {
    let settings = WebhookSettings {
        secret: secret.map(Secret::new),
        allow_private,
        ..WebhookSettings::default()
    };
    WebhookHandler::new(&settings).expect("a valid secret")
}

/// A running `webhook` job delivering an `export.succeeded` event to `url`.
fn webhook_job(url: &str) -> Job {
    let now = OffsetDateTime::now_utc();
    let exported = json!({"id": JobId::new().to_string(), "kind": "export", "state": "succeeded"});
    let delivery = Delivery {
        url: url.to_owned(),
        event_type: "export.succeeded".to_owned(),
        payload: build_payload("export.succeeded", exported, now).expect("a payload"),
        message_id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
    };
    Job {
        id: JobId::new(),
        kind: JobKind::Webhook,
        tenant: "default".to_owned(),
        owner: "anonymous".to_owned(),
        name: "webhook".to_owned(),
        state: JobState::Running,
        spec: serde_json::to_value(&delivery).expect("a delivery serializes"),
        share_with: Vec::new(),
        progress: Progress::default(),
        result: None,
        error: None,
        checkpoint: None,
        attempt: 1,
        max_attempts: 4,
        cancel_requested: false,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
        expires_at: None,
        event_seq: 0,
    }
}

/// A context for running `job` outside the worker pool, on a fresh SQLite store.
async fn context(job: &Job) -> JobContext {
    let store = Store::connect(&fresh_sqlite(), Signals::default())
        .await
        .expect("a fresh SQLite store");
    JobContext::detached(store, job.id)
}

async fn run(handler: &WebhookHandler, job: &Job) -> Result<Value, JobFailure> {
    handler.run(job.clone(), context(job).await).await
}

fn assert_failed(outcome: &Result<Value, JobFailure>, kind: &str, code: &str, says: &str) {
    let (actual_kind, actual_code, message) = match outcome {
        Err(JobFailure::Retryable { code, message }) => ("retryable", code, message),
        Err(JobFailure::Fatal { code, message }) => ("fatal", code, message),
        other => panic!("expected a {kind} {code} failure, got {other:?}"),
    };
    assert_eq!(
        (actual_kind, actual_code.as_str()),
        (kind, code),
        "{message}"
    );
    assert!(
        message.contains(says),
        "{message:?} should mention {says:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_two_retryable_attempts_then_the_delivery() {
    let error = StatusCode::INTERNAL_SERVER_ERROR;
    let receiver = Receiver::start(Behaviour::Answers(vec![error, error, StatusCode::OK])).await;
    let handler = handler(Some(SECRET), true);
    let job = webhook_job(&receiver.url("127.0.0.1"));

    assert_failed(
        &run(&handler, &job).await,
        "retryable",
        "webhook_failed",
        "500",
    );
    assert_failed(
        &run(&handler, &job).await,
        "retryable",
        "webhook_failed",
        "500",
    );
    assert_eq!(run(&handler, &job).await, Ok(json!({"status": 200})));

    let ids: Vec<_> = receiver
        .captured()
        .iter()
        .map(|request| request.headers.get("webhook-id").cloned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[0].is_some() && ids.iter().all(|id| *id == ids[0]),
        "one message id on every attempt: {ids:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_makes_the_attempt_retryable_within_the_time_limit() {
    let receiver = Receiver::start(Behaviour::Hangs).await;
    let handler = handler(Some(SECRET), true).with_timeout(Duration::from_secs(1));
    let job = webhook_job(&receiver.url("127.0.0.1"));
    let ctx = context(&job).await;

    let started = Instant::now();
    let outcome = handler.run(job, ctx).await;
    let took = started.elapsed();

    assert_failed(
        &outcome,
        "retryable",
        "webhook_failed",
        "no answer within 1s",
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(receiver.captured().len(), 1);
}

#[tokio::test]
async fn a_loopback_callback_is_refused_unless_private_addresses_are_allowed() {
    let receiver = Receiver::start(Behaviour::Answers(vec![StatusCode::NO_CONTENT])).await;
    for host in ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"] {
        let job = webhook_job(&receiver.url(host));
        let outcome = run(&handler(Some(SECRET), false), &job).await;
        assert_failed(&outcome, "fatal", "callback_refused", "internal address");
    }
    assert_eq!(
        receiver.captured().len(),
        0,
        "nothing may reach a refused host"
    );

    // By name, the request goes to the addresses the guard resolved (pinned in the client).
    let job = webhook_job(&receiver.url("localhost"));
    assert_eq!(
        run(&handler(Some(SECRET), true), &job).await,
        Ok(json!({"status": 204}))
    );
    assert_eq!(receiver.captured().len(), 1);
}

#[tokio::test]
async fn a_callback_that_is_not_http_is_refused_for_good() {
    let job = webhook_job("ftp://127.0.0.1/hook");
    let outcome = run(&handler(Some(SECRET), true), &job).await;
    assert_failed(&outcome, "fatal", "callback_refused", "http or https");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt() {
    let receiver = Receiver::start(Behaviour::Redirects).await;
    let job = webhook_job(&receiver.url("127.0.0.1"));
    let outcome = run(&handler(Some(SECRET), true), &job).await;
    assert_failed(
        &outcome,
        "retryable",
        "webhook_failed",
        "redirects are not followed",
    );
    assert_eq!(receiver.captured().len(), 1);
}

#[tokio::test]
async fn without_a_configured_secret_nothing_is_sent_and_the_delivery_fails_for_good() {
    let receiver = Receiver::start(Behaviour::Answers(vec![StatusCode::OK])).await;
    let job = webhook_job(&receiver.url("127.0.0.1"));
    let outcome = run(&handler(None, true), &job).await;
    assert_failed(&outcome, "fatal", "webhook_secret_missing", "secret");
    assert_eq!(receiver.captured().len(), 0);
}

#[tokio::test]
async fn a_stop_request_ends_an_attempt_that_is_waiting_for_an_answer() {
    let receiver = Receiver::start(Behaviour::Hangs).await;
    let handler = handler(Some(SECRET), true);
    let job = webhook_job(&receiver.url("127.0.0.1"));
    let ctx = context(&job).await;
    let stop = ctx.stop.clone();
    let attempt = tokio::spawn(async move { handler.run(job, ctx).await });

    eventually(Duration::from_secs(5), "the request to arrive", || async {
        (!receiver.captured().is_empty()).then_some(())
    })
    .await;
    stop.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(2), attempt).await;
    assert!(
        matches!(outcome, Ok(Ok(Err(JobFailure::Stopped)))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_signature_verifies_with_the_standard_webhooks_reference_implementation() {
    let receiver = Receiver::start(Behaviour::Answers(vec![StatusCode::OK])).await;
    let job = webhook_job(&receiver.url("127.0.0.1"));
    assert_eq!(
        run(&handler(Some(SECRET), true), &job).await,
        Ok(json!({"status": 200}))
    );
    let request = receiver.captured().pop().expect("one request");
    assert_eq!(
        request
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let sent: Value = serde_json::from_slice(&request.body).expect("a JSON body");
    let delivery: Delivery = serde_json::from_value(job.spec.clone()).expect("a delivery");
    assert_eq!(sent, delivery.payload);

    let verified = reference_verify(&request.headers, &request.body).await;
    assert_eq!(
        verified,
        Ok(()),
        "the reference implementation refused Ferry's signature"
    );
    let mut tampered = request.body.to_vec();
    tampered.push(b' ');
    let refused = reference_verify(&request.headers, &tampered).await;
    assert!(refused.is_err(), "a tampered body must not verify");
}

/// The Python interpreter that has the reference implementation installed.
fn python() -> String {
    std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Checks `body` and the `webhook-*` headers with `standardwebhooks.Webhook(secret).verify`;
/// `Err` carries what the reference implementation said. Panics if it is not installed.
async fn reference_verify(headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    const SCRIPT: &str = r#"
import json, sys
try:
    from standardwebhooks import Webhook
except ImportError as error:
    print(f"cannot import standardwebhooks: {error}", file=sys.stderr)
    sys.exit(3)
Webhook(sys.argv[1]).verify(sys.stdin.buffer.read(), json.loads(sys.argv[2]))
"#;
    let webhook_headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("webhook-"))
        .map(|(name, value)| {
            (
                name.to_string(),
                json!(value.to_str().expect("ASCII header")),
            )
        })
        .collect();
    let python = python();
    let mut child = tokio::process::Command::new(&python)
        .args(["-c", SCRIPT, SECRET, &Value::Object(webhook_headers).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}); install Python 3 and `{python} -m pip install {REFERENCE}`, or set FERRY_TEST_PYTHON"));
    let mut stdin = child.stdin.take().expect("a piped stdin");
    stdin.write_all(body).await.expect("write the body");
    drop(stdin);
    let output = child.wait_with_output().await.expect("python runs");
    let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    match output.status.code() {
        Some(0) => Ok(()),
        Some(3) => panic!(
            "{said}: the reference implementation is missing; install it with `{python} -m pip install {REFERENCE}`, or set FERRY_TEST_PYTHON to a Python that has it"
        ),
        _ => Err(said),
    }
}

/// An app whose jobs may call back to loopback receivers.
async fn app_with_webhooks(
    shape: crate::helpers::Shape,
    timeout: Duration,
) -> crate::helpers::TestApp {
    let (mut settings, data_url, prefix) = crate::helpers::test_settings(shape).await;
    settings.webhooks = WebhookSettings {
        secret: Some(Secret::new(SECRET)),
        allow_private: true,
        timeout,
    };
    crate::helpers::spawn_with(settings, data_url, prefix).await
}

fn small_export(url: &str) -> Value {
    json!({
        "source": {"type": "generate", "rows": 3, "columns": [{"name": "a", "kind": "int"}]},
        "notify": {"webhook_url": url},
    })
}

#[tokio::test]
async fn a_finished_export_is_delivered_to_its_webhook_after_two_failed_attempts() {
    let receiver = Receiver::start(Behaviour::Answers(vec![
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::OK,
    ]))
    .await;
    let app = app_with_webhooks(crate::helpers::Shape::Embedded, Duration::from_secs(5)).await;
    let id = app
        .create_export(small_export(&receiver.url("127.0.0.1")))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_final(&id).await["state"], "succeeded");
    eventually(Duration::from_secs(30), "three deliveries", || async {
        (receiver.captured().len() >= 3).then_some(())
    })
    .await;
    let delivery = final_follow_up(app.settings.metadata_url().expose(), JobKind::Webhook).await;
    assert_eq!(delivery.state, JobState::Succeeded);
    let captured = receiver.captured();
    assert_eq!(captured.len(), 3, "no delivery after the first success");
    let body: Value = serde_json::from_slice(&captured[2].body).unwrap();
    assert_eq!(body["type"], "export.succeeded");
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(
        captured[0].headers["webhook-id"], captured[2].headers["webhook-id"],
        "retries keep the message id"
    );
    let verified = reference_verify(&captured[2].headers, &captured[2].body).await;
    assert_eq!(
        verified,
        Ok(()),
        "the reference implementation accepts the signature"
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_ends_failed_and_the_export_is_unaffected() {
    let receiver = Receiver::start(Behaviour::Hangs).await;
    let app = app_with_webhooks(
        crate::helpers::Shape::Production,
        Duration::from_millis(300),
    )
    .await;
    let id = app
        .create_export(small_export(&receiver.url("127.0.0.1")))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_final(&id).await["state"], "succeeded");
    let delivery = final_follow_up(app.settings.metadata_url().expose(), JobKind::Webhook).await;
    assert_eq!(delivery.state, JobState::Failed);
    assert_eq!(delivery.attempt, 4, "the first attempt and three retries");
    assert_eq!(delivery.error.unwrap().code, "webhook_failed");
    assert_eq!(receiver.state.calls.load(Ordering::SeqCst), 4);
    let export: Value = app
        .get(&format!("/v1/exports/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["state"], "succeeded", "the export is unaffected");
    app.stop().await;
}

#[tokio::test]
async fn callback_urls_on_private_addresses_are_refused_unless_allowed() {
    let (mut settings, data_url, prefix) =
        crate::helpers::test_settings(crate::helpers::Shape::Embedded).await;
    settings.webhooks = WebhookSettings {
        secret: Some(Secret::new(SECRET)),
        ..WebhookSettings::default()
    };
    let app = crate::helpers::spawn_with(settings, data_url, prefix).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
    ] {
        let response = app.post_json("/v1/exports", &small_export(url)).await;
        assert_eq!(response.status(), 422, "{url}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["errors"][0]["field"], "notify.webhook_url",
            "{problem}"
        );
    }
}
