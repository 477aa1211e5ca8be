//! Runs one claimed job: heartbeats its lease and stores its progress twice a second, watches
//! for a cancel request, a timeout and a shutdown hand-back, and records the outcome. Only here
//! is it decided what a [`JobFailure`] means for the job's state.

use super::handler::{Handler, JobContext, JobFailure};
use super::lifecycle::Holder;
use super::retry::RetryPolicy;
use super::store::Store;
use crate::domain::{Job, JobError};
use crate::metrics::AttemptOutcome;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often the lease is renewed, a cancel request looked for, and progress stored: twice a
/// second keeps cancellation within a second and progress events at about 2/s.
pub const TICK: Duration = Duration::from_millis(500);

/// What the executor needs besides the job.
#[derive(Clone)]
pub struct ExecutorSettings {
    pub worker: String,
    pub lease: Duration,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub retention: Duration,
}

/// Why the executor told the handler to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancel,
    LeaseLost,
    HandBack,
    Timeout,
}

/// Runs `job` to its end. `hand_back` fires when a shutdown's grace period is over.
pub async fn execute(
    store: Store,
    handler: Arc<dyn Handler>,
    job: Job,
    settings: ExecutorSettings,
    hand_back: CancellationToken,
) {
    let span = tracing::info_span!("job", job.id = %job.id, job.kind = job.kind.as_str(), tenant = %job.tenant, attempt = job.attempt);
    async move {
        tracing::info!("job started");
        let started = Instant::now();
        let (progress, mut progress_rx) = watch::channel(job.progress.clone());
        let ctx = JobContext {
            stop: CancellationToken::new(),
            progress,
            store: store.clone(),
            worker: settings.worker.clone(),
            job: job.id,
        };
        let stop_token = ctx.stop.clone();
        let mut run = pin!(handler.run(job.clone(), ctx));
        let deadline = pin!(tokio::time::sleep(settings.timeout));
        let mut deadline = deadline;
        let mut tick = tokio::time::interval(TICK);
        let mut stop: Option<Stop> = None;
        let outcome = loop {
            let wanted = tokio::select! {
                outcome = &mut run => break outcome,
                _ = tick.tick() => heartbeat(&store, &job, &settings, &mut progress_rx).await,
                () = &mut deadline, if stop.is_none() => Some(Stop::Timeout),
                () = hand_back.cancelled(), if stop.is_none() => Some(Stop::HandBack),
            };
            if let (None, Some(reason)) = (stop, wanted) {
                tracing::info!(reason = ?reason, "stopping the job");
                stop = Some(reason);
                stop_token.cancel();
            }
        };
        let progress = progress_rx.borrow().clone();
        match finish(&store, &job, &settings, stop, outcome, &progress).await {
            Ok(outcome) => {
                crate::metrics::attempt_finished(job.kind, outcome, started.elapsed());
                if outcome == AttemptOutcome::Succeeded {
                    let rows = progress.rows_inserted.unwrap_or(progress.rows);
                    crate::metrics::moved(job.kind, rows, progress.bytes);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "could not record the job's outcome; its lease will lapse and it will run again");
            }
        }
    }
    .instrument(span)
    .await
}

/// Renews the lease (storing progress if it changed); says whether the job must stop.
async fn heartbeat(
    store: &Store,
    job: &Job,
    settings: &ExecutorSettings,
    progress_rx: &mut watch::Receiver<crate::domain::Progress>,
) -> Option<Stop> {
    let progress = progress_rx
        .has_changed()
        .unwrap_or(false)
        .then(|| progress_rx.borrow_and_update().clone());
    match store
        .heartbeat(job.id, &settings.worker, settings.lease, progress.as_ref())
        .await
    {
        Ok(Some(current)) if current.cancel_requested => Some(Stop::Cancel),
        Ok(Some(_)) => None,
        Ok(None) => Some(Stop::LeaseLost),
        Err(error) => {
            tracing::warn!(error = %error, "heartbeat failed; will try again");
            None
        }
    }
}

/// Records how the attempt ended and says so.
async fn finish(
    store: &Store,
    job: &Job,
    settings: &ExecutorSettings,
    stop: Option<Stop>,
    outcome: Result<serde_json::Value, JobFailure>,
    progress: &crate::domain::Progress,
) -> Result<AttemptOutcome, super::store::StoreError> {
    let worker = &settings.worker;
    let holder = Holder::Worker(worker.clone());
    match (stop, outcome) {
        (_, Ok(result)) => {
            let held = store
                .succeed(job.id, worker, progress, &result, settings.retention)
                .await?;
            if held.is_none() {
                return Ok(lease_lost());
            }
            tracing::info!(
                rows = progress.rows,
                bytes = progress.bytes,
                "job succeeded"
            );
            Ok(AttemptOutcome::Succeeded)
        }
        (Some(Stop::Cancel), Err(_)) => {
            if store.finish_cancelled(job.id, worker).await?.is_none() {
                return Ok(lease_lost());
            }
            tracing::info!("job cancelled");
            Ok(AttemptOutcome::Cancelled)
        }
        (Some(Stop::LeaseLost), Err(_)) => Ok(lease_lost()),
        (Some(Stop::HandBack), Err(_)) => {
            if store.release(job.id, worker).await?.is_none() {
                return Ok(lease_lost());
            }
            tracing::info!("job handed back on shutdown");
            Ok(AttemptOutcome::HandedBack)
        }
        (Some(Stop::Timeout), Err(_)) => {
            let error = JobError {
                code: "timeout".to_owned(),
                message: format!(
                    "the job ran longer than its timeout of {}",
                    humantime::format_duration(settings.timeout)
                ),
                transient: true,
            };
            fail(store, job, settings, &holder, &error).await
        }
        (None, Err(failure)) => {
            let error = failure.to_error().unwrap_or_else(|| JobError {
                code: "stopped".to_owned(),
                message: "the job stopped without a reason".to_owned(),
                transient: true,
            });
            fail(store, job, settings, &holder, &error).await
        }
    }
}

/// Records a failed attempt: queued again after a backoff if it is transient and attempts are
/// left, failed otherwise; says which.
pub async fn fail(
    store: &Store,
    job: &Job,
    settings: &ExecutorSettings,
    holder: &Holder,
    error: &JobError,
) -> Result<AttemptOutcome, super::store::StoreError> {
    let retry_at = (error.transient && job.attempt < job.max_attempts).then(|| {
        let delay = settings.retry.next_delay(job.attempt);
        store.clock().now() + delay
    });
    tracing::warn!(code = %error.code, detail = %error.message, retry = retry_at.is_some(), "job attempt failed");
    if store.fail(job.id, holder, error, retry_at).await?.is_none() {
        return Ok(lease_lost());
    }
    Ok(if retry_at.is_some() {
        AttemptOutcome::Retried
    } else {
        AttemptOutcome::Failed
    })
}

/// The job is no longer this worker's: its outcome is the new holder's to record (and count).
fn lease_lost() -> AttemptOutcome {
    tracing::warn!("lease lost to another worker; leaving the job to it");
    AttemptOutcome::LeaseLost
}
