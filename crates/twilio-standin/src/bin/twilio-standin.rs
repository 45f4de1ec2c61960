//! `twilio-standin`: the Twilio stand-in as a process, for load runs.
//!
//! ```text
//! twilio-standin --listen 127.0.0.1:4010 --account-sid AC… --auth-token … --workspace-sid WS… \
//!     [--seed 42] [--rate-limit 0.01 --retry-after 1] [--server-error 0.01] [--unavailable 0.01] \
//!     [--timeout 0.001 --timeout-after-apply 0.001 --timeout-delay-ms 10000] [--reset 0.001] \
//!     [--error-after-apply 0.01] [--fault-path-prefix /v1/Workspaces] [--fault-methods POST,DELETE] \
//!     [--generate-events] [--callback-url http://127.0.0.1:8080/webhooks/taskrouter] \
//!     [--auto-offer] [--reject-reclose] [--workers 4] [--log-limit 10000] \
//!     [--control-listen 127.0.0.1:4011]
//! ```
//!
//! It prints `twilio-standin listening on http://ADDR` (and `twilio-standin control on
//! http://ADDR` with `--control-listen`: seeding and the request log over HTTP, see
//! `twilio_standin::control`) and serves until Ctrl-C / SIGTERM.

use clap::Parser;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use twilio_standin::{Faults, RecloseChannel, StandIn, StandInConfig};

#[derive(Debug, Parser)]
#[command(
    name = "twilio-standin",
    about = "A stand-in for the Twilio REST APIs baton calls"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "STANDIN_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    #[arg(
        long,
        env = "TWILIO_ACCOUNT_SID",
        default_value = "AC00000000000000000000000000000001"
    )]
    account_sid: String,
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        default_value = "0123456789abcdef0123456789abcdef"
    )]
    auth_token: String,
    #[arg(
        long,
        env = "TWILIO_WORKSPACE_SID",
        default_value = "WS00000000000000000000000000000001"
    )]
    workspace_sid: String,
    /// Seed of the fault and SID generators.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Probability of 429 + Retry-After (code 20429), not processed.
    #[arg(long, default_value_t = 0.0)]
    rate_limit: f64,
    /// Retry-After seconds on a 429.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Probability of 500 (code 20500) before processing.
    #[arg(long, default_value_t = 0.0)]
    server_error: f64,
    /// Probability of 503 (code 20503) before processing.
    #[arg(long, default_value_t = 0.0)]
    unavailable: f64,
    /// Probability of holding the request for --timeout-delay-ms then dropping it, unprocessed.
    #[arg(long, default_value_t = 0.0)]
    timeout: f64,
    /// Probability of processing, then holding and dropping the connection.
    #[arg(long, default_value_t = 0.0)]
    timeout_after_apply: f64,
    #[arg(long, default_value_t = 10_000)]
    timeout_delay_ms: u64,
    /// Probability of dropping the connection at once, unprocessed.
    #[arg(long, default_value_t = 0.0)]
    reset: f64,
    /// Probability of processing, then answering 500 (code 20500).
    #[arg(long, default_value_t = 0.0)]
    error_after_apply: f64,
    /// Milliseconds added before every answer (Twilio's own response time).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Up to this many more milliseconds, uniformly at random.
    #[arg(long, default_value_t = 0)]
    latency_jitter_ms: u64,
    /// Only requests under this path prefix draw faults.
    #[arg(long)]
    fault_path_prefix: Option<String>,
    /// Only these methods draw faults, e.g. `POST,DELETE` (default: all).
    #[arg(long, value_delimiter = ',')]
    fault_methods: Vec<String>,
    /// Append TaskRouter events to the Events list as state changes.
    #[arg(long)]
    generate_events: bool,
    /// The Workspace EventCallbackUrl: every TaskRouter event is POSTed there, signed with the
    /// auth token (plain http).
    #[arg(long, env = "STANDIN_CALLBACK_URL")]
    callback_url: Option<String>,
    /// Offer each new task at once to the worker its attributes name, or to the first available
    /// worker.
    #[arg(long)]
    auto_offer: bool,
    /// Closing a closed interaction channel answers 400 / 80906 instead of 200.
    #[arg(long)]
    reject_reclose: bool,
    /// actix worker threads.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Requests kept in the in-memory log.
    #[arg(long, default_value_t = 10_000)]
    log_limit: usize,
    /// Serve the control routes (seeding, the request log) on this address; loopback only, as
    /// they need no auth.
    #[arg(long)]
    control_listen: Option<SocketAddr>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let config = StandInConfig {
        account_sid: args.account_sid,
        auth_token: args.auth_token,
        workspace_sid: args.workspace_sid,
        seed: args.seed,
        faults: Faults {
            rate_limit: args.rate_limit,
            retry_after_secs: args.retry_after,
            server_error: args.server_error,
            unavailable: args.unavailable,
            timeout: args.timeout,
            timeout_after_apply: args.timeout_after_apply,
            timeout_delay: Duration::from_millis(args.timeout_delay_ms),
            reset: args.reset,
            error_after_apply: args.error_after_apply,
            latency: Duration::from_millis(args.latency_ms),
            latency_jitter: Duration::from_millis(args.latency_jitter_ms),
            path_prefix: args.fault_path_prefix,
            methods: args.fault_methods,
        },
        generate_events: args.generate_events,
        callback_url: args.callback_url,
        auto_offer: args.auto_offer,
        reclose_channel: if args.reject_reclose {
            RecloseChannel::Reject
        } else {
            RecloseChannel::Ok
        },
        workers: args.workers,
        log_limit: args.log_limit,
        ..StandInConfig::default()
    };
    let standin = match StandIn::start_at(config, args.listen).await {
        Ok(standin) => standin,
        Err(error) => {
            eprintln!("twilio-standin: {error}");
            std::process::exit(1);
        }
    };
    if args.control_listen.is_some_and(|a| !a.ip().is_loopback()) {
        eprintln!("twilio-standin: --control-listen must be a loopback address (it has no auth)");
        std::process::exit(2);
    }
    println!("twilio-standin listening on {}", standin.base_url());
    let standin = Arc::new(standin);
    let control = match args.control_listen {
        Some(addr) => match twilio_standin::control::serve(standin.clone(), addr) {
            Ok((bound, handle)) => {
                println!("twilio-standin control on http://{bound}");
                Some(handle)
            }
            Err(error) => {
                eprintln!("twilio-standin: control: {error}");
                std::process::exit(1);
            }
        },
        None => None,
    };
    wait_for_shutdown().await;
    if let Some(control) = control {
        control.stop(false).await;
    }
    drop(standin);
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
