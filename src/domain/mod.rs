//! Pure types of Ferry's domain: jobs, their states and progress, export requests, formats.
//! Nothing here does I/O.

pub mod export;
pub mod format;
pub mod generate;
pub mod import;
pub mod invalid;
pub mod job;
pub mod json;
pub mod names;
pub mod record;
pub mod result;
pub mod rules;
mod schema;
pub mod targets;
pub mod text_encoding;

pub use export::{ExportRequest, ExportSpec, Source};
pub use format::{Encoding, Format};
pub use import::{ImportRequest, ImportSpec};
pub use invalid::{FieldError, Invalid};
pub use job::{EventKind, JobError, JobId, JobKind, JobState, Progress};
pub use record::Job;
pub use result::{
    BundleEntry, CreatedColumn, CreatedTable, ExportResult, ExportedFile, ImportResult,
};
pub use targets::NotifyTargets;
pub use text_encoding::TextEncoding;
