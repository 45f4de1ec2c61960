//! Two and three `baton serve` processes on one database under load; in the second test one is
//! killed (`kill -9`) while it holds inbox leases and a call in flight, and the others take its
//! work over once its leases expire (`BATON_INBOX_LEASE=2s`, `BATON_OUTBOX_LEASE=3s`).

use crate::checks::{each_event_stored_and_applied_once, each_transfer_finished_once};
use crate::load::{
    held_completion, hold_next_completions, sample_events, settle, transfers, Load, Redeliver,
};
use crate::serve::{migrated_database, Baton, ServeOptions};
use baton::store;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Duration;
use twilio_standin::{StandIn, StandInConfig};
use uuid::Uuid;

struct Cluster {
    twilio: StandIn,
    pool: PgPool,
    batons: Vec<Baton>,
    transfers: Vec<crate::load::Transfer>,
    load: Load,
}

/// `n` batons on one fresh database, and a load spread over them: 2,000 events plus the
/// callbacks of 30 transfers (each delivery round-robin; a failed one goes to the next baton).
async fn cluster(n: usize, hold_first_completion: bool) -> Cluster {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let (transfer_events, transfers) = transfers(&twilio, 30).await;
    if hold_first_completion {
        hold_next_completions(&twilio, 1);
    }
    let database_url = migrated_database().await;
    let pool = store::connect_lazy(&database_url, &store::PoolSettings::default()).unwrap();
    let mut batons = Vec::new();
    for _ in 0..n {
        batons.push(Baton::start(ServeOptions::new(&database_url, &twilio)).await);
    }
    let mut events = sample_events(2_000, 200);
    let rest = events.split_off(600);
    events.extend(transfer_events);
    events.extend(rest);
    let load = Load::start(
        batons.iter().map(|b| b.address.clone()).collect(),
        twilio.auth_token(),
        events,
        3 * n,
        Duration::ZERO,
        Redeliver::UntilAcknowledged,
    );
    Cluster {
        twilio,
        pool,
        batons,
        transfers,
        load,
    }
}

impl Cluster {
    /// Waits for the load and the work it caused, then checks: every event applied once,
    /// every transfer finished once at Twilio. Returns how many calls were retried.
    async fn settle_and_check(self) -> (Cluster, usize) {
        let load = self.load.finish(Duration::from_secs(90)).await;
        settle(&self.pool, Duration::from_secs(60)).await;
        assert_eq!(load.acknowledged(), load.len());
        let expected: BTreeSet<String> = load.keys().into_iter().collect();
        each_event_stored_and_applied_once(&self.pool, &expected).await;
        let resent = each_transfer_finished_once(&self.pool, &self.twilio, &self.transfers).await;
        for baton in &self.batons {
            assert!(baton.panics().is_empty(), "{:?}", baton.panics());
        }
        (Cluster { load, ..self }, resent)
    }

    /// How many events each baton's processors applied, in `batons` order.
    async fn processed_by(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for baton in &self.batons {
            let ids = baton.worker_ids("processor");
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM inbox_progress WHERE processed_by = ANY($1)",
            )
            .bind(&ids)
            .fetch_one(&self.pool)
            .await
            .unwrap();
            counts.push(n);
        }
        counts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_under_load_apply_each_event_once_and_send_each_effect_once() {
    let cluster = cluster(2, false).await;
    let (cluster, _) = cluster.settle_and_check().await;
    let by = cluster.processed_by().await;
    assert_eq!(by.iter().sum::<i64>(), cluster.load.len() as i64, "{by:?}");
    assert!(by.iter().all(|n| *n > 0), "both processed: {by:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_one_killed_mid_load_its_leased_work_is_taken_over() {
    let mut cluster = cluster(3, true).await;
    // The process whose dispatcher sent the held completion is the one to kill.
    let task = held_completion(&cluster.twilio).await;
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT lease_owner FROM outbox WHERE idempotency_key LIKE 'complete:' || $1 || ':%'",
    )
    .bind(&task)
    .fetch_one(&cluster.pool)
    .await
    .unwrap();
    let owner = owner.expect("the held call is leased");
    let victim = cluster
        .batons
        .iter()
        .position(|b| b.worker_ids("dispatcher").contains(&owner))
        .expect("one baton's dispatcher holds it");
    let processors = cluster.batons[victim].worker_ids("processor");
    // Freeze it until it also holds inbox leases (it claims a batch every few milliseconds
    // under this load), then kill it: those events are claimed, and not processed, by a dead
    // process.
    let mut leased: Vec<i64> = Vec::new();
    for _ in 0..200 {
        cluster.batons[victim].pause();
        leased = sqlx::query_scalar(
            "SELECT event_id FROM inbox_progress
             WHERE lease_owner = ANY($1) AND processed_at IS NULL ORDER BY event_id",
        )
        .bind(&processors)
        .fetch_all(&cluster.pool)
        .await
        .unwrap();
        if !leased.is_empty() {
            break;
        }
        cluster.batons[victim].resume();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let acknowledged_at_kill = cluster.load.acknowledged();
    cluster.batons[victim].kill9();
    assert!(!leased.is_empty(), "the killed process held inbox leases");
    assert!(
        acknowledged_at_kill < cluster.load.len(),
        "killed mid-load: {acknowledged_at_kill} of {}",
        cluster.load.len()
    );

    let (cluster, resent) = cluster.settle_and_check().await;
    assert!(resent >= 1, "the held call was retried by a survivor");
    // Its leased events were processed by the survivors' processors.
    let survivors: Vec<Uuid> = cluster
        .batons
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .flat_map(|(_, b)| b.worker_ids("processor"))
        .collect();
    let taken_over: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inbox_progress
         WHERE event_id = ANY($1) AND processed_by = ANY($2) AND attempts >= 2",
    )
    .bind(&leased)
    .bind(&survivors)
    .fetch_one(&cluster.pool)
    .await
    .unwrap();
    assert_eq!(taken_over, leased.len() as i64);
    // The held call: the killed process's attempt left no record; a survivor's re-send did.
    let (state, recorded): (String, Vec<i32>) = sqlx::query_as(
        "SELECT o.state, array_agg(a.attempt ORDER BY a.attempt)
         FROM outbox o JOIN outbox_attempts a ON a.outbox_id = o.id
         WHERE o.idempotency_key LIKE 'complete:' || $1 || ':%' GROUP BY o.id",
    )
    .bind(&task)
    .fetch_one(&cluster.pool)
    .await
    .unwrap();
    assert_eq!(state, "done");
    assert!(recorded.first().is_some_and(|a| *a >= 2), "{recorded:?}");
    let by = cluster.processed_by().await;
    assert_eq!(by.iter().sum::<i64>(), cluster.load.len() as i64, "{by:?}");
    assert!(by.iter().all(|n| *n > 0), "all three processed: {by:?}");
}
