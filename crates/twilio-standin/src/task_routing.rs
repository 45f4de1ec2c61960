//! How a task reaches a worker without a routing engine: what happens to a new task (its
//! events, and with `auto_offer` the offer to the worker or queue its attributes aim at, else
//! to the first available worker), and the reservation steps the REST handlers and the plays
//! share (an offer, a new reservation, who holds a task, Flex's cold `TransferTask`).

use crate::effects::Effect;
use crate::model::*;
use crate::state::State;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The automatic offer of a new task, made once the creating request has built its answer:
/// TaskRouter routes after `CreateTask` returns, so the answer still shows a pending task.
#[must_use = "make the offer after building the answer"]
pub(crate) struct NewTaskOffer {
    task_sid: String,
    worker_sid: String,
}

impl NewTaskOffer {
    pub(crate) fn make(self, state: &mut State, now: DateTime<Utc>) {
        // Cannot fail: nothing happened to the new task in between, and the worker exists.
        let _ = offer(state, &self.task_sid, &self.worker_sid, now);
    }
}

/// A task was just created (REST `CreateTask` or an Invite): `task.created`, then
/// `task-queue.entered` when it has a queue; with `auto_offer`, the offer to make next.
pub(crate) fn task_created(
    state: &mut State,
    task_sid: &str,
    now: DateTime<Utc>,
) -> Option<NewTaskOffer> {
    state.emit_task(now, "task.created", task_sid);
    let target = if state.settings.auto_offer {
        routing_target(state, task_sid)
    } else {
        None
    };
    // A task aimed at a queue enters that queue (what the Flex transfer workflows' filters do).
    if let Some(Target::Queue(queue)) = &target {
        if let Some(task) = state.tasks.get_mut(task_sid) {
            task.task_queue_sid = Some(queue.clone());
        }
    }
    let queue = state
        .tasks
        .get(task_sid)
        .and_then(|t| t.task_queue_sid.clone());
    if queue.is_some() {
        state.emit_task(now, "task-queue.entered", task_sid);
    }
    if !state.settings.auto_offer {
        return None;
    }
    let worker_sid = match target {
        Some(Target::Worker(worker)) => Some(worker),
        _ => queue.and_then(|_| first_available_worker(state, task_sid)),
    }?;
    Some(NewTaskOffer {
        task_sid: task_sid.to_owned(),
        worker_sid,
    })
}

enum Target {
    Worker(String),
    Queue(String),
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The worker or queue a new task's attributes aim at (`transferTargetSid`, `targetSid`,
/// `baton.target_sid`), else its routing target (an Invite's `worker_sid`, `RoutingTarget`).
/// Only SIDs of workers and queues that exist count.
fn routing_target(state: &State, task_sid: &str) -> Option<Target> {
    let task = state.tasks.get(task_sid)?;
    let attributes = task.attributes_json();
    let named: Vec<String> = [
        text(&attributes, "transferTargetSid"),
        text(&attributes, "targetSid"),
        attributes
            .get("baton")
            .and_then(|baton| text(baton, "target_sid")),
        task.routing_target.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::to_owned)
    .collect();
    named.into_iter().find_map(|sid| {
        if sid.starts_with("WK") && state.workers.contains_key(&sid) {
            Some(Target::Worker(sid))
        } else if sid.starts_with("WQ") && state.queues.contains_key(&sid) {
            Some(Target::Queue(sid))
        } else {
            None
        }
    })
}

/// Strings of an attribute that may be one string or an array of them.
fn strings(value: &Value, key: &str) -> Vec<String> {
    match value.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The first seeded worker whose activity is available and whom the task does not exclude:
/// `workerSidsInConversation` (worker SIDs), `ignoreAgent` / `ignoreWorkerContactUri` (matched
/// against the SID, the friendly name and the `contact_uri` attribute, with or without
/// `client:`). Queue target expressions and channel capacity are not evaluated.
fn first_available_worker(state: &State, task_sid: &str) -> Option<String> {
    let attributes = state.tasks.get(task_sid)?.attributes_json();
    let excluded_sids = strings(&attributes, "workerSidsInConversation");
    let mut ignored = strings(&attributes, "ignoreAgent");
    ignored.extend(strings(&attributes, "ignoreWorkerContactUri"));
    state
        .worker_order
        .iter()
        .filter_map(|sid| state.workers.get(sid))
        .find(|worker| {
            let available = state
                .activity(&worker.activity_sid)
                .is_some_and(|a| a.available);
            let contact_uri = serde_json::from_str::<Value>(&worker.attributes)
                .ok()
                .and_then(|a| text(&a, "contact_uri").map(str::to_owned));
            let names = [
                Some(worker.sid.as_str()),
                Some(worker.friendly_name.as_str()),
                contact_uri.as_deref(),
                contact_uri
                    .as_deref()
                    .and_then(|u| u.strip_prefix("client:")),
            ];
            let is_ignored = ignored
                .iter()
                .any(|i| names.iter().flatten().any(|n| n == i));
            available && !is_ignored && !excluded_sids.contains(&worker.sid)
        })
        .map(|worker| worker.sid.clone())
}

/// Creates a pending reservation of a pending or reserved task for a worker: the task becomes
/// `reserved`, then `reservation.created`.
pub(crate) fn offer(
    state: &mut State,
    task_sid: &str,
    worker_sid: &str,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let wr = add_reservation(
        state,
        task_sid,
        worker_sid,
        &[TaskStatus::Pending, TaskStatus::Reserved],
        "pending or reserved",
        now,
    )?;
    state.move_task(task_sid, TaskStatus::Reserved, None, now);
    state.emit_reservation(now, "reservation.created", &wr);
    Ok(wr)
}

/// A new pending reservation of a task in one of `statuses` (`described` so in the refusal)
/// for a worker who holds no open reservation of it: stored and its effect recorded. The
/// caller moves the task if it must and emits `reservation.created`.
pub(crate) fn add_reservation(
    state: &mut State,
    task_sid: &str,
    worker_sid: &str,
    statuses: &[TaskStatus],
    described: &str,
    now: DateTime<Utc>,
) -> Result<String, String> {
    if !state.workers.contains_key(worker_sid) {
        return Err(format!("worker {worker_sid} does not exist"));
    }
    let Some(task) = state.tasks.get(task_sid) else {
        return Err(format!("task {task_sid} does not exist"));
    };
    if !statuses.contains(&task.assignment_status) {
        return Err(format!(
            "task {task_sid} is {}; only {described} tasks are offered",
            task.assignment_status
        ));
    }
    let open = task.reservations.iter().any(|wr| {
        state.reservations.get(wr).is_some_and(|r| {
            r.worker_sid == worker_sid
                // A worker still wrapping this task up may be offered it again (a call
                // transferred back, or parked to themselves).
                && matches!(
                    r.status,
                    ReservationStatus::Pending | ReservationStatus::Accepted
                )
        })
    });
    if open {
        return Err(format!(
            "worker {worker_sid} already holds an open reservation of task {task_sid}"
        ));
    }
    let wr = state.sid("WR");
    state.reservations.insert(
        wr.clone(),
        ReservationState {
            sid: wr.clone(),
            task_sid: task_sid.to_owned(),
            worker_sid: worker_sid.to_owned(),
            status: ReservationStatus::Pending,
            date_created: now,
            date_updated: now,
        },
    );
    if let Some(task) = state.tasks.get_mut(task_sid) {
        task.reservations.push(wr.clone());
    }
    state.effect(Effect::ReservationCreated {
        reservation_sid: wr.clone(),
        task_sid: task_sid.to_owned(),
        worker_sid: worker_sid.to_owned(),
    });
    Ok(wr)
}

/// The reservation through which the worker holding an assigned task holds it: its latest
/// accepted one (after a warm transfer, the worker it went to).
pub(crate) fn holder(state: &State, task_sid: &str) -> Result<ReservationState, String> {
    let task = state
        .tasks
        .get(task_sid)
        .ok_or_else(|| format!("task {task_sid} does not exist"))?;
    if task.assignment_status != TaskStatus::Assigned {
        return Err(format!(
            "task {task_sid} is {}, not assigned",
            task.assignment_status
        ));
    }
    task.reservations
        .iter()
        .rev()
        .filter_map(|wr| state.reservations.get(wr))
        .find(|r| r.status == ReservationStatus::Accepted)
        .cloned()
        .ok_or_else(|| format!("task {task_sid} has no accepted reservation"))
}

/// A voice call transferred cold by the agent holding it (Flex's `TransferTask`): the accepted
/// reservation goes to `wrapping`, the task back to `reserved` through a new pending
/// reservation for `to_worker`, whose `WR…` SID this returns.
pub(crate) fn transfer_call(
    state: &mut State,
    task_sid: &str,
    to_worker: &str,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let status = task_status(state, task_sid)?;
    if status != TaskStatus::Assigned {
        return Err(format!("task {task_sid} is {status}, not assigned"));
    }
    if !state.workers.contains_key(to_worker) {
        return Err(format!("worker {to_worker} does not exist"));
    }
    let held: Vec<String> = state
        .tasks
        .get(task_sid)
        .map(|t| t.reservations.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|wr| {
            state
                .reservations
                .get(wr)
                .is_some_and(|r| r.status == ReservationStatus::Accepted)
        })
        .collect();
    for wr in &held {
        state.set_reservation_status(wr, ReservationStatus::Wrapping, now);
    }
    state.move_task(task_sid, TaskStatus::Pending, None, now);
    offer(state, task_sid, to_worker, now)
}

pub(crate) fn task_status(state: &State, task_sid: &str) -> Result<TaskStatus, String> {
    state
        .tasks
        .get(task_sid)
        .map(|t| t.assignment_status)
        .ok_or_else(|| format!("task {task_sid} does not exist"))
}
