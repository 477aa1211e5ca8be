//! Ferry's integration tests: one binary, real PostgreSQL, real S3-compatible storage, the real
//! HTTP API on a random port. Run them with `scripts/test`, which provides both services.

mod access;
mod auth;
mod catalogue;
mod cli;
mod cli_follow;
mod conformance;
mod create;
mod discovery;
mod disk;
mod door;
#[cfg(feature = "duckdb")]
mod duckdb;
mod email;
mod encodings;
mod exports;
mod faults;
mod formats;
mod handback;
mod helpers;
mod imports;
mod loaders;
mod logs;
mod memory;
mod metrics;
mod newcomer;
mod openapi;
mod outages;
mod process;
mod queue;
mod resumable;
mod scale;
mod startup;
mod storage;
mod webhooks;
mod workers;
