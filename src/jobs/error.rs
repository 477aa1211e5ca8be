//! Mapping the failures of each stage to a job failure, at one place per stage.

use crate::pipeline::export::PipelineError;
use crate::pipeline::sources::SourceError;
use crate::queue::JobFailure;
use crate::storage::StorageError;

/// A stored spec that no longer parses (e.g. configuration changed since it was queued).
pub fn invalid_spec(error: impl std::fmt::Display) -> JobFailure {
    JobFailure::fatal("invalid_spec", error.to_string())
}

/// A source failure keeps its own classification.
pub fn from_source(error: SourceError) -> JobFailure {
    match error {
        SourceError::Transient { code, message } => JobFailure::retryable(code, message),
        SourceError::Permanent { code, message } => JobFailure::fatal(code, message),
    }
}

/// Storage trouble is transient when the store says so.
pub fn from_storage(error: StorageError) -> JobFailure {
    if error.is_transient() {
        JobFailure::retryable("storage_unavailable", error.to_string())
    } else {
        JobFailure::fatal("storage_failed", error.to_string())
    }
}

/// The pipeline's failure, by stage.
pub fn from_pipeline(error: PipelineError) -> JobFailure {
    match error {
        PipelineError::Source(error) => from_source(error),
        PipelineError::Sink(error) if error.transient => {
            JobFailure::retryable("storage_unavailable", error.message)
        }
        PipelineError::Sink(error) => JobFailure::fatal("storage_failed", error.message),
        PipelineError::InvalidValue(message) => JobFailure::fatal("invalid_value", message),
        PipelineError::Encode {
            transient: true,
            message,
        } => JobFailure::retryable("encoding_failed", message),
        PipelineError::Encode { message, .. } => JobFailure::fatal("encoding_failed", message),
        PipelineError::Stopped => JobFailure::Stopped,
    }
}
