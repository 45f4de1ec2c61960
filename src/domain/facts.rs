//! The facts baton keeps about TaskRouter resources: the latest known state of each task,
//! reservation and worker.
//!
//! Events arrive duplicated, late and out of order, so state is a merge, not a sequence of
//! updates: every field is a register holding the value of the event with the greatest
//! [`Stamp`]. The merge is commutative and associative, so any order of the same events
//! converges to the same facts (property-tested below).

use super::event::{TaskRouterEvent, TaskRouterEventType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Orders the values of one field: terminal states last, then event time, then how far along
/// the lifecycle the state is (ties within one millisecond), then a hash of the event key (so
/// ties never depend on arrival order). Stored as a compact JSON array `[terminal, ms, rank,
/// tiebreak]`: every event rewrites its task's row, so its size is throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "(bool, i64, i16, i64)", into = "(bool, i64, i16, i64)")]
pub struct Stamp {
    pub terminal: bool,
    pub ms: i64,
    pub rank: i16,
    pub tiebreak: i64,
}

impl Stamp {
    pub fn new(terminal: bool, ms: i64, rank: i16, event_key: &str) -> Stamp {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(event_key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Stamp {
            terminal,
            ms,
            rank,
            tiebreak: i64::from_be_bytes(first),
        }
    }
}

impl From<(bool, i64, i16, i64)> for Stamp {
    fn from((terminal, ms, rank, tiebreak): (bool, i64, i16, i64)) -> Stamp {
        Stamp {
            terminal,
            ms,
            rank,
            tiebreak,
        }
    }
}

impl From<Stamp> for (bool, i64, i16, i64) {
    fn from(s: Stamp) -> Self {
        (s.terminal, s.ms, s.rank, s.tiebreak)
    }
}

/// Per field, the stamp of the event whose value the field holds. Each field is its own
/// last-writer-wins register, so an event that lacks a field never hides a newer value of it.
pub type Versions = BTreeMap<String, Stamp>;

/// An event as the fact merge sees it: the typed event plus its identity and a fallback time.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub event: &'a TaskRouterEvent,
    pub event_key: &'a str,
    /// Event time in ms, or the receive time when the event had none.
    pub ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFact {
    pub task_sid: String,
    pub workspace_sid: Option<String>,
    pub assignment_status: Option<String>,
    /// Stored apart (`task_attributes`); `None` after a load until a merge sets it, since the
    /// register's stamp in `versions` is all the merge needs.
    #[serde(default)]
    pub attributes: Option<Value>,
    /// Storage bookkeeping: a hash of the attributes last stored (see `store::facts`).
    #[serde(default)]
    pub attributes_hash: Option<i64>,
    pub task_queue_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub task_channel: Option<String>,
    pub priority: Option<i64>,
    pub canceled_reason: Option<String>,
    pub completed_reason: Option<String>,
    pub last_event_type: Option<String>,
    pub versions: Versions,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub deleted: bool,
    pub event_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationFact {
    pub reservation_sid: String,
    pub task_sid: Option<String>,
    pub worker_sid: Option<String>,
    pub task_queue_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub status: Option<String>,
    /// When the reservation was first accepted (the earliest `reservation.accepted` seen): the
    /// moment a transfer's target took the customer.
    #[serde(default)]
    pub accepted_ms: Option<i64>,
    pub versions: Versions,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub event_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerFact {
    pub worker_sid: String,
    pub friendly_name: Option<String>,
    pub activity_sid: Option<String>,
    pub activity_name: Option<String>,
    pub previous_activity_sid: Option<String>,
    pub attributes: Option<Value>,
    pub versions: Versions,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub deleted: bool,
    pub event_count: i64,
}

impl TaskFact {
    pub fn new(task_sid: &str) -> TaskFact {
        TaskFact {
            task_sid: task_sid.to_owned(),
            workspace_sid: None,
            assignment_status: None,
            attributes: None,
            attributes_hash: None,
            task_queue_sid: None,
            workflow_sid: None,
            task_channel: None,
            priority: None,
            canceled_reason: None,
            completed_reason: None,
            last_event_type: None,
            versions: Versions::new(),
            first_event_ms: None,
            last_event_ms: None,
            deleted: false,
            event_count: 0,
        }
    }
}

impl ReservationFact {
    pub fn new(reservation_sid: &str) -> ReservationFact {
        ReservationFact {
            reservation_sid: reservation_sid.to_owned(),
            task_sid: None,
            worker_sid: None,
            task_queue_sid: None,
            workflow_sid: None,
            status: None,
            accepted_ms: None,
            versions: Versions::new(),
            first_event_ms: None,
            last_event_ms: None,
            event_count: 0,
        }
    }
}

impl WorkerFact {
    pub fn new(worker_sid: &str) -> WorkerFact {
        WorkerFact {
            worker_sid: worker_sid.to_owned(),
            friendly_name: None,
            activity_sid: None,
            activity_name: None,
            previous_activity_sid: None,
            attributes: None,
            versions: Versions::new(),
            first_event_ms: None,
            last_event_ms: None,
            deleted: false,
            event_count: 0,
        }
    }
}

/// How far along the task lifecycle a status is (pending → reserved → assigned → wrapping →
/// completed | canceled), and whether it is terminal.
pub fn task_status_rank(status: &str) -> (bool, i16) {
    match status {
        "pending" => (false, 0),
        "reserved" => (false, 1),
        "assigned" => (false, 2),
        "wrapping" => (false, 3),
        "completed" | "canceled" => (true, 4),
        _ => (false, -1),
    }
}

/// The reservation status an event implies, whether it is terminal, and its lifecycle rank.
pub fn reservation_status(event_type: &TaskRouterEventType) -> Option<(&'static str, bool, i16)> {
    use TaskRouterEventType as T;
    Some(match event_type {
        T::ReservationCreated => ("pending", false, 0),
        T::ReservationAccepted => ("accepted", false, 1),
        T::ReservationWrapup => ("wrapping", false, 2),
        T::ReservationCompleted => ("completed", true, 3),
        T::ReservationRejected => ("rejected", true, 3),
        T::ReservationTimeout => ("timeout", true, 3),
        T::ReservationCanceled => ("canceled", true, 3),
        T::ReservationRescinded => ("rescinded", true, 3),
        T::ReservationFailed => ("failed", true, 3),
        _ => return None,
    })
}

/// The bookkeeping every merge does: counts and the first/last event times are commutative.
fn observe(count: &mut i64, first: &mut Option<i64>, last: &mut Option<i64>, ms: i64) {
    *count += 1;
    *first = Some(first.map_or(ms, |f| f.min(ms)));
    *last = Some(last.map_or(ms, |l| l.max(ms)));
}

/// Writes `value` into `slot` when the event carries it and its stamp beats the field's current one.
fn set<T: Clone>(
    versions: &mut Versions,
    field: &str,
    stamp: &Stamp,
    slot: &mut Option<T>,
    value: &Option<T>,
) {
    let Some(value) = value else {
        return;
    };
    if versions.get(field).is_some_and(|current| current >= stamp) {
        return;
    }
    versions.insert(field.to_owned(), *stamp);
    *slot = Some(value.clone());
}

/// Merge one event into a task's facts. `fact` must be the task the event's snapshot names.
pub fn merge_task(fact: &mut TaskFact, obs: &Observation<'_>) {
    let Some(task) = obs.event.task.as_ref() else {
        return;
    };
    observe(
        &mut fact.event_count,
        &mut fact.first_event_ms,
        &mut fact.last_event_ms,
        obs.ms,
    );
    if matches!(
        obs.event.event_type,
        TaskRouterEventType::TaskDeleted | TaskRouterEventType::TaskSystemDeleted
    ) {
        fact.deleted = true;
    }
    // A task that leaves its workflow without being accepted (timeout, `skip_if`) is removed
    // by TaskRouter: canceled, whatever status the event's snapshot still shows.
    let removed = matches!(
        obs.event.event_type,
        TaskRouterEventType::WorkflowTimeout | TaskRouterEventType::WorkflowSkipped
    ) && !task
        .assignment_status
        .as_deref()
        .is_some_and(|s| task_status_rank(s).0);
    let ended = removed.then(|| "canceled".to_owned());
    let assignment_status = ended.as_ref().or(task.assignment_status.as_ref());
    let (terminal, rank) = assignment_status
        .map(String::as_str)
        .map_or((false, -1), task_status_rank);
    let stamp = Stamp::new(terminal, obs.ms, rank, obs.event_key);
    let v = &mut fact.versions;
    let event_type = Some(obs.event.event_type.to_string());
    set(
        v,
        "last_event_type",
        &stamp,
        &mut fact.last_event_type,
        &event_type,
    );
    set(
        v,
        "workspace_sid",
        &stamp,
        &mut fact.workspace_sid,
        &obs.event.workspace_sid,
    );
    set(
        v,
        "assignment_status",
        &stamp,
        &mut fact.assignment_status,
        &assignment_status.cloned(),
    );
    set(
        v,
        "attributes",
        &stamp,
        &mut fact.attributes,
        &task.attributes,
    );
    set(
        v,
        "task_queue_sid",
        &stamp,
        &mut fact.task_queue_sid,
        &obs.event.task_queue_sid,
    );
    set(
        v,
        "workflow_sid",
        &stamp,
        &mut fact.workflow_sid,
        &obs.event.workflow_sid,
    );
    set(
        v,
        "task_channel",
        &stamp,
        &mut fact.task_channel,
        &task.task_channel_unique_name,
    );
    set(v, "priority", &stamp, &mut fact.priority, &task.priority);
    let canceled_reason = task.canceled_reason.clone().or_else(|| {
        removed.then(|| {
            format!(
                "{} (the workflow ended without acceptance)",
                obs.event.event_type
            )
        })
    });
    set(
        v,
        "canceled_reason",
        &stamp,
        &mut fact.canceled_reason,
        &canceled_reason,
    );
    set(
        v,
        "completed_reason",
        &stamp,
        &mut fact.completed_reason,
        &task.completed_reason,
    );
}

/// Merge one reservation event into the reservation's facts.
pub fn merge_reservation(fact: &mut ReservationFact, obs: &Observation<'_>) {
    let Some((status, terminal, rank)) = reservation_status(&obs.event.event_type) else {
        return;
    };
    observe(
        &mut fact.event_count,
        &mut fact.first_event_ms,
        &mut fact.last_event_ms,
        obs.ms,
    );
    if obs.event.event_type == TaskRouterEventType::ReservationAccepted {
        fact.accepted_ms = Some(fact.accepted_ms.map_or(obs.ms, |a| a.min(obs.ms)));
    }
    let stamp = Stamp::new(terminal, obs.ms, rank, obs.event_key);
    let v = &mut fact.versions;
    // A reservation's task and worker never change; every event that names them agrees.
    let task_sid = obs.event.task.as_ref().map(|t| t.task_sid.clone());
    let worker_sid = obs.event.worker.as_ref().map(|w| w.worker_sid.clone());
    set(v, "task_sid", &stamp, &mut fact.task_sid, &task_sid);
    set(v, "worker_sid", &stamp, &mut fact.worker_sid, &worker_sid);
    set(
        v,
        "status",
        &stamp,
        &mut fact.status,
        &Some(status.to_owned()),
    );
    set(
        v,
        "task_queue_sid",
        &stamp,
        &mut fact.task_queue_sid,
        &obs.event.task_queue_sid,
    );
    set(
        v,
        "workflow_sid",
        &stamp,
        &mut fact.workflow_sid,
        &obs.event.workflow_sid,
    );
}

/// Merge one event carrying worker fields into the worker's facts.
pub fn merge_worker(fact: &mut WorkerFact, obs: &Observation<'_>) {
    let Some(worker) = obs.event.worker.as_ref() else {
        return;
    };
    observe(
        &mut fact.event_count,
        &mut fact.first_event_ms,
        &mut fact.last_event_ms,
        obs.ms,
    );
    let deleted = obs.event.event_type == TaskRouterEventType::WorkerDeleted;
    if deleted {
        fact.deleted = true;
    }
    let stamp = Stamp::new(deleted, obs.ms, 0, obs.event_key);
    let v = &mut fact.versions;
    set(
        v,
        "friendly_name",
        &stamp,
        &mut fact.friendly_name,
        &worker.friendly_name,
    );
    set(
        v,
        "activity_sid",
        &stamp,
        &mut fact.activity_sid,
        &worker.activity_sid,
    );
    set(
        v,
        "activity_name",
        &stamp,
        &mut fact.activity_name,
        &worker.activity_name,
    );
    set(
        v,
        "previous_activity_sid",
        &stamp,
        &mut fact.previous_activity_sid,
        &worker.previous_activity_sid,
    );
    set(
        v,
        "attributes",
        &stamp,
        &mut fact.attributes,
        &worker.attributes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventTime, TaskSnapshot, WorkerSnapshot};
    use proptest::prelude::*;

    fn ev(event_type: &str, ms: i64, status: &str, attrs: Value) -> TaskRouterEvent {
        TaskRouterEvent {
            event_type: TaskRouterEventType::parse(event_type),
            event_sid: None,
            account_sid: None,
            workspace_sid: Some("WS1".into()),
            resource_type: None,
            resource_sid: None,
            time: Some(EventTime {
                ms,
                millisecond_precision: true,
            }),
            task: Some(TaskSnapshot {
                task_sid: "WT1".into(),
                assignment_status: Some(status.into()),
                attributes: Some(attrs),
                ..Default::default()
            }),
            reservation_sid: event_type.starts_with("reservation.").then(|| "WR1".into()),
            worker: event_type
                .starts_with("reservation.")
                .then(|| WorkerSnapshot {
                    worker_sid: "WK1".into(),
                    activity_sid: Some(format!("WA{ms}")),
                    ..Default::default()
                }),
            task_queue_sid: Some("WQ1".into()),
            task_queue_name: None,
            workflow_sid: Some("WW1".into()),
            reason: None,
            transfer: None,
        }
    }

    /// A realistic life of one task: created, reserved, accepted, wrapped, completed — with two
    /// events in the same millisecond, as TaskRouter often emits.
    fn lifecycle() -> Vec<(String, TaskRouterEvent)> {
        vec![
            ev("task.created", 1000, "pending", serde_json::json!({"a": 1})),
            ev(
                "reservation.created",
                1100,
                "reserved",
                serde_json::json!({"a": 1}),
            ),
            ev(
                "task.updated",
                1100,
                "reserved",
                serde_json::json!({"a": 2}),
            ),
            ev(
                "reservation.accepted",
                1200,
                "assigned",
                serde_json::json!({"a": 2}),
            ),
            ev("task.wrapup", 1300, "wrapping", serde_json::json!({"a": 2})),
            ev(
                "reservation.wrapup",
                1300,
                "wrapping",
                serde_json::json!({"a": 2}),
            ),
            ev(
                "task.completed",
                1400,
                "completed",
                serde_json::json!({"a": 3}),
            ),
            ev(
                "reservation.completed",
                1400,
                "completed",
                serde_json::json!({"a": 3}),
            ),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("key{i}"), e))
        .collect()
    }

    fn fold(events: &[(String, TaskRouterEvent)]) -> (TaskFact, ReservationFact, WorkerFact) {
        let mut task = TaskFact::new("WT1");
        let mut res = ReservationFact::new("WR1");
        let mut worker = WorkerFact::new("WK1");
        for (key, e) in events {
            let obs = Observation {
                event: e,
                event_key: key,
                ms: e.time.map_or(0, |t| t.ms),
            };
            merge_task(&mut task, &obs);
            merge_reservation(&mut res, &obs);
            merge_worker(&mut worker, &obs);
        }
        (task, res, worker)
    }

    #[test]
    fn in_order_lifecycle_ends_completed_with_final_attributes() {
        let (task, res, worker) = fold(&lifecycle());
        assert_eq!(task.assignment_status.as_deref(), Some("completed"));
        assert_eq!(task.attributes, Some(serde_json::json!({"a": 3})));
        assert_eq!(task.event_count, 8);
        assert_eq!(task.first_event_ms, Some(1000));
        assert_eq!(task.last_event_ms, Some(1400));
        assert_eq!(res.status.as_deref(), Some("completed"));
        assert_eq!(res.accepted_ms, Some(1200));
        assert_eq!(res.worker_sid.as_deref(), Some("WK1"));
        assert_eq!(worker.activity_sid.as_deref(), Some("WA1400"));
    }

    #[test]
    fn a_late_older_event_does_not_overwrite_newer_state() {
        let mut events = lifecycle();
        let late = events.remove(1); // reservation.created arrives after completion
        events.push(late);
        let (task, res, _) = fold(&events);
        assert_eq!(task.assignment_status.as_deref(), Some("completed"));
        assert_eq!(res.status.as_deref(), Some("completed"));
    }

    #[test]
    fn a_task_that_leaves_its_workflow_unaccepted_is_canceled() {
        for kind in ["workflow.skipped", "workflow.timeout"] {
            let events = vec![
                (
                    "k0".to_owned(),
                    ev("task.created", 1000, "pending", serde_json::json!({})),
                ),
                (
                    "k1".to_owned(),
                    ev(kind, 1100, "pending", serde_json::json!({})),
                ),
            ];
            let (task, _, _) = fold(&events);
            assert_eq!(
                task.assignment_status.as_deref(),
                Some("canceled"),
                "{kind}"
            );
            assert!(task
                .canceled_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(kind)));
        }
    }

    #[test]
    fn deletion_is_sticky() {
        let mut events = lifecycle();
        events.insert(
            0,
            (
                "del".into(),
                ev(
                    "task.deleted",
                    1500,
                    "completed",
                    serde_json::json!({"a": 3}),
                ),
            ),
        );
        let (task, _, _) = fold(&events);
        assert!(task.deleted);
    }

    #[test]
    fn stamps_are_compact_and_round_trip() {
        let stamp = Stamp::new(true, 1_700_000_000_123, 4, "tr:sid:EV1");
        let json = serde_json::to_string(&stamp).unwrap();
        assert!(json.starts_with("[true,1700000000123,4,"), "{json}");
        assert_eq!(serde_json::from_str::<Stamp>(&json).unwrap(), stamp);
        assert_ne!(
            stamp.tiebreak,
            Stamp::new(true, 1_700_000_000_123, 4, "tr:sid:EV2").tiebreak
        );
    }

    proptest! {
        /// Invariant 3: any permutation of a task's events leads to the same final state.
        #[test]
        fn any_order_converges(perm in Just(lifecycle()).prop_shuffle()) {
            let expected = fold(&lifecycle());
            prop_assert_eq!(fold(&perm), expected);
        }
    }
}
