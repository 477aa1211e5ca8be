//! The worker pool: claims jobs while it has capacity, runs each through the executor, wakes on
//! signals rather than sleeping, and shuts down gracefully.

use super::executor::{ExecutorSettings, execute};
use super::handler::Handler;
use super::signal::Signal;
use super::store::Store;
use crate::domain::JobKind;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The handlers, by the kind of job they run.
pub type Handlers = HashMap<JobKind, Arc<dyn Handler>>;

/// Settings of one pool.
#[derive(Clone)]
pub struct PoolSettings {
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub shutdown_grace: Duration,
    pub max_running_per_tenant: u64,
    pub executor: ExecutorSettings,
}

/// Runs jobs until `shutdown` fires; then takes no more, lets running ones finish within the
/// grace period and hands back the rest.
pub async fn run(
    store: Store,
    handlers: Handlers,
    settings: PoolSettings,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let tracker = TaskTracker::new();
    let hand_back = CancellationToken::new();
    let mut signals = store.signals().subscribe();
    tracing::info!(worker = %settings.executor.worker, concurrency = settings.concurrency, "workers started");
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = shutdown.cancelled() => break,
        };
        let Ok(slot) = slot else { break };
        let claimed = store
            .claim(
                &settings.executor.worker,
                settings.executor.lease,
                settings.max_running_per_tenant,
            )
            .await;
        match claimed {
            Ok(Some(job)) => {
                let Some(handler) = handlers.get(&job.kind).cloned() else {
                    tracing::error!(job.id = %job.id, job.kind = job.kind.as_str(), tenant = %job.tenant, "no handler for this kind of job");
                    continue;
                };
                let (store, executor, hand_back) =
                    (store.clone(), settings.executor.clone(), hand_back.clone());
                tracker.spawn(async move {
                    execute(store, handler, job, executor, hand_back).await;
                    drop(slot);
                });
            }
            Ok(None) => {
                drop(slot);
                wait_for_work(&mut signals, settings.poll_interval, &shutdown).await;
            }
            Err(error) => {
                drop(slot);
                tracing::warn!(error = %error, "claiming a job failed");
                wait_for_work(&mut signals, settings.poll_interval, &shutdown).await;
            }
        }
    }
    tracker.close();
    if tokio::time::timeout(settings.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::info!("grace period over; handing running jobs back");
        hand_back.cancel();
        tracker.wait().await;
    }
    tracing::info!("workers stopped");
}

/// Waits for a "jobs ready" signal, the poll interval, or shutdown.
async fn wait_for_work(
    signals: &mut tokio::sync::broadcast::Receiver<Signal>,
    poll: Duration,
    shutdown: &CancellationToken,
) {
    let wake = async {
        loop {
            match signals.recv().await {
                Ok(Signal::JobsReady) | Err(_) => return,
                Ok(Signal::Event(_)) => {}
            }
        }
    };
    tokio::select! {
        () = wake => {}
        () = tokio::time::sleep(poll) => {}
        () = shutdown.cancelled() => {}
    }
}
