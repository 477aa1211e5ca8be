//! Streaming stages with no HTTP and no queue: sources produce rows (or bytes already encoded,
//! like PostgreSQL's `COPY … TO STDOUT`), codecs turn rows into a file format, and the export
//! pipeline moves chunks from one to the other into storage with backpressure.

pub mod codecs;
pub mod columnar;
pub mod export;
pub mod import;
pub mod loaders;
pub mod records;
pub mod rejects;
pub mod sources;
pub mod types;
pub mod validate;

/// One row: values in column order. Sources that know types give numbers, booleans and
/// nested JSON their own variants; everything else is a string; SQL NULL is `Value::Null`.
pub type Row = Vec<serde_json::Value>;

/// Rows a source hands on at once: enough to amortise per-batch costs, small enough that a
/// batch of wide rows stays far below a megabyte or so.
pub const BATCH_ROWS: usize = 1024;
