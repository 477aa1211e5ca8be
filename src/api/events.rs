//! Server-Sent Events of one job: `state`, `progress` and a final `done`, each with the job's
//! per-job sequence number as its `id`, replayed from the store after `Last-Event-ID`. New
//! events are noticed by signal (in-process, or from other processes through `LISTEN/NOTIFY`),
//! with a one-second look as a safety net; a comment every 15 s keeps proxies from closing it.

use super::AppState;
use super::view::render;
use crate::domain::{EventKind, JobId};
use crate::queue::{Signal, StoredEvent};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

/// Keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The safety-net look for new events when no signal arrives.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

struct Cursor {
    state: AppState,
    id: JobId,
    after: u64,
    pending: VecDeque<StoredEvent>,
    signals: broadcast::Receiver<Signal>,
    finished: bool,
}

/// The event stream of job `id`, starting after sequence number `after`.
pub fn stream(
    state: AppState,
    id: JobId,
    after: u64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let signals = state.store.signals().subscribe();
    let cursor = Cursor {
        state,
        id,
        after,
        pending: VecDeque::new(),
        signals,
        finished: false,
    };
    let events = futures::stream::unfold(cursor, |mut cursor| async move {
        let next = cursor.next().await?;
        Some((Ok(next), cursor))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

impl Cursor {
    /// The next event to send, or `None` once `done` was sent or the job is gone.
    async fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        loop {
            if let Some(stored) = self.pending.pop_front() {
                self.after = stored.seq;
                self.finished = stored.kind == EventKind::Done;
                let data = render(&self.state, &stored.job).await;
                return Some(
                    Event::default()
                        .id(stored.seq.to_string())
                        .event(stored.kind.as_str())
                        .data(serde_json::to_string(&data).unwrap_or_default()),
                );
            }
            match self.state.store.events_since(self.id, self.after).await {
                Ok(events) if !events.is_empty() => {
                    self.pending.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(job.id = %self.id, error = %error, "reading events failed; will look again")
                }
            }
            // A deleted job ends its stream, and so does a job that is over once its events
            // are sent: they are written with its state, so none can follow.
            let job = self.state.store.get(self.id).await.ok().flatten()?;
            if job.state.is_final() && self.after >= job.event_seq {
                return None;
            }
            self.wait().await;
        }
    }

    async fn wait(&mut self) {
        let id = self.id;
        let signalled = async {
            loop {
                match self.signals.recv().await {
                    Ok(Signal::Event(job)) if job == id => return,
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        return std::future::pending().await;
                    }
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(LOOK_AGAIN, signalled).await;
    }
}
