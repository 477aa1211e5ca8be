//! Signals from other processes: a task that `LISTEN`s on PostgreSQL and re-sends what it hears
//! as in-process [`Signal`]s.

use super::signal::{Signal, Signals};
use crate::domain::JobId;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Channel for "a job is ready"; the payload is empty.
pub const JOBS_CHANNEL: &str = "ferry_jobs";
/// Channel for "job X has a new event"; the payload is the job id.
pub const EVENTS_CHANNEL: &str = "ferry_events";

/// Runs until `stop`, reconnecting after errors. After every (re)connect it sends
/// [`Signal::JobsReady`], since notifications sent while it was away are lost.
pub async fn run(url: String, signals: Signals, stop: CancellationToken) {
    loop {
        let result = tokio::select! {
            result = listen(&url, &signals) => result,
            () = stop.cancelled() => return,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn listen(url: &str, signals: &Signals) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen_all([JOBS_CHANNEL, EVENTS_CHANNEL]).await?;
    signals.send(Signal::JobsReady);
    loop {
        // `try_recv` returns `None` after a reconnect: signal, since notifications were missed.
        match listener.try_recv().await? {
            None => signals.send(Signal::JobsReady),
            Some(note) if note.channel() == EVENTS_CHANNEL => {
                if let Some(id) = JobId::parse(note.payload()) {
                    signals.send(Signal::Event(id));
                }
            }
            Some(_) => signals.send(Signal::JobsReady),
        }
    }
}
