//! The command line: `serve`, `worker`, `migrate`, `generate`.

pub mod generate;

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
}
