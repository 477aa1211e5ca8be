//! From the `duckdb` crate's Arrow to Ferry's. The crate's 1.10506 line (DuckDB 1.5.6) is built
//! on arrow 58 and Ferry's Parquet writer on arrow 60: the same columnar data, different Rust
//! types. Each batch crosses as one Arrow IPC stream (arrow 58 writes, arrow 60 reads): a copy of
//! the batch's buffers, with no text in between and no `unsafe`; a batch is one DuckDB vector
//! (2,048 rows), so the copy is as bounded as the batch.

use crate::pipeline::sources::SourceError;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use duckdb::arrow::array::{Array, StructArray};
use duckdb::arrow::datatypes::Schema as Schema58;
use duckdb::arrow::record_batch::{RecordBatch as RecordBatch58, RecordBatchOptions};
use std::io::Cursor;
use std::sync::Arc;

fn broken(error: impl std::fmt::Display) -> SourceError {
    SourceError::Permanent {
        code: "query_failed",
        message: format!("a DuckDB result could not be read as Arrow: {error}"),
    }
}

/// The result's schema in arrow 60's types.
pub fn schema(schema: &Schema58) -> Result<SchemaRef, SourceError> {
    let mut bytes = Vec::new();
    let mut writer =
        arrow58_ipc::writer::StreamWriter::try_new(&mut bytes, schema).map_err(broken)?;
    writer.finish().map_err(broken)?;
    drop(writer);
    let reader =
        arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).map_err(broken)?;
    Ok(reader.schema())
}

/// One DuckDB chunk (a struct array of the result's columns) as an arrow 60 record batch.
pub fn batch(chunk: StructArray) -> Result<RecordBatch, SourceError> {
    let rows = chunk.len();
    let (fields, columns, _) = chunk.into_parts();
    let batch = RecordBatch58::try_new_with_options(
        Arc::new(Schema58::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(broken)?;
    let mut bytes = Vec::new();
    let mut writer =
        arrow58_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).map_err(broken)?;
    writer.write(&batch).map_err(broken)?;
    writer.finish().map_err(broken)?;
    drop(writer);
    let mut reader =
        arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).map_err(broken)?;
    match reader.next() {
        Some(read) => read.map_err(broken),
        None => Err(broken("the batch went missing")),
    }
}
