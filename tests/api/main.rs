//! Ferry's integration tests: one binary, real PostgreSQL, real S3-compatible storage, the real
//! HTTP API on a random port. Run them with `scripts/test`, which provides both services.

mod helpers;
mod exports;
mod queue;
mod workers;
