//! Backfill from the Events API, end to end: baton on a real database, the Twilio stand-in
//! playing TaskRouter (signed callbacks, and the same events in its Events list), baton's real
//! client paging through `GET /v1/Workspaces/{WS}/Events`. Tests assert on the inbox, the
//! facts and chains the processor builds, the runs' checkpoints and the stand-in's request log.

use crate::helpers::*;
use baton::app::backfill::{BackfillConfig, Backfiller, RunEnd, RunOptions, Stopped};
use baton::app::reconcile::ReconcileConfig;
use baton::domain::retry::RetryPolicy;
use baton::ingest::signature::compute_signature;
use baton::store::backfill::{self as runs, NewRun, Run, RunKind};
use baton::twilio::TwilioClient;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use twilio_standin::{Callback, Faults, LoggedRequest, SeedWorker, StandIn, StandInConfig};

fn client(twilio: &StandIn) -> TwilioClient {
    TwilioClient::new(
        twilio.account_sid(),
        SecretString::from(twilio.auth_token().to_owned()),
        Some(url::Url::parse(&twilio.base_url()).expect("url")),
        Duration::from_secs(10),
    )
    .expect("client")
}

fn fast_config() -> BackfillConfig {
    BackfillConfig {
        policy: RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
            max_attempts: 5,
        },
    }
}

/// A run over `since..until` through the library (what the CLI and the reconciler call).
async fn new_run(
    pool: &PgPool,
    twilio: &StandIn,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    page_size: i32,
) -> Run {
    runs::create(
        pool,
        &NewRun {
            kind: RunKind::Cli,
            workspace_sid: twilio.workspace_sid(),
            since,
            until,
            until_given: true,
            page_size,
        },
    )
    .await
    .expect("create run")
}

async fn continue_run(pool: &PgPool, twilio: &StandIn, run: Run) -> RunEnd {
    Backfiller::new(pool.clone(), client(twilio), fast_config())
        .run(
            run,
            &RunOptions {
                max_pages: None,
                track_tasks: true,
            },
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .expect("backfill run")
}

/// The stand-in's Events requests, in order.
fn events_requests(twilio: &StandIn) -> Vec<LoggedRequest> {
    let path = format!("/v1/Workspaces/{}/Events", twilio.workspace_sid());
    twilio
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .collect()
}

fn query<'a>(request: &'a LoggedRequest, key: &str) -> Option<&'a str> {
    request
        .query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(crate) async fn twilio_post(twilio: &StandIn, path: &str, form: &[(&str, String)]) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", twilio.base_url()))
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .form(form)
        .send()
        .await
        .expect("stand-in reachable");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

/// A legacy chat task created through TaskRouter's REST API.
pub(crate) async fn create_task(twilio: &StandIn, attributes: Value) -> String {
    let ws = twilio.workspace_sid().to_owned();
    let task = twilio_post(
        twilio,
        &format!("/v1/Workspaces/{ws}/Tasks"),
        &[
            ("Attributes", attributes.to_string()),
            ("WorkflowSid", twilio.default_workflow_sid()),
            ("TaskChannel", "chat".into()),
        ],
    )
    .await;
    task["sid"].as_str().expect("sid").to_owned()
}

/// Posts a callback the stand-in sent, signed for this app's public URL, as Twilio would have
/// delivered it there.
async fn deliver(app: &TestApp, twilio: &StandIn, callback: &Callback) {
    let path = "/webhooks/taskrouter";
    let signature = compute_signature(
        twilio.auth_token(),
        &format!("{PUBLIC_BASE}{path}"),
        &callback.params,
    );
    let response = app
        .post_form(path, &callback.params, Some(&signature))
        .await;
    assert_eq!(response.status(), 204, "{}", callback.event_type);
}

/// Facts and chains, without the columns that record when baton wrote them.
async fn derived_state(pool: &PgPool) -> Vec<(&'static str, Vec<Value>)> {
    let queries = [
        (
            "tasks",
            "SELECT to_jsonb(t) - 'updated_at' FROM tasks t ORDER BY task_sid",
        ),
        (
            "task_attributes",
            "SELECT to_jsonb(t) - 'updated_at' FROM task_attributes t ORDER BY task_sid",
        ),
        (
            "reservations",
            "SELECT to_jsonb(r) - 'updated_at' FROM reservations r ORDER BY reservation_sid",
        ),
        (
            "workers",
            "SELECT to_jsonb(w) - 'updated_at' FROM workers w ORDER BY worker_sid",
        ),
        (
            "task_links",
            "SELECT to_jsonb(l) FROM task_links l ORDER BY task_sid, link",
        ),
        (
            "linked_tasks",
            "SELECT to_jsonb(t) FROM linked_tasks t ORDER BY task_sid",
        ),
        (
            "chains",
            "SELECT to_jsonb(c) - 'updated_at' FROM chains c ORDER BY chain_id",
        ),
        (
            "chain_tasks",
            "SELECT to_jsonb(c) - 'linked_at' FROM chain_tasks c ORDER BY task_sid",
        ),
        (
            "hops",
            "SELECT to_jsonb(h) FROM hops h ORDER BY chain_id, seq",
        ),
    ];
    let mut state = Vec::new();
    for (name, sql) in queries {
        let rows: Vec<Value> = sqlx::query_scalar(sql)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        state.push((name, rows));
    }
    state
}

/// `(event_key, source)` of every inbox row, by key.
async fn inbox_keys(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT event_key, source FROM inbox_events ORDER BY event_key")
        .fetch_all(pool)
        .await
        .expect("inbox")
}

/// Each event is in the inbox exactly once, under its SID: the `lost` ones stored from the
/// Events API, the others from their callbacks.
async fn assert_inbox_holds(pool: &PgPool, callbacks: &[Callback], lost: &[Callback]) {
    let lost = sids(lost);
    let expected: Vec<(String, String)> = sids(callbacks)
        .into_iter()
        .map(|sid| {
            let source = if lost.contains(&sid) {
                "events_api"
            } else {
                "taskrouter_callback"
            };
            (format!("tr:sid:{sid}"), source.to_owned())
        })
        .collect();
    assert_eq!(inbox_keys(pool).await, expected);
}

fn sids(callbacks: &[Callback]) -> BTreeSet<String> {
    callbacks.iter().map(|c| c.event_sid.clone()).collect()
}

/// The stand-in playing TaskRouter with its Events list, two workers, and two batons on it:
/// `full` receives every callback the stand-in sends; `partial` only what a test delivers.
struct Delivery {
    twilio: StandIn,
    alice: String,
    bob: String,
    full: TestApp,
    partial: TestApp,
}

impl Delivery {
    async fn start() -> Delivery {
        let twilio = StandIn::start(StandInConfig {
            generate_events: true,
            ..StandInConfig::default()
        })
        .await;
        let alice = twilio.seed_worker(SeedWorker::new("alice"));
        let bob = twilio.seed_worker(SeedWorker::new("bob"));
        let options = || AppOptions {
            processors: 1,
            auth_tokens: vec![twilio.auth_token().to_owned()],
            twilio_api_base_url: Some(url::Url::parse(&twilio.base_url()).expect("url")),
            ..AppOptions::default()
        };
        let full = spawn_app_with(AppOptions {
            public_url: Some("http://127.0.0.1:0".into()),
            ..options()
        })
        .await;
        let partial = spawn_app_with(options()).await;
        twilio.set_callback_url(Some(format!("{}/webhooks/taskrouter", full.address)));
        Delivery {
            twilio,
            alice,
            bob,
            full,
            partial,
        }
    }
}

#[tokio::test]
async fn a_backfill_after_lost_callbacks_stores_each_event_once_and_rebuilds_what_full_delivery_gives(
) {
    let started = Utc::now();
    let Delivery {
        twilio,
        alice,
        bob,
        full,
        partial,
    } = Delivery::start().await;

    // Reachable: a chat task, accepted by Alice.
    let conversation = json!({"channelSid": "CH00000000000000000000000000000077", "name": "Ada"});
    let a = create_task(&twilio, conversation.clone()).await;
    let reservation = twilio.offer(&a, &alice);
    twilio.accept(&reservation);
    twilio.settle().await;
    let before_outage = twilio.callbacks().len();
    // Unreachable: the conversation moves to Bob (a second task on it) and Alice's task ends.
    let b = create_task(&twilio, conversation).await;
    let reservation = twilio.offer(&b, &bob);
    twilio.accept(&reservation);
    twilio.complete(&a);
    twilio.settle().await;
    let after_outage = twilio.callbacks().len();
    // Reachable again: Bob wraps up.
    twilio.wrap_up(&b);
    twilio.settle().await;

    let callbacks: Vec<Callback> = twilio.callbacks().into_iter().map(|d| d.callback).collect();
    assert!(twilio.callbacks().iter().all(|d| d.succeeded()));
    let lost = &callbacks[before_outage..after_outage];
    assert_eq!(
        lost.iter()
            .map(|c| c.event_type.as_str())
            .collect::<Vec<_>>(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.accepted",
            "reservation.completed",
            "task.completed"
        ]
    );
    for callback in callbacks[..before_outage]
        .iter()
        .chain(&callbacks[after_outage..])
    {
        deliver(&partial, &twilio, callback).await;
    }
    let total = callbacks.len();
    let listed: BTreeSet<String> = twilio
        .events()
        .iter()
        .map(|e| e["sid"].as_str().expect("sid").to_owned())
        .collect();
    assert_eq!(listed, sids(&callbacks), "the Events list has every event");

    // Backfill both, in pages of 4.
    let until = Utc::now();
    let since = started - TimeDelta::minutes(1);
    let run = new_run(&partial.pool, &twilio, since, until, 4).await;
    let end = continue_run(&partial.pool, &twilio, run).await;
    assert_eq!(end.stopped, Stopped::Complete);
    assert_eq!(end.run.status, "complete");
    assert_eq!(end.run.pages as usize, total.div_ceil(4));
    assert_eq!(end.run.fetched as usize, total);
    assert_eq!(end.run.stored as usize, lost.len());
    assert_eq!(end.run.duplicates as usize, total - lost.len());
    assert_eq!(end.run.flagged, 0);
    assert_eq!(end.run.next_page, None);

    let full_run = new_run(&full.pool, &twilio, since, until, 4).await;
    let full_end = continue_run(&full.pool, &twilio, full_run).await;
    assert_eq!(full_end.stopped, Stopped::Complete);
    assert_eq!(full_end.run.fetched as usize, total);
    assert_eq!(full_end.run.stored, 0, "every callback arrived");
    assert_eq!(full_end.run.duplicates as usize, total);

    assert_inbox_holds(&partial.pool, &callbacks, lost).await;
    assert_inbox_holds(&full.pool, &callbacks, &[]).await;

    // The processor rebuilds exactly what full delivery built.
    drained(&full.pool).await;
    drained(&partial.pool).await;
    let rebuilt = derived_state(&partial.pool).await;
    assert_eq!(rebuilt, derived_state(&full.pool).await);
    let chain_tasks: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT task_sid, chain_id, position FROM chain_tasks ORDER BY position")
            .fetch_all(&partial.pool)
            .await
            .unwrap();
    assert_eq!(
        chain_tasks,
        vec![(a.clone(), a.clone(), 0), (b.clone(), a.clone(), 1)]
    );
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT task_sid, assignment_status FROM tasks ORDER BY task_sid")
            .fetch_all(&partial.pool)
            .await
            .unwrap();
    let mut expected = vec![
        (a.clone(), "completed".to_owned()),
        (b.clone(), "wrapping".to_owned()),
    ];
    expected.sort();
    assert_eq!(statuses, expected);
    // The one chain the recovered events touched was rebuilt; nothing changed in `full`.
    assert_eq!(
        runs::chains_changed(&partial.pool, &end.run).await.unwrap(),
        1
    );
    assert_eq!(
        runs::chains_changed(&full.pool, &full_end.run)
            .await
            .unwrap(),
        0
    );
    let tracked: Vec<String> =
        sqlx::query_scalar("SELECT task_sid FROM backfill_run_tasks ORDER BY task_sid")
            .fetch_all(&partial.pool)
            .await
            .unwrap();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(tracked, both);
}

/// A busy hour's scale: 420 chat conversations, each moved from Alice's task to a second one
/// Bob takes (5,040 events). One baton gets every callback; the other only 30 % of them (3 of
/// every 10, spread over every kind of event), processes them as they come, and then backfills
/// the whole window in pages of 1,000: 30 % of what it imports it already has, counted as
/// duplicates and stored nothing, the other 70 % is stored once each, and the processor,
/// applying the recovered events late and out of order, converges on the very facts and chains
/// full delivery built.
#[tokio::test]
async fn a_backfill_of_5000_events_30_percent_already_present_stores_no_duplicate_and_converges_on_full_delivery(
) {
    const CONVERSATIONS: usize = 420;
    let started = Utc::now();
    let Delivery {
        twilio,
        alice,
        bob,
        full,
        partial,
    } = Delivery::start().await;

    let mut first_tasks = Vec::with_capacity(CONVERSATIONS);
    for i in 0..CONVERSATIONS {
        let conversation =
            json!({"channelSid": format!("CH{i:032x}"), "name": format!("customer {i}")});
        let a = create_task(&twilio, conversation.clone()).await;
        twilio.accept(&twilio.offer(&a, &alice));
        let b = create_task(&twilio, conversation).await;
        twilio.accept(&twilio.offer(&b, &bob));
        twilio.complete(&a);
        twilio.wrap_up(&b);
        first_tasks.push((a, b));
    }
    // The stand-in delivers callbacks one at a time, as Twilio does to one URL.
    twilio
        .settle_within(Duration::from_secs(180))
        .await
        .expect("callbacks delivered");
    let until = Utc::now();
    assert!(twilio.callbacks().iter().all(|d| d.succeeded()));
    let callbacks: Vec<Callback> = twilio.callbacks().into_iter().map(|d| d.callback).collect();
    let total = callbacks.len();
    assert_eq!(total, CONVERSATIONS * 12, "twelve events a conversation");
    assert!(total >= 5_000);

    // 30 % delivered, 70 % lost, both of every kind: delivered are the events whose position
    // ends in 0, 3 or 7.
    let is_lost = |i: usize| !matches!(i % 10, 0 | 3 | 7);
    let lost: Vec<Callback> = callbacks
        .iter()
        .enumerate()
        .filter(|(i, _)| is_lost(*i))
        .map(|(_, c)| c.clone())
        .collect();
    let delivered: Vec<&Callback> = callbacks
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_lost(*i))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(lost.len() * 10, total * 7);
    assert_eq!(delivered.len() * 10, total * 3);
    let lost_types: BTreeSet<&str> = lost.iter().map(|c| c.event_type.as_str()).collect();
    let all_types: BTreeSet<&str> = callbacks.iter().map(|c| c.event_type.as_str()).collect();
    assert_eq!(
        lost_types, all_types,
        "every kind of event is among the lost"
    );
    let delivered_types: BTreeSet<&str> = delivered.iter().map(|c| c.event_type.as_str()).collect();
    assert_eq!(
        delivered_types, all_types,
        "every kind of event is among the delivered"
    );
    for callback in &delivered {
        deliver(&partial, &twilio, callback).await;
    }
    drained(&partial.pool).await;

    let since = started - TimeDelta::minutes(1);
    let end = continue_run(
        &partial.pool,
        &twilio,
        new_run(&partial.pool, &twilio, since, until, 1000).await,
    )
    .await;
    assert_eq!(end.stopped, Stopped::Complete);
    assert_eq!(end.run.pages as usize, total.div_ceil(1000));
    assert_eq!(end.run.fetched as usize, total);
    assert_eq!(end.run.stored as usize, lost.len());
    assert_eq!(end.run.duplicates as usize, delivered.len());
    assert_eq!(end.run.flagged, 0);
    assert!(events_requests(&twilio)
        .iter()
        .all(|r| query(r, "PageSize") == Some("1000")));

    assert_eq!(sids(&callbacks).len(), total, "event SIDs are unique");
    assert_inbox_holds(&partial.pool, &callbacks, &lost).await;

    drained(&full.pool).await;
    drained(&partial.pool).await;
    assert_eq!(
        derived_state(&partial.pool).await,
        derived_state(&full.pool).await
    );
    // And what full delivery built is the right thing: one two-task chain a conversation.
    let mut chains: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT chain_id, task_sid, position FROM chain_tasks")
            .fetch_all(&partial.pool)
            .await
            .unwrap();
    chains.sort();
    let mut expected: Vec<(String, String, i32)> = first_tasks
        .iter()
        .flat_map(|(a, b)| [(a.clone(), a.clone(), 0), (a.clone(), b.clone(), 1)])
        .collect();
    expected.sort();
    assert_eq!(chains, expected);
}

/// Five task events in the stand-in's Events list, a second apart, ten minutes ago.
fn push_task_events(twilio: &StandIn) -> (DateTime<Utc>, Vec<String>) {
    let base = Utc::now() - TimeDelta::minutes(10);
    let sids = (1..=5u128)
        .map(|n| {
            let task = sid("WT", n);
            twilio.push_event(json!({
                "event_type": "task.created",
                "event_date_ms": base.timestamp_millis() + (n as i64) * 1000,
                "resource_type": "task",
                "resource_sid": task,
                "description": "Task created",
                "event_data": {
                    "task_sid": task,
                    "task_attributes": "{\"name\":\"Ada\"}",
                    "task_assignment_status": "pending",
                    "workspace_sid": twilio.workspace_sid(),
                }
            }))
        })
        .collect();
    (base, sids)
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `baton backfill events` against the stand-in and the app's database.
fn backfill_command(app: &TestApp, twilio: &StandIn, args: &[&str]) -> Command {
    let mut command = baton_command(
        app,
        twilio,
        &["backfill", "events", "--json", "--wait-secs", "0"],
    );
    command.args(args);
    command
}

/// The `baton` binary with `args`, on the app's database and the stand-in's account.
pub(crate) fn baton_command(app: &TestApp, twilio: &StandIn, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env("TWILIO_ACCOUNT_SID", twilio.account_sid())
        .env("TWILIO_AUTH_TOKEN", twilio.auth_token())
        .env("TWILIO_WORKSPACE_SID", twilio.workspace_sid())
        .env("TWILIO_API_BASE_URL", twilio.base_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub(crate) async fn finish(child: std::process::Child) -> (Option<i32>, Value, String) {
    let output: Output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("baton ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (output.status.code(), summary, stderr)
}

pub(crate) async fn run_command(mut command: Command) -> (Option<i32>, Value, String) {
    finish(command.spawn().expect("spawn baton")).await
}

fn page_token(request: &LoggedRequest) -> Option<&str> {
    query(request, "PageToken")
}

#[tokio::test]
async fn a_run_stopped_after_a_page_continues_from_its_checkpoint_without_refetching() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let app = spawn_app().await;
    let (base, event_sids) = push_task_events(&twilio);
    let since = iso(base - TimeDelta::minutes(1));
    let until = iso(Utc::now());
    let window = ["--since", &since, "--until", &until, "--page-size", "2"];

    let (code, first, stderr) = run_command(backfill_command(
        &app,
        &twilio,
        &[&window[..], &["--max-pages", "1"]].concat(),
    ))
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(first["status"], "interrupted");
    assert_eq!(first["resumed"], false);
    assert_eq!(first["pages"], 1);
    assert_eq!(first["fetched"], 2);
    assert_eq!(first["new"], 2);
    assert_eq!(first["since"], since.as_str());
    assert_eq!(first["until"], until.as_str());
    let checkpoint: Option<String> =
        sqlx::query_scalar("SELECT next_page FROM backfill_runs WHERE id = $1")
            .bind(first["run_id"].as_i64().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let checkpoint = checkpoint.expect("the next page is checkpointed");
    assert!(checkpoint.contains("PageToken="), "{checkpoint}");

    let (code, second, stderr) = run_command(backfill_command(&app, &twilio, &window)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(second["run_id"], first["run_id"]);
    assert_eq!(second["status"], "complete");
    assert_eq!(second["resumed"], true);
    assert_eq!(second["pages"], 3);
    assert_eq!(second["fetched"], 5);
    assert_eq!(second["new"], 5);
    assert_eq!(second["duplicates"], 0);
    assert_eq!(second["chains_changed"], 0);
    assert_eq!(second["unprocessed"], 5, "no processor runs in this app");
    assert_eq!(second["this_invocation"]["pages"], 2);
    assert_eq!(second["this_invocation"]["fetched"], 3);

    // Three pages fetched once each: the rerun started at the checkpointed page.
    let requests = events_requests(&twilio);
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert_eq!(page_token(&requests[0]), None);
    assert_eq!(query(&requests[0], "StartDate"), Some(since.as_str()));
    assert_eq!(query(&requests[0], "EndDate"), Some(until.as_str()));
    assert_eq!(query(&requests[0], "PageSize"), Some("2"));
    let checkpointed: Vec<(String, String)> =
        url::form_urlencoded::parse(checkpoint.split_once('?').map_or("", |(_, q)| q).as_bytes())
            .into_owned()
            .collect();
    assert_eq!(requests[1].query, checkpointed);
    assert!(page_token(&requests[2]).is_some());
    assert_ne!(page_token(&requests[1]), page_token(&requests[2]));
    assert!(requests.iter().all(|r| r.status == Some(200)));

    let keys: Vec<(String, String)> = inbox_keys(&app.pool).await;
    let mut expected: Vec<(String, String)> = event_sids
        .iter()
        .map(|s| (format!("tr:sid:{s}"), "events_api".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn ctrl_c_stops_after_the_current_page_and_the_same_command_continues() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let app = spawn_app().await;
    let (base, _) = push_task_events(&twilio);
    let since = iso(base - TimeDelta::minutes(1));
    let args = ["--since", since.as_str(), "--page-size", "2"];
    // Slow answers, so the interrupt arrives while the first page is in flight.
    twilio.set_faults(Faults {
        latency: Duration::from_millis(700),
        ..Faults::none()
    });
    let child = backfill_command(&app, &twilio, &args)
        .spawn()
        .expect("spawn baton");
    let deadline = Instant::now() + Duration::from_secs(20);
    while events_requests(&twilio).is_empty() {
        assert!(Instant::now() < deadline, "no Events request");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (code, first, stderr) = finish(child).await;
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("stopping after the current page"),
        "{stderr}"
    );
    assert_eq!(first["status"], "interrupted");
    assert_eq!(first["pages"], 1);
    assert_eq!(first["fetched"], 2);
    assert_eq!(first["new"], 2);
    assert_eq!(events_requests(&twilio).len(), 1);

    twilio.set_faults(Faults::none());
    let (code, second, stderr) = run_command(backfill_command(&app, &twilio, &args)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(second["run_id"], first["run_id"]);
    assert_eq!(second["resumed"], true);
    assert_eq!(second["status"], "complete");
    assert_eq!(second["until"], first["until"], "the window is kept");
    assert_eq!(second["pages"], 3);
    assert_eq!(second["fetched"], 5);
    assert_eq!(second["new"], 5);
    let requests = events_requests(&twilio);
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests.iter().filter(|r| page_token(r).is_none()).count(),
        1,
        "the first page was fetched once"
    );
    assert_eq!(app.inbox_count().await, 5);
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_a_failed_run_continues() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let app = spawn_app().await;
    let (base, _) = push_task_events(&twilio);
    let events = format!("/v1/Workspaces/{}/Events", twilio.workspace_sid());
    // A 429 with Retry-After: 1, then a 503, then the page.
    twilio.fail_next("GET", &events, 1, 429, 20429);
    twilio.fail_next("GET", &events, 1, 503, 20503);
    let since = base - TimeDelta::minutes(1);
    let run = new_run(&app.pool, &twilio, since, Utc::now(), 1000).await;
    let clock = Instant::now();
    let end = continue_run(&app.pool, &twilio, run).await;
    assert!(
        clock.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured: {:?}",
        clock.elapsed()
    );
    assert_eq!(end.stopped, Stopped::Complete);
    assert_eq!((end.run.fetched, end.run.stored), (5, 5));
    let requests = events_requests(&twilio);
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(429), Some(503), Some(200)]
    );
    assert!(requests.iter().all(|r| r.query == requests[0].query));

    // A 400 fails the run; continuing it fetches again and stores nothing twice.
    twilio.clear_requests();
    twilio.fail_next("GET", &events, 1, 400, 20001);
    let run = new_run(&app.pool, &twilio, since, Utc::now(), 1000).await;
    let end = continue_run(&app.pool, &twilio, run).await;
    let Stopped::Failed(reason) = &end.stopped else {
        panic!("not failed: {:?}", end.stopped)
    };
    assert!(
        reason.starts_with("HTTP 400, Twilio error 20001"),
        "{reason}"
    );
    assert_eq!(end.run.status, "failed");
    assert_eq!(end.run.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!((end.run.pages, end.run.fetched), (0, 0));
    let again = continue_run(&app.pool, &twilio, end.run).await;
    assert_eq!(again.stopped, Stopped::Complete);
    assert_eq!(again.run.last_error, None);
    assert_eq!(
        (again.run.fetched, again.run.stored, again.run.duplicates),
        (5, 0, 5)
    );
    assert_eq!(
        events_requests(&twilio)
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [Some(400), Some(200)]
    );
    assert_eq!(app.inbox_count().await, 5);
}

async fn reconcile_runs(pool: &PgPool) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT status, stored, duplicates FROM backfill_runs WHERE kind = 'reconcile' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("runs")
}

#[tokio::test]
async fn the_reconciler_recovers_callbacks_that_never_arrived() {
    let twilio = StandIn::start(StandInConfig {
        generate_events: true,
        ..StandInConfig::default()
    })
    .await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let receiver = spawn_app_with(AppOptions {
        processors: 1,
        auth_tokens: vec![twilio.auth_token().to_owned()],
        public_url: Some("http://127.0.0.1:0".into()),
        ..AppOptions::default()
    })
    .await;
    let callback_url = format!("{}/webhooks/taskrouter", receiver.address);
    twilio.set_callback_url(Some(callback_url.clone()));
    let task = create_task(&twilio, json!({"name": "Ada"})).await;
    twilio.settle().await;
    // The callback URL is unset while Alice gets the task: nobody is told.
    twilio.set_callback_url(None);
    let reservation = twilio.offer(&task, &alice);
    twilio.accept(&reservation);
    twilio.set_callback_url(Some(callback_url.clone()));
    twilio.settle().await;
    let delivered = twilio.callbacks().len() as i64;
    let total = twilio.events().len() as i64;
    assert_eq!((delivered, total), (2, 4));

    // Another baton on the same database reconciles every 300 ms; its first run is at once.
    let reconciler = spawn_app_with(AppOptions {
        processors: 1,
        auth_tokens: vec![twilio.auth_token().to_owned()],
        twilio_api_base_url: Some(url::Url::parse(&twilio.base_url()).expect("url")),
        database_url: Some(receiver.database_url.clone()),
        reconcile: Some(ReconcileConfig {
            settle: Duration::ZERO,
            backfill: fast_config(),
            ..ReconcileConfig::every(Duration::from_millis(300))
        }),
        ..AppOptions::default()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reconcile_runs(&receiver.pool).await.is_empty()
        || reconcile_runs(&receiver.pool).await[0].0 == "running"
    {
        assert!(Instant::now() < deadline, "no reconcile run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        reconcile_runs(&receiver.pool).await[0],
        ("complete".to_owned(), total - delivered, delivered)
    );
    drained(&receiver.pool).await;
    let (status, worker): (String, Option<String>) = sqlx::query_as(
        "SELECT t.assignment_status, r.worker_sid FROM tasks t
         LEFT JOIN reservations r ON r.task_sid = t.task_sid WHERE t.task_sid = $1",
    )
    .bind(&task)
    .fetch_one(&receiver.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), worker), ("assigned", Some(alice.clone())));

    // Later, one more callback is lost: a later run recovers it.
    twilio.set_callback_url(None);
    twilio.wrap_up(&task);
    let lost_now = twilio.events().len() as i64 - total;
    assert_eq!(lost_now, 2, "reservation.wrapup and task.wrapup");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = reconcile_runs(&receiver.pool).await;
        let recovered: i64 = runs.iter().map(|r| r.1).sum();
        if recovered == total - delivered + lost_now {
            assert!(runs.len() >= 2);
            break;
        }
        assert!(recovered < total - delivered + lost_now, "{runs:?}");
        assert!(Instant::now() < deadline, "not recovered: {runs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drained(&receiver.pool).await;
    let status: String =
        sqlx::query_scalar("SELECT assignment_status FROM tasks WHERE task_sid = $1")
            .bind(&task)
            .fetch_one(&receiver.pool)
            .await
            .unwrap();
    assert_eq!(status, "wrapping");
    let sources: Vec<(String, i64)> =
        sqlx::query_as("SELECT source, count(*) FROM inbox_events GROUP BY source ORDER BY source")
            .fetch_all(&receiver.pool)
            .await
            .unwrap();
    assert_eq!(
        sources,
        vec![
            ("events_api".to_owned(), total - delivered + lost_now),
            ("taskrouter_callback".to_owned(), delivered)
        ]
    );

    let metrics = reconciler.metrics().await;
    for name in [
        "baton_reconcile_runs_total",
        "baton_reconcile_recovered_events_total",
        "baton_reconcile_last_run_recovered_events",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }

    // Shutdown stops the loop; no run is left `running`.
    reconciler.stopper.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while reconcile_runs(&receiver.pool)
        .await
        .iter()
        .any(|r| r.0 == "running")
    {
        assert!(Instant::now() < deadline, "a reconcile run is left running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
