//! The `ferry` binary: parse the command line, set up logging, dispatch.

use clap::Parser;
use ferry::cli::{Cli, Command};
use ferry::config::Settings;
use ferry::startup::{Application, Role, stop_on_signals};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    ferry::telemetry::init();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let outcome = match &cli.command {
        Command::Export(args) => ferry::cli::export::run(args, &mut out, &mut err).await,
        Command::Import(args) => ferry::cli::import::run(args, &mut out, &mut err).await,
        Command::Jobs(args) => ferry::cli::jobs::run(args, &mut out).await,
        _ => {
            return match admin(&cli).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    // Once, on one line, with its causes: what to fix, not a backtrace.
                    eprintln!("Error: {error:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    ExitCode::from(ferry::cli::exit_code(outcome, &mut err))
}

/// The commands that run Ferry itself rather than call a server.
async fn admin(cli: &Cli) -> anyhow::Result<()> {
    let settings = || Settings::load(cli.config.as_deref(), std::env::vars());
    match &cli.command {
        Command::Serve => serve(settings()?, Role::Serve).await,
        Command::Worker => serve(settings()?, Role::Worker).await,
        Command::Migrate => {
            let settings = settings()?;
            std::fs::create_dir_all(&settings.data_dir)?;
            ferry::queue::Store::migrate(settings.metadata_url().expose()).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Generate(args) => {
            let (rows, bytes) = if args.output == "-" {
                ferry::cli::generate::execute(args, tokio::io::stdout()).await?
            } else {
                let file = tokio::fs::File::create(&args.output).await?;
                ferry::cli::generate::execute(args, tokio::io::BufWriter::new(file)).await?
            };
            tracing::info!(rows, bytes, "generated");
            Ok(())
        }
        Command::Export(_) | Command::Import(_) | Command::Jobs(_) => Ok(()),
    }
}

async fn serve(settings: Settings, role: Role) -> anyhow::Result<()> {
    let app = Application::build(settings, role).await?;
    let shutdown = CancellationToken::new();
    stop_on_signals(shutdown.clone());
    app.run_until_stopped(shutdown).await
}
