//! Ferry moves large data out of and into an application's database as durable jobs.

/// The HTTP API: one router per resource, problem+json errors, SSE.
pub mod api;
/// Callers: tokens to tenant, subject and scopes.
pub mod auth;
/// Command-line subcommands.
pub mod cli;
/// Typed configuration: defaults < TOML < `FERRY_*` environment.
pub mod config;
/// Pure domain types: jobs, states, export requests, formats.
pub mod domain;
/// Job kinds: where the queue meets the pipeline.
pub mod jobs;
/// Prometheus metrics: the recorder, the series' names, recording functions.
pub mod metrics;
/// Notifications: the queue's follow-up hook, webhooks (signing, SSRF guard, delivery) and e-mail.
pub mod notify;
/// Streaming stages: sources, codecs, the export pipeline.
pub mod pipeline;
/// The durable queue: store, workers, retries, rescuer, sweeper.
pub mod queue;
/// Building and running the application.
pub mod startup;
/// Object storage: keys, streamed multipart uploads, signed links.
pub mod storage;
/// Logging setup.
pub mod telemetry;
