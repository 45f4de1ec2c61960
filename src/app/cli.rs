//! The `baton` command line.

use super::configuration::{self, ConfigError, DatabaseArgs, ServeArgs, Settings};
use super::startup::{self, Application, BuildOptions};
use super::telemetry;
use crate::store::{self, PoolSettings};
use crate::tools::loadgen::{self, LoadgenArgs};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Durable transfer chains, parks and orphan cleanup for Twilio Flex"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the background workers.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Send signed TaskRouter callbacks to a running baton and report throughput and latency.
    Loadgen(LoadgenArgs),
}

/// Exit code 2: configuration error (one line on stderr).
fn config_failure(e: ConfigError) -> ExitCode {
    eprintln!("baton: configuration error: {e}");
    ExitCode::from(2)
}

fn failure(e: anyhow::Error) -> ExitCode {
    tracing::error!(error = format!("{e:#}"), "baton failed");
    eprintln!("baton: {e:#}");
    ExitCode::FAILURE
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => {
            let settings = match Settings::from_args(&args) {
                Ok(s) => s,
                Err(e) => return config_failure(e),
            };
            telemetry::init_tracing(settings.log_format);
            let app =
                match Application::build(&settings, BuildOptions::from_settings(&settings)).await {
                    Ok(app) => app,
                    Err(e) => return failure(e),
                };
            tracing::info!(
                listen = %settings.listen,
                public_url = %settings.public_url,
                port = app.port(),
                "baton is serving"
            );
            startup::stop_on_signals(app.stopper());
            match app.run_until_stopped().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failure(e),
            }
        }
        Command::Migrate(args) => {
            telemetry::init_tracing(configuration::LogFormat::Text);
            let url = match configuration::database_url(&args) {
                Ok(u) => u,
                Err(e) => return config_failure(e),
            };
            let pool = match store::connect_lazy(url.expose_secret(), &PoolSettings::default()) {
                Ok(p) => p,
                Err(_) => {
                    return config_failure(ConfigError::Invalid {
                        name: "DATABASE_URL",
                        reason: "is not a usable Postgres URL".into(),
                    })
                }
            };
            match store::migrate(&pool).await {
                Ok(()) => {
                    eprintln!("baton: migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => failure(anyhow::Error::new(e).context("migrations failed")),
            }
        }
        Command::Loadgen(args) => match loadgen::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failure(e),
        },
    }
}
