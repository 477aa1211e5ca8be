//! The export job: resolve the source, stream it through the encoder into a multipart upload,
//! and describe the file. A failed or stopped attempt aborts its upload; a later attempt first
//! aborts whatever an attempt that died (SIGKILL) left behind, from the job's checkpoint.

use super::error::{from_pipeline, from_source, from_storage, invalid_spec};
use super::sources::{Resolved, open, resolve};
use crate::config::Settings;
use crate::domain::export::Part;
use crate::domain::result::BundleEntry;
use crate::domain::{
    Encoding, ExportRequest, ExportResult, ExportSpec, ExportedFile, Format, Job, names,
};
use crate::pipeline::codecs::EncoderOptions;
use crate::pipeline::export::{
    ByteSink, DEFAULT_GZIP_LEVEL, Entry, Opener, Output, SinkError, run, run_bundle,
};
use crate::pipeline::sources::{Opened, SourceError};
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
        let resolved = spec
            .parts
            .iter()
            .map(|part| resolve(&self.settings, part))
            .collect::<Result<Vec<Resolved>, _>>()
            .map_err(invalid_spec)?;
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
        let (work, estimate) = Plan::new(&self.settings, &spec, resolved)?.start().await?;
        ctx.update_progress(|p| p.total_rows_estimate = estimate);

        let mut upload = self
            .storage
            .begin_upload(&key)
            .await
            .map_err(from_storage)?;
        if let Some(id) = upload.upload_id() {
            ctx.save_checkpoint(&json!({ "upload_id": id })).await?;
        }
        let progress = ctx.progress.clone();
        let report = move |rows, bytes| {
            progress.send_modify(|p| {
                p.rows = rows;
                p.bytes = bytes;
            });
        };
        let mut sink = UploadSink(&mut upload);
        let outcome = match work {
            Work::File(opened, output) => run(opened, &output, &mut sink, &ctx.stop, report).await,
            Work::Bundle(entries, opener, level) => {
                run_bundle(entries, opener, level, &mut sink, &ctx.stop, report).await
            }
        };
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
        let entries = written
            .entries
            .iter()
            .zip(&spec.parts)
            .map(|(entry, part)| BundleEntry {
                name: entry.name.clone(),
                format: part.format.as_str().to_owned(),
                rows: entry.rows,
                bytes: entry.bytes,
            })
            .collect();
        let result = ExportResult {
            file: ExportedFile {
                key: key.to_string(),
                format: spec.format.as_str().to_owned(),
                size_bytes: size,
                rows: written.rows,
                sha256: written.sha256,
                content_type: spec.format.content_type().to_owned(),
                filename,
                entries,
            },
            download_url: None,
            download_url_expires_at: None,
        };
        Ok(serde_json::to_value(result).unwrap_or(Value::Null))
    }
}

/// What the pipeline is to write: one file from one source, or a bundle.
enum Plan {
    File {
        resolved: Resolved,
        part: PartPlan,
        output: Output,
    },
    Bundle {
        parts: Vec<(Resolved, PartPlan)>,
        entries: Vec<Entry>,
        level: u32,
    },
}

/// How a part's source is opened.
#[derive(Debug, Clone, Copy)]
struct PartPlan {
    encoding: Encoding,
    delimiter: u8,
    header: bool,
}

impl Plan {
    fn new(
        settings: &Settings,
        spec: &ExportSpec,
        resolved: Vec<Resolved>,
    ) -> Result<Self, JobFailure> {
        let level = spec.level.unwrap_or(DEFAULT_GZIP_LEVEL);
        let output = |part: &Part| -> Result<(PartPlan, Output), JobFailure> {
            let encoding = part.format.encoding().ok_or_else(|| {
                JobFailure::fatal("invalid_spec", "a bundle cannot hold a bundle")
            })?;
            let options = EncoderOptions {
                delimiter: part.delimiter,
                header: part.header,
                temp_dir: settings.data_dir.clone(),
                zstd_level: spec.level.and_then(|l| i32::try_from(l).ok()),
            };
            let plan = PartPlan {
                encoding,
                delimiter: part.delimiter,
                header: part.header,
            };
            let gzip = part.format.is_gzip().then_some(level);
            Ok((
                plan,
                Output {
                    encoding,
                    options,
                    gzip,
                },
            ))
        };
        if spec.format != Format::Zip {
            let (Some(part), Some(resolved)) = (spec.parts.first(), resolved.into_iter().next())
            else {
                return Err(JobFailure::fatal(
                    "invalid_spec",
                    "the export has no source",
                ));
            };
            let (part, output) = output(part)?;
            return Ok(Self::File {
                resolved,
                part,
                output,
            });
        }
        let mut parts = Vec::with_capacity(resolved.len());
        let mut entries = Vec::with_capacity(resolved.len());
        for (part, resolved) in spec.parts.iter().zip(resolved) {
            let (plan, output) = output(part)?;
            entries.push(Entry {
                file_name: part.file_name(),
                output,
                compressed: part.format.is_compressed(),
            });
            parts.push((resolved, plan));
        }
        Ok(Self::Bundle {
            parts,
            entries,
            level,
        })
    }

    /// Opens the file's source (a bundle opens each in turn as it writes), and gives the row
    /// estimate: the source's, or a bundle's total when every file knows its count.
    async fn start(self) -> Result<(Work, Option<u64>), JobFailure> {
        match self {
            Self::File {
                resolved,
                part,
                output,
            } => {
                let opened = open(resolved, part.encoding, part.delimiter, part.header)
                    .await
                    .map_err(from_source)?;
                let estimate = opened.estimate;
                Ok((Work::File(opened, output), estimate))
            }
            Self::Bundle {
                parts,
                entries,
                level,
            } => {
                let estimate = parts
                    .iter()
                    .try_fold(0u64, |sum, (resolved, _)| match resolved {
                        Resolved::Generate(spec) => Some(sum.saturating_add(spec.rows)),
                        _ => None,
                    });
                let opener: Opener = Box::new(move |i| {
                    let part = parts.get(i).cloned();
                    Box::pin(async move {
                        let (resolved, plan) = part.ok_or_else(|| SourceError::Permanent {
                            code: "invalid_spec",
                            message: format!("the bundle has no file {i}"),
                        })?;
                        open(resolved, plan.encoding, plan.delimiter, plan.header).await
                    })
                });
                Ok((Work::Bundle(entries, opener, level), estimate))
            }
        }
    }
}

/// A plan under way: a file's open source, or a bundle's entries and their opener.
enum Work {
    File(Opened, Output),
    Bundle(Vec<Entry>, Opener, u32),
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
