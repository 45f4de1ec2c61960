//! `kill -9` of `baton serve` mid-load, then a restart on the same database.

use crate::checks::{
    completions_sent, each_event_stored_and_applied_once, each_transfer_finished_once,
};
use crate::load::{
    held_completion, hold_next_completions, sample_events, settle, transfers, Load, Redeliver,
};
use crate::serve::{migrated_database, Baton, ServeOptions};
use baton::store;
use std::collections::BTreeSet;
use std::time::Duration;
use twilio_standin::{StandIn, StandInConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_loses_no_acknowledged_event_and_repeats_no_effect() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let (transfer_events, transfers) = transfers(&twilio, 30).await;
    // The first two completions are in flight (applied, unanswered) when baton dies.
    hold_next_completions(&twilio, 2);

    let database_url = migrated_database().await;
    let pool = store::connect_lazy(&database_url, &store::PoolSettings::default()).unwrap();
    let mut baton = Baton::start(ServeOptions::new(&database_url, &twilio)).await;
    // The transfers' events after the first thousand, so the crash comes with many events
    // acknowledged and more to come.
    let mut events = sample_events(2_500, 250);
    let rest = events.split_off(1_000);
    events.extend(transfer_events);
    events.extend(rest);
    let load = Load::start(
        vec![baton.address.clone()],
        twilio.auth_token(),
        events,
        8,
        Duration::ZERO,
        Redeliver::UntilAcknowledged,
    );
    held_completion(&twilio).await;
    let acknowledged_at_crash = load.acknowledged();
    baton.kill9();
    assert!(
        acknowledged_at_crash < load.len(),
        "killed mid-load: {acknowledged_at_crash} of {} acknowledged",
        load.len()
    );
    // Deliveries fail while it is down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    baton.restart().await;
    let load = load.finish(Duration::from_secs(90)).await;
    settle(&pool, Duration::from_secs(60)).await;

    let refused = load
        .attempts()
        .iter()
        .filter(|a| a.status.is_none())
        .count();
    assert!(refused > 0, "some deliveries found baton down");
    assert_eq!(load.acknowledged(), load.len());
    let expected: BTreeSet<String> = load.keys().into_iter().collect();
    each_event_stored_and_applied_once(&pool, &expected).await;
    // The calls in flight at the crash were retried after their lease (3 s) ran out: Twilio,
    // asked first, showed their task completed, so nothing was sent twice.
    let resent = each_transfer_finished_once(&pool, &twilio, &transfers).await;
    assert!(resent >= 1, "the call in flight at the crash was retried");
    // The crashed attempt left no record in outbox_attempts; the one that took over is attempt 2.
    let unrecorded: Vec<(String, i32, Vec<i32>)> = sqlx::query_as(
        "SELECT o.idempotency_key, o.attempts, array_agg(a.attempt ORDER BY a.attempt)
         FROM outbox o JOIN outbox_attempts a ON a.outbox_id = o.id
         GROUP BY o.id HAVING min(a.attempt) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!unrecorded.is_empty(), "a crashed attempt was taken over");
    for (key, attempts, recorded) in &unrecorded {
        let from = key.split(':').nth(1).unwrap();
        assert_eq!(recorded.last(), Some(attempts), "{key}");
        // Taken over: sent (again, or for the first time when the crash came while Twilio was
        // being asked to confirm), or Twilio, asked first, showed it done. Once at Twilio either
        // way (each_transfer_finished_once above).
        let withdrawn: Option<String> =
            sqlx::query_scalar("SELECT withdrawn FROM outbox WHERE idempotency_key = $1")
                .bind(key)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            !completions_sent(&twilio, from).is_empty() || withdrawn.is_some(),
            "{key}"
        );
    }
    assert!(baton.panics().is_empty(), "{:?}", baton.panics());
}
