//! Rejected rows: the shared sink that the reader (bad fields, broken records) and the loader
//! (rows the database refuses) both send to, which counts them against `max_errors`; and the
//! report, the file's own header and fields plus `_line`, `_errors` and `_raw`, written as CSV
//! to object storage while the import runs, so that it can be fixed and uploaded again. The
//! upload starts with the first reject; an import without rejects has no report.

use crate::domain::Encoding;
use crate::pipeline::Row;
use crate::pipeline::codecs::{self, Encoder, EncoderOptions};
use crate::pipeline::loaders::LoadError;
use crate::pipeline::records::Fields;
use crate::pipeline::types::Column;
use crate::storage::{ObjectKey, Storage, StorageError, Upload};
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Groups of rejects in flight to the report writer.
pub const REJECT_GROUPS: usize = 4;

/// One rejected row, for the report.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub line: u64,
    /// The record's fields, when it could be split (empty otherwise).
    pub fields: Fields,
    /// The record's raw bytes, when it could not.
    pub raw: Option<Vec<u8>>,
    /// `column: reason; …`, or `constraint name: reason` for a row the database refused.
    pub errors: String,
}

/// Where rejected rows go, counted against `max_errors`. Cheap to clone; every clone counts
/// into the same total.
#[derive(Debug, Clone)]
pub struct Rejects {
    tx: mpsc::Sender<Vec<Rejected>>,
    count: Arc<AtomicU64>,
    max: u64,
    /// What this clone (and its clones) counted, when made by [`Rejects::tracked`].
    own: Option<Arc<AtomicU64>>,
}

impl Rejects {
    /// A sink into `tx` that allows at most `max` rejects.
    pub fn new(tx: mpsc::Sender<Vec<Rejected>>, max: u64) -> Self {
        Self {
            tx,
            count: Arc::new(AtomicU64::new(0)),
            max,
            own: None,
        }
    }

    /// A clone into the same total that also counts what goes through it alone.
    pub fn tracked(&self) -> Self {
        Self {
            own: Some(Arc::new(AtomicU64::new(0))),
            ..self.clone()
        }
    }

    /// What went through this clone, if it is [`Rejects::tracked`]; 0 otherwise.
    pub fn own_count(&self) -> u64 {
        self.own.as_ref().map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A channel of the standard size and a sink into it.
    pub fn channel(max: u64) -> (Self, mpsc::Receiver<Vec<Rejected>>) {
        let (tx, rx) = mpsc::channel(REJECT_GROUPS);
        (Self::new(tx, max), rx)
    }

    /// Rows rejected so far, by anyone.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts `n` more rejects; fails once there are more than `max_errors`.
    pub fn add(&self, n: u64) -> Result<(), LoadError> {
        if let Some(own) = &self.own {
            own.fetch_add(n, Ordering::Relaxed);
        }
        let total = self.count.fetch_add(n, Ordering::Relaxed) + n;
        if total > self.max {
            return Err(LoadError::producer(
                "too_many_errors",
                format!(
                    "more than {} rows were rejected (max_errors); nothing was loaded",
                    self.max
                ),
                false,
            ));
        }
        Ok(())
    }

    /// Hands counted rejects to the report, from a blocking thread. A report writer that is
    /// gone has failed and says so itself.
    pub fn blocking_send(&self, group: Vec<Rejected>) {
        if !group.is_empty() {
            let _ = self.tx.blocking_send(group);
        }
    }

    /// Counts rejects and hands them to the report.
    pub async fn send(&self, group: Vec<Rejected>) -> Result<(), LoadError> {
        if group.is_empty() {
            return Ok(());
        }
        self.add(group.len() as u64)?;
        let _ = self.tx.send(group).await;
        Ok(())
    }
}

/// The report's extra columns, after the file's own.
const EXTRA: [&str; 3] = ["_line", "_errors", "_raw"];

/// Writes every reject it receives, under the file's header (sent before the first reject);
/// returns whether a report was stored. On error the partial upload is aborted.
pub async fn write(
    storage: Storage,
    key: ObjectKey,
    header: oneshot::Receiver<Vec<String>>,
    mut rejects: mpsc::Receiver<Vec<Rejected>>,
) -> Result<bool, StorageError> {
    let Some(first) = rejects.recv().await else {
        return Ok(false);
    };
    // The reader sends the header before it rejects a row; without one there is no row either.
    let header = header.await.unwrap_or_default();
    let mut report = Report {
        encoder: codecs::build(Encoding::Csv, &EncoderOptions::default()),
        upload: None,
        header,
    };
    let mut next = Some(first);
    while let Some(group) = next {
        if let Err(error) = report.add(&storage, &key, &group).await {
            report.abort().await;
            return Err(error);
        }
        next = rejects.recv().await;
    }
    report.finish().await
}

struct Report {
    encoder: Box<dyn Encoder>,
    upload: Option<Upload>,
    header: Vec<String>,
}

impl Report {
    async fn add(
        &mut self,
        storage: &Storage,
        key: &ObjectKey,
        group: &[Rejected],
    ) -> Result<(), StorageError> {
        let mut buffer = Vec::new();
        if self.upload.is_none() {
            self.upload = Some(storage.begin_upload(key).await?);
            let columns: Vec<Column> = self
                .header
                .iter()
                .map(String::as_str)
                .chain(EXTRA)
                .map(Column::text)
                .collect();
            codecs::in_memory(self.encoder.begin(&columns, &mut buffer));
        }
        let rows: Vec<Row> = group
            .iter()
            .map(|r| report_row(r, self.header.len()))
            .collect();
        codecs::in_memory(self.encoder.encode(&rows, &mut buffer));
        match self.upload.as_mut() {
            Some(upload) => upload.write(Bytes::from(buffer)).await,
            None => Ok(()),
        }
    }

    async fn finish(mut self) -> Result<bool, StorageError> {
        let Some(mut upload) = self.upload.take() else {
            return Ok(false);
        };
        let mut tail = Vec::new();
        codecs::in_memory(self.encoder.finish(&mut tail));
        if let Err(error) = upload.write(Bytes::from(tail)).await {
            let _ = upload.abort().await;
            return Err(error);
        }
        let size = upload.finish().await?;
        tracing::info!(bytes = size, "rejects report stored");
        Ok(true)
    }

    async fn abort(&mut self) {
        if let Some(upload) = self.upload.take()
            && let Err(error) = upload.abort().await
        {
            tracing::warn!(error = %error, "aborting the rejects report failed");
        }
    }
}

/// One report row: the fields (padded or cut to the header's width), then the extras. A NULL
/// field stays empty and a quoted empty one is written `""`, so a fixed report loads the same
/// values.
fn report_row(rejected: &Rejected, width: usize) -> Row {
    let text = |bytes: &[u8]| Value::String(String::from_utf8_lossy(bytes).into_owned());
    let fields = &rejected.fields;
    let field = |(index, bytes)| match fields.is_null(index) {
        true => Value::Null,
        false => text(bytes),
    };
    let mut row: Row = fields.iter().enumerate().take(width).map(field).collect();
    row.resize(width, Value::Null);
    row.push(Value::from(rejected.line));
    row.push(Value::String(rejected.errors.clone()));
    row.push(rejected.raw.as_deref().map_or(Value::Null, text));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_row_keeps_null_fields_apart_from_quoted_empty_ones() {
        let mut fields = Fields::default();
        fields.push(b"7", false);
        fields.push(b"", false);
        fields.push(b"", true);
        let rejected = Rejected {
            line: 3,
            fields,
            raw: None,
            errors: "n: required".into(),
        };
        let row = report_row(&rejected, 4);
        let want = serde_json::json!(["7", null, "", null, 3, "n: required", null]);
        assert_eq!(Value::Array(row.clone()), want);
        let mut line = Vec::new();
        let mut encoder = codecs::build(
            Encoding::Csv,
            &EncoderOptions {
                header: false,
                ..EncoderOptions::default()
            },
        );
        codecs::in_memory(encoder.encode(&[row], &mut line));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "7,,\"\",,3,n: required,\n"
        );
    }
}
