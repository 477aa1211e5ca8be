//! Following a job to its end through its Server-Sent Events (SPEC §3.4): each event carries
//! the job; a broken stream is resumed with `Last-Event-ID` (so nothing is missed or shown
//! twice); between connections the job is read once, so a job that ended meanwhile ends the
//! wait, and a `204` (nothing more will come) too. Its tests, which need a server that
//! misbehaves, are in `tests/api/cli_follow.rs`.

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
                    let job = self.job(kind, id).await?;
                    update(&job);
                    return Ok(job);
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
