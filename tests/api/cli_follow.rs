//! The event-stream follower of the client commands (`ferry export --wait`, …) against small
//! servers that misbehave the ways a real network does: a stream cut after one event, a `204`,
//! a job that ended while the stream was down.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use ferry::cli::client::{Client, ClientArgs, Job, Kind};
use serde_json::Value;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `Last-Event-ID` of each connection to the events route.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

fn event(id: u64, name: &str, state: &str, rows: u64) -> String {
    let job = json!({"id": "j", "kind": "export", "state": state, "progress": {"rows": rows}});
    format!("id: {id}\nevent: {name}\ndata: {job}\n\n")
}

/// The first connection gets one event and is cut; the next resumes after it.
async fn events(State(seen): State<Seen>, headers: HeaderMap) -> axum::response::Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match last.as_deref() {
        None => event(1, "state", "running", 0),
        Some(_) => event(2, "progress", "running", 5) + &event(3, "done", "succeeded", 9),
    };
    if let Ok(mut seen) = seen.lock() {
        seen.push(last);
    }
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn job(state: &str) -> axum::Json<Value> {
    axum::Json(json!({"id": "j", "kind": "export", "state": state, "progress": {"rows": 9}}))
}

async fn serve(router: axum::Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Client::new(&ClientArgs {
        server: format!("http://{address}"),
        token: None,
    })
    .unwrap()
}

#[tokio::test]
async fn a_broken_event_stream_is_resumed_after_the_last_event_seen() {
    let seen = Seen::default();
    let router = axum::Router::new()
        .route("/v1/exports/j/events", axum::routing::get(events))
        .route("/v1/exports/j", axum::routing::get(|| job("running")))
        .with_state(seen.clone());
    let client = serve(router).await;
    let mut updates = Vec::new();
    let mut update = |job: &Job| updates.push(format!("{} {}", job.state, job.progress.rows));
    let following = client.follow(Kind::Export, "j", &mut update);
    // A client that resumed from the start would go round for ever.
    let last = tokio::time::timeout(Duration::from_secs(10), following)
        .await
        .expect("the follower ends")
        .unwrap();
    assert_eq!(last.state, "succeeded");
    assert_eq!(updates, ["running 0", "running 5", "succeeded 9"]);
    assert_eq!(*seen.lock().unwrap(), [None, Some("1".to_owned())]);
}

#[tokio::test]
async fn no_content_from_the_event_stream_means_the_job_is_read_once_more() {
    let router = axum::Router::new()
        .route(
            "/v1/exports/j/events",
            axum::routing::get(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/v1/exports/j", axum::routing::get(|| job("failed")));
    let client = serve(router).await;
    let mut states = Vec::new();
    let last = client
        .follow(Kind::Export, "j", &mut |job| states.push(job.state.clone()))
        .await
        .unwrap();
    assert_eq!(last.state, "failed");
    assert_eq!(
        states,
        ["failed"],
        "the display is told of the final job too"
    );
}

#[tokio::test]
async fn a_job_that_ended_while_the_stream_was_down_ends_the_wait() {
    let router = axum::Router::new()
        .route(
            "/v1/exports/j/events",
            axum::routing::get(|| async { event(1, "state", "running", 0) }),
        )
        .route("/v1/exports/j", axum::routing::get(|| job("cancelled")));
    let client = serve(router).await;
    let mut states = Vec::new();
    let last = client
        .follow(Kind::Export, "j", &mut |job| states.push(job.state.clone()))
        .await
        .unwrap();
    assert_eq!(last.state, "cancelled");
    assert_eq!(states, ["running", "cancelled"]);
}
