//! The import job: where the queue meets `pipeline::import`. It parses the spec, checks the
//! target, asks the loader whether an earlier attempt already committed this job (a commit whose
//! success was never recorded), streams the stored upload through the pipeline, stores the
//! rejects report beside it and turns the outcome into the job's result or a classified failure.

pub mod prepare;

use super::error::{from_source, from_storage, invalid_spec};
use crate::config::Settings;
use crate::domain::{ImportRequest, ImportResult, ImportSpec, Job};
use crate::pipeline::import::{self, Loaded, Prepared, Run};
use crate::pipeline::loaders::{LoadError, Loader};
use crate::pipeline::rejects::{self, Rejects};
use crate::pipeline::sources::classify;
use crate::queue::{Handler, JobContext, JobFailure};
use crate::storage::{Storage, StorageError, import_key};
use futures::TryStreamExt;
use prepare::{PrepareError, connect, prepare};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tracing::Instrument;

/// Runs import jobs.
pub struct ImportHandler {
    settings: Arc<Settings>,
    storage: Storage,
}

impl ImportHandler {
    /// An import handler over the given configuration and store.
    pub fn new(settings: Arc<Settings>, storage: Storage) -> Self {
        Self { settings, storage }
    }
}

/// Maps a preparation failure.
pub fn prepare_failure(error: PrepareError) -> JobFailure {
    match error {
        PrepareError::Invalid(invalid) => invalid_spec(invalid),
        PrepareError::Source(source) => from_source(source),
    }
}

/// Maps a load failure.
fn load_failure(error: LoadError) -> JobFailure {
    match error {
        LoadError::Database(e) => match from_source(classify(&e)) {
            JobFailure::Fatal { message, .. } => JobFailure::fatal("load_failed", message),
            other => other,
        },
        LoadError::Producer {
            code,
            message,
            transient: true,
        } => JobFailure::retryable(code, message),
        LoadError::Producer {
            code,
            message,
            transient: false,
        } => JobFailure::fatal(code, message),
        LoadError::Stopped => JobFailure::Stopped,
        LoadError::Internal(message) => JobFailure::fatal("internal", message),
    }
}

#[async_trait::async_trait]
impl Handler for ImportHandler {
    async fn run(&self, job: Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let request: ImportRequest =
            serde_json::from_value(job.spec.clone()).map_err(invalid_spec)?;
        let spec = request
            .parse(&job.created_at.date().to_string())
            .map_err(invalid_spec)?;
        let prepared = prepare(&self.settings, &spec)
            .await
            .map_err(prepare_failure)?;
        let mut loader = connect(&prepared.url)
            .await
            .map_err(from_source)?
            .into_loader();
        let done = loader.already_loaded(&job.id.to_string()).await;
        if let Some(rows) = done.map_err(load_failure)? {
            tracing::info!(
                rows,
                "this import was committed by an earlier attempt; not loading again"
            );
            let rejected = job.progress.rows_rejected.unwrap_or(0);
            return Ok(self.result(&job, &prepared, rows, rejected, false));
        }
        let (loaded, report) = self
            .load(&job, &ctx, &prepared, &spec, loader.as_mut())
            .await?;
        tracing::info!(
            rows = loaded.inserted,
            rejected = loaded.rejected,
            report,
            "load committed"
        );
        if !self.settings.storage.keep_uploads
            && let Err(error) = self
                .storage
                .delete(&import_key(&job.tenant, job.id, "upload"))
                .await
        {
            tracing::warn!(error = %error, "could not delete the imported upload");
        }
        ctx.update_progress(|p| {
            p.rows_inserted = Some(loaded.inserted);
            p.rows_rejected = Some(loaded.rejected);
        });
        Ok(self.result(&job, &prepared, loaded.inserted, loaded.rejected, report))
    }
}

impl ImportHandler {
    /// Streams the upload through the pipeline into the loader, the rejects into their report;
    /// returns what was loaded and whether a rejects report was stored.
    async fn load(
        &self,
        job: &Job,
        ctx: &JobContext,
        prepared: &Prepared,
        spec: &ImportSpec,
        loader: &mut dyn Loader,
    ) -> Result<(Loaded, bool), JobFailure> {
        let upload = import_key(&job.tenant, job.id, "upload");
        let stream = self.storage.read(&upload).await.map_err(|e| match e {
            StorageError::NotFound { .. } => JobFailure::fatal(
                "upload_missing",
                "the uploaded file is no longer stored; upload it again",
            ),
            other => from_storage(other),
        })?;
        let input = SyncIoBridge::new(StreamReader::new(stream.map_err(std::io::Error::other)));
        let (header_tx, header_rx) = oneshot::channel();
        let (sink, rejects_rx) = Rejects::channel(spec.max_errors);
        let report = tokio::spawn(
            rejects::write(
                self.storage.clone(),
                import_key(&job.tenant, job.id, "rejects.csv"),
                header_rx,
                rejects_rx,
            )
            .in_current_span(),
        );
        let run = Run {
            job: job.id.to_string(),
            spec,
            prepared,
            rejects: sink,
            header: header_tx,
            progress: ctx.progress.clone(),
            stop: ctx.stop.clone(),
        };
        let loaded = import::run(input, loader, run).await;
        let report = report
            .await
            .map_err(|e| JobFailure::fatal("internal", e.to_string()))?;
        let loaded = loaded.map_err(load_failure)?;
        let report = report.map_err(from_storage)?;
        Ok((loaded, report))
    }

    fn result(
        &self,
        job: &Job,
        prepared: &Prepared,
        rows: u64,
        rejected: u64,
        report: bool,
    ) -> Value {
        let result = ImportResult {
            rows_inserted: rows,
            rows_rejected: rejected,
            rejects_url: report.then(|| format!("/v1/imports/{}/rejects", job.id)),
            table: prepared.table.table.clone(),
            connection: prepared.connection.clone(),
            bytes: job.progress.total_bytes,
        };
        serde_json::to_value(result).unwrap_or(Value::Null)
    }
}
