//! The import job: read the stored upload, validate it row by row, load it in one transaction,
//! keep a report of the rejected rows. A retry loads from the stored file again; a load that
//! committed is recorded in the target database with the job's id, so it never loads twice.

pub mod header;
pub mod prepare;
pub mod produce;
pub mod rejects;

use super::error::{from_source, from_storage, invalid_spec};
use crate::config::Settings;
use crate::domain::{ImportRequest, ImportResult, Job};
use crate::pipeline::loaders::{self, LoadError, LoadPlan, postgres, sqlite};
use crate::pipeline::sources::classify;
use crate::queue::{Handler, JobContext, JobFailure};
use crate::storage::{Storage, StorageError, import_key};
use futures::TryStreamExt;
use prepare::{PrepareError, Prepared, TargetConn, connect, prepare};
use produce::{Outputs, ReadSettings, produce};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tracing::Instrument;

/// Rejects groups in flight to the report writer.
const REJECT_GROUPS: usize = 4;

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
        let prepared = prepare(&self.settings, &request, &spec)
            .await
            .map_err(prepare_failure)?;
        let mut conn = connect(&prepared.url).await.map_err(from_source)?;
        let job_id = job.id.to_string();
        let done = match &mut conn {
            TargetConn::Postgres(c) => postgres::already_loaded(c, &job_id).await,
            TargetConn::Sqlite(c) => sqlite::already_loaded(c, &job_id).await,
        };
        if let Some(rows) = done.map_err(load_failure)? {
            tracing::info!(
                rows,
                "this import was committed by an earlier attempt; not loading again"
            );
            return Ok(self.result(
                &job,
                &prepared,
                rows,
                job.progress.rows_rejected.unwrap_or(0),
                false,
            ));
        }
        let read = ReadSettings {
            delimiter: spec.delimiter,
            quote: spec.quote,
            header: spec.header,
            compression: spec.compression,
            max_errors: spec.max_errors,
            copy: matches!(conn, TargetConn::Postgres(_)),
        };
        let (rows, rejected, report) = self.load(&job, &ctx, &prepared, &spec, read, conn).await?;
        tracing::info!(rows, rejected, report, "load committed");
        if !self.settings.storage.keep_uploads
            && let Err(error) = self
                .storage
                .delete(&import_key(&job.tenant, job.id, "upload"))
                .await
        {
            tracing::warn!(error = %error, "could not delete the imported upload");
        }
        ctx.update_progress(|p| {
            p.rows_inserted = Some(rows);
            p.rows_rejected = Some(rejected);
        });
        Ok(self.result(&job, &prepared, rows, rejected, report))
    }
}

impl ImportHandler {
    /// Streams the upload through the producer into the loader; returns (rows loaded, rows
    /// rejected, whether a rejects report was stored).
    async fn load(
        &self,
        job: &Job,
        ctx: &JobContext,
        prepared: &Prepared,
        spec: &crate::domain::ImportSpec,
        read: ReadSettings,
        mut conn: TargetConn,
    ) -> Result<(u64, u64, bool), JobFailure> {
        let upload = import_key(&job.tenant, job.id, "upload");
        let stream = self.storage.read(&upload).await.map_err(|e| match e {
            StorageError::NotFound { .. } => JobFailure::fatal(
                "upload_missing",
                "the uploaded file is no longer stored; upload it again",
            ),
            other => from_storage(other),
        })?;
        let input = SyncIoBridge::new(StreamReader::new(stream.map_err(std::io::Error::other)));
        let (mapping_tx, mapping_rx) = oneshot::channel();
        let (batches_tx, batches_rx) = loaders::channel();
        let (rejects_tx, rejects_rx) = mpsc::channel(REJECT_GROUPS);
        let outputs = Outputs {
            mapping: mapping_tx,
            batches: batches_tx,
            rejects: rejects_tx,
            progress: ctx.progress.clone(),
        };
        let (table, rules, mapping_spec, stop) = (
            prepared.table.clone(),
            prepared.rules.clone(),
            spec.mapping.clone(),
            ctx.stop.clone(),
        );
        // The reader thread and the report task log in the job's span, like the job itself.
        let span = tracing::Span::current();
        let producer = tokio::task::spawn_blocking(move || {
            span.in_scope(|| produce(input, &read, &table, &rules, &mapping_spec, outputs, &stop))
        });
        let mapping = match mapping_rx.await {
            Ok(Ok(mapping)) => mapping,
            Ok(Err(error)) => return Err(load_failure(error)),
            Err(_) => {
                return Err(load_failure(
                    joined(producer.await).err().unwrap_or(LoadError::Stopped),
                ));
            }
        };
        let plan = LoadPlan {
            job: job.id.to_string(),
            table: prepared.table.clone(),
            columns: mapping
                .columns(&prepared.table)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            mode: spec.mode,
            key: spec.key.clone(),
        };
        let report = tokio::spawn(
            rejects::write(
                self.storage.clone(),
                import_key(&job.tenant, job.id, "rejects.csv"),
                mapping.header.clone(),
                rejects_rx,
            )
            .in_current_span(),
        );
        let loaded = match &mut conn {
            TargetConn::Postgres(c) => postgres::load(c, &plan, batches_rx, &ctx.stop).await,
            TargetConn::Sqlite(c) => sqlite::load(c, &plan, batches_rx, &ctx.stop).await,
        };
        let produced = joined(producer.await);
        let report = report
            .await
            .map_err(|e| JobFailure::fatal("internal", e.to_string()))?;
        let (rows, (_, rejected)) = match (loaded, produced) {
            (Ok(rows), Ok(counts)) => (rows, counts),
            (_, Err(error @ LoadError::Producer { .. })) | (Err(error), _) => {
                return Err(load_failure(error));
            }
            (Ok(_), Err(error)) => return Err(load_failure(error)),
        };
        let report = report.map_err(from_storage)?;
        Ok((rows, rejected, report))
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

fn joined(
    result: Result<Result<(u64, u64), LoadError>, tokio::task::JoinError>,
) -> Result<(u64, u64), LoadError> {
    result.unwrap_or_else(|e| Err(LoadError::Internal(format!("the reader task failed: {e}"))))
}
