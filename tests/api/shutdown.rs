//! Graceful shutdown of the real binary: SIGTERM stops accepting connections, lets the request
//! in flight finish (2xx, stored), lets claimed work finish or gives its leases back, and the
//! process exits 0 within `BATON_SHUTDOWN_TIMEOUT`.

use crate::helpers::*;
use baton::store;
use std::time::{Duration, Instant};
use twilio_standin::{Faults, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus};

const FORM: &str = "application/x-www-form-urlencoded";

async fn inbox_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inbox_events")
        .fetch_one(pool)
        .await
        .expect("count inbox")
}

/// `baton serve` with one processor and a 5 s shutdown timeout.
async fn serving_with_a_processor() -> (StandIn, ServeProcess) {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let baton = ServeProcess::start(
        &twilio.base_url(),
        &[("BATON_SHUTDOWN_TIMEOUT", "5"), ("BATON_PROCESSORS", "1")],
    )
    .await;
    (twilio, baton)
}

/// SIGTERM, then the exit code and how long after the signal it came.
async fn terminate(baton: &mut ServeProcess, within: Duration) -> (Option<i32>, Duration) {
    let signalled = Instant::now();
    baton.terminate();
    let code = baton.exit_within(within).await;
    (code, signalled.elapsed())
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    let (_twilio, mut baton) = serving_with_a_processor().await;
    // An idle keep-alive connection must not hold the shutdown up.
    let mut idle = RawConnection::open(&baton.address).await;
    assert!(
        idle.send(b"GET /healthz HTTP/1.1\r\nHost: baton.example.test\r\n\r\n")
            .await
    );
    assert_eq!(idle.response().await.expect("healthz").status, 200);

    // Headers and half the body of a signed callback are in when SIGTERM arrives.
    let (body, signature) = signed_taskrouter_callback(&task_created(1));
    let mut in_flight = RawConnection::open(&baton.address).await;
    let head = post_head(
        "/webhooks/taskrouter",
        FORM,
        &format!("{signature}Content-Length: {}\r\n", body.len()),
    );
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    assert!(in_flight.send(head.as_bytes()).await);
    assert!(in_flight.send(first).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    baton.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // No new connections.
    let authority = baton.address.trim_start_matches("http://").to_owned();
    assert!(
        tokio::net::TcpStream::connect(&authority).await.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    // The idle connection was closed.
    assert!(idle.closed_within(Duration::from_secs(1)).await);
    // The request in flight completes, and its event is stored.
    assert!(in_flight.send(rest).await);
    let res = in_flight.response().await.expect("a response");
    assert_eq!(res.status, 204);
    assert_eq!(inbox_count(&baton.pool).await, 1);

    let code = baton.exit_within(Duration::from_secs(6)).await;
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "{:#?}", baton.log());
    assert!(took < Duration::from_secs(5), "{took:?}");
    let log = baton.log();
    assert!(log.iter().any(|l| l.contains("baton stopped")), "{log:#?}");
    assert!(
        !log.iter().any(|l| l.contains("shutdown deadline")),
        "{log:#?}"
    );
}

/// Claims of a processor at work when SIGTERM arrives: each of its rows is processed or free.
#[tokio::test]
async fn sigterm_leaves_no_inbox_row_leased() {
    let (_twilio, mut baton) = serving_with_a_processor().await;
    // 3,000 events waiting, so the processor is claiming batch after batch.
    let rows: Vec<_> = (0..3_000)
        .map(|n| {
            baton::ingest::inbox_row(&baton::ingest::parse::taskrouter_callback(
                &task_created(n),
                None,
            ))
        })
        .collect();
    store::inbox::insert(&baton.pool, &rows)
        .await
        .expect("insert");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leased: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbox_progress WHERE lease_owner IS NOT NULL")
                .fetch_one(&baton.pool)
                .await
                .expect("leases");
        if leased > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the processor claimed nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (code, took) = terminate(&mut baton, Duration::from_secs(6)).await;
    assert_eq!(code, Some(0), "{:#?}", baton.log());
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (leased, processed, dead): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(lease_owner), count(processed_at), count(dead_at) FROM inbox_progress",
    )
    .fetch_one(&baton.pool)
    .await
    .expect("progress");
    assert_eq!(leased, 0, "rows left leased");
    assert!(processed > 0, "the claimed batch was not finished");
    assert_eq!(dead, 0);
}

/// A stand-in answering after `latency`, baton dispatching a call to it, SIGTERM once the call
/// is in flight: the exit code, how long the exit took, and the call's state, attempts and
/// lease owner afterwards.
async fn sigterm_during_a_call(
    latency: Duration,
    shutdown_timeout: &str,
) -> (
    Option<i32>,
    Duration,
    (String, i32, Option<uuid::Uuid>),
    StandIn,
    String,
) {
    let twilio = StandIn::start(StandInConfig {
        account_sid: sid("AC", 1),
        workspace_sid: sid("WS", 1),
        auth_token: AUTH_TOKEN.into(),
        ..StandInConfig::default()
    })
    .await;
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    twilio.set_faults(Faults {
        latency,
        ..Faults::default()
    });
    let mut baton = ServeProcess::start(
        &twilio.base_url(),
        &[("BATON_SHUTDOWN_TIMEOUT", shutdown_timeout)],
    )
    .await;
    let mut tx = baton.pool.begin().await.expect("begin");
    assert!(
        store::outbox::enqueue(&mut tx, &complete_task(&twilio, &task))
            .await
            .expect("enqueue")
    );
    tx.commit().await.expect("commit");
    // In flight: claimed, and sent meanwhile (the stand-in holds its answer back).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let claimed: Option<bool> =
            sqlx::query_scalar("SELECT lease_owner IS NOT NULL FROM outbox")
                .fetch_optional(&baton.pool)
                .await
                .expect("the call");
        if claimed == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the call was not claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, took) = terminate(&mut baton, Duration::from_secs(15)).await;
    let state = sqlx::query_as("SELECT state, attempts, lease_owner FROM outbox")
        .fetch_one(&baton.pool)
        .await
        .expect("the call");
    (code, took, state, twilio, task)
}

#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish() {
    let (code, took, (state, attempts, lease), twilio, task) =
        sigterm_during_a_call(Duration::from_millis(1500), "5").await;
    assert_eq!(code, Some(0));
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!((state.as_str(), attempts, lease), ("done", 1, None));
    let completions = twilio
        .effects()
        .iter()
        .filter(|e| e.completes_task(&task))
        .count();
    assert_eq!(completions, 1);
}

#[tokio::test]
async fn a_call_outlasting_the_shutdown_timeout_is_released_not_left_leased() {
    let (code, took, (state, attempts, lease), _twilio, _task) =
        sigterm_during_a_call(Duration::from_secs(20), "2").await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_millis(2500), "{took:?}");
    // Another dispatcher may send it at once (its fate is unknown, as after a crash).
    assert_eq!((state.as_str(), attempts, lease), ("pending", 1, None));
}
