//! The command line: `serve`, `worker`, `migrate`, `generate`, and the clients of a running
//! server — `export`, `import`, `jobs` — which call its HTTP API and write to injected writers.

pub mod client;
pub mod download;
pub mod export;
mod follow;
pub mod generate;
pub mod import;
pub mod jobs;
pub mod progress;
pub mod resumable;
pub mod sse;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Ferry moves large data out of and into your database as durable jobs.
#[derive(Debug, Parser)]
#[command(name = "ferry", version)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, env = "FERRY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and workers.
    Serve,
    /// Run workers only.
    Worker,
    /// Apply the metadata database's migrations and exit.
    Migrate,
    /// Write a synthetic data file locally, no server needed.
    Generate(generate::Args),
    /// Export from a running server: create the job, follow it, download the file.
    Export(export::Args),
    /// Import a CSV file into a running server's database table.
    Import(import::Args),
    /// List, show, cancel, retry or delete jobs on a running server.
    Jobs(jobs::Args),
}

/// Writes a client command's failure on `err` and gives the exit code: 0 on success, 1 when
/// the server refused or the job did not succeed, 2 for a command line that cannot be run.
pub fn exit_code(outcome: Result<(), client::CliError>, err: &mut dyn std::io::Write) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            let _ = writeln!(err, "error: {error}");
            error.exit_code()
        }
    }
}
