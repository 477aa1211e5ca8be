//! Ferry moves large data out of and into an application's database as durable jobs.

/// Typed configuration: defaults < TOML < `FERRY_*` environment.
pub mod config;
/// Pure domain types: jobs, states, export requests, formats.
pub mod domain;
/// The durable queue: store, workers, retries, rescuer, sweeper.
pub mod queue;
/// Streaming stages: sources, codecs, the export pipeline.
pub mod pipeline;
/// The HTTP API.
pub mod api;
/// Callers: tokens to tenant, subject and scopes.
pub mod auth;
/// Job kinds: where the queue meets the pipeline.
pub mod jobs;
/// Building and running the application.
pub mod startup;
/// Logging setup.
pub mod telemetry;
/// Command-line subcommands.
pub mod cli;
