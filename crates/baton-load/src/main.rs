//! `baton-load`: the load and benchmark tools for baton, kept out of the `baton` binary that
//! operators run. Each tool talks to a baton (or its database) the way production traffic does:
//! signed callbacks over HTTP, or baton's own store functions on a database of its own.

mod console_bench;
mod e2e;
mod history_bench;
mod http1;
mod latency;
mod loadgen;
mod signing;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// The allocator `baton` itself runs with, so that the load tool's CPU cost (measured against
// baton's on the same cores) is what it was when the tools were part of that binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "baton-load",
    version,
    about = "Load and benchmark tools for baton (loopback and test hosts only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send signed TaskRouter callbacks to a running baton and report throughput and latency.
    Loadgen(loadgen::LoadgenArgs),
    /// Play Flex conversations (transfers, parks, cancels) at a rate against running batons and
    /// the Twilio stand-in, and check every expected Twilio call was made exactly once.
    LoadgenE2e(Box<e2e::E2eArgs>),
    /// Load a year of hops into a fresh database and time every transfer-history query on it.
    BenchHistory(history_bench::HistoryBenchArgs),
    /// Load a year of hops with what the ops console reads about them into a fresh database,
    /// and time every `/api/v1` call of the console's pages on it.
    BenchConsole(console_bench::ConsoleBenchArgs),
}

fn failure(e: anyhow::Error) -> ExitCode {
    eprintln!("baton-load: {e:#}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Loadgen(args) => match loadgen::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failure(e),
        },
        Command::LoadgenE2e(args) => match e2e::run(*args).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => failure(e),
        },
        Command::BenchHistory(args) => match history_bench::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failure(e),
        },
        Command::BenchConsole(args) => match console_bench::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failure(e),
        },
    }
}
