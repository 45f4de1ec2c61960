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
use twilio_standin::{Effect, FaultKind, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus};

struct Rig {
    pool: PgPool,
    twilio: StandIn,
    dispatcher: Dispatcher,
}

async fn rig(policy: RetryPolicy) -> Rig {
    let database_url = fresh_database().await;
    let pool = store::connect_lazy(&database_url, &store::PoolSettings::default()).unwrap();
    store::migrate(&pool).await.unwrap();
    let twilio = StandIn::start(StandInConfig::default()).await;
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
            concurrency: 4,
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

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        // Above the stand-in's Retry-After (1 s), so that is honoured unclamped.
        max_delay: Duration::from_secs(2),
        max_attempts,
    }
}

fn complete_task(twilio: &StandIn, task: &str) -> NewCall {
    NewCall {
        idempotency_key: format!("complete:{task}"),
        kind: OperationKind::CompleteTask,
        request: TwilioRequest {
            product: Product::TaskRouter,
            method: "POST".into(),
            path: format!("/v1/Workspaces/{}/Tasks/{task}", twilio.workspace_sid()),
            form: vec![
                ("AssignmentStatus".into(), "completed".into()),
                ("Reason".into(), "task transferred".into()),
            ],
            if_match: None,
        },
        procedure: None,
        caused_by_event: None,
        conversation_sid: None,
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
    let call = NewCall {
        idempotency_key: format!("attributes:{task}"),
        kind: OperationKind::UpdateTaskAttributes,
        request: TwilioRequest {
            product: Product::TaskRouter,
            method: "POST".into(),
            path: format!("/v1/Workspaces/{}/Tasks/{task}", rig.twilio.workspace_sid()),
            form: vec![("Attributes".into(), "{not json".into())],
            if_match: None,
        },
        procedure: None,
        caused_by_event: None,
        conversation_sid: None,
    };
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
