//! `baton-load loadgen-e2e`: the end-to-end load. Customer conversations arrive at a fixed rate and
//! run their whole life as Flex would report it — signed TaskRouter callbacks and Conversations
//! webhooks with consistent SIDs and attributes — while baton's outbound calls go to the Twilio
//! stand-in (`twilio-standin --control-listen`), which holds the matching state. At the end the
//! stand-in's request log is checked: every call baton should make was made exactly once.
//!
//! Per conversation (SMS, Flex Conversations), over `--conversation-secs`:
//! - **transfer** (the rest): task A created and accepted by one agent; Flex's native cold
//!   transfer to a second agent (task B, its `transfer_sid`, `previous_task_sid`,
//!   `transferTargetSid`, no Insights `conversation_id`), accepted, A's agent left in;
//!   the agent ends the chat (Flex closes the interaction channel, then B wraps up and
//!   completes). baton closes A's agent participant once and stamps B's Insights linkage once,
//!   and closes nothing else.
//! - **park** (`--park-percent`): the same, then B is parked through `POST /api/v1/parks` and
//!   the customer writes: one park webhook, B's participant closed, one resume invite (task C,
//!   played to the end), the webhook removed.
//! - **canceled** (`--cancel-percent`): task A canceled before anyone accepts it: after
//!   `BATON_ORPHAN_GRACE` baton closes the orphaned interaction channel once.
//!
//! What Twilio itself would report after baton's calls is sent when the stand-in's log shows
//! the call applied (a closed participant's task completing, a resume invite's task, a closed
//! channel's conversation), so effects follow their causes as they do in production.
//! Traffic goes only to loopback addresses, and the run is bounded in conversations and time.
//!
//! By job: [`plan`] plans the conversations and seeds them into the stand-in, [`player`] plays
//! them against baton, [`checker`] reads the stand-in's log and answers for Twilio, [`report`]
//! compares the calls made with the calls expected.

mod checker;
mod plan;
mod player;
mod report;

use crate::http1;
use crate::latency::latency_histogram;
use crate::signing::signing_token;
use anyhow::{bail, Context};
use checker::{expected_calls, tail, CallKind};
use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::time::sleep_until;
use url::Url;

/// Most conversations one run may start.
const MAX_CONVERSATIONS: u64 = 1_000_000;
/// How often the stand-in's request log is read.
const TAIL_EVERY: Duration = Duration::from_millis(100);
/// After the last expected call, how long the log must stay quiet (late duplicates show here).
const QUIET: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// Base URLs of the baton processes under load (comma-separated; loopback only). Requests
    /// are spread over them in turn.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    pub targets: Vec<String>,
    /// The base URL baton validates signatures against (BATON_PUBLIC_URL, the same for every
    /// process); defaults to the first target.
    #[arg(long, env = "BATON_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Auth token to sign with (the first of a comma-separated list).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: String,
    /// baton's ops token, for `POST /api/v1/parks`.
    #[arg(long, env = "BATON_OPS_TOKEN", hide_env_values = true)]
    pub ops_token: String,
    #[arg(
        long,
        env = "TWILIO_ACCOUNT_SID",
        default_value = "AC00000000000000000000000000000001"
    )]
    pub account_sid: String,
    /// The stand-in's control address (`twilio-standin --control-listen`).
    #[arg(long, default_value = "http://127.0.0.1:4011")]
    pub standin_control: String,
    /// The stand-in's Twilio API (baton's TWILIO_API_BASE_URL), where Flex closes a chat that
    /// ends.
    #[arg(long, default_value = "http://127.0.0.1:4010")]
    pub standin: String,
    /// Conversations started per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds during which conversations start.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// How long one conversation lasts, first event to last.
    #[arg(long, default_value_t = 4.0)]
    pub conversation_secs: f64,
    /// Share of conversations parked and resumed (percent).
    #[arg(long, default_value_t = 20)]
    pub park_percent: u32,
    /// Share of conversations canceled before an agent accepts (percent): orphan closes.
    #[arg(long, default_value_t = 10)]
    pub cancel_percent: u32,
    /// Agents (workers) the conversations are spread over.
    #[arg(long, default_value_t = 200)]
    pub agents: usize,
    /// Most requests to baton in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// After the last conversation started, at most this long to wait for every expected call.
    #[arg(long, default_value_t = 120)]
    pub drain_secs: u64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Transfer,
    Park,
    Canceled,
}

#[derive(Debug, Clone, Deserialize)]
struct Worker {
    sid: String,
    friendly_name: String,
}

#[derive(Debug, Deserialize)]
struct Setup {
    workers: Vec<Worker>,
    workflow_sid: String,
    task_queue_sid: String,
    task_queue_name: String,
    workspace_sid: String,
}

/// A task as its callbacks describe it.
#[derive(Debug, Clone)]
struct TaskPlan {
    sid: String,
    /// TaskAttributes, serialized once.
    attributes: String,
    /// The reservation the agent accepts, and the agent.
    reservation_sid: String,
    worker: Worker,
}

/// One conversation and the SIDs it uses.
#[derive(Debug)]
struct Conversation {
    kind: Kind,
    ch: String,
    customer: String,
    kd: String,
    uo: String,
    a: TaskPlan,
    b: Option<TaskPlan>,
    /// The agent participants (`UT…`) of A and B.
    participant_a: Option<String>,
    participant_b: Option<String>,
    /// Event times strictly increase within a conversation.
    last_ms: AtomicI64,
    /// When its first event was sent (`TaskAge` counts from there).
    started_ms: AtomicI64,
}

impl Conversation {
    fn next_ms(&self) -> i64 {
        let now = now_ms();
        let mut last = self.last_ms.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last_ms
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn random_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::thread_rng().gen::<u128>())
}

/// Calls made and attempts refused, per call and SID.
#[derive(Debug, Default)]
struct Seen {
    applied: HashMap<(CallKind, String), u64>,
    /// Refused attempts by HTTP status (retried by baton).
    refused: HashMap<CallKind, BTreeMap<u16, u64>>,
    reads: u64,
    last_id: u64,
    last_write: Option<Instant>,
}

/// Requests to baton: acknowledged latency and answers.
#[derive(Debug)]
struct Sent {
    histogram: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

struct Run {
    client: reqwest::Client,
    /// Connections for the callbacks, the bulk of the load (see [`http1`]).
    callbacks: http1::Pool,
    targets: Vec<String>,
    public_url: String,
    token: String,
    ops_token: String,
    account_sid: String,
    control: String,
    /// The stand-in's Twilio API, which Flex's own calls go to.
    standin: String,
    /// Channels Flex closed itself (their first close in the log is Flex's, not baton's).
    flex_closes: Mutex<std::collections::HashSet<String>>,
    setup: Setup,
    conversation_secs: f64,
    permits: Semaphore,
    next_target: AtomicUsize,
    sent: Mutex<Sent>,
    seen: Mutex<Seen>,
    /// Conversations by the SIDs the log names.
    by_participant: HashMap<String, (Arc<Conversation>, bool)>,
    by_channel: HashMap<String, Arc<Conversation>>,
    /// Reactions and conversations still running.
    running: AtomicUsize,
    events: AtomicU64,
    failures: Mutex<Vec<String>>,
    stop_tailing: AtomicBool,
}

fn loopback(raw: &str, what: &str) -> anyhow::Result<String> {
    let url = Url::parse(raw).with_context(|| format!("{what} {raw:?} is not a URL"))?;
    match url.host_str() {
        Some("127.0.0.1" | "localhost" | "[::1]") => {}
        _ => bail!("{what} {raw:?} is not a loopback address; load goes to loopback only"),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub async fn run(args: E2eArgs) -> anyhow::Result<bool> {
    let targets = args
        .targets
        .iter()
        .map(|t| loopback(t, "--targets"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if targets.is_empty() {
        bail!("--targets is empty");
    }
    let public_url = match &args.public_url {
        Some(p) => Url::parse(p)
            .context("--public-url is not a URL")?
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        None => targets[0].clone(),
    };
    let control = loopback(&args.standin_control, "--standin-control")?;
    let standin = loopback(&args.standin, "--standin")?;
    let token = signing_token(&args.auth_token)?;
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(args.rate) || !positive(args.conversation_secs) {
        bail!("--rate and --conversation-secs must be positive");
    }
    if args.park_percent + args.cancel_percent > 100 {
        bail!("--park-percent + --cancel-percent must be at most 100");
    }
    let count = (args.rate * args.duration_secs as f64).round() as u64;
    if count == 0 || count > MAX_CONVERSATIONS {
        bail!("--rate × --duration-secs must be between 1 and {MAX_CONVERSATIONS} conversations");
    }
    if args.agents < 2 || args.connections == 0 {
        bail!("--agents must be at least 2 and --connections at least 1");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()?;

    let setup: Setup = client
        .post(format!("{control}/setup"))
        .json(&json!({"workers": args.agents}))
        .send()
        .await
        .context("the stand-in's control address does not answer")?
        .error_for_status()?
        .json()
        .await?;
    let conversations = plan::seed(&client, &control, &setup, &args, count).await?;
    let mut by_participant = HashMap::new();
    let mut by_channel = HashMap::new();
    for c in &conversations {
        if let Some(ut) = &c.participant_a {
            by_participant.insert(ut.clone(), (c.clone(), false));
        }
        if let Some(ut) = &c.participant_b {
            by_participant.insert(ut.clone(), (c.clone(), true));
        }
        by_channel.insert(c.uo.clone(), c.clone());
    }
    let run = Arc::new(Run {
        client,
        callbacks: http1::Pool::default(),
        targets,
        public_url,
        token,
        ops_token: args.ops_token.clone(),
        account_sid: args.account_sid.clone(),
        control,
        standin,
        flex_closes: Mutex::new(Default::default()),
        setup,
        conversation_secs: args.conversation_secs,
        permits: Semaphore::new(args.connections),
        next_target: AtomicUsize::new(0),
        sent: Mutex::new(Sent {
            histogram: latency_histogram(),
            statuses: BTreeMap::new(),
        }),
        seen: Mutex::new(Seen::default()),
        by_participant,
        by_channel,
        running: AtomicUsize::new(0),
        events: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
        stop_tailing: AtomicBool::new(false),
    });
    // What baton's log starts with (nothing, on a fresh stand-in) is not this run's.
    let tailer = tokio::spawn(tail(run.clone()));

    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    for (i, conversation) in conversations.iter().enumerate() {
        let at = started + interval.mul_f64(i as f64);
        sleep_until(tokio::time::Instant::from_std(at)).await;
        run.running.fetch_add(1, Ordering::SeqCst);
        let (run, conversation) = (run.clone(), conversation.clone());
        tokio::spawn(async move {
            player::play(&run, &conversation, at).await;
            run.running.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let load_secs = started.elapsed().as_secs_f64();

    // Drain: every conversation played out, every expected call seen, then a quiet log.
    let expected = expected_calls(&conversations);
    let deadline = Instant::now()
        + Duration::from_secs(args.drain_secs)
        + Duration::from_secs_f64(args.conversation_secs);
    loop {
        let done = run.running.load(Ordering::SeqCst) == 0 && {
            let seen = lock(&run.seen);
            expected.iter().all(|k| seen.applied.contains_key(k))
                && seen.last_write.map_or(true, |t| t.elapsed() >= QUIET)
        };
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
    let total_secs = started.elapsed().as_secs_f64();
    run.stop_tailing.store(true, Ordering::SeqCst);
    tailer.await??;

    let report = report::report(&run, &conversations, &expected, load_secs, total_secs);
    let ok = report.ok;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report::print_report(&report);
    }
    Ok(ok)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert_eq!(
            loopback("http://127.0.0.1:8080/", "--targets").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(loopback("http://localhost:1", "--targets").is_ok());
        assert!(loopback("http://10.0.0.1:8080", "--targets").is_err());
        assert!(loopback("https://api.twilio.com", "--targets").is_err());
    }
}
