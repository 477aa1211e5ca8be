//! Background upkeep every process runs: the rescuer returns jobs whose worker vanished (lapsed
//! lease) to the queue, and the sweeper deletes files past their retention, marks their jobs
//! `expired`, and later deletes old records. Both are safe to run in many processes at once:
//! every change is a guarded transition.

use super::executor::{ExecutorSettings, fail};
use super::lifecycle::Holder;
use super::store::{Store, StoreError};
use super::uploads::UploadRecord;
use crate::domain::{Job, JobError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Deletes what a finished job left in storage; implemented by the job kinds.
#[async_trait::async_trait]
pub trait Expire: Send + Sync + 'static {
    /// Removes the job's output file, if it has one. Missing files are not an error.
    async fn remove_output(&self, job: &Job) -> anyhow::Result<()>;

    /// Aborts a resumable upload in the store and removes its parts; one the store no longer
    /// knows is not an error.
    async fn abort_upload(&self, upload: &UploadRecord) -> anyhow::Result<()>;
}

/// Timings of the upkeep.
#[derive(Clone)]
pub struct MaintenanceSettings {
    pub rescue_interval: Duration,
    pub sweep_interval: Duration,
    pub record_retention: Duration,
    /// Resumable uploads older than this are aborted.
    pub abandon_uploads_after: Duration,
    pub executor: ExecutorSettings,
}

/// Runs the rescuer and the sweeper until `stop`.
pub async fn run(
    store: Store,
    expire: Arc<dyn Expire>,
    settings: MaintenanceSettings,
    stop: CancellationToken,
) {
    let mut rescue = tokio::time::interval(settings.rescue_interval);
    let mut sweep = tokio::time::interval(settings.sweep_interval);
    loop {
        tokio::select! {
            _ = rescue.tick() => {
                if let Err(error) = rescue_lapsed(&store, &settings.executor).await {
                    tracing::warn!(error = %error, "rescuing lapsed jobs failed");
                }
            }
            _ = sweep.tick() => {
                if let Err(error) = sweep_expired(&store, expire.as_ref(), settings.record_retention).await {
                    tracing::warn!(error = %error, "sweeping expired jobs failed");
                }
                if let Err(error) = sweep_uploads(&store, expire.as_ref(), settings.abandon_uploads_after).await {
                    tracing::warn!(error = %error, "sweeping abandoned uploads failed");
                }
            }
            () = stop.cancelled() => return,
        }
    }
}

/// Returns jobs whose lease ran out to the queue (or fails them when attempts are used up).
pub async fn rescue_lapsed(
    store: &Store,
    settings: &ExecutorSettings,
) -> Result<usize, StoreError> {
    let lapsed = store.lapsed().await?;
    let error = JobError {
        code: "worker_lost".to_owned(),
        message: "the worker running this job stopped renewing its lease".to_owned(),
        transient: true,
    };
    for found in &lapsed {
        let Some(job) = store.get(found.id).await? else {
            continue;
        };
        tracing::warn!(job.id = %job.id, tenant = %job.tenant, attempt = job.attempt, "lease lapsed; rescuing the job");
        fail(store, &job, settings, &Holder::Lapsed, &error).await?;
    }
    Ok(lapsed.len())
}

/// Deletes files past retention, marks their jobs expired, and purges old records.
pub async fn sweep_expired(
    store: &Store,
    expire: &dyn Expire,
    record_retention: Duration,
) -> Result<(), StoreError> {
    for job in store.expiring(100).await? {
        match expire.remove_output(&job).await {
            Ok(()) => {
                store.mark_expired(job.id).await?;
                tracing::info!(job.id = %job.id, tenant = %job.tenant, "file deleted after retention; job expired");
            }
            Err(error) => {
                tracing::warn!(job.id = %job.id, tenant = %job.tenant, error = %error, "could not delete an expired file; will try again")
            }
        }
    }
    let purged = store.purge(store.clock().now() - record_retention).await?;
    if purged > 0 {
        tracing::info!(purged, "deleted old job records");
    }
    Ok(())
}

/// Aborts resumable uploads begun more than `abandon_after` ago, or whose import no longer waits
/// for them (cancelled, deleted), and fails the imports still waiting with `upload_abandoned`.
/// The store's upload is aborted before its record is forgotten, so a failure is tried again.
pub async fn sweep_uploads(
    store: &Store,
    expire: &dyn Expire,
    abandon_after: Duration,
) -> Result<usize, StoreError> {
    let error = JobError {
        code: "upload_abandoned".to_owned(),
        message: format!(
            "the multipart upload was not completed within {}",
            humantime::format_duration(abandon_after)
        ),
        transient: false,
    };
    let stale = store
        .stale_uploads(store.clock().now() - abandon_after, 100)
        .await?;
    for upload in &stale {
        if let Err(failure) = expire.abort_upload(upload).await {
            tracing::warn!(job.id = %upload.job_id, tenant = %upload.tenant, error = %failure, "could not abort an abandoned upload; will try again");
            continue;
        }
        store.delete_upload(upload.job_id).await?;
        if store.abandon_upload(upload.job_id, &error).await?.is_some() {
            tracing::info!(job.id = %upload.job_id, tenant = %upload.tenant, "resumable upload abandoned; aborted and the import failed");
        }
    }
    Ok(stale.len())
}
