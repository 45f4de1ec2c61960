//! `baton loadgen-e2e`: the end-to-end load. Customer conversations arrive at a fixed rate and
//! run their whole life as Flex would report it — signed TaskRouter callbacks and Conversations
//! webhooks with consistent SIDs and attributes — while baton's outbound calls go to the Twilio
//! stand-in (`twilio-standin --control-listen`), which holds the matching state. At the end the
//! stand-in's request log is checked: every call baton should make was made exactly once.
//!
//! Per conversation (SMS, Flex Conversations), over `--conversation-secs`:
//! - **transfer** (the rest): task A created and accepted by one agent; a transfer to a second
//!   agent the way flex-project-template's conversation transfer makes it (task B, its
//!   `transferTargetSid`, `workerSidsInConversation`, no Insights `conversation_id`), accepted;
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

use super::http1;
use super::loadgen::{latency_histogram, signed_form, signing_token, Latency};
use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::time::sleep_until;
use url::Url;

/// Most conversations one run may start.
const MAX_CONVERSATIONS: u64 = 1_000_000;
/// Conversations seeded into the stand-in per request.
const SEED_BATCH: usize = 500;
/// How often the stand-in's request log is read.
const TAIL_EVERY: Duration = Duration::from_millis(100);
/// After the last expected call, how long the log must stay quiet (late duplicates show here).
const QUIET: Duration = Duration::from_secs(3);
/// The stand-in's Conversations service and messaging service (its defaults).
const CHAT_SERVICE_SID: &str = "IS00000000000000000000000000000001";
const MESSAGING_SERVICE_SID: &str = "MG00000000000000000000000000000001";

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

#[derive(Debug, Deserialize)]
struct Seeded {
    interaction_sid: String,
    channel_sid: String,
    participants: BTreeMap<String, String>,
    reservations: BTreeMap<String, String>,
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

/// What a call in the stand-in's log was, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum CallKind {
    /// An agent's interaction participant closed (transfer finished, parking agent leaves).
    CloseParticipant,
    /// Insights linkage written on a task.
    InsightsStamp,
    /// An orphaned interaction channel closed.
    CloseChannel,
    ParkWebhook,
    ResumeInvite,
    RemoveParkWebhook,
    CompleteTask,
    CloseConversation,
    /// Flex's own channel close when an agent ends a chat (the load's, not baton's).
    FlexEndsChat,
    UpdateReservation,
    UpdateWorker,
    CreateTask,
    Other,
}

impl CallKind {
    const REPORTED: [CallKind; 6] = [
        CallKind::CloseParticipant,
        CallKind::InsightsStamp,
        CallKind::CloseChannel,
        CallKind::ParkWebhook,
        CallKind::ResumeInvite,
        CallKind::RemoveParkWebhook,
    ];

    fn name(&self) -> &'static str {
        match self {
            CallKind::CloseParticipant => "close agent participant",
            CallKind::InsightsStamp => "insights stamp",
            CallKind::CloseChannel => "close orphaned channel",
            CallKind::ParkWebhook => "park webhook",
            CallKind::ResumeInvite => "resume invite",
            CallKind::RemoveParkWebhook => "remove park webhook",
            CallKind::CompleteTask => "complete task",
            CallKind::CloseConversation => "close conversation",
            CallKind::FlexEndsChat => "(flex ends chat)",
            CallKind::UpdateReservation => "update reservation",
            CallKind::UpdateWorker => "update worker",
            CallKind::CreateTask => "create task",
            CallKind::Other => "other write",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Logged {
    id: u64,
    method: String,
    path: String,
    status: Option<u16>,
    processed_status: Option<u16>,
    #[serde(default)]
    form: Vec<(String, String)>,
}

impl Logged {
    fn applied(&self) -> bool {
        self.processed_status
            .is_some_and(|s| (200..300).contains(&s))
    }

    fn form(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The write this request is, with the SID it acts on; `None` for reads.
    fn classify(&self) -> Option<(CallKind, String)> {
        if self.method == "GET" {
            return None;
        }
        let parts: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let target = |i: usize| parts.get(i).map(|s| (*s).to_owned()).unwrap_or_default();
        let post = self.method == "POST";
        let kind = match parts.as_slice() {
            ["v1", "Interactions", _, "Channels", _, "Participants", _] if post => {
                (CallKind::CloseParticipant, target(6))
            }
            ["v1", "Interactions", _, "Channels", _, "Invites"] if post => {
                (CallKind::ResumeInvite, target(4))
            }
            ["v1", "Interactions", _, "Channels", _] if post => (CallKind::CloseChannel, target(4)),
            ["v1", "Workspaces", _, "Tasks"] if post => (CallKind::CreateTask, String::new()),
            ["v1", "Workspaces", _, "Tasks", _] if post => {
                if self.form("AssignmentStatus").is_some() {
                    (CallKind::CompleteTask, target(4))
                } else {
                    (CallKind::InsightsStamp, target(4))
                }
            }
            ["v1", "Workspaces", _, "Tasks", _, "Reservations", _] if post => {
                (CallKind::UpdateReservation, target(6))
            }
            ["v1", "Workspaces", _, "Workers", _] if post => (CallKind::UpdateWorker, target(4)),
            ["v1", "Conversations", _, "Webhooks"] if post => (CallKind::ParkWebhook, target(2)),
            ["v1", "Conversations", _, "Webhooks", _] if self.method == "DELETE" => {
                (CallKind::RemoveParkWebhook, target(2))
            }
            ["v1", "Conversations", _] if post => (CallKind::CloseConversation, target(2)),
            _ => (CallKind::Other, format!("{} {}", self.method, self.path)),
        };
        Some(kind)
    }
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
    let conversations = seed(&client, &control, &setup, &args, count).await?;
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
            play(&run, &conversation, at).await;
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

    let report = report(&run, &conversations, &expected, load_secs, total_secs);
    let ok = report.ok;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ok)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Plans the conversations and seeds their state into the stand-in.
async fn seed(
    client: &reqwest::Client,
    control: &str,
    setup: &Setup,
    args: &E2eArgs,
    count: u64,
) -> anyhow::Result<Vec<Arc<Conversation>>> {
    let workers = &setup.workers;
    if workers.len() < 2 {
        bail!("the stand-in seeded fewer than 2 workers");
    }
    let mut planned = Vec::with_capacity(count as usize);
    for index in 0..count {
        let kind = kind_of(index, args.cancel_percent, args.park_percent);
        let alice = workers[(2 * index as usize) % workers.len()].clone();
        let bob = workers[(2 * index as usize + 1) % workers.len()].clone();
        let customer = format!("+1415{:07}", index % 10_000_000);
        planned.push((index, kind, random_sid("CH"), customer, alice, bob));
    }
    let mut conversations = Vec::with_capacity(planned.len());
    for chunk in planned.chunks(SEED_BATCH) {
        let specs: Vec<Value> = chunk
            .iter()
            .map(|(index, kind, ch, customer, alice, bob)| {
                let a = json!({"sid": task_sid(*index, 'a'), "agent": *kind != Kind::Canceled,
                    "status": if *kind == Kind::Canceled { "canceled" } else { "assigned" },
                    "worker_sid": (*kind != Kind::Canceled).then_some(&alice.sid),
                    "task_channel": "chat", "attributes": customer_attributes(*index, customer)});
                let mut tasks = vec![a];
                if *kind != Kind::Canceled {
                    tasks.push(json!({"sid": task_sid(*index, 'b'), "agent": true,
                        "status": "assigned", "worker_sid": bob.sid, "task_channel": "chat",
                        "attributes": transfer_attributes(*index, customer, alice, bob)}));
                }
                json!({"conversation_sid": ch, "customer": customer, "proxy": "+18005550100",
                    "channel_type": "sms", "tasks": tasks})
            })
            .collect();
        let seeded: Vec<Seeded> = client
            .post(format!("{control}/conversations"))
            .json(&specs)
            .send()
            .await?
            .error_for_status()
            .context("seeding conversations into the stand-in")?
            .json()
            .await?;
        for ((index, kind, ch, customer, alice, bob), s) in chunk.iter().zip(seeded) {
            let keys = |mut v: Value| {
                v["conversationSid"] = json!(ch);
                v["flexInteractionSid"] = json!(s.interaction_sid);
                v["flexInteractionChannelSid"] = json!(s.channel_sid);
                v.to_string()
            };
            let a_sid = task_sid(*index, 'a');
            let b_sid = task_sid(*index, 'b');
            let a = TaskPlan {
                attributes: keys(customer_attributes(*index, customer)),
                reservation_sid: s
                    .reservations
                    .get(&a_sid)
                    .cloned()
                    .unwrap_or_else(|| random_sid("WR")),
                worker: alice.clone(),
                sid: a_sid.clone(),
            };
            let b = (*kind != Kind::Canceled).then(|| TaskPlan {
                attributes: keys(transfer_attributes(*index, customer, alice, bob)),
                reservation_sid: s
                    .reservations
                    .get(&b_sid)
                    .cloned()
                    .unwrap_or_else(|| random_sid("WR")),
                worker: bob.clone(),
                sid: b_sid.clone(),
            });
            conversations.push(Arc::new(Conversation {
                kind: *kind,
                ch: ch.clone(),
                customer: customer.clone(),
                kd: s.interaction_sid,
                uo: s.channel_sid,
                participant_a: s.participants.get(&a_sid).cloned(),
                participant_b: s.participants.get(&b_sid).cloned(),
                a,
                b,
                last_ms: AtomicI64::new(0),
                started_ms: AtomicI64::new(0),
            }));
        }
    }
    Ok(conversations)
}

/// The kinds spread evenly over the run: index × 37 visits every residue mod 100 once per 100
/// conversations.
fn kind_of(index: u64, cancel_percent: u32, park_percent: u32) -> Kind {
    let slot = (index * 37 % 100) as u32;
    if slot < cancel_percent {
        Kind::Canceled
    } else if slot < cancel_percent + park_percent {
        Kind::Park
    } else {
        Kind::Transfer
    }
}

/// Unique per run and conversation: the run's random high bits, the index, the task.
fn task_sid(index: u64, task: char) -> String {
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| rand::thread_rng().gen::<u64>());
    let which = if task == 'a' { 0xa } else { 0xb };
    format!("WT{run:016x}{index:015x}{which:x}")
}

/// What Flex puts on a customer's first task (an SMS conversation routed by the interaction).
fn customer_attributes(index: u64, customer: &str) -> Value {
    json!({
        "from": customer,
        "name": customer,
        "customerName": format!("Customer {index}"),
        "customerAddress": customer,
        "channelType": "sms",
        "direction": "inbound",
        "conversations": {"communication_channel": "sms", "direction": "inbound"},
    })
}

/// flex-project-template's conversation transfer to an agent: the original attributes, its
/// target fields, and (its known gap) no Insights `conversation_id`.
fn transfer_attributes(index: u64, customer: &str, from: &Worker, to: &Worker) -> Value {
    let mut attributes = customer_attributes(index, customer);
    attributes["transferTargetSid"] = json!(to.sid);
    attributes["transferTargetType"] = json!("worker");
    attributes["workerSidsInConversation"] = json!([from.sid]);
    attributes["ignoreWorkerContactUri"] = json!(format!("client:{}", from.friendly_name));
    attributes
}

impl Run {
    fn target(&self) -> &str {
        let n = self.next_target.fetch_add(1, Ordering::Relaxed);
        &self.targets[n % self.targets.len()]
    }

    /// POSTs a signed form to `path` (with `query`) of the next baton: Twilio's delivery,
    /// retried on a refused connection or a 5xx like the stand-in's callbacks.
    async fn deliver(&self, path_and_query: &str, pairs: Vec<(String, String)>, idem: bool) {
        let signed_url = format!("{}{path_and_query}", self.public_url);
        let (signature, body) = signed_form(&self.token, &signed_url, &pairs);
        let token = idem.then(|| random_sid("ID"));
        self.events.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..3 {
            let Ok(_permit) = self.permits.acquire().await else {
                return;
            };
            let mut headers = vec![
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", signature.as_str()),
                ("User-Agent", "TwilioProxy/1.1"),
            ];
            if let Some(token) = &token {
                headers.push(("I-Twilio-Idempotency-Token", token.as_str()));
            }
            let sent = Instant::now();
            let outcome = self
                .callbacks
                .post(
                    self.target(),
                    path_and_query,
                    &headers,
                    body.as_bytes(),
                    Duration::from_secs(30),
                )
                .await;
            let micros = sent.elapsed().as_micros() as u64;
            let (label, retry) = match outcome {
                Ok(status) => {
                    if (200..300).contains(&status) {
                        let _ = lock(&self.sent).histogram.record(micros.max(1));
                    }
                    (status.to_string(), status >= 500)
                }
                Err(http1::Failure::Timeout) => ("timeout".to_owned(), true),
                Err(http1::Failure::Connection(_)) => ("connection error".to_owned(), true),
            };
            *lock(&self.sent).statuses.entry(label).or_default() += 1;
            if !retry {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
        }
    }

    fn envelope(
        &self,
        c: &Conversation,
        event: &str,
        resource: (&str, &str),
        description: String,
    ) -> Vec<(String, String)> {
        let ms = c.next_ms();
        [
            ("AccountSid", self.account_sid.clone()),
            ("WorkspaceSid", self.setup.workspace_sid.clone()),
            ("WorkspaceName", "Flex Task Assignment".to_owned()),
            ("Sid", random_sid("EV")),
            ("EventType", event.to_owned()),
            ("EventDescription", description),
            ("ResourceType", resource.0.to_owned()),
            ("ResourceSid", resource.1.to_owned()),
            ("Timestamp", (ms / 1000).to_string()),
            ("TimestampMs", ms.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A task or reservation event of `task` in `status`, as TaskRouter sends it.
    async fn task_event(
        &self,
        c: &Conversation,
        task: &TaskPlan,
        event: &str,
        status: &str,
        extra: &[(&str, String)],
    ) {
        let reservation = event.starts_with("reservation.");
        let resource = if reservation {
            ("reservation", task.reservation_sid.as_str())
        } else {
            ("task", task.sid.as_str())
        };
        let mut pairs = self.envelope(c, event, resource, format!("{event} for {}", task.sid));
        let started = match c.started_ms.load(Ordering::Relaxed) {
            0 => {
                c.started_ms.store(now_ms(), Ordering::Relaxed);
                now_ms()
            }
            ms => ms,
        };
        let age = ((now_ms() - started) / 1000).max(0);
        let mut fields: Vec<(&str, String)> = vec![
            ("TaskSid", task.sid.clone()),
            ("TaskAttributes", task.attributes.clone()),
            ("TaskAssignmentStatus", status.to_owned()),
            ("TaskAge", age.to_string()),
            ("TaskPriority", "0".to_owned()),
            ("TaskChannelUniqueName", "chat".to_owned()),
            ("WorkflowSid", self.setup.workflow_sid.clone()),
            ("WorkflowName", "Assign to Anyone".to_owned()),
        ];
        if event != "task.created" {
            fields.push(("TaskQueueSid", self.setup.task_queue_sid.clone()));
            fields.push(("TaskQueueName", self.setup.task_queue_name.clone()));
        }
        if reservation {
            let w = &task.worker;
            fields.push(("ReservationSid", task.reservation_sid.clone()));
            fields.push(("WorkerSid", w.sid.clone()));
            fields.push(("WorkerName", w.friendly_name.clone()));
            fields.push((
                "WorkerAttributes",
                json!({"contact_uri": format!("client:{}", w.friendly_name)}).to_string(),
            ));
        }
        fields.extend(extra.iter().cloned());
        pairs.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        self.deliver("/webhooks/taskrouter", pairs, false).await;
    }

    /// A Conversations post-event webhook to `path_and_query`.
    async fn conversations_event(&self, c: &Conversation, path_and_query: &str, event: &str) {
        let ms = c.next_ms();
        let mut pairs: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.account_sid.clone()),
            ("EventType".into(), event.to_owned()),
            ("ChatServiceSid".into(), CHAT_SERVICE_SID.to_owned()),
            ("ConversationSid".into(), c.ch.clone()),
            (
                "MessagingServiceSid".into(),
                MESSAGING_SERVICE_SID.to_owned(),
            ),
        ];
        if event == "onMessageAdded" {
            pairs.extend([
                ("Source".into(), "SDK".into()),
                ("MessageSid".into(), random_sid("IM")),
                ("Index".into(), "1".into()),
                ("DateCreated".into(), iso(ms)),
                ("Body".into(), "I'm back".into()),
                ("Author".into(), c.customer.clone()),
                ("ParticipantSid".into(), random_sid("MB")),
                ("Attributes".into(), "{}".into()),
            ]);
        } else {
            pairs.extend([
                ("Source".into(), "API".into()),
                ("StateUpdated".into(), iso(ms)),
                ("StateFrom".into(), "active".into()),
                ("StateTo".into(), "closed".into()),
                ("Reason".into(), "API".into()),
            ]);
        }
        self.deliver(path_and_query, pairs, true).await;
    }

    /// A task's life from creation to an agent's acceptance.
    async fn routed(&self, c: &Conversation, task: &TaskPlan, step: Duration) {
        self.task_event(c, task, "task.created", "pending", &[])
            .await;
        self.task_event(c, task, "task-queue.entered", "pending", &[])
            .await;
        tokio::time::sleep(step).await;
        self.task_event(c, task, "reservation.created", "reserved", &[])
            .await;
        self.task_event(c, task, "reservation.accepted", "assigned", &[])
            .await;
    }

    /// The agent ends the chat as Flex does: the interaction channel closed through Twilio's
    /// API (its tasks wrap up), the conversation's closed webhook, then wrap-up and completion.
    async fn end_chat(&self, c: &Conversation, task: &TaskPlan, step: Duration) {
        lock(&self.flex_closes).insert(c.uo.clone());
        let closed = self
            .client
            .post(format!(
                "{}/v1/Interactions/{}/Channels/{}",
                self.standin, c.kd, c.uo
            ))
            .basic_auth(&self.account_sid, Some(&self.token))
            .form(&[("Status", "closed")])
            .send()
            .await;
        if !closed.is_ok_and(|r| r.status().is_success()) {
            lock(&self.failures).push(format!("Flex could not close channel {}", c.uo));
        }
        self.conversations_event(c, "/webhooks/conversations", "onConversationStateUpdated")
            .await;
        self.task_event(c, task, "reservation.wrapup", "wrapping", &[])
            .await;
        self.task_event(c, task, "task.wrapup", "wrapping", &[])
            .await;
        tokio::time::sleep(step).await;
        self.completed(c, task, "Task completed by the agent").await;
    }

    async fn completed(&self, c: &Conversation, task: &TaskPlan, reason: &str) {
        let reason = [("TaskCompletedReason", reason.to_owned())];
        self.task_event(c, task, "reservation.completed", "completed", &reason)
            .await;
        self.task_event(c, task, "task.completed", "completed", &reason)
            .await;
    }

    async fn park(&self, task: &TaskPlan) -> Result<String, String> {
        let response = self
            .client
            .post(format!("{}/api/v1/parks", self.target()))
            .bearer_auth(&self.ops_token)
            .json(
                &json!({"task_sid": task.sid, "notes": "waiting for the customer",
                "idempotency_key": format!("bench-park-{}", task.sid)}),
            )
            .send()
            .await
            .map_err(|e| format!("park {}: {e}", task.sid))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match body["park"]["park_id"].as_str() {
            Some(id) if status.is_success() => Ok(id.to_owned()),
            _ => Err(format!("park {}: HTTP {status} {body}", task.sid)),
        }
    }
}

/// One conversation's life from `t0`.
async fn play(run: &Run, c: &Conversation, t0: Instant) {
    let span = Duration::from_secs_f64(run.conversation_secs);
    let at = |f: f64| tokio::time::Instant::from_std(t0 + span.mul_f64(f));
    let step = span.mul_f64(0.05);
    let a = &c.a;
    if c.kind == Kind::Canceled {
        // The customer leaves before an agent accepts: offered, then canceled.
        run.task_event(c, a, "task.created", "pending", &[]).await;
        run.task_event(c, a, "task-queue.entered", "pending", &[])
            .await;
        sleep_until(at(0.2)).await;
        run.task_event(c, a, "reservation.created", "reserved", &[])
            .await;
        sleep_until(at(0.5)).await;
        let reason = [("TaskCanceledReason", "Customer left".to_owned())];
        run.task_event(c, a, "reservation.canceled", "canceled", &reason)
            .await;
        run.task_event(c, a, "task.canceled", "canceled", &reason)
            .await;
        return;
    }
    run.routed(c, a, step).await;
    let Some(b) = &c.b else {
        return;
    };
    sleep_until(at(0.3)).await;
    // baton finishes A when B is accepted; A's completion follows (see `react`).
    run.routed(c, b, step).await;
    if c.kind == Kind::Transfer {
        sleep_until(at(0.7)).await;
        run.end_chat(c, b, step).await;
        return;
    }
    sleep_until(at(0.5)).await;
    let park_id = match run.park(b).await {
        Ok(id) => id,
        Err(problem) => {
            lock(&run.failures).push(problem);
            return;
        }
    };
    sleep_until(at(0.65)).await;
    // The customer writes: the park's own conversation webhook.
    run.conversations_event(
        c,
        &format!("/webhooks/conversations?park={park_id}"),
        "onMessageAdded",
    )
    .await;
}

/// Reads the stand-in's request log as it grows, counts the writes, and sends what Twilio
/// would report after each of baton's calls.
async fn tail(run: Arc<Run>) -> anyhow::Result<()> {
    loop {
        let stopping = run.stop_tailing.load(Ordering::SeqCst);
        loop {
            let after = lock(&run.seen).last_id;
            #[derive(Deserialize)]
            struct Page {
                requests: Vec<Logged>,
            }
            let page: Page = run
                .client
                .get(format!("{}/requests?after={after}", run.control))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if page.requests.is_empty() {
                break;
            }
            for request in page.requests {
                observe(&run, request);
            }
        }
        if stopping {
            return Ok(());
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
}

fn observe(run: &Arc<Run>, request: Logged) {
    let mut call = request.classify();
    if let Some((CallKind::CloseChannel, uo)) = &call {
        // Flex ending a chat, not baton: once per channel it closed.
        if request.applied() && lock(&run.flex_closes).remove(uo) {
            call = Some((CallKind::FlexEndsChat, uo.clone()));
        }
    }
    {
        let mut seen = lock(&run.seen);
        seen.last_id = request.id;
        match &call {
            None => seen.reads += 1,
            Some((kind, target)) => {
                seen.last_write = Some(Instant::now());
                if request.applied() {
                    *seen
                        .applied
                        .entry((kind.clone(), target.clone()))
                        .or_default() += 1;
                } else {
                    *seen
                        .refused
                        .entry(kind.clone())
                        .or_default()
                        .entry(request.status.unwrap_or(0))
                        .or_default() += 1;
                }
            }
        }
    }
    let Some((kind, target)) = call else {
        return;
    };
    if !request.applied() {
        return;
    }
    let reaction = match kind {
        CallKind::CloseParticipant => run
            .by_participant
            .get(&target)
            .map(|(c, is_b)| Reaction::ParticipantClosed(c.clone(), *is_b)),
        CallKind::ResumeInvite => run
            .by_channel
            .get(&target)
            .map(|c| Reaction::Invited(c.clone())),
        CallKind::CloseChannel => run
            .by_channel
            .get(&target)
            .map(|c| Reaction::ChannelClosed(c.clone())),
        _ => None,
    };
    if let Some(reaction) = reaction {
        run.running.fetch_add(1, Ordering::SeqCst);
        let run = run.clone();
        tokio::spawn(async move {
            react(&run, reaction).await;
            run.running.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

enum Reaction {
    /// An agent's participant was closed: TaskRouter completes their task.
    ParticipantClosed(Arc<Conversation>, bool),
    /// A resume invite created a task: it is routed to the agent and handled to the end.
    Invited(Arc<Conversation>),
    /// The orphaned channel was closed: its conversation closes.
    ChannelClosed(Arc<Conversation>),
}

async fn react(run: &Run, reaction: Reaction) {
    match reaction {
        Reaction::ParticipantClosed(c, is_b) => {
            let task = if is_b { c.b.as_ref() } else { Some(&c.a) };
            if let Some(task) = task {
                run.completed(&c, task, "Interaction participant closed")
                    .await;
            }
        }
        Reaction::ChannelClosed(c) => {
            run.conversations_event(&c, "/webhooks/conversations", "onConversationStateUpdated")
                .await;
        }
        Reaction::Invited(c) => {
            let channel: Value = match run
                .client
                .get(format!("{}/channels/{}", run.control, c.uo))
                .send()
                .await
            {
                Ok(res) => res.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let Some(invite) = channel["invites"].as_array().and_then(|i| i.last()) else {
                return;
            };
            let (Some(sid), Some(bob)) = (invite["task_sid"].as_str(), c.b.as_ref()) else {
                return;
            };
            // Routing properties hold the attributes as a JSON string (or an object).
            let attributes = match &invite["routing"]["properties"]["attributes"] {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            let resumed = TaskPlan {
                sid: sid.to_owned(),
                attributes,
                reservation_sid: random_sid("WR"),
                worker: bob.worker.clone(),
            };
            let step = Duration::from_secs_f64(run.conversation_secs * 0.05);
            run.routed(&c, &resumed, step).await;
            tokio::time::sleep(step * 2).await;
            run.end_chat(&c, &resumed, step).await;
        }
    }
}

fn expected_calls(conversations: &[Arc<Conversation>]) -> Vec<(CallKind, String)> {
    let mut expected = Vec::new();
    for c in conversations {
        match c.kind {
            Kind::Canceled => expected.push((CallKind::CloseChannel, c.uo.clone())),
            Kind::Transfer | Kind::Park => {
                if let Some(ut) = &c.participant_a {
                    expected.push((CallKind::CloseParticipant, ut.clone()));
                }
                if let Some(b) = &c.b {
                    expected.push((CallKind::InsightsStamp, b.sid.clone()));
                }
                if c.kind == Kind::Park {
                    if let Some(ut) = &c.participant_b {
                        expected.push((CallKind::CloseParticipant, ut.clone()));
                    }
                    expected.push((CallKind::ParkWebhook, c.ch.clone()));
                    expected.push((CallKind::ResumeInvite, c.uo.clone()));
                    expected.push((CallKind::RemoveParkWebhook, c.ch.clone()));
                }
            }
        }
    }
    expected
}

#[derive(Debug, Serialize)]
struct CallRow {
    call: &'static str,
    expected: u64,
    made: u64,
    missing: u64,
    duplicated: u64,
    unexpected: u64,
    refused_attempts: u64,
    /// HTTP status (0: no answer) → refused attempts.
    refused_statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    conversations: u64,
    by_kind: BTreeMap<String, u64>,
    load_seconds: f64,
    total_seconds: f64,
    conversations_per_second: f64,
    requests_sent: u64,
    acknowledged: u64,
    acknowledged_per_second: f64,
    statuses: BTreeMap<String, u64>,
    ack_latency: Latency,
    calls: Vec<CallRow>,
    twilio_reads: u64,
    failures: Vec<String>,
}

fn report(
    run: &Run,
    conversations: &[Arc<Conversation>],
    expected: &[(CallKind, String)],
    load_secs: f64,
    total_secs: f64,
) -> Report {
    let seen = lock(&run.seen);
    let sent = lock(&run.sent);
    let expected_set: std::collections::HashSet<&(CallKind, String)> = expected.iter().collect();
    let mut rows: BTreeMap<CallKind, CallRow> = BTreeMap::new();
    let row = |rows: &mut BTreeMap<CallKind, CallRow>, kind: &CallKind| {
        if !rows.contains_key(kind) {
            rows.insert(
                kind.clone(),
                CallRow {
                    call: kind.name(),
                    expected: 0,
                    made: 0,
                    missing: 0,
                    duplicated: 0,
                    unexpected: 0,
                    refused_attempts: 0,
                    refused_statuses: BTreeMap::new(),
                },
            );
        }
    };
    for kind in CallKind::REPORTED {
        row(&mut rows, &kind);
    }
    for key in expected {
        row(&mut rows, &key.0);
        if let Some(r) = rows.get_mut(&key.0) {
            r.expected += 1;
            match seen.applied.get(key) {
                None => r.missing += 1,
                Some(1) => {}
                Some(n) => r.duplicated += n - 1,
            }
        }
    }
    for (key, n) in &seen.applied {
        if key.0 == CallKind::FlexEndsChat {
            continue;
        }
        row(&mut rows, &key.0);
        if let Some(r) = rows.get_mut(&key.0) {
            r.made += n;
            if !expected_set.contains(key) {
                r.unexpected += n;
            }
        }
    }
    for (kind, statuses) in &seen.refused {
        row(&mut rows, kind);
        if let Some(r) = rows.get_mut(kind) {
            r.refused_attempts += statuses.values().sum::<u64>();
            r.refused_statuses = statuses.clone();
        }
    }
    let calls: Vec<CallRow> = rows.into_values().collect();
    let failures = lock(&run.failures).clone();
    let ok = failures.is_empty()
        && calls
            .iter()
            .all(|r| r.missing == 0 && r.duplicated == 0 && r.unexpected == 0);
    let mut by_kind = BTreeMap::new();
    for c in conversations {
        let name = serde_json::to_value(c.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *by_kind.entry(name).or_default() += 1;
    }
    let acknowledged = sent.histogram.len();
    Report {
        ok,
        conversations: conversations.len() as u64,
        by_kind,
        load_seconds: load_secs,
        total_seconds: total_secs,
        conversations_per_second: conversations.len() as f64 / load_secs.max(1e-9),
        requests_sent: run.events.load(Ordering::Relaxed),
        acknowledged,
        acknowledged_per_second: acknowledged as f64 / total_secs.max(1e-9),
        statuses: sent.statuses.clone(),
        ack_latency: Latency::of(&sent.histogram),
        calls,
        twilio_reads: seen.reads,
        failures,
    }
}

fn print_report(r: &Report) {
    println!(
        "conversations {} ({}) in {:.1} s: {:.1}/s; finished after {:.1} s",
        r.conversations,
        r.by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.load_seconds,
        r.conversations_per_second,
        r.total_seconds
    );
    println!(
        "callbacks and webhooks: {} sent, {} acknowledged ({:.0}/s over the run), answers {:?}",
        r.requests_sent, r.acknowledged, r.acknowledged_per_second, r.statuses
    );
    println!(
        "acknowledgement latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.ack_latency.p50_ms, r.ack_latency.p90_ms, r.ack_latency.p99_ms, r.ack_latency.max_ms
    );
    println!();
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9}",
        "twilio call", "expected", "made", "missing", "duplicated", "unexpected", "refused"
    );
    for c in &r.calls {
        let statuses: Vec<String> = c
            .refused_statuses
            .iter()
            .map(|(status, n)| format!("{status}×{n}"))
            .collect();
        println!(
            "{:<24} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {}",
            c.call,
            c.expected,
            c.made,
            c.missing,
            c.duplicated,
            c.unexpected,
            c.refused_attempts,
            statuses.join(" ")
        );
    }
    println!(
        "(reads: {}; refused = attempts Twilio answered with an error, retried)",
        r.twilio_reads
    );
    for problem in &r.failures {
        println!("failed: {problem}");
    }
    println!(
        "{}",
        if r.ok {
            "exactly once: every expected call made once, nothing else"
        } else {
            "NOT exactly once: see the rows above"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(method: &str, path: &str, form: &[(&str, &str)]) -> Logged {
        Logged {
            id: 1,
            method: method.into(),
            path: path.into(),
            status: Some(200),
            processed_status: Some(200),
            form: form
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_log_is_read_as_the_calls_baton_makes() {
        let ws = "/v1/Workspaces/WS1";
        let cases = [
            (
                logged(
                    "POST",
                    "/v1/Interactions/KD1/Channels/UO1/Participants/UT1",
                    &[("Status", "closed")],
                ),
                Some((CallKind::CloseParticipant, "UT1")),
            ),
            (
                logged("POST", "/v1/Interactions/KD1/Channels/UO1/Invites", &[]),
                Some((CallKind::ResumeInvite, "UO1")),
            ),
            (
                logged(
                    "POST",
                    "/v1/Interactions/KD1/Channels/UO1",
                    &[("Status", "closed")],
                ),
                Some((CallKind::CloseChannel, "UO1")),
            ),
            (
                logged("POST", &format!("{ws}/Tasks/WT1"), &[("Attributes", "{}")]),
                Some((CallKind::InsightsStamp, "WT1")),
            ),
            (
                logged(
                    "POST",
                    &format!("{ws}/Tasks/WT1"),
                    &[("AssignmentStatus", "completed")],
                ),
                Some((CallKind::CompleteTask, "WT1")),
            ),
            (
                logged("POST", "/v1/Conversations/CH1/Webhooks", &[]),
                Some((CallKind::ParkWebhook, "CH1")),
            ),
            (
                logged("DELETE", "/v1/Conversations/CH1/Webhooks/WH1", &[]),
                Some((CallKind::RemoveParkWebhook, "CH1")),
            ),
            (
                logged("GET", "/v1/Interactions/KD1/Channels/UO1/Participants", &[]),
                None,
            ),
        ];
        for (request, want) in cases {
            let got = request.classify();
            assert_eq!(
                got,
                want.map(|(k, t)| (k, t.to_owned())),
                "{} {}",
                request.method,
                request.path
            );
        }
    }

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

    #[test]
    fn the_mix_follows_the_percentages_in_every_hundred() {
        for start in [0u64, 100, 12_300] {
            let mut counts = [0u32; 3];
            for i in start..start + 100 {
                counts[match kind_of(i, 10, 20) {
                    Kind::Canceled => 0,
                    Kind::Park => 1,
                    Kind::Transfer => 2,
                }] += 1;
            }
            assert_eq!(counts, [10, 20, 70]);
        }
        assert_eq!(kind_of(5, 0, 0), Kind::Transfer);
    }
}
