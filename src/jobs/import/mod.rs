//! The import job: where the queue meets `pipeline::import`. It parses the spec, checks the
//! target, asks the loader whether an earlier attempt already committed this job (a commit whose
//! success was never recorded), streams the stored upload through the pipeline, stores the
//! rejects report beside it and turns the outcome into the job's result or a classified failure.

pub mod prepare;

use super::error::{from_source, from_storage, invalid_spec};
use crate::config::Settings;
use crate::config::is_postgres;
use crate::domain::{CreatedTable, ImportRequest, ImportResult, ImportSpec, Job};
use crate::pipeline::import::read::Reopen;
use crate::pipeline::import::sample::sample;
use crate::pipeline::import::{self, Creation, Loaded, Prepared, Run};
use crate::pipeline::loaders::{LoadError, Loader};
use crate::pipeline::rejects::{self, Rejects};
use crate::pipeline::sources::classify;
use crate::queue::{Handler, JobContext, JobFailure};
use crate::storage::{Storage, StorageError, import_key};
use futures::TryStreamExt;
use prepare::{PrepareError, connect, created, prepare};
use serde_json::Value;
use std::io::Read;
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
        let prepared = match prepared.creation {
            Creation::Pending => self.infer_table(&job, &spec, prepared).await?,
            Creation::Exists | Creation::Ready(_) => prepared,
        };
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
            let chunks = match spec.chunk_rows {
                Some(_) => {
                    let checkpoint = loader.checkpoint(&job.id.to_string()).await;
                    Some(checkpoint.map_err(load_failure)?.map_or(0, |c| c.chunks))
                }
                None => None,
            };
            let rejected = job.progress.rows_rejected.unwrap_or(0);
            let outcome = Outcome {
                rows,
                rejected,
                report: false,
                chunks,
                kept: None,
            };
            return Ok(self.result(&job, &prepared, outcome));
        }
        let loaded = self
            .load(&job, &ctx, &prepared, &spec, loader.as_mut())
            .await;
        let (loaded, report) = match loaded {
            Ok(loaded) => loaded,
            Err(failure) => {
                if spec.chunk_rows.is_some() {
                    self.keep_chunks(&job, &ctx, &prepared).await;
                }
                return Err(failure);
            }
        };
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
        let outcome = Outcome {
            rows: loaded.inserted,
            rejected: loaded.rejected,
            report,
            chunks: spec.chunk_rows.map(|_| loaded.chunks),
            kept: None,
        };
        Ok(self.result(&job, &prepared, outcome))
    }
}

/// The table this import created: the one it inferred, or, for a chunked import resumed after
/// its first chunk created the table, the one its saved result names.
fn created_table(job: &Job, prepared: &Prepared) -> Option<CreatedTable> {
    if let Some(new) = prepared.new_table() {
        return Some(new.describe(&prepared.table.table, is_postgres(&prepared.url)));
    }
    let saved = job.result.as_ref()?.get("created")?.clone();
    serde_json::from_value::<CreatedTable>(saved)
        .ok()
        .filter(|created| created.table == prepared.table.table)
}

/// What a result says.
struct Outcome {
    rows: u64,
    rejected: u64,
    report: bool,
    chunks: Option<u64>,
    kept: Option<u64>,
}

impl ImportHandler {
    /// Opens the stored upload as a blocking reader, from its start.
    async fn open(&self, job: &Job) -> Result<impl std::io::Read + Send + 'static, JobFailure> {
        let upload = import_key(&job.tenant, job.id, "upload");
        let stream = self.storage.read(&upload).await.map_err(|e| match e {
            StorageError::NotFound { .. } => JobFailure::fatal(
                "upload_missing",
                "the uploaded file is no longer stored; upload it again",
            ),
            other => from_storage(other),
        })?;
        Ok(SyncIoBridge::new(StreamReader::new(
            stream.map_err(std::io::Error::other),
        )))
    }

    /// Opens the stored upload again from a byte offset, on the reader's (blocking) thread:
    /// a chunked import's retry enters the file at its checkpoint.
    fn reopener(&self, job: &Job) -> Reopen {
        let storage = self.storage.clone();
        let upload = import_key(&job.tenant, job.id, "upload");
        let handle = tokio::runtime::Handle::current();
        Box::new(move |offset| {
            let stream = handle
                .block_on(storage.read_from(&upload, offset))
                .map_err(std::io::Error::other)?;
            let reader = StreamReader::new(stream.map_err(std::io::Error::other));
            Ok(Box::new(SyncIoBridge::new_with_handle(reader, handle)) as Box<dyn Read + Send>)
        })
    }

    /// Samples the upload for the table this import creates (a first, bounded read of the
    /// file; the load reads it again from the start).
    async fn infer_table(
        &self,
        job: &Job,
        spec: &ImportSpec,
        prepared: Prepared,
    ) -> Result<Prepared, JobFailure> {
        let input = self.open(job).await?;
        let owned = spec.clone();
        let span = tracing::Span::current();
        let new = tokio::task::spawn_blocking(move || span.in_scope(|| sample(input, &owned)))
            .await
            .map_err(|e| JobFailure::fatal("internal", e.to_string()))?
            .map_err(load_failure)?;
        tracing::info!(
            columns = new.columns.len(),
            "inferred the new table from the file"
        );
        created(prepared, spec, new).map_err(invalid_spec)
    }

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
        let input = self.open(job).await?;
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
            reopen: Some(self.reopener(job)),
        };
        let loaded = import::run(input, loader, run).await;
        let report = report
            .await
            .map_err(|e| JobFailure::fatal("internal", e.to_string()))?;
        let loaded = loaded.map_err(load_failure)?;
        let report = report.map_err(from_storage)?;
        Ok((loaded, report))
    }

    fn result(&self, job: &Job, prepared: &Prepared, outcome: Outcome) -> Value {
        let result = ImportResult {
            rows_inserted: outcome.rows,
            rows_rejected: outcome.rejected,
            rejects_url: outcome
                .report
                .then(|| format!("/v1/imports/{}/rejects", job.id)),
            table: prepared.table.table.clone(),
            connection: prepared.connection.clone(),
            bytes: job.progress.total_bytes,
            chunks_committed: outcome.chunks,
            rows_kept: outcome.kept,
            created: created_table(job, prepared),
        };
        serde_json::to_value(result).unwrap_or(Value::Null)
    }

    /// After a chunked import failed or stopped: saves, as the job's result, what its
    /// committed chunks keep in the table (read from their checkpoint in the target).
    async fn keep_chunks(&self, job: &Job, ctx: &JobContext, prepared: &Prepared) {
        let checkpoint = match connect(&prepared.url).await {
            Ok(conn) => conn.into_loader().checkpoint(&job.id.to_string()).await,
            Err(error) => Err(LoadError::Internal(error.to_string())),
        };
        let checkpoint = match checkpoint {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %error, "could not read the chunked import's checkpoint");
                return;
            }
        };
        tracing::info!(
            chunks = checkpoint.chunks,
            rows = checkpoint.rows,
            "the chunked import keeps its committed chunks"
        );
        ctx.update_progress(|p| p.rows_inserted = Some(checkpoint.rows));
        let outcome = Outcome {
            rows: checkpoint.rows,
            rejected: checkpoint.rejected,
            report: false,
            chunks: Some(checkpoint.chunks),
            kept: Some(checkpoint.rows),
        };
        let result = self.result(job, prepared, outcome);
        match ctx.save_result(&result).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("lease lost; the kept rows are not in the job's result"),
            Err(error) => tracing::warn!(?error, "could not save the kept rows as the result"),
        }
    }
}
