//! The import pipeline, with no HTTP and no queue: file → decompress → CSV records → header
//! mapping → validation → the loader's encoder → a [`Loader`](crate::pipeline::loaders::Loader).
//! The reading half runs on a blocking thread ([`read`]); the loader on the caller's task; a
//! bounded channel between them carries the backpressure from the database back to the file.
//! Rejected rows, from either half, go to one [`Rejects`] sink. `jobs::import` adapts this to
//! the queue (storage, progress, the job's result); the loader conformance suite drives it
//! directly.

pub mod decode;
pub mod door;
pub mod header;
pub mod infer;
pub mod read;
pub mod sample;

use crate::domain::{ImportSpec, Progress};
use crate::pipeline::loaders::create::NewTable;
use crate::pipeline::loaders::schema::TableSchema;
use crate::pipeline::loaders::{
    self, Checkpoint, ChunkEnd, Commit, LoadError, LoadPlan, LoadReceiver, LoadSender, Loader,
};
use crate::pipeline::rejects::Rejects;
use crate::pipeline::validate::ColumnRule;
use read::{Outputs, ReadSettings, Reopen, Target};
use std::io::Read;
use std::sync::{Arc, Mutex};
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
    /// Whether this import creates the table.
    pub creation: Creation,
}

/// Whether an import creates its table (`"target": {"create": true}` and no such table yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Creation {
    /// The table exists.
    #[default]
    Exists,
    /// The table is to be created from the file, which was not sampled yet: `table` has no
    /// columns and there are no rules.
    Pending,
    /// The table is to be created like this, in the load's transaction; `table` and `rules`
    /// describe it.
    Ready(NewTable),
}

impl Prepared {
    /// The table to create, once the file was sampled.
    pub fn new_table(&self) -> Option<&NewTable> {
        match &self.creation {
            Creation::Ready(new) => Some(new),
            Creation::Exists | Creation::Pending => None,
        }
    }
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
    /// Opens the file again from a byte offset, for a chunked import's retry to enter it at
    /// its checkpoint; without it the retry reads the file from the start and skips lines.
    pub reopen: Option<Reopen>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Rows the database took.
    pub inserted: u64,
    /// Rows rejected, by the validator or the database.
    pub rejected: u64,
    /// Chunks committed by a chunked import (by this run and the ones before it); 0 for a
    /// single transaction.
    pub chunks: u64,
}

/// Reads `input` and loads it through `loader`: in one transaction, or, for
/// `"commit": "chunked"`, in chunks of `chunk_rows` rows, each committed with its checkpoint.
/// A chunked run that finds a checkpoint of its job reads the header, then enters the file at
/// the checkpoint's byte offset (with `run.reopen`, when the checkpoint has one) or else reads
/// on and skips the records up to the checkpoint's line: no row is loaded (or rejected) twice.
pub async fn run(
    input: impl Read + Send + 'static,
    loader: &mut dyn Loader,
    run: Run<'_>,
) -> Result<Loaded, LoadError> {
    let (mapping_tx, mapping_rx) = oneshot::channel();
    let (batches_tx, batches_rx) = loaders::channel();
    let start = match run.spec.chunk_rows {
        Some(_) => loader.checkpoint(&run.job).await?.unwrap_or_default(),
        None => Checkpoint::default(),
    };
    // What the committed chunks rejected counts against `max_errors`.
    run.rejects.add(start.rejected)?;
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
        encoding: run.spec.encoding,
        compression: run.spec.compression,
        skip_through: start.line,
        resume: start.resume,
        chunk_rows: run.spec.chunk_rows,
    };
    let reopen = run.reopen;
    let (table, rules, mapping, stop) = (
        run.prepared.table.clone(),
        run.prepared.rules.clone(),
        run.spec.mapping.clone(),
        run.stop.clone(),
    );
    if run.prepared.creation == Creation::Pending {
        return Err(LoadError::Internal(
            "the new table was not inferred before the load".into(),
        ));
    }
    let new_table = run.prepared.new_table().cloned();
    let fields = new_table
        .as_ref()
        .map(|t| t.fields.clone())
        .unwrap_or_default();
    let encoder = loader.encoder();
    // The reader thread logs in the caller's span, like the caller itself.
    let span = tracing::Span::current();
    let reader = tokio::task::spawn_blocking(move || {
        let target = Target {
            table: &table,
            rules: &rules,
            mapping: &mapping,
            fields: &fields,
            encoder,
        };
        span.in_scope(|| read::read(input, reopen, &settings, &target, outputs, &stop))
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
        create: new_table,
    };
    let loaded = match run.spec.chunk_rows {
        Some(_) => chunked(loader, &plan, batches_rx, &run.rejects, &run.stop, start).await,
        None => loader
            .load(&plan, batches_rx, &run.rejects, &run.stop, &Commit::Whole)
            .await
            .map(|inserted| (inserted, 0)),
    };
    let read = joined(reader.await);
    match (loaded, read) {
        (Ok((inserted, chunks)), Ok(_)) => Ok(Loaded {
            inserted,
            rejected: run.rejects.count(),
            chunks,
        }),
        // The reader's own failure explains a loader that was sent it.
        (_, Err(error @ LoadError::Producer { .. })) | (Err(error), _) => Err(error),
        (Ok(_), Err(error)) => Err(error),
    }
}

/// Loads the batches chunk after chunk, each in its own transaction with its checkpoint;
/// returns the rows the job's chunks loaded (those of earlier runs too) and its chunks.
async fn chunked(
    loader: &mut dyn Loader,
    plan: &LoadPlan,
    mut batches: LoadReceiver,
    rejects: &Rejects,
    stop: &tokio_util::sync::CancellationToken,
    start: Checkpoint,
) -> Result<(u64, u64), LoadError> {
    let mut done = start;
    // The first chunk creates the table (if the import does); the others find it.
    let mut plan = plan.clone();
    loop {
        let end = Arc::new(Mutex::new(ChunkEnd {
            checkpoint: done,
            ..ChunkEnd::default()
        }));
        let commit = Commit::Chunk(end.clone());
        let (tx, rx) = loaders::channel();
        let counted = rejects.tracked();
        let (ended, loaded) = tokio::join!(
            forward_chunk(&mut batches, tx, &end),
            loader.load(&plan, rx, &counted, stop, &commit)
        );
        loaded?;
        plan.create = None;
        done = end
            .lock()
            .map(|end| end.checkpoint)
            .map_err(|_| LoadError::Internal("a chunk's checkpoint was poisoned".into()))?;
        tracing::info!(
            chunks = done.chunks,
            rows = done.rows,
            line = done.line,
            "chunk committed"
        );
        if ended {
            return Ok((done.rows, done.chunks));
        }
    }
}

/// Passes batches on to one chunk's loader until the chunk's last batch (or the end of the
/// file, or an error), noting the chunk's last line and the validator's rejects in `end`;
/// returns whether the file ended.
async fn forward_chunk(batches: &mut LoadReceiver, tx: LoadSender, end: &Mutex<ChunkEnd>) -> bool {
    loop {
        let message = tokio::select! {
            message = batches.recv() => message,
            // The loader stopped or failed; it says why itself.
            () = tx.closed() => return false,
        };
        match message {
            Some(Ok(Some(batch))) => {
                let chunk_end = batch.chunk_end;
                if let Ok(mut end) = end.lock() {
                    if let Some(row) = batch.rows.last() {
                        end.checkpoint.line = row.line;
                        end.checkpoint.resume = batch.resume;
                    }
                    end.checkpoint.rejected += batch.rejected;
                    end.rows += batch.rows.len() as u64;
                }
                if tx.send(Ok(Some(batch))).await.is_err() {
                    return false;
                }
                if chunk_end {
                    let _ = tx.send(Ok(None)).await;
                    return false;
                }
            }
            Some(Ok(None)) => {
                if let Ok(mut end) = end.lock() {
                    end.last = true;
                }
                let _ = tx.send(Ok(None)).await;
                return true;
            }
            Some(Err(error)) => {
                let _ = tx.send(Err(error)).await;
                return false;
            }
            // The reader ended without finishing: the closed channel makes the loader roll
            // back.
            None => return false,
        }
    }
}

fn joined(
    result: Result<Result<u64, LoadError>, tokio::task::JoinError>,
) -> Result<u64, LoadError> {
    result.unwrap_or_else(|e| Err(LoadError::Internal(format!("the reader task failed: {e}"))))
}
