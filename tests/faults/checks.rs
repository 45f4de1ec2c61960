//! The invariants every fault test ends on: each acknowledged event is stored once and applied
//! once; each transfer's outbound call is done and had exactly one effect at Twilio.

use crate::load::Transfer;
use sqlx::PgPool;
use std::collections::BTreeSet;
use twilio_standin::{LoggedRequest, StandIn};

/// The inbox holds exactly `expected` (every one processed, none dead) and the facts show each
/// applied once: every application of a task event adds one to its task's `event_count`.
pub async fn each_event_stored_and_applied_once(pool: &PgPool, expected: &BTreeSet<String>) {
    let stored: Vec<String> = sqlx::query_scalar("SELECT event_key FROM inbox_events")
        .fetch_all(pool)
        .await
        .expect("inbox keys");
    let stored_set: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), stored_set.len(), "one row per event");
    let missing: Vec<&String> = expected.difference(&stored_set).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events are not in the inbox, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let unexpected: Vec<&String> = stored_set.difference(expected).collect();
    assert!(
        unexpected.is_empty(),
        "{} events stored that no one acknowledged, e.g. {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(3)]
    );
    let (processed, dead, failed): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE processed_at IS NOT NULL),
                count(*) FILTER (WHERE dead_at IS NOT NULL),
                count(*) FILTER (WHERE last_error IS NOT NULL)
         FROM inbox_progress",
    )
    .fetch_one(pool)
    .await
    .expect("progress");
    assert_eq!(
        (processed, dead, failed),
        (expected.len() as i64, 0, 0),
        "(processed, dead, with an error)"
    );
    let (applied, task_events): (Option<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT sum(event_count)::bigint FROM tasks),
                (SELECT count(*) FROM inbox_events WHERE task_sid IS NOT NULL)",
    )
    .fetch_one(pool)
    .await
    .expect("applications");
    assert_eq!(
        applied,
        Some(task_events),
        "task events applied (sum of event_count) vs stored"
    );
}

/// Baton's `AssignmentStatus=completed` requests for `task`, in arrival order.
pub fn completions_sent(twilio: &StandIn, task: &str) -> Vec<LoggedRequest> {
    twilio
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "POST"
                && r.path.ends_with(&format!("/Tasks/{task}"))
                && r.form_value("AssignmentStatus") == Some("completed")
        })
        .collect()
}

/// Every transfer's transferring side was finished exactly once at Twilio, by one outbox call
/// that ended `done`. A call whose first attempt's fate was unknown (no answer, a crash) is
/// retried after asking Twilio, which shows the task completed: nothing is re-sent. A re-send
/// that did happen (the task read before the first attempt applied) is shown harmless: it
/// answered 400 / 20001 (the task is completed already) and counted as done. Returns how many
/// were retried so (re-sent, or found done at Twilio).
pub async fn each_transfer_finished_once(
    pool: &PgPool,
    twilio: &StandIn,
    transfers: &[Transfer],
) -> usize {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT idempotency_key, state, withdrawn FROM outbox ORDER BY idempotency_key",
    )
    .fetch_all(pool)
    .await
    .expect("outbox");
    let calls: Vec<(String, String)> = rows
        .iter()
        .map(|(key, state, _)| (key.clone(), state.clone()))
        .collect();
    let mut expected: Vec<(String, String)> = transfers
        .iter()
        .map(|t| (format!("complete:{}:{}", t.from, t.to), "done".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(calls, expected, "one call per transfer, each done");
    // A retry that asked Twilio first and found the task completed by an earlier attempt.
    let found_done = |t: &Transfer| {
        rows.iter().any(|(key, _, withdrawn)| {
            key == &format!("complete:{}:{}", t.from, t.to)
                && withdrawn.as_deref() == Some(&format!("task {} is completed already", t.from))
        })
    };
    let effects = twilio.effects();
    let mut resent = 0;
    for t in transfers {
        let completed = effects.iter().filter(|e| e.completes_task(&t.from)).count();
        assert_eq!(completed, 1, "{} completed once at Twilio", t.from);
        assert!(!effects.iter().any(|e| e.completes_task(&t.to)));
        let sent = completions_sent(twilio, &t.from);
        match sent.as_slice() {
            // One request, answered or applied before its answer was lost: a retry asks
            // Twilio first and finds the task completed.
            // One request, answered or applied before its answer was lost: a retry asks
            // Twilio first and finds the task completed.
            [only] => {
                assert!(only.status == Some(200) || only.applied(), "{only:?}");
                if found_done(t) {
                    resent += 1;
                }
            }
            [first, rest @ ..] => {
                assert!(first.applied(), "the first attempt applied it: {first:?}");
                for again in rest {
                    assert_eq!(
                        (again.status, again.error_code, again.applied()),
                        (Some(400), Some(20001), false),
                        "a re-send finds it done: {again:?}"
                    );
                }
                resent += 1;
            }
            [] => panic!("{} was never completed", t.from),
        }
    }
    resent
}
