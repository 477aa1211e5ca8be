//! Ferry moves large data out of and into an application's database as durable jobs.

/// Typed configuration: defaults < TOML < `FERRY_*` environment.
pub mod config;
/// Pure domain types: jobs, states, export requests, formats.
pub mod domain;
/// Streaming stages: sources produce rows, codecs encode them into file formats.
pub mod pipeline;
/// The durable queue: store, workers, retries, rescuer, sweeper.
pub mod queue;
