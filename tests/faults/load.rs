//! The load the fault tests run under: signed TaskRouter callbacks (realistic `task.updated`
//! events, the shape `baton-load loadgen` sends) sent over several connections to one or more
//! batons, every attempt recorded with its time and answer; and transfers played by the stand-in whose callbacks the test delivers
//! itself, so baton has outbound calls to make while the faults hit.

use baton::ingest::form::form_body;
use baton::ingest::signature::compute_signature;
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use twilio_standin::{FaultKind, Faults, SeedWorker, StandIn};

pub type Params = Vec<(String, String)>;

/// `n` distinct `task.updated` events over `tasks` tasks (about 1 KB each, unique event SIDs).
pub fn sample_events(n: u64, tasks: u64) -> Vec<Params> {
    (0..n).map(|i| sample_callback(i, tasks)).collect()
}

/// A `task.updated` callback of task `seq % tasks` as TaskRouter sends it for a Flex SMS
/// conversation (about 1 KB), with a fresh event SID and the current time.
fn sample_callback(seq: u64, tasks: u64) -> Params {
    let n = seq % tasks.max(1);
    let task_sid = format!("WT{n:032x}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let attributes = json!({
        "from": "+14155550100",
        "channelType": "sms",
        "conversationSid": format!("CH{n:032x}"),
        "flexInteractionSid": format!("KD{n:032x}"),
        "flexInteractionChannelSid": format!("UO{n:032x}"),
        "customers": {"name": "Load Test", "phone": "+14155550100"},
        "conversations": {"conversation_id": task_sid, "communication_channel": "sms", "direction": "inbound"},
        "direction": "inbound",
    });
    [
        ("AccountSid", format!("AC{:032x}", 1)),
        ("EventDescription", format!("Task {task_sid} updated")),
        ("EventType", "task.updated".to_owned()),
        ("ResourceSid", task_sid.clone()),
        ("ResourceType", "task".to_owned()),
        (
            "Sid",
            format!("EV{:032x}", rand::thread_rng().gen::<u128>()),
        ),
        ("TaskAge", "12".to_owned()),
        ("TaskAssignmentStatus", "assigned".to_owned()),
        ("TaskAttributes", attributes.to_string()),
        ("TaskChannelUniqueName", "chat".to_owned()),
        ("TaskPriority", "0".to_owned()),
        ("TaskQueueSid", format!("WQ{:032x}", 1)),
        ("TaskSid", task_sid),
        ("Timestamp", (now_ms / 1000).to_string()),
        ("TimestampMs", now_ms.to_string()),
        ("WorkflowSid", format!("WW{:032x}", 1)),
        ("WorkspaceName", "Flex Task Assignment".to_owned()),
        ("WorkspaceSid", format!("WS{:032x}", 1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The inbox key of a callback with an event SID.
pub fn event_key(params: &Params) -> String {
    let sid = params
        .iter()
        .find(|(k, _)| k == "Sid")
        .map(|(_, v)| v.as_str())
        .expect("every test event has a Sid");
    format!("tr:sid:{sid}")
}

/// Whether deliveries that fail are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeliver {
    /// Like TaskRouter's callbacks: one attempt; a failed event is lost to the callback path.
    Never,
    /// Until acknowledged (round-robin over the batons), as Event Streams or the reconciler
    /// would eventually bring it: every event ends stored.
    UntilAcknowledged,
}

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub event: usize,
    pub sent: Instant,
    pub answered: Instant,
    /// `None`: no HTTP answer (connection refused or reset).
    pub status: Option<u16>,
    pub retry_after: Option<String>,
}

impl Attempt {
    pub fn acknowledged(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

struct Shared {
    events: Vec<Params>,
    targets: Vec<String>,
    token: String,
    redeliver: Redeliver,
    pause: Duration,
    queue: Mutex<VecDeque<usize>>,
    in_flight: AtomicUsize,
    acknowledged: Mutex<Vec<bool>>,
    attempts: Mutex<Vec<Attempt>>,
    stop: AtomicBool,
}

/// A running load.
pub struct Load {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts sending `events` in order over `connections` connections; each connection waits
    /// `pause` after each request. `targets` are batons' base URLs, each also its public URL.
    pub fn start(
        targets: Vec<String>,
        token: &str,
        events: Vec<Params>,
        connections: usize,
        pause: Duration,
        redeliver: Redeliver,
    ) -> Load {
        let n = events.len();
        let shared = Arc::new(Shared {
            events,
            targets,
            token: token.to_owned(),
            redeliver,
            pause,
            queue: Mutex::new((0..n).collect()),
            in_flight: AtomicUsize::new(0),
            acknowledged: Mutex::new(vec![false; n]),
            attempts: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let handles = (0..connections)
            .map(|_| tokio::spawn(send_loop(shared.clone(), client.clone())))
            .collect();
        Load { shared, handles }
    }

    /// Events acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        lock(&self.shared.acknowledged)
            .iter()
            .filter(|a| **a)
            .count()
    }

    /// The inbox keys of the events acknowledged so far.
    pub fn acknowledged_keys(&self) -> Vec<String> {
        lock(&self.shared.acknowledged)
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| event_key(&self.shared.events[i]))
            .collect()
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        lock(&self.shared.attempts).clone()
    }

    pub fn keys(&self) -> Vec<String> {
        self.shared.events.iter().map(event_key).collect()
    }

    pub fn len(&self) -> usize {
        self.shared.events.len()
    }

    /// Waits until every event was sent (and, redelivering, acknowledged), at most `limit`.
    pub async fn finish(mut self, limit: Duration) -> Load {
        let deadline = Instant::now() + limit;
        for handle in std::mem::take(&mut self.handles) {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, handle).await.is_err() {
                self.shared.stop.store(true, Ordering::SeqCst);
            }
        }
        assert!(
            !self.shared.stop.load(Ordering::SeqCst),
            "the load did not finish within {limit:?} ({} of {} acknowledged)",
            self.acknowledged(),
            self.len()
        );
        self
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for handle in &self.handles {
            handle.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn send_loop(shared: Arc<Shared>, client: reqwest::Client) {
    let path = "/webhooks/taskrouter";
    let mut tries: usize = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        let next = lock(&shared.queue).pop_front();
        let Some(event) = next else {
            // Others' failures may come back to the queue.
            if shared.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        tries += 1;
        let target = &shared.targets[(event + tries) % shared.targets.len()];
        let params = &shared.events[event];
        let signature = compute_signature(&shared.token, &format!("{target}{path}"), params);
        let sent = Instant::now();
        let outcome = client
            .post(format!("{target}{path}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(form_body(params))
            .send()
            .await;
        let (status, retry_after) = match outcome {
            Ok(response) => (
                Some(response.status().as_u16()),
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Err(_) => (None, None),
        };
        let attempt = Attempt {
            event,
            sent,
            answered: Instant::now(),
            status,
            retry_after,
        };
        let acknowledged = attempt.acknowledged();
        lock(&shared.attempts).push(attempt);
        if acknowledged {
            lock(&shared.acknowledged)[event] = true;
        } else if shared.redeliver == Redeliver::UntilAcknowledged {
            lock(&shared.queue).push_back(event);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !shared.pause.is_zero() {
            tokio::time::sleep(shared.pause).await;
        }
    }
}

/// A cold transfer made by plugin-chat-sms-transfer: task `from` (assigned to alice) and the
/// transfer task `to` (accepted by bob). baton finishes the transferring side once:
/// `POST …/Tasks/{from}` `AssignmentStatus=completed`.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub from: String,
    pub to: String,
}

/// Plays `n` transfers on the stand-in (its tasks, reservations and their state are real
/// there) and returns their TaskRouter callbacks, for the test to deliver, in the order
/// TaskRouter produced them. The stand-in's request log and effects are cleared afterwards,
/// so they show only baton's calls.
pub async fn transfers(twilio: &StandIn, n: usize) -> (Vec<Params>, Vec<Transfer>) {
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    // Callbacks are produced only with a callback URL; they are taken, never sent.
    twilio.set_callback_url(Some("http://127.0.0.1:9/webhooks/taskrouter".into()));
    twilio.hold_callbacks(true);
    let mut played = Vec::with_capacity(n);
    for k in 0..n {
        let channel = crate::helpers::sid("CH", 7000 + k as u128);
        let from = create_task(
            twilio,
            json!({"channelSid": channel, "name": format!("customer {k}")}),
        )
        .await;
        let reservation = twilio.offer(&from, &alice);
        twilio.accept(&reservation);
        let to = create_task(
            twilio,
            json!({"channelSid": channel, "targetSid": bob, "transferTargetType": "worker",
                   "ignoreAgent": "alice", "conversations": {"conversation_id": from}}),
        )
        .await;
        let reservation = twilio.offer(&to, &bob);
        twilio.accept(&reservation);
        played.push(Transfer { from, to });
    }
    let events = twilio
        .take_queued_callbacks()
        .into_iter()
        .map(|c| c.params)
        .collect();
    twilio.set_callback_url(None);
    twilio.hold_callbacks(false);
    twilio.clear_requests();
    twilio.clear_effects();
    (events, played)
}

/// The next `n` task completions Twilio applies but answers only after 30 s: a client that
/// dies meanwhile cannot know whether they happened.
pub fn hold_next_completions(twilio: &StandIn, n: usize) {
    twilio.set_faults(Faults {
        timeout_delay: Duration::from_secs(30),
        ..Faults::none()
    });
    let tasks = format!("/v1/Workspaces/{}/Tasks/", twilio.workspace_sid());
    twilio.fault_next("POST", &tasks, n, FaultKind::TimeoutAfterApply);
}

/// Waits until a held completion was applied at Twilio (its client still waits), and returns
/// its task.
pub async fn held_completion(twilio: &StandIn) -> String {
    let held = || {
        twilio
            .requests()
            .into_iter()
            .find(|r| r.fault == Some(FaultKind::TimeoutAfterApply) && r.applied())
    };
    wait_for(
        "a completion in flight at Twilio",
        Duration::from_secs(60),
        || held().is_some(),
    )
    .await;
    let request = held().expect("held");
    request
        .path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn create_task(twilio: &StandIn, attributes: serde_json::Value) -> String {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/Workspaces/{}/Tasks",
            twilio.base_url(),
            twilio.workspace_sid()
        ))
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .form(&[
            ("Attributes", attributes.to_string()),
            ("WorkflowSid", twilio.default_workflow_sid()),
            ("TaskChannel", "chat".into()),
        ])
        .send()
        .await
        .expect("stand-in reachable");
    assert_eq!(response.status(), 201);
    let task: serde_json::Value = response.json().await.expect("json");
    task["sid"].as_str().expect("sid").to_owned()
}

/// Waits until every stored event is processed (or dead) and no outbound call is pending.
pub async fn settle(pool: &PgPool, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (inbox, outbox): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM inbox_progress WHERE processed_at IS NULL AND dead_at IS NULL),
                    (SELECT count(*) FROM outbox WHERE state = 'pending')",
        )
        .fetch_one(pool)
        .await
        .expect("count pending work");
        if (inbox, outbox) == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "baton did not settle within {limit:?}: {inbox} events, {outbox} calls pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 20 ms until it holds, at most `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
