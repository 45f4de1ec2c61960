use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    baton::app::cli::run(baton::app::cli::Cli::parse()).await
}
