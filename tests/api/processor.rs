//! The inbox processor against a real database: facts converge whatever the delivery order,
//! each event is applied exactly once across processors, and expired leases are reclaimed.

use crate::helpers::*;
use baton::app::processor::{Processor, ProcessorConfig};
use baton::domain::facts::{ReservationFact, TaskFact, WorkerFact};
use baton::ingest::inbox_row;
use baton::ingest::parse::taskrouter_callback;
use baton::store::{self, inbox::NewInboxEvent};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

fn processor(pool: &PgPool, batch_size: i64) -> Processor {
    Processor::new(
        pool.clone(),
        ProcessorConfig {
            batch_size,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(10),
            batch_window: Duration::from_millis(5),
            max_attempts: 5,
            ..ProcessorConfig::default()
        },
        Arc::new(Notify::new()),
    )
}

fn row(params: &[(String, String)]) -> NewInboxEvent {
    inbox_row(&taskrouter_callback(params, None))
}

async fn drain(p: &Processor) -> usize {
    let mut total = 0;
    loop {
        let n = p.run_once().await.expect("processing succeeds");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

fn lifecycle(task: &str) -> Vec<Vec<(String, String)>> {
    let base = 1_763_600_000_000;
    vec![
        task_callback("task.created", task, "pending", base),
        task_callback("reservation.created", task, "reserved", base + 100),
        task_callback("reservation.accepted", task, "assigned", base + 200),
        task_callback("task.wrapup", task, "wrapping", base + 300),
        task_callback("reservation.wrapup", task, "wrapping", base + 300),
        task_callback("task.completed", task, "completed", base + 400),
        task_callback("reservation.completed", task, "completed", base + 400),
    ]
}

#[tokio::test]
async fn reversed_delivery_converges_to_the_latest_state() {
    let app = spawn_app().await;
    let task = sid("WT", 21);
    let mut events = lifecycle(&task);
    events.reverse();
    // Delivered newest first, one processing pass per delivery: the worst order for naive updates.
    let p = processor(&app.pool, 100);
    for params in &events {
        assert_eq!(
            app.post_signed_form("/webhooks/taskrouter", params)
                .await
                .status(),
            204
        );
        drain(&p).await;
    }
    let t: TaskFact = store::facts::fetch_task(&app.pool, &task)
        .await
        .unwrap()
        .expect("task fact");
    assert_eq!(t.assignment_status.as_deref(), Some("completed"));
    assert_eq!(t.last_event_type.as_deref(), Some("task.completed"));
    assert_eq!(t.event_count, 7);
    assert_eq!(t.first_event_ms, Some(1_763_600_000_000));
    assert_eq!(t.task_queue_sid.as_deref(), Some(sid("WQ", 1).as_str()));
    assert_eq!(t.attributes.as_ref().unwrap()["channelType"], "sms");
    let r: ReservationFact = store::facts::fetch(&app.pool, &sid("WR", 1))
        .await
        .unwrap()
        .expect("reservation");
    assert_eq!(r.status.as_deref(), Some("completed"));
    assert_eq!(r.task_sid.as_deref(), Some(task.as_str()));
    let w: WorkerFact = store::facts::fetch(&app.pool, &sid("WK", 1))
        .await
        .unwrap()
        .expect("worker");
    assert_eq!(w.activity_sid, Some(sid("WA", 1_763_600_000_400)));
    let unprocessed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbox_progress WHERE processed_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unprocessed, 0);
}

#[tokio::test]
async fn attributes_follow_the_newest_event_and_a_late_older_one_does_not_win() {
    let app = spawn_app().await;
    let task = sid("WT", 25);
    let with_attributes = |ms: i64, attributes: &str| {
        let mut p = task_callback("task.updated", &task, "assigned", ms);
        for (k, v) in p.iter_mut() {
            if k == "TaskAttributes" {
                *v = attributes.to_owned();
            }
        }
        p
    };
    let p = processor(&app.pool, 100);
    for params in [
        with_attributes(1_763_600_000_000, r#"{"step":1}"#),
        with_attributes(1_763_600_002_000, r#"{"step":3}"#),
        with_attributes(1_763_600_001_000, r#"{"step":2}"#),
    ] {
        assert_eq!(
            app.post_signed_form("/webhooks/taskrouter", &params)
                .await
                .status(),
            204
        );
        drain(&p).await;
    }
    let t: TaskFact = store::facts::fetch_task(&app.pool, &task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.attributes, Some(serde_json::json!({"step": 3})));
    assert_eq!(t.event_count, 3);
}

#[tokio::test]
async fn a_running_server_processes_what_it_stores() {
    let app = spawn_app_with(AppOptions {
        processors: 1,
        ..AppOptions::default()
    })
    .await;
    let task = sid("WT", 22);
    for params in lifecycle(&task) {
        assert_eq!(
            app.post_signed_form("/webhooks/taskrouter", &params)
                .await
                .status(),
            204
        );
    }
    let mut fact: Option<TaskFact> = None;
    for _ in 0..200 {
        fact = store::facts::fetch_task(&app.pool, &task).await.unwrap();
        if fact.as_ref().is_some_and(|f| f.event_count == 7) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let fact = fact.expect("the processor recorded the task");
    assert_eq!(fact.event_count, 7);
    assert_eq!(fact.assignment_status.as_deref(), Some("completed"));
    app.stopper.stop().await;
}

#[tokio::test]
async fn two_processors_process_ten_thousand_events_exactly_once() {
    let app = spawn_app().await;
    let rows: Vec<NewInboxEvent> = (0..10_000u128)
        .map(|i| {
            let task = sid("WT", i % 250);
            let mut params = task_callback(
                "task.updated",
                &task,
                "assigned",
                1_763_600_000_000 + i as i64,
            );
            params.push(("Sid".into(), sid("EV", i)));
            row(&params)
        })
        .collect();
    for chunk in rows.chunks(1000) {
        let report = store::inbox::insert(&app.pool, chunk).await.unwrap();
        assert_eq!(report.stored, chunk.len());
    }
    // Two processes: separate pools on the same database.
    let other_pool =
        store::connect_lazy(&app.database_url, &store::PoolSettings::default()).unwrap();
    let a = processor(&app.pool, 100);
    let b = processor(&other_pool, 100);
    let (na, nb) = tokio::join!(drain(&a), drain(&b));
    assert_eq!(
        na + nb,
        10_000,
        "every event was claimed once in total ({na} + {nb})"
    );
    assert!(na > 0 && nb > 0, "both processors worked ({na}, {nb})");
    let (processed, by_a, by_b): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE processed_at IS NOT NULL),
                count(*) FILTER (WHERE processed_by = $1),
                count(*) FILTER (WHERE processed_by = $2)
         FROM inbox_progress",
    )
    .bind(a.id())
    .bind(b.id())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(processed, 10_000);
    assert_eq!(by_a + by_b, 10_000);
    // Each application increments event_count once: a double application would show here.
    let (applied, tasks): (i64, i64) =
        sqlx::query_as("SELECT sum(event_count)::bigint, count(*) FROM tasks")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(applied, 10_000);
    assert_eq!(tasks, 250);
    // Each batch locks all its tasks in one ordered statement: the processors may wait for
    // each other, never deadlock (each of which cost a second and a retried batch). Backends
    // report their counts within a second of going idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deadlocks: i64 = sqlx::query_scalar(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(deadlocks, 0);
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_the_old_owner_cannot_finish() {
    let app = spawn_app().await;
    let task = sid("WT", 23);
    let rows: Vec<NewInboxEvent> = lifecycle(&task).iter().map(|p| row(p)).collect();
    store::inbox::insert(&app.pool, &rows).await.unwrap();
    // A processor that claims and then "crashes".
    let crashed = uuid::Uuid::new_v4();
    let claimed = store::inbox::claim(&app.pool, crashed, Duration::from_millis(200), 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 7);
    let healthy = processor(&app.pool, 100);
    assert_eq!(
        healthy.run_once().await.unwrap(),
        0,
        "leased rows are not taken early"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(drain(&healthy).await, 7);
    // The crashed owner comes back: it no longer owns anything.
    let mut tx = app.pool.begin().await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    let owned = store::inbox::lock_owned(&mut tx, crashed, &ids)
        .await
        .unwrap();
    assert!(owned.is_empty());
    let t: TaskFact = store::facts::fetch_task(&app.pool, &task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.event_count, 7);
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM inbox_progress ORDER BY event_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(attempts, vec![2; 7]);
}

#[tokio::test]
async fn released_leases_are_claimable_at_once() {
    let app = spawn_app().await;
    let rows: Vec<NewInboxEvent> = lifecycle(&sid("WT", 24)).iter().map(|p| row(p)).collect();
    store::inbox::insert(&app.pool, &rows).await.unwrap();
    let owner = uuid::Uuid::new_v4();
    assert_eq!(
        store::inbox::claim(&app.pool, owner, Duration::from_secs(600), 100)
            .await
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        store::inbox::release_leases(&app.pool, owner)
            .await
            .unwrap(),
        7
    );
    assert_eq!(drain(&processor(&app.pool, 100)).await, 7);
}

/// `(task, chain id, position)` of every chained task, in chain order.
async fn chain_positions(pool: &sqlx::PgPool) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT task_sid, chain_id, position FROM chain_tasks ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_chain_whose_tasks_all_arrive_in_one_batch_is_stored() {
    let app = spawn_app().await;
    let (a, b) = (sid("WT", 31), sid("WT", 32));
    // Both tasks carry the same conversationSid (task_callback's attributes): one chain.
    let rows = vec![
        row(&task_callback(
            "task.created",
            &a,
            "pending",
            1_763_600_000_000,
        )),
        row(&task_callback(
            "task.created",
            &b,
            "pending",
            1_763_600_001_000,
        )),
    ];
    store::inbox::insert(&app.pool, &rows).await.unwrap();
    assert_eq!(processor(&app.pool, 100).run_once().await.unwrap(), 2);
    assert_eq!(
        chain_positions(&app.pool).await,
        vec![(a.clone(), a.clone(), 0), (b, a, 1)]
    );
}

#[tokio::test]
async fn tasks_whose_shared_link_two_processors_stored_unseen_are_chained_by_their_next_event() {
    let app = spawn_app().await;
    let (a, b) = (sid("WT", 41), sid("WT", 42));
    let created = |task: &str, ms: i64| row(&task_callback("task.created", task, "pending", ms));
    store::inbox::insert(&app.pool, &[created(&a, 1_763_600_000_000)])
        .await
        .unwrap();
    assert_eq!(processor(&app.pool, 100).run_once().await.unwrap(), 1);
    store::inbox::insert(&app.pool, &[created(&b, 1_763_600_001_000)])
        .await
        .unwrap();
    assert_eq!(processor(&app.pool, 100).run_once().await.unwrap(), 1);
    let linked = || async {
        sqlx::query_scalar::<_, String>("SELECT task_sid FROM linked_tasks ORDER BY task_sid")
            .fetch_all(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(linked().await, vec![a.clone(), b.clone()]);
    // What two processors storing the shared link at once left behind before batches waited
    // for each other on new links (rows from then may remain): both links stored, neither
    // task listed as linked, no chain.
    sqlx::query("TRUNCATE linked_tasks, chains, chain_tasks, hops")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut updated = task_callback("task.updated", &a, "pending", 1_763_600_002_000);
    updated.push(("Sid".into(), sid("EV", 43)));
    store::inbox::insert(&app.pool, &[row(&updated)])
        .await
        .unwrap();
    assert_eq!(processor(&app.pool, 100).run_once().await.unwrap(), 1);
    assert_eq!(linked().await, vec![a.clone(), b.clone()]);
    assert_eq!(
        chain_positions(&app.pool).await,
        vec![(a.clone(), a.clone(), 0), (b, a, 1)]
    );
}

#[tokio::test]
async fn retention_deletes_old_processed_events_and_keeps_the_rest() {
    use baton::app::retention::{InboxRetention, RetentionConfig};
    let app = spawn_app().await;
    let task = sid("WT", 7);
    let rows: Vec<NewInboxEvent> = (0..6u128)
        .map(|i| {
            let mut params = task_callback(
                "task.updated",
                &task,
                "assigned",
                1_763_600_000_000 + i as i64,
            );
            params.push(("Sid".into(), sid("EV", i)));
            row(&params)
        })
        .collect();
    store::inbox::insert(&app.pool, &rows).await.unwrap();
    assert_eq!(drain(&processor(&app.pool, 100)).await, 6);
    // A flagged event, an event never processed and a dead one: all old, all kept.
    let mut odd = task_callback("task.teleported", &task, "assigned", 1_763_600_001_000);
    odd.push(("Sid".into(), sid("EV", 100)));
    let mut pending = task_callback("task.updated", &task, "assigned", 1_763_600_002_000);
    pending.push(("Sid".into(), sid("EV", 101)));
    let mut dead = task_callback("task.updated", &task, "assigned", 1_763_600_003_000);
    dead.push(("Sid".into(), sid("EV", 102)));
    store::inbox::insert(&app.pool, &[row(&odd), row(&pending), row(&dead)])
        .await
        .unwrap();
    sqlx::query(
        "UPDATE inbox_progress SET dead_at = now(), last_error = 'kept for ops'
         WHERE event_id = (SELECT id FROM inbox_events WHERE event_key = $1)",
    )
    .bind(format!("tr:sid:{}", sid("EV", 102)))
    .execute(&app.pool)
    .await
    .unwrap();
    // Four of the processed events, and the three odd ones, were received 50 days ago.
    let old: Vec<String> = [0u128, 1, 2, 3, 100, 101, 102]
        .iter()
        .map(|&i| format!("tr:sid:{}", sid("EV", i)))
        .collect();
    sqlx::query("UPDATE inbox_events SET received_at = now() - interval '50 days' WHERE event_key = ANY($1)")
        .bind(&old)
        .execute(&app.pool)
        .await
        .unwrap();

    let retention = InboxRetention::new(
        app.pool.clone(),
        RetentionConfig {
            batch: 3, // more than one batch
            ..RetentionConfig::keep(Duration::from_secs(45 * 24 * 3600))
        },
    );
    let deleted = retention
        .prune_once(&tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(deleted, 4);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT event_key FROM inbox_events ORDER BY event_key")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut expected: Vec<String> = [4u128, 5, 100, 101, 102]
        .iter()
        .map(|&i| format!("tr:sid:{}", sid("EV", i)))
        .collect();
    expected.sort();
    assert_eq!(left, expected);
    let progress: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox_progress")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(progress, 5, "progress rows go with their events");
    // What the events established stays.
    let status: Option<String> =
        sqlx::query_scalar("SELECT assignment_status FROM tasks WHERE task_sid = $1")
            .bind(&task)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(status.as_deref(), Some("assigned"));
    assert_eq!(
        retention
            .prune_once(&tokio_util::sync::CancellationToken::new())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_database_migrated_before_a_comment_was_reworded_still_migrates() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    baton::store::migrate(&pool).await.expect("first migration");
    // The checksum of the history migration's earlier text, as a database that applied it has.
    let earlier = "0be17f2acb4419537eeb25bdecd79aa4d9d36a0f237f6869b67287291c244ea141c4c969ee7645b95a81c8fb7de021bb";
    sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = decode($1, 'hex') WHERE version = 20261201000100",
    )
    .bind(earlier)
    .execute(&pool)
    .await
    .expect("update");
    baton::store::migrate(&pool)
        .await
        .expect("migrates again: the rewording is accepted");
    let current: Vec<u8> =
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = 20261201000100")
            .fetch_one(&pool)
            .await
            .expect("checksum");
    let embedded = baton::store::MIGRATOR
        .iter()
        .find(|m| m.version == 20261201000100)
        .expect("embedded");
    assert_eq!(current, embedded.checksum.as_ref());

    // Any other change to an applied migration is still refused.
    sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = decode(repeat('00', 48), 'hex') WHERE version = 20261201000100",
    )
    .execute(&pool)
    .await
    .expect("update");
    assert!(baton::store::migrate(&pool).await.is_err());
}
