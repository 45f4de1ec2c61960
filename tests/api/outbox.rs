//! The outbox dispatcher against the Twilio stand-in and a real database: every call ends done
//! or dead, 429/500 retried without duplicate effects, already-done answers converge.

use crate::helpers::*;
use baton::app::dispatcher::{Dispatcher, DispatcherConfig};
use baton::domain::outbound::{OperationKind, Product, TwilioRequest};
use baton::domain::retry::RetryPolicy;
use baton::store::{self, outbox::NewCall};
use baton::twilio::TwilioClient;
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use twilio_standin::{
    Effect, FaultKind, Faults, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus,
};

struct Rig {
    pool: PgPool,
    twilio: StandIn,
    dispatcher: Dispatcher,
}

async fn rig(policy: RetryPolicy) -> Rig {
    rig_with(policy, 4, StandInConfig::default()).await
}

async fn rig_with(policy: RetryPolicy, concurrency: usize, twilio: StandInConfig) -> Rig {
    let database_url = fresh_database().await;
    let pool = store::connect_lazy(&database_url, &store::PoolSettings::default()).unwrap();
    store::migrate(&pool).await.unwrap();
    let twilio = StandIn::start(twilio).await;
    let client = TwilioClient::new(
        twilio.account_sid(),
        SecretString::from(twilio.auth_token().to_owned()),
        Some(url::Url::parse(&twilio.base_url()).unwrap()),
        Duration::from_secs(2),
    )
    .unwrap();
    let dispatcher = Dispatcher::new(
        pool.clone(),
        client,
        DispatcherConfig {
            concurrency,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(20),
            policy,
            ..DispatcherConfig::default()
        },
        Arc::new(Notify::new()),
    );
    Rig {
        pool,
        twilio,
        dispatcher,
    }
}

/// The stand-in's fault seed of the degraded-Twilio test: its draws give every fault kind at
/// least twice (`Faults::sequence`).
const SEED: u64 = 184;

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        // Above the stand-in's Retry-After (1 s), so that is honoured unclamped.
        max_delay: Duration::from_secs(2),
        max_attempts,
    }
}

async fn enqueue(pool: &PgPool, call: &NewCall) -> bool {
    let mut tx = pool.begin().await.unwrap();
    let inserted = store::outbox::enqueue(&mut tx, call).await.unwrap();
    tx.commit().await.unwrap();
    inserted
}

/// Runs the dispatcher until nothing is pending or `limit` passes.
async fn settle(rig: &Rig, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        rig.dispatcher.drain_due().await.unwrap();
        let (pending, _) = store::outbox::counts(&rig.pool).await.unwrap();
        if pending == 0 || tokio::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn state_of(pool: &PgPool, key: &str) -> (String, i32, Option<i32>, Option<String>) {
    sqlx::query_as(
        "SELECT state, attempts, last_status, last_error FROM outbox WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A call setting a task's attributes (keyed `attributes:{task}`).
fn attributes_update(rig: &Rig, task: &str, attributes: &str) -> NewCall {
    NewCall {
        idempotency_key: format!("attributes:{task}"),
        kind: OperationKind::UpdateTaskAttributes,
        request: TwilioRequest {
            product: Product::TaskRouter,
            method: "POST".into(),
            path: format!("/v1/Workspaces/{}/Tasks/{task}", rig.twilio.workspace_sid()),
            form: vec![("Attributes".into(), attributes.into())],
            if_match: None,
        },
        procedure: None,
        caused_by_event: None,
        conversation_sid: None,
        guard: None,
        after_key: None,
    }
}

fn completions(twilio: &StandIn, task: &str) -> usize {
    twilio
        .effects()
        .iter()
        .filter(|e| e.completes_task(task))
        .count()
}

fn assigned_task(twilio: &StandIn) -> String {
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker))
}

#[tokio::test]
async fn a_call_is_sent_once_and_ends_done() {
    let rig = rig(fast_policy(5)).await;
    let task = assigned_task(&rig.twilio);
    let call = complete_task(&rig.twilio, &task);
    assert!(enqueue(&rig.pool, &call).await);
    assert!(
        !enqueue(&rig.pool, &call).await,
        "the same decision is one row"
    );
    settle(&rig, Duration::from_secs(5)).await;
    assert_eq!(
        state_of(&rig.pool, &call.idempotency_key).await,
        ("done".into(), 1, Some(200), None)
    );
    assert_eq!(completions(&rig.twilio, &task), 1);
    let requests = rig.twilio.requests();
    let sent: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with(&task))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert!(sent[0]
        .form
        .contains(&("AssignmentStatus".to_owned(), "completed".to_owned())));
    assert!(sent[0]
        .form
        .contains(&("Reason".to_owned(), "task transferred".to_owned())));
}

#[tokio::test]
async fn rate_limited_calls_wait_for_retry_after_then_succeed() {
    let rig = rig(fast_policy(5)).await;
    let task = assigned_task(&rig.twilio);
    let call = complete_task(&rig.twilio, &task);
    enqueue(&rig.pool, &call).await;
    rig.twilio
        .fault_next("POST", "/v1/Workspaces/", 1, FaultKind::RateLimited);
    rig.dispatcher.drain_due().await.unwrap();
    let (state, attempts, status, _) = state_of(&rig.pool, &call.idempotency_key).await;
    assert_eq!(
        (state.as_str(), attempts, status),
        ("pending", 1, Some(429))
    );
    // Retry-After (1 s from the stand-in) is honoured: nothing is due before it.
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM outbox WHERE idempotency_key = $1",
    )
    .bind(&call.idempotency_key)
    .fetch_one(&rig.pool)
    .await
    .unwrap();
    assert!(wait > 0.8, "next attempt in {wait}s");
    assert_eq!(rig.dispatcher.drain_due().await.unwrap(), 0);
    settle(&rig, Duration::from_secs(5)).await;
    assert_eq!(state_of(&rig.pool, &call.idempotency_key).await.0, "done");
    assert_eq!(completions(&rig.twilio, &task), 1);
}

#[tokio::test]
async fn a_500_after_twilio_applied_the_change_converges_without_a_second_effect() {
    let rig = rig(fast_policy(5)).await;
    let task = assigned_task(&rig.twilio);
    let call = complete_task(&rig.twilio, &task);
    enqueue(&rig.pool, &call).await;
    rig.twilio
        .fault_next("POST", "/v1/Workspaces/", 1, FaultKind::ErrorAfterApply);
    settle(&rig, Duration::from_secs(5)).await;
    // Attempt 1: 500 (but applied). Attempt 2: 20001, the task is already completed → done.
    let (state, attempts, status, _) = state_of(&rig.pool, &call.idempotency_key).await;
    assert_eq!((state.as_str(), attempts), ("done", 2));
    assert_eq!(status, Some(400));
    assert_eq!(completions(&rig.twilio, &task), 1);
    let decisions: Vec<(i32, Option<i32>, String)> = sqlx::query_as(
        "SELECT attempt, http_status, decision FROM outbox_attempts ORDER BY attempt",
    )
    .fetch_all(&rig.pool)
    .await
    .unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0].1, Some(500));
    assert!(
        decisions[0].2.starts_with("retry in "),
        "{}",
        decisions[0].2
    );
    assert_eq!(
        (decisions[1].1, decisions[1].2.as_str()),
        (Some(400), "done")
    );
}

#[tokio::test]
async fn completing_a_missing_task_counts_as_done() {
    let rig = rig(fast_policy(5)).await;
    let call = complete_task(&rig.twilio, &sid("WT", 404));
    enqueue(&rig.pool, &call).await;
    settle(&rig, Duration::from_secs(5)).await;
    assert_eq!(state_of(&rig.pool, &call.idempotency_key).await.0, "done");
}

#[tokio::test]
async fn persistent_failure_dead_letters_and_can_be_redriven() {
    let rig = rig(fast_policy(3)).await;
    let task = assigned_task(&rig.twilio);
    let call = complete_task(&rig.twilio, &task);
    enqueue(&rig.pool, &call).await;
    rig.twilio
        .fault_next("POST", "/v1/Workspaces/", 3, FaultKind::ServerError);
    settle(&rig, Duration::from_secs(5)).await;
    let (state, attempts, status, error) = state_of(&rig.pool, &call.idempotency_key).await;
    assert_eq!((state.as_str(), attempts, status), ("dead", 3, Some(500)));
    assert!(error.unwrap().starts_with("gave up after 3 attempts"));
    assert_eq!(completions(&rig.twilio, &task), 0);
    let (_, dead) = store::outbox::counts(&rig.pool).await.unwrap();
    assert_eq!(dead, 1);

    let id: i64 = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(&rig.pool)
        .await
        .unwrap();
    assert!(store::outbox::retry_dead(&rig.pool, id).await.unwrap());
    settle(&rig, Duration::from_secs(5)).await;
    assert_eq!(state_of(&rig.pool, &call.idempotency_key).await.0, "done");
    assert_eq!(completions(&rig.twilio, &task), 1);
}

#[tokio::test]
async fn a_permanent_error_dead_letters_at_once_with_twilio_s_message() {
    let rig = rig(fast_policy(5)).await;
    let task = assigned_task(&rig.twilio);
    let call = attributes_update(&rig, &task, "{not json");
    enqueue(&rig.pool, &call).await;
    settle(&rig, Duration::from_secs(5)).await;
    let (state, attempts, status, error) = state_of(&rig.pool, &call.idempotency_key).await;
    assert_eq!((state.as_str(), attempts, status), ("dead", 1, Some(400)));
    let error = error.unwrap();
    assert!(
        error.starts_with("HTTP 400, Twilio error 20001: "),
        "{error}"
    );
}

/// Twilio degraded: 30 % of requests rate-limited (429, `Retry-After: 1`), failing
/// (500, 503), timing out, reset, or failing after applying the change, answers 20–50 ms late;
/// the dispatcher runs as in `baton serve` with three calls in flight at most
/// (`BATON_TWILIO_CONCURRENCY=3`).
#[tokio::test]
async fn an_attempt_is_recorded_only_by_the_lease_holder() {
    let rig = rig(fast_policy(3)).await;
    let call = attributes_update(&rig, "WT1", "{}");
    enqueue(&rig.pool, &call).await;
    let holder = uuid::Uuid::new_v4();
    let claimed = store::outbox::claim_due(&rig.pool, holder, Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let record = store::outbox::AttemptRecord {
        started_at: chrono::Utc::now(),
        http_status: Some(200),
        twilio_code: None,
        error: None,
        response: None,
        withdrawn: None,
    };
    let done = store::outbox::Next::Done;
    // A process whose lease ended (another holds the call) records nothing.
    let stranger = uuid::Uuid::new_v4();
    assert!(
        !store::outbox::finish_attempt(&rig.pool, stranger, &claimed[0], &record, &done)
            .await
            .unwrap()
    );
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_attempts")
        .fetch_one(&rig.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0);
    assert_eq!(
        state_of(&rig.pool, &call.idempotency_key).await.0,
        "pending"
    );
    // The holder's attempt moves the call on and is recorded with it.
    assert!(
        store::outbox::finish_attempt(&rig.pool, holder, &claimed[0], &record, &done)
            .await
            .unwrap()
    );
    let recorded: Vec<(i64, i32, Option<i32>, String)> =
        sqlx::query_as("SELECT outbox_id, attempt, http_status, decision FROM outbox_attempts")
            .fetch_all(&rig.pool)
            .await
            .unwrap();
    assert_eq!(
        recorded,
        vec![(claimed[0].id, 1, Some(200), "done".to_owned())]
    );
    assert_eq!(state_of(&rig.pool, &call.idempotency_key).await.0, "done");
}

#[tokio::test]
async fn a_degraded_twilio_gets_each_effect_once_within_backoff_and_the_concurrency_limit() {
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
        max_attempts: 10,
    };
    let config = StandInConfig {
        seed: SEED,
        ..StandInConfig::default()
    };
    let rig = rig_with(policy.clone(), 3, config).await;
    let worker = rig.twilio.seed_worker(SeedWorker::new("alice"));
    let assigned = || {
        rig.twilio
            .seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker))
    };
    let tasks: Vec<String> = (0..30).map(|_| assigned()).collect();
    // One call Twilio keeps failing: it must end dead after its ten attempts.
    let doomed = assigned();
    let ws = rig.twilio.workspace_sid().to_owned();
    rig.twilio.fault_next(
        "POST",
        &format!("/v1/Workspaces/{ws}/Tasks/{doomed}"),
        10,
        FaultKind::ServerError,
    );
    rig.twilio.set_faults(Faults {
        rate_limit: 0.06,
        retry_after_secs: 1,
        server_error: 0.04,
        unavailable: 0.04,
        timeout: 0.04,
        timeout_after_apply: 0.04,
        timeout_delay: Duration::from_millis(300),
        reset: 0.04,
        error_after_apply: 0.04,
        latency: Duration::from_millis(20),
        latency_jitter: Duration::from_millis(30),
        ..Faults::none()
    });
    for task in tasks.iter().chain([&doomed]) {
        enqueue(&rig.pool, &complete_task(&rig.twilio, task)).await;
    }
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(rig.dispatcher.clone().run(shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store::outbox::counts(&rig.pool).await.unwrap().0 > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();

    // Every fault kind was met …
    let requests = rig.twilio.requests();
    for kind in [
        FaultKind::RateLimited,
        FaultKind::ServerError,
        FaultKind::ServiceUnavailable,
        FaultKind::Timeout,
        FaultKind::TimeoutAfterApply,
        FaultKind::ConnectionReset,
        FaultKind::ErrorAfterApply,
    ] {
        assert!(
            requests.iter().any(|r| r.fault == Some(kind)),
            "{kind:?} injected"
        );
    }
    // … and each task was completed exactly once, its call done.
    for task in &tasks {
        assert_eq!(completions(&rig.twilio, task), 1, "{task}");
        let (state, ..) = state_of(&rig.pool, &format!("complete:{task}")).await;
        assert_eq!(state, "done", "{task}");
    }
    let (state, attempts, status, error) = state_of(&rig.pool, &format!("complete:{doomed}")).await;
    assert_eq!((state.as_str(), attempts, status), ("dead", 10, Some(500)));
    assert!(error.unwrap().starts_with("gave up after 10 attempts"));
    assert_eq!(completions(&rig.twilio, &doomed), 0);
    // No attempt came sooner than the decision before it allowed: Retry-After after a 429,
    // else full-jitter backoff (at most base × 2^(n-1), capped).
    let attempts: Vec<(i64, i32, f64, f64, Option<i32>, String)> = sqlx::query_as(
        "SELECT outbox_id, attempt, extract(epoch FROM started_at)::float8,
                extract(epoch FROM finished_at)::float8, http_status, decision
         FROM outbox_attempts ORDER BY outbox_id, attempt",
    )
    .fetch_all(&rig.pool)
    .await
    .unwrap();
    let mut retried = 0;
    for pair in attempts.windows(2) {
        let ((id, n, _, finished, status, decision), (next_id, next_n, started, ..)) =
            (&pair[0], &pair[1]);
        if id != next_id {
            continue;
        }
        assert_eq!(*next_n, n + 1);
        let delay: f64 = decision
            .strip_prefix("retry in ")
            .and_then(|d| d.strip_suffix('s'))
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("attempt {n} of {id} was followed, yet decided {decision}"));
        assert!(
            *started >= finished + delay - 0.001,
            "attempt {next_n} of call {id} came {:.3}s after {n}, before its {delay}s",
            started - finished
        );
        if *status == Some(429) {
            assert!(delay >= 1.0, "Retry-After honoured: {delay}");
        } else {
            let ceiling = policy
                .base_delay
                .saturating_mul(2u32.pow(*n as u32 - 1))
                .min(policy.max_delay);
            assert!(
                delay <= ceiling.as_secs_f64() + 0.001,
                "{delay} > {ceiling:?}"
            );
        }
        retried += 1;
    }
    assert!(retried >= 15, "{retried} retries");
    // Never more than three requests at Twilio at once, and the limit was reached.
    assert_eq!(rig.twilio.max_concurrent_requests(), 3);
}

#[tokio::test]
async fn the_auth_token_never_reaches_the_request_log() {
    let rig = rig(fast_policy(5)).await;
    let call = complete_task(&rig.twilio, &assigned_task(&rig.twilio));
    enqueue(&rig.pool, &call).await;
    settle(&rig, Duration::from_secs(5)).await;
    let log = format!("{:?}", rig.twilio.requests());
    assert!(!log.contains(rig.twilio.auth_token()));
    assert!(rig
        .twilio
        .effects()
        .iter()
        .any(|e| matches!(e, Effect::TaskStatusChanged { .. })));
}

/// `GET` an ops route of `app` with `token`: status and JSON body.
async fn get_with(app: &TestApp, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("baton reachable");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn retry_with(app: &TestApp, id: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = app
        .client
        .post(format!("{}/api/v1/outbox/{id}/retry", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("baton reachable");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn a_dead_call_is_listed_with_its_error_and_redriven_to_done() {
    use crate::flex::{flex_with, wait_until, OPS_TOKEN};
    let flex = flex_with(baton::domain::chain::CompleteOn::Accepted, 3).await;
    let task = assigned_task(&flex.twilio);
    let call = complete_task(&flex.twilio, &task);
    let path = call.request.path.clone();
    flex.twilio
        .fault_next("POST", "/v1/Workspaces/", 3, FaultKind::ServerError);
    enqueue(&flex.app.pool, &call).await;
    wait_until("the call to die", Duration::from_secs(10), || async {
        get_with(&flex.app, "/api/v1/outbox?state=dead", Some(OPS_TOKEN))
            .await
            .1["calls"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
    })
    .await;

    let (status, body) = get_with(&flex.app, "/api/v1/outbox?state=dead", Some(OPS_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next"], serde_json::Value::Null);
    let dead = &body["calls"][0];
    let id = dead["id"].as_i64().expect("id");
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["kind"], "complete_task");
    assert_eq!(dead["product"], "task_router");
    assert_eq!(dead["method"], "POST");
    assert_eq!(dead["path"], path.as_str());
    assert_eq!(dead["idempotency_key"], format!("complete:{task}"));
    assert_eq!(dead["task_sid"], task.as_str());
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["redrives"], 0);
    assert_eq!(dead["last_error"]["http_status"], 500);
    assert_eq!(dead["last_error"]["twilio_code"], 20500);
    let message = dead["last_error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("gave up after 3 attempts: HTTP 500"),
        "{message}"
    );
    assert!(dead["dead_at"].is_string() && dead["done_at"].is_null());
    assert!(dead["next_attempt_at"].is_null());
    // Nothing else is pending, in flight or done.
    for state in ["pending", "in_flight", "done"] {
        let (_, other) = get_with(
            &flex.app,
            &format!("/api/v1/outbox?state={state}"),
            Some(OPS_TOKEN),
        )
        .await;
        assert_eq!(other["calls"], serde_json::json!([]), "{state}");
    }

    let (status, detail) =
        get_with(&flex.app, &format!("/api/v1/outbox/{id}"), Some(OPS_TOKEN)).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["call"]["id"], id);
    assert_eq!(
        detail["call"]["form"],
        serde_json::json!([
            ["AssignmentStatus", "completed"],
            ["Reason", "task transferred"]
        ])
    );
    assert_eq!(detail["call"]["response"]["code"], 20500);
    let attempts = detail["attempts"].as_array().expect("attempts");
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64(),
                a["http_status"].as_i64(),
                a["twilio_code"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        (1..=3)
            .map(|n| (Some(n), Some(500), Some(20500)))
            .collect::<Vec<_>>()
    );
    assert!(attempts[0]["decision"]
        .as_str()
        .unwrap()
        .starts_with("retry in "));
    assert!(attempts[2]["decision"]
        .as_str()
        .unwrap()
        .starts_with("dead: gave up"));
    let shown = format!("{body}{detail}");
    assert!(!shown.contains(flex.twilio.auth_token()) && !shown.contains(OPS_TOKEN));
    assert_eq!(completions(&flex.twilio, &task), 0);

    let (status, redriven) = retry_with(&flex.app, &id.to_string(), Some(OPS_TOKEN)).await;
    assert_eq!(status, 202, "{redriven}");
    assert_eq!(redriven["call"]["id"], id);
    assert_eq!(redriven["call"]["redrives"], 1);
    assert!(redriven["call"]["redriven_at"].is_string());
    flex.quiesce().await;
    let (_, done) = get_with(&flex.app, &format!("/api/v1/outbox/{id}"), Some(OPS_TOKEN)).await;
    assert_eq!(done["call"]["state"], "done", "{done}");
    assert_eq!(done["call"]["attempts"], 4);
    assert_eq!(done["call"]["last_error"], serde_json::Value::Null);
    assert!(done["call"]["done_at"].is_string() && done["call"]["dead_at"].is_null());
    assert_eq!(done["attempts"][3]["http_status"], 200);
    assert_eq!(done["attempts"][3]["decision"], "done");
    let (_, listed) = get_with(&flex.app, "/api/v1/outbox?state=done", Some(OPS_TOKEN)).await;
    assert_eq!(listed["calls"][0]["id"], id);
    // The stand-in saw three failed sends and the one that completed the task.
    let sent: Vec<_> = flex
        .twilio
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .map(|r| r.status)
        .collect();
    assert_eq!(sent, [Some(500), Some(500), Some(500), Some(200)]);
    assert_eq!(completions(&flex.twilio, &task), 1);

    // Only a dead call can be re-driven.
    let (status, conflict) = retry_with(&flex.app, &id.to_string(), Some(OPS_TOKEN)).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "not_dead");
    assert_eq!(conflict["error"]["detail"]["state"], "done");
    let metrics = flex.app.metrics().await;
    assert!(metrics.contains("baton_outbox_redrives_total"), "{metrics}");
}

#[tokio::test]
async fn the_outbox_api_pages_newest_first_and_refuses_bad_requests() {
    use crate::flex::OPS_TOKEN;
    // No dispatcher: the calls stay pending.
    let app = spawn_app().await;
    let twilio = StandIn::start(StandInConfig::default()).await;
    for n in 1..=3 {
        enqueue(&app.pool, &complete_task(&twilio, &sid("WT", n))).await;
    }
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id DESC")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let ids_of = |page: &serde_json::Value| -> Vec<i64> {
        page["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .map(|c| c["id"].as_i64().expect("id"))
            .collect()
    };
    let (status, first) = get_with(&app, "/api/v1/outbox?limit=2", Some(OPS_TOKEN)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids_of(&first), all[..2]);
    let next = first["next"]
        .as_str()
        .expect("a full page has a cursor")
        .to_owned();
    let (_, second) = get_with(
        &app,
        &format!("/api/v1/outbox?limit=2&cursor={next}"),
        Some(OPS_TOKEN),
    )
    .await;
    assert_eq!(second["next"], serde_json::Value::Null);
    assert_eq!(ids_of(&second), all[2..]);
    assert_eq!(second["calls"][0]["task_sid"], sid("WT", 1));
    assert_eq!(second["calls"][0]["state"], "pending");
    assert!(second["calls"][0]["next_attempt_at"].is_string());
    let (_, pending) = get_with(&app, "/api/v1/outbox?state=pending", Some(OPS_TOKEN)).await;
    assert_eq!(pending["calls"].as_array().unwrap().len(), 3);

    // The ops token only: none, a wrong one, or a Flex user's token is 401.
    let oldest = all[2].to_string();
    for token in [
        None,
        Some("not-the-ops-token-at-all"),
        Some("eyJhbGciOi.flex.token"),
    ] {
        for path in [
            "/api/v1/outbox".to_owned(),
            format!("/api/v1/outbox/{oldest}"),
        ] {
            let (status, body) = get_with(&app, &path, token).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (401, &"unauthorized".into()),
                "{path}"
            );
        }
        let (status, _) = retry_with(&app, &oldest, token).await;
        assert_eq!(status, 401);
    }

    // Bad parameters name the parameter.
    for (query, named) in [
        ("state=failed", "state"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("cursor=abc", "cursor"),
        ("colour=red", "colour"),
    ] {
        let (status, body) =
            get_with(&app, &format!("/api/v1/outbox?{query}"), Some(OPS_TOKEN)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &"invalid_request".into()),
            "{query}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{query}: {message}");
    }
    let (status, body) = get_with(&app, "/api/v1/outbox/x1", Some(OPS_TOKEN)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &"invalid_request".into())
    );

    // Unknown ids are 404; a pending call is not dead.
    let (status, body) = get_with(&app, "/api/v1/outbox/999999", Some(OPS_TOKEN)).await;
    assert_eq!((status, &body["error"]["code"]), (404, &"not_found".into()));
    let (status, body) = retry_with(&app, "999999", Some(OPS_TOKEN)).await;
    assert_eq!((status, &body["error"]["code"]), (404, &"not_found".into()));
    let (status, body) = retry_with(&app, &oldest, Some(OPS_TOKEN)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &"not_dead".into()),
        "{body}"
    );
    assert_eq!(body["error"]["detail"]["state"], "pending");
    let redrives: i32 = sqlx::query_scalar("SELECT sum(redrives)::int FROM outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(redrives, 0);
}
