//! The import pipeline, with no HTTP and no queue: file → decompress → CSV records → header
//! mapping → validation → the loader's encoder → a [`Loader`](crate::pipeline::loaders::Loader).
//! The reading half runs on a blocking thread ([`read`]); the loader on the caller's task; a
//! bounded channel between them carries the backpressure from the database back to the file.
//! Rejected rows, from either half, go to one [`Rejects`] sink. `jobs::import` adapts this to
//! the queue (storage, progress, the job's result); the loader conformance suite drives it
//! directly.

pub mod header;
pub mod read;

use crate::domain::{ImportSpec, Progress};
use crate::pipeline::loaders::schema::TableSchema;
use crate::pipeline::loaders::{self, LoadError, LoadPlan, Loader};
use crate::pipeline::rejects::Rejects;
use crate::pipeline::validate::ColumnRule;
use read::{Outputs, ReadSettings, Target};
use std::io::Read;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

/// The target, checked against the database: its table and one rule per column.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The connection's name.
    pub connection: String,
    /// Its URL.
    pub url: String,
    pub table: TableSchema,
    /// One rule per column of the table, in the table's order.
    pub rules: Vec<ColumnRule>,
}

/// What one run of an import needs besides the file and the loader.
pub struct Run<'a> {
    /// The job's id, recorded in the target with the rows.
    pub job: String,
    pub spec: &'a ImportSpec,
    pub prepared: &'a Prepared,
    /// Where rejected rows go (and how many are allowed).
    pub rejects: Rejects,
    /// The file's header, for the rejects report.
    pub header: oneshot::Sender<Vec<String>>,
    pub progress: watch::Sender<Progress>,
    pub stop: CancellationToken,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Rows the database took.
    pub inserted: u64,
    /// Rows rejected, by the validator or the database.
    pub rejected: u64,
}

/// Reads `input` and loads it through `loader`, in one transaction.
pub async fn run(
    input: impl Read + Send + 'static,
    loader: &mut dyn Loader,
    run: Run<'_>,
) -> Result<Loaded, LoadError> {
    let (mapping_tx, mapping_rx) = oneshot::channel();
    let (batches_tx, batches_rx) = loaders::channel();
    let outputs = Outputs {
        mapping: mapping_tx,
        header: run.header,
        batches: batches_tx,
        rejects: run.rejects.clone(),
        progress: run.progress,
    };
    let settings = ReadSettings {
        delimiter: run.spec.delimiter,
        quote: run.spec.quote,
        header: run.spec.header,
        compression: run.spec.compression,
    };
    let (table, rules, mapping, stop) = (
        run.prepared.table.clone(),
        run.prepared.rules.clone(),
        run.spec.mapping.clone(),
        run.stop.clone(),
    );
    let encoder = loader.encoder();
    // The reader thread logs in the caller's span, like the caller itself.
    let span = tracing::Span::current();
    let reader = tokio::task::spawn_blocking(move || {
        let target = Target {
            table: &table,
            rules: &rules,
            mapping: &mapping,
            encoder,
        };
        span.in_scope(|| read::read(input, &settings, &target, outputs, &stop))
    });
    let mapping = match mapping_rx.await {
        Ok(Ok(mapping)) => mapping,
        Ok(Err(error)) => return Err(error),
        Err(_) => return Err(joined(reader.await).err().unwrap_or(LoadError::Stopped)),
    };
    let table = &run.prepared.table;
    let plan = LoadPlan {
        job: run.job,
        table: table.clone(),
        columns: mapping
            .columns(table)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        types: mapping
            .fields
            .iter()
            .flatten()
            .filter_map(|&i| run.prepared.rules.get(i).map(|r| r.kind.clone()))
            .collect(),
        mode: run.spec.mode,
        key: run.spec.key.clone(),
    };
    let loaded = loader
        .load(&plan, batches_rx, &run.rejects, &run.stop)
        .await;
    let read = joined(reader.await);
    match (loaded, read) {
        (Ok(inserted), Ok(_)) => Ok(Loaded {
            inserted,
            rejected: run.rejects.count(),
        }),
        // The reader's own failure explains a loader that was sent it.
        (_, Err(error @ LoadError::Producer { .. })) | (Err(error), _) => Err(error),
        (Ok(_), Err(error)) => Err(error),
    }
}

fn joined(
    result: Result<Result<u64, LoadError>, tokio::task::JoinError>,
) -> Result<u64, LoadError> {
    result.unwrap_or_else(|e| Err(LoadError::Internal(format!("the reader task failed: {e}"))))
}
