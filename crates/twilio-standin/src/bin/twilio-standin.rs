//! `twilio-standin`: the Twilio stand-in as a process, for load runs.
//!
//! ```text
//! twilio-standin --listen 127.0.0.1:4010 --account-sid AC… --auth-token … --workspace-sid WS… \
//!     [--seed 42] [--rate-limit 0.01 --retry-after 1] [--server-error 0.01] [--unavailable 0.01] \
//!     [--timeout 0.001 --timeout-after-apply 0.001 --timeout-delay-ms 10000] [--reset 0.001] \
//!     [--error-after-apply 0.01] [--fault-path-prefix /v1/Workspaces] [--fault-methods POST,DELETE] \
//!     [--generate-events] [--callback-url http://127.0.0.1:8080/webhooks/taskrouter] \
//!     [--auto-offer] [--reject-reclose] [--workers 4] [--log-limit 10000] \
//!     [--control-listen 127.0.0.1:4011] [--address-file PATH] \
//!     [--demo-baton http://127.0.0.1:8080 --demo-speed 1 --demo-customers N]
//! ```
//!
//! It prints `twilio-standin listening on http://ADDR` (and `twilio-standin control on
//! http://ADDR` with `--control-listen`: seeding and the request log over HTTP, see
//! `twilio_standin::control`) and serves until Ctrl-C / SIGTERM. With `--demo-baton` it also
//! plays the demo contact centre against that baton (`twilio_standin::demo`; `scripts/run`
//! without Twilio settings starts it so).

use clap::Parser;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use twilio_standin::demo::{Demo, DemoConfig};
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
    /// Once listening, write the bound address (`http://ADDR`) to this file: how a script that
    /// started it on port 0 learns where it is.
    #[arg(long)]
    address_file: Option<std::path::PathBuf>,
    /// Play the demo contact centre against the baton at this URL (its BATON_PUBLIC_URL;
    /// loopback only): callbacks go there, signed with the auth token.
    #[arg(long)]
    demo_baton: Option<String>,
    /// baton's ops token, for the demo's parks.
    #[arg(long, env = "BATON_OPS_TOKEN", hide_env_values = true)]
    demo_ops_token: Option<String>,
    /// The demo's pace: 1 is a new customer every 4 s, 2 twice as fast.
    #[arg(long, default_value_t = 1.0)]
    demo_speed: f64,
    /// Stop after this many demo customers (default: until stopped).
    #[arg(long)]
    demo_customers: Option<usize>,
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
    if let Some(path) = &args.address_file {
        if let Err(error) = write_address(path, &standin.base_url()) {
            eprintln!("twilio-standin: --address-file {}: {error}", path.display());
            std::process::exit(1);
        }
    }
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
    let asked = DemoArgs {
        baton: args.demo_baton,
        ops_token: args.demo_ops_token,
        speed: args.demo_speed,
        customers: args.demo_customers,
    };
    match demo(&standin, asked) {
        Ok(Some(demo)) => {
            tokio::select! {
                summary = demo.run() => {
                    for failure in &summary.failures {
                        eprintln!("twilio-standin: demo: {failure}");
                    }
                }
                _ = wait_for_shutdown() => {}
            }
        }
        Ok(None) => wait_for_shutdown().await,
        Err(problem) => {
            eprintln!("twilio-standin: {problem}");
            std::process::exit(2);
        }
    }
    if let Some(control) = control {
        control.stop(false).await;
    }
    drop(standin);
}

struct DemoArgs {
    baton: Option<String>,
    ops_token: Option<String>,
    speed: f64,
    customers: Option<usize>,
}

/// The demo the arguments ask for, if any.
fn demo(standin: &Arc<StandIn>, args: DemoArgs) -> Result<Option<Arc<Demo>>, String> {
    let Some(baton) = args.baton else {
        return Ok(None);
    };
    let loopback = url::Url::parse(&baton)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| matches!(h.as_str(), "127.0.0.1" | "localhost" | "[::1]"));
    if !loopback {
        return Err(format!("--demo-baton {baton:?} is not a loopback http URL"));
    }
    let ops_token = args
        .ops_token
        .ok_or("--demo-baton needs baton's ops token (BATON_OPS_TOKEN)")?;
    let config = DemoConfig {
        speed: args.speed,
        customers: args.customers,
        ..DemoConfig::new(baton, ops_token)
    };
    Ok(Some(Demo::new(standin.clone(), config)))
}

/// Writes the address whole or not at all (a reader polling for the file never sees half).
fn write_address(path: &std::path::Path, address: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{address}\n"))?;
    std::fs::rename(&partial, path)
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
