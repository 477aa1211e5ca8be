//! The export job: resolve the source, stream it through the encoder into a multipart upload,
//! and describe the file. A failed or stopped attempt aborts its upload; a later attempt first
//! aborts whatever an attempt that died (SIGKILL) left behind, from the job's checkpoint.

use super::error::{from_pipeline, from_source, from_storage, invalid_spec};
use super::sources::{open, resolve};
use crate::config::Settings;
use crate::domain::{ExportRequest, ExportResult, ExportedFile, Job, names};
use crate::pipeline::codecs::EncoderOptions;
use crate::pipeline::export::{ByteSink, Output, SinkError, run};
use crate::queue::{Handler, JobContext, JobFailure};
use crate::storage::{ObjectKey, Storage, Upload, export_key};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

/// Runs export jobs.
pub struct ExportHandler {
    settings: Arc<Settings>,
    storage: Storage,
}

impl ExportHandler {
    /// An export handler over the given configuration and store.
    pub fn new(settings: Arc<Settings>, storage: Storage) -> Self {
        Self { settings, storage }
    }
}

/// The file's object key and download name for an export job: the key uses an ASCII slug of
/// the job's name (safe in any store and path); the download name keeps the name itself, made
/// harmless, for `Content-Disposition`'s UTF-8 `filename*`.
pub fn file_of(job: &Job, format_ext: &str) -> (ObjectKey, String) {
    let slug = names::slug(&job.name, "export");
    let key = export_key(&job.tenant, job.id, &slug, format_ext);
    (
        key,
        crate::storage::safe_filename(&format!("{}.{format_ext}", job.name)),
    )
}

#[async_trait::async_trait]
impl Handler for ExportHandler {
    async fn run(&self, job: Job, ctx: JobContext) -> Result<Value, JobFailure> {
        let request: ExportRequest =
            serde_json::from_value(job.spec.clone()).map_err(invalid_spec)?;
        let today = job.created_at.date().to_string();
        let spec = request.parse(&today).map_err(invalid_spec)?;
        let resolved = resolve(&self.settings, &spec).map_err(invalid_spec)?;
        let (key, filename) = file_of(&job, spec.format.as_str());
        let stale = job
            .checkpoint
            .as_ref()
            .and_then(|c| c.get("upload_id"))
            .and_then(Value::as_str);
        self.storage
            .abort_stale_upload(&key, stale)
            .await
            .map_err(from_storage)?;

        let encoding = spec.format.encoding().ok_or_else(|| {
            JobFailure::fatal("unsupported_format", "this format cannot be written yet")
        })?;
        let opened = open(resolved, encoding, spec.delimiter, spec.header)
            .await
            .map_err(from_source)?;
        ctx.update_progress(|p| p.total_rows_estimate = opened.estimate);

        let mut upload = self
            .storage
            .begin_upload(&key)
            .await
            .map_err(from_storage)?;
        if let Some(id) = upload.upload_id() {
            ctx.save_checkpoint(&json!({ "upload_id": id })).await?;
        }
        let output = Output {
            encoding,
            options: EncoderOptions {
                delimiter: spec.delimiter,
                header: spec.header,
            },
            gzip: spec.format.is_gzip(),
        };
        let progress = ctx.progress.clone();
        let outcome = run(
            opened,
            &output,
            &mut UploadSink(&mut upload),
            &ctx.stop,
            move |rows, bytes| {
                progress.send_modify(|p| {
                    p.rows = rows;
                    p.bytes = bytes;
                });
            },
        )
        .await;
        let written = match outcome {
            Ok(written) => written,
            Err(error) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "aborting the upload failed; the next attempt or the sweeper retries");
                }
                return Err(from_pipeline(error));
            }
        };
        let size = upload.finish().await.map_err(from_storage)?;
        tracing::info!(rows = written.rows, bytes = size, key = %key, "export file stored");
        let result = ExportResult {
            file: ExportedFile {
                key: key.to_string(),
                format: spec.format.as_str().to_owned(),
                size_bytes: size,
                rows: written.rows,
                sha256: written.sha256,
                content_type: spec.format.content_type().to_owned(),
                filename,
            },
            download_url: None,
            download_url_expires_at: None,
        };
        Ok(serde_json::to_value(result).unwrap_or(Value::Null))
    }
}

/// The upload as the pipeline's byte sink.
struct UploadSink<'a>(&'a mut Upload);

#[async_trait::async_trait]
impl ByteSink for UploadSink<'_> {
    async fn write(&mut self, data: Bytes) -> Result<(), SinkError> {
        self.0.write(data).await.map_err(|e| SinkError {
            transient: e.is_transient(),
            message: e.to_string(),
        })
    }
}
