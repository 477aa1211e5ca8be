//! Ferry's job kinds, where the queue meets the pipeline.

pub mod error;
pub mod export;
pub mod sources;
