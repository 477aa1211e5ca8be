//! The rejects report: the file's own header and fields, plus `_line`, `_errors` and `_raw`,
//! written as CSV to object storage while the import runs, so that it can be fixed and uploaded
//! again. The upload starts with the first reject; an import without rejects has no report.

use super::produce::Rejected;
use crate::domain::Encoding;
use crate::pipeline::Row;
use crate::pipeline::codecs::{self, Encoder, EncoderOptions};
use crate::pipeline::types::Column;
use crate::storage::{ObjectKey, Storage, StorageError, Upload};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

/// The report's extra columns, after the file's own.
const EXTRA: [&str; 3] = ["_line", "_errors", "_raw"];

/// Writes every reject it receives; returns whether a report was stored. On error the partial
/// upload is aborted.
pub async fn write(
    storage: Storage,
    key: ObjectKey,
    header: Vec<String>,
    mut rejects: mpsc::Receiver<Vec<Rejected>>,
) -> Result<bool, StorageError> {
    let mut report = Report {
        encoder: codecs::build(Encoding::Csv, &EncoderOptions::default()),
        upload: None,
        header,
    };
    while let Some(group) = rejects.recv().await {
        if let Err(error) = report.add(&storage, &key, &group).await {
            report.abort().await;
            return Err(error);
        }
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

/// One report row: the fields (padded or cut to the header's width), then the extras.
fn report_row(rejected: &Rejected, width: usize) -> Row {
    let text = |bytes: &[u8]| Value::String(String::from_utf8_lossy(bytes).into_owned());
    let mut row: Row = rejected.fields.iter().take(width).map(text).collect();
    row.resize(width, Value::Null);
    row.push(Value::from(rejected.line));
    row.push(Value::String(rejected.errors.clone()));
    row.push(rejected.raw.as_deref().map_or(Value::Null, text));
    row
}
