//! The demo: a small live Flex contact centre played against a running baton. About ten agents,
//! a new customer every few seconds (SMS, web chat, voice), and what happens to customers in
//! production: cold transfers to agents and queues, a warm transfer, transfers declined or timed
//! out (baton routes the customer back), a transfer back to an agent still in wrap-up, parks and
//! resumes, customers who abandon (baton closes the orphaned conversation), callbacks delivered
//! late or twice, Twilio answering 429 with `Retry-After` or 500, and once in a while a call
//! refused for good (baton dead-letters it).
//!
//! Every change goes through the stand-in's plays and routes, so baton gets TaskRouter callbacks
//! and Conversations webhooks signed with the stand-in's auth token, exactly as Twilio sends
//! them, and baton's REST calls meet the matching state. What Flex, the agents and the plugins
//! do are the stand-in's plays ([`StandIn::fpt_transfer`], [`StandIn::plugin_park_call`],
//! [`StandIn::start_transfer`], …); messaging parks are asked of baton (`POST /api/v1/parks`),
//! as an agent's park button would.
//!
//! Each scenario knows which of baton's calls it must lead to ([`Call`]); [`Demo::check`]
//! compares them with the stand-in's request log: each expected call applied exactly once, a
//! refused one attempted exactly once, and no other call that ends someone's work.

mod scenarios;

use crate::internal::Rest;
use crate::{
    Faults, LoggedRequest, SeedTaskQueue, SeedWorker, SeedWorkflow, StandIn, CODE_INVALID,
};
use chrono::Utc;
use scenarios::Kind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many kinds of customer the demo plays, one after another: a demo of this many customers
/// plays each once.
pub const CUSTOMER_KINDS: usize = Kind::ALL.len();

/// The agents' names (`full_name`); the worker's friendly name is the lower-case first name.
const AGENTS: &[&str] = &[
    "Alice Martin",
    "Bilal Haddad",
    "Chen Wei",
    "Dana Kowalski",
    "Emeka Obi",
    "Fatima Zahra",
    "Gustavo Lima",
    "Hana Sato",
    "Ivan Petrov",
    "Julia Rossi",
];

/// How a demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// baton's base URL as Twilio reaches it (its `BATON_PUBLIC_URL`; loopback).
    pub baton_url: String,
    /// baton's ops token, for `POST /api/v1/parks`.
    pub ops_token: String,
    /// 1.0: a new customer every 4 s and conversations of a few seconds; 10.0: ten times faster.
    pub speed: f64,
    /// How many customers, then stop once they are all played (`None`: until stopped).
    pub customers: Option<usize>,
    /// 429 (`Retry-After: 1`) and 500 answers to a share of baton's requests, late and
    /// repeated callback deliveries.
    pub faults: bool,
    /// Print one line per customer and per baton reaction on standard output.
    pub verbose: bool,
}

impl DemoConfig {
    pub fn new(baton_url: impl Into<String>, ops_token: impl Into<String>) -> Self {
        DemoConfig {
            baton_url: baton_url.into(),
            ops_token: ops_token.into(),
            speed: 1.0,
            customers: None,
            faults: true,
            verbose: true,
        }
    }
}

/// A call baton is expected to make, as the stand-in's request log shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    /// `POST /v1/Interactions/{KD}/Channels/{UO}/Invites`: a route back or a resume.
    Invite { channel: String },
    /// `POST /v1/Interactions/{KD}/Channels/{UO}` `Status=closed`: an orphan closed.
    CloseChannel { channel: String },
    /// `POST …/Participants/{UT}` `Status=closed`: an agent removed.
    CloseParticipant { participant: String },
    /// `POST …/Tasks/{WT}` `AssignmentStatus=completed`.
    CompleteTask { task: String },
    /// `POST …/Reservations/{WR}` `ReservationStatus=completed`.
    CompleteReservation { reservation: String },
    /// `POST /v1/Conversations/{CH}` `State=closed`.
    CloseConversation { conversation: String },
    /// `POST /v1/Conversations/{CH}/Webhooks`: a park's webhook.
    CreateWebhook { conversation: String },
    /// `DELETE /v1/Conversations/{CH}/Webhooks/{WH}`.
    DeleteWebhook { conversation: String },
}

impl Call {
    /// The call a request is, if it is one the demo accounts for: every call that ends someone's
    /// work (closes, completions, invites) and the park webhooks.
    pub fn of(request: &LoggedRequest) -> Option<Call> {
        let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let form = |key: &str| request.form_value(key);
        match (request.method.as_str(), parts.as_slice()) {
            ("POST", ["v1", "Interactions", _, "Channels", uo, "Invites"]) => Some(Call::Invite {
                channel: (*uo).to_owned(),
            }),
            ("POST", ["v1", "Interactions", _, "Channels", uo])
                if form("Status") == Some("closed") =>
            {
                Some(Call::CloseChannel {
                    channel: (*uo).to_owned(),
                })
            }
            ("POST", ["v1", "Interactions", _, "Channels", _, "Participants", ut])
                if form("Status") == Some("closed") =>
            {
                Some(Call::CloseParticipant {
                    participant: (*ut).to_owned(),
                })
            }
            ("POST", ["v1", "Workspaces", _, "Tasks", wt])
                if form("AssignmentStatus") == Some("completed") =>
            {
                Some(Call::CompleteTask {
                    task: (*wt).to_owned(),
                })
            }
            ("POST", ["v1", "Workspaces", _, .., "Reservations", wr])
                if form("ReservationStatus") == Some("completed") =>
            {
                Some(Call::CompleteReservation {
                    reservation: (*wr).to_owned(),
                })
            }
            ("POST", ["v1", "Conversations", ch]) if form("State") == Some("closed") => {
                Some(Call::CloseConversation {
                    conversation: (*ch).to_owned(),
                })
            }
            ("POST", ["v1", "Conversations", ch, "Webhooks"]) => Some(Call::CreateWebhook {
                conversation: (*ch).to_owned(),
            }),
            ("DELETE", ["v1", "Conversations", ch, "Webhooks", _]) => Some(Call::DeleteWebhook {
                conversation: (*ch).to_owned(),
            }),
            _ => None,
        }
    }
}

/// What a scenario expects of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Applied exactly once.
    Once,
    /// Attempted exactly once and refused for good (the demo's permanent refusal): never
    /// applied.
    Refused,
}

/// What a demo did, for the console and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// Customers whose scenario played to its end.
    pub played: usize,
    /// Scenarios that could not play to their end: what went wrong.
    pub failures: Vec<String>,
}

/// A demo in progress.
pub struct Demo {
    standin: Arc<StandIn>,
    config: DemoConfig,
    http: reqwest::Client,
    agents: Vec<Agent>,
    queues: Vec<Queue>,
    expected: Mutex<BTreeMap<Call, Expect>>,
    summary: Mutex<DemoSummary>,
}

#[derive(Debug, Clone)]
struct Agent {
    sid: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Queue {
    sid: String,
    name: String,
}

/// A scenario's outcome; one that panicked (a play Twilio would have refused) says so.
async fn outcome(handle: tokio::task::JoinHandle<Result<(), String>>) -> Result<(), String> {
    handle
        .await
        .unwrap_or_else(|error| Err(format!("stopped: {error}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Demo {
    /// Seeds the contact centre into the stand-in: the agents (available, with `full_name` and
    /// `contact_uri`), the Sales and Support queues, and the `Chat Transfer` workflow the
    /// template's transfers use.
    pub fn new(standin: Arc<StandIn>, config: DemoConfig) -> Arc<Demo> {
        let agents = AGENTS
            .iter()
            .map(|full_name| {
                let first = full_name.split(' ').next().unwrap_or(full_name);
                let friendly = first.to_lowercase();
                let sid =
                    standin.seed_worker(SeedWorker::new(&friendly).attributes(serde_json::json!({
                        "full_name": full_name,
                        "contact_uri": format!("client:{friendly}"),
                        "routing": {"skills": ["sales", "support"]},
                    })));
                Agent {
                    sid,
                    name: (*full_name).to_owned(),
                }
            })
            .collect();
        let queues = ["Sales", "Support"]
            .iter()
            .map(|name| Queue {
                sid: standin.seed_task_queue(SeedTaskQueue::new(*name)),
                name: (*name).to_owned(),
            })
            .collect();
        standin.seed_workflow(SeedWorkflow::new("Chat Transfer"));
        Arc::new(Demo {
            standin,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            config,
            agents,
            queues,
            expected: Mutex::new(BTreeMap::new()),
            summary: Mutex::new(DemoSummary::default()),
        })
    }

    /// Waits for baton (`GET /readyz`), points the Workspace and the Conversations service at
    /// it, then plays customers until [`DemoConfig::customers`] have all been played (or for
    /// ever). Returns what was played.
    pub async fn run(self: &Arc<Self>) -> DemoSummary {
        if let Err(problem) = self.wait_for_baton().await {
            lock(&self.summary).failures.push(problem);
            return self.summary();
        }
        let baton = self.config.baton_url.trim_end_matches('/');
        self.standin
            .set_callback_url(Some(format!("{baton}/webhooks/taskrouter")));
        self.standin
            .set_conversations_webhook_url(Some(format!("{baton}/webhooks/conversations")));
        self.standin.set_conversations_webhook_filters(&[
            "onConversationStateUpdated",
            "onConversationRemoved",
            "onParticipantRemoved",
            "onMessageAdded",
        ]);
        if self.config.faults {
            self.standin.set_faults(Faults {
                rate_limit: 0.04,
                retry_after_secs: 1,
                server_error: 0.03,
                ..Faults::none()
            });
        }
        let weather = self
            .config
            .faults
            .then(|| tokio::spawn(scenarios::late_and_repeated_callbacks(self.clone())));

        let mut running = Vec::new();
        let mut n = 0usize;
        while self.config.customers.map_or(true, |limit| n < limit) {
            let kind = Kind::ALL[n % Kind::ALL.len()];
            let demo = self.clone();
            let handle = tokio::spawn(async move { scenarios::play(&demo, n + 1, kind).await });
            running.push((n + 1, kind, handle));
            let (done, still): (Vec<_>, Vec<_>) =
                running.into_iter().partition(|(_, _, h)| h.is_finished());
            running = still;
            for (number, kind, handle) in done {
                self.finish(number, kind, outcome(handle).await);
            }
            n += 1;
            tokio::time::sleep(self.scaled(4.0)).await;
        }
        for (number, kind, handle) in running {
            self.finish(number, kind, outcome(handle).await);
        }
        if let Some(weather) = weather {
            weather.abort();
        }
        self.summary()
    }

    fn finish(&self, number: usize, kind: Kind, outcome: Result<(), String>) {
        let mut summary = lock(&self.summary);
        match outcome {
            Ok(()) => summary.played += 1,
            Err(problem) => {
                let line = format!("customer {number} ({}): {problem}", kind.describe());
                self.say(&format!("could not play {line}"));
                summary.failures.push(line);
            }
        }
    }

    pub fn summary(&self) -> DemoSummary {
        lock(&self.summary).clone()
    }

    /// The calls the scenarios played so far expect of baton.
    pub fn expected_calls(&self) -> Vec<Call> {
        lock(&self.expected).keys().cloned().collect()
    }

    /// Expected calls not yet in the request log as expected (applied, or refused).
    pub fn missing(&self) -> Vec<Call> {
        let log = self.standin.requests();
        lock(&self.expected)
            .iter()
            .filter(|(call, expect)| {
                !log.iter().any(|r| {
                    Call::of(r).as_ref() == Some(*call)
                        && match expect {
                            Expect::Once => r.applied(),
                            Expect::Refused => r.status.is_some_and(|s| (400..500).contains(&s)),
                        }
                })
            })
            .map(|(call, _)| call.clone())
            .collect()
    }

    /// Compares baton's calls in the request log with what the scenarios expect: each expected
    /// call applied exactly once (retries after a 429 or a 500 are not applications), a refused
    /// one attempted exactly once and never applied, and no other call that ends someone's
    /// work. Every problem found, in words.
    pub fn check(&self) -> Vec<String> {
        let mut applied: BTreeMap<Call, usize> = BTreeMap::new();
        let mut attempted: BTreeMap<Call, usize> = BTreeMap::new();
        for request in self.standin.requests() {
            let Some(call) = Call::of(&request) else {
                continue;
            };
            *attempted.entry(call.clone()).or_default() += 1;
            if request.applied() {
                *applied.entry(call).or_default() += 1;
            }
        }
        let expected = lock(&self.expected).clone();
        let mut problems = Vec::new();
        for (call, expect) in &expected {
            let (made, tried) = (
                applied.get(call).copied().unwrap_or(0),
                attempted.get(call).copied().unwrap_or(0),
            );
            match expect {
                Expect::Once if made != 1 => {
                    problems.push(format!("{call:?}: applied {made} times, expected once"))
                }
                Expect::Refused if made != 0 || tried != 1 => problems.push(format!(
                    "{call:?}: attempted {tried} times and applied {made}, expected one refused attempt"
                )),
                _ => {}
            }
        }
        for (call, made) in &applied {
            if !expected.contains_key(call) {
                problems.push(format!("{call:?}: applied {made} times, not expected"));
            }
        }
        problems
    }

    fn expect(&self, call: Call) {
        lock(&self.expected).insert(call, Expect::Once);
    }

    /// The next call of this kind is refused for good: 400 with Twilio's error body (code
    /// 20001), so baton dead-letters it.
    fn refuse(&self, method: &str, path: &str, call: Call) {
        self.standin.fail_next(method, path, 1, 400, CODE_INVALID);
        lock(&self.expected).insert(call, Expect::Refused);
    }

    // ---- pace and output ----

    /// `secs` at the demo's speed.
    fn scaled(&self, secs: f64) -> Duration {
        let speed = if self.config.speed.is_finite() && self.config.speed > 0.0 {
            self.config.speed
        } else {
            1.0
        };
        Duration::from_secs_f64(secs / speed)
    }

    /// A pause of `secs` at the demo's speed, a little longer or shorter each time.
    async fn pause(&self, secs: f64) {
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        tokio::time::sleep(self.scaled(secs * jitter)).await;
    }

    fn say(&self, line: &str) {
        if self.config.verbose {
            println!("[demo] {} {line}", Utc::now().format("%H:%M:%S"));
        }
    }

    // ---- baton ----

    async fn wait_for_baton(&self) -> Result<(), String> {
        let url = format!("{}/readyz", self.config.baton_url.trim_end_matches('/'));
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let ready = self
                .http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "baton did not answer {url} with 200 within 5 minutes"
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `POST /api/v1/parks` for the task, as an agent's park button: the park's id.
    async fn park_with_baton(&self, task_sid: &str) -> Result<String, String> {
        let url = format!(
            "{}/api/v1/parks",
            self.config.baton_url.trim_end_matches('/')
        );
        let body = serde_json::json!({ "task_sid": task_sid }).to_string();
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.config.ops_token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST /api/v1/parks: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("POST /api/v1/parks answered {status}: {text}"));
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/park/park_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| format!("POST /api/v1/parks answered no park id: {text}"))
    }

    /// Polls `check` every 50 ms until it gives a value, for at most `limit` (real time: baton's
    /// grace periods and retries do not follow the demo's speed).
    async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&StandIn) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check(&self.standin) {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(format!("gave up waiting for {what}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ---- Flex's own calls ----

    /// REST calls Flex itself makes (not baton's), through the stand-in's routes: no request log
    /// entry, no faults.
    fn flex<T>(&self, calls: impl FnOnce(&mut Rest<'_>) -> Result<T, String>) -> Result<T, String> {
        let base = self.standin.base_url();
        let mut state = self.standin.shared.lock();
        let mut rest = Rest::new(&mut state, &base, Utc::now());
        calls(&mut rest)
    }
}
