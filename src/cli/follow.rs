//! Following a job to its end through its Server-Sent Events (SPEC §3.4): each event carries
//! the job; a broken stream is resumed with `Last-Event-ID` (so nothing is missed or shown
//! twice); between connections the job is read once, so a job that ended meanwhile ends the
//! wait, and a `204` (nothing more will come) too.

use super::client::{CliError, Client, Job, Kind, encode};
use super::sse::{SseEvent, SseParser};
use futures::StreamExt;
use reqwest::header::ACCEPT;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Reconnects of an event stream in a row that may fail before following gives up.
const MAX_RECONNECTS: u32 = 10;
/// The wait before reconnecting to an event stream.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

impl Client {
    /// Follows job `id` of `kind` until it is final, calling `update` with each new version of
    /// it, and returns the final job. Reconnects with `Last-Event-ID` when the stream breaks; a
    /// `204` (the stream is over) or a final job read between connections ends it.
    pub async fn follow(
        &self,
        kind: Kind,
        id: &str,
        update: &mut dyn FnMut(&Job),
    ) -> Result<Job, CliError> {
        let path = format!("{}/{}/events", kind.collection(), encode(id));
        let mut last_id: Option<String> = None;
        let mut failures = 0;
        loop {
            let mut request = self
                .request(Method::GET, &path)
                .header(ACCEPT, "text/event-stream");
            if let Some(last) = &last_id {
                request = request.header("Last-Event-ID", last.as_str());
            }
            match self.send(request).await {
                Ok(response) if response.status() == StatusCode::NO_CONTENT => {
                    return self.job(kind, id).await;
                }
                Ok(response) => {
                    let mut reader = EventReader::default();
                    if let Some(job) = reader.read(response, update).await? {
                        return Ok(job);
                    }
                    if reader.last_id.is_some() {
                        last_id = reader.last_id;
                        failures = 0;
                    }
                }
                Err(CliError::Unreachable { .. } | CliError::Broken { .. })
                    if failures < MAX_RECONNECTS => {}
                Err(error) => return Err(error),
            }
            failures += 1;
            // The stream broke: the job may have ended meanwhile.
            if let Ok(job) = self.job(kind, id).await
                && job.is_final()
            {
                update(&job);
                return Ok(job);
            }
            if failures > MAX_RECONNECTS {
                return Err(CliError::Unreachable {
                    url: self.base().to_owned(),
                    reason: format!("the event stream of {id} broke {failures} times"),
                });
            }
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    }
}

/// Reads one connection's worth of events.
#[derive(Default)]
struct EventReader {
    parser: SseParser,
    last_id: Option<String>,
}

impl EventReader {
    /// The final job if `done` arrived; `None` if the stream ended or broke before it.
    async fn read(
        &mut self,
        response: Response,
        update: &mut dyn FnMut(&Job),
    ) -> Result<Option<Job>, CliError> {
        let mut chunks = response.bytes_stream();
        while let Some(Ok(chunk)) = chunks.next().await {
            for event in self.parser.push(&chunk).map_err(CliError::Protocol)? {
                if let Some(job) = self.event(event, update)? {
                    return Ok(Some(job));
                }
            }
        }
        Ok(None)
    }

    fn event(
        &mut self,
        event: SseEvent,
        update: &mut dyn FnMut(&Job),
    ) -> Result<Option<Job>, CliError> {
        if let Some(id) = event.id {
            self.last_id = Some(id);
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| CliError::Protocol(format!("an event that is not JSON: {e}")))?;
        let job = Job::from_value(data)?;
        update(&job);
        Ok((event.event == "done").then_some(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::ClientArgs;
    use axum::extract::State;
    use axum::http::{HeaderMap, header};
    use axum::response::IntoResponse;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

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
        let last = client.follow(Kind::Export, "j", &mut |_| {}).await.unwrap();
        assert_eq!(last.state, "failed");
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
}
