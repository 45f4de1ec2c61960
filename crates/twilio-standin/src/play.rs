//! Playing TaskRouter: the control methods a test calls instead of an agent clicking in Flex
//! ([`StandIn::offer`], [`StandIn::accept`], …). There is no routing engine and no timer: a
//! reservation exists because a test offered one (or `auto_offer` did, once, when the task was
//! created, see `crate::task_routing`), and a task times out because a test said so. Every
//! change goes through the same transitions as the REST API, so it records the same effects
//! and produces the same events (Events list and callbacks).

use crate::model::*;
use crate::state::State;
use crate::task_routing::{offer, task_status, transfer_call};
use crate::StandIn;
use chrono::{DateTime, Utc};

/// The reason (and `task.canceled` description) TaskRouter gives a task whose TTL ran out.
pub const TASK_TTL_EXCEEDED: &str = "Task TTL Exceeded";

/// The reason a task canceled after `workflow.timeout` carries.
pub const WORKFLOW_TIMEOUT: &str = "Workflow Timeout";

/// The reason a task canceled after `workflow.skipped` carries.
pub const WORKFLOW_SKIPPED: &str = "Task skipped by workflow";

impl StandIn {
    /// Runs a control method under the state lock; a refusal is a broken test: it panics.
    pub(crate) fn play<T>(
        &self,
        what: &str,
        change: impl FnOnce(&mut State, DateTime<Utc>) -> Result<T, String>,
    ) -> T {
        let mut state = self.shared.lock();
        match change(&mut state, Utc::now()) {
            Ok(value) => value,
            Err(problem) => {
                drop(state);
                panic!("twilio-standin {what}: {problem}")
            }
        }
    }

    fn move_reservation(&self, what: &str, reservation_sid: &str, to: ReservationStatus) {
        self.play(what, |state, now| {
            state
                .change_reservation(reservation_sid, to, now)
                .map_err(|e| e.message)
        });
    }

    /// Offers a pending (or reserved) task to a worker, as routing would: a pending reservation,
    /// the task `reserved`. Emits `reservation.created`. Returns the `WR…` SID. Panics if the
    /// task or worker does not exist, the task is past `reserved`, or the worker already holds
    /// an open reservation of it.
    pub fn offer(&self, task_sid: &str, worker_sid: &str) -> String {
        self.play("offer", |state, now| {
            offer(state, task_sid, worker_sid, now)
        })
    }

    /// The worker accepts: the task is `assigned`, the reservation `accepted`, the task's other
    /// pending reservations `rescinded`. Emits `reservation.accepted`, then
    /// `reservation.rescinded` for each other. A native transfer's reservation is accepted while
    /// the task is `assigned` ([`StandIn::start_transfer`]: the transfer completes). Panics
    /// unless the reservation is pending and its task reserved (or assigned, for a transfer's).
    pub fn accept(&self, reservation_sid: &str) {
        self.move_reservation("accept", reservation_sid, ReservationStatus::Accepted);
    }

    /// The worker rejects: `reservation.rejected`; the task goes back to `pending` when no other
    /// reservation of it is pending (it is not offered again: offer it yourself). A native
    /// transfer's reservation adds `task.transfer-attempt-failed`.
    pub fn reject(&self, reservation_sid: &str) {
        self.move_reservation("reject", reservation_sid, ReservationStatus::Rejected);
    }

    /// The reservation was not answered in time: `reservation.timeout`; the task goes back to
    /// `pending` as on [`StandIn::reject`]. As TaskRouter does, the worker then moves to the
    /// workspace's timeout activity ([`StandIn::timeout_activity_sid`], `Offline`):
    /// `worker.activity.update`, unless [`StandInConfig::timeout_moves_worker_offline`] is off
    /// or the worker is in that activity already. A REST update to `ReservationStatus=timeout`
    /// does the same. A native transfer's reservation adds `task.transfer-attempt-failed`
    /// right after `reservation.timeout`.
    ///
    /// [`StandInConfig::timeout_moves_worker_offline`]: crate::StandInConfig::timeout_moves_worker_offline
    pub fn time_out_reservation(&self, reservation_sid: &str) {
        self.move_reservation(
            "time_out_reservation",
            reservation_sid,
            ReservationStatus::Timeout,
        );
    }

    /// The task's TTL ran out: its pending reservations are `canceled` (a
    /// `reservation.canceled` each), then the task is `canceled` with the reason
    /// [`TASK_TTL_EXCEEDED`] (`task.canceled`, described so). Panics unless the task is pending
    /// or reserved (an assigned task only ends as completed).
    pub fn time_out_task(&self, task_sid: &str) {
        self.cancel_early("time_out_task", "time out", task_sid, TASK_TTL_EXCEEDED);
    }

    /// The task ends before anyone took it (the caller hung up, the customer left…): its
    /// pending reservations are `canceled` (a `reservation.canceled` each), then the task is
    /// `canceled` with `reason` (`task.canceled`, with `TaskCanceledReason` and
    /// `EventDescription` = `reason`), as [`StandIn::time_out_task`] does with its fixed reason.
    /// Panics unless the task is pending or reserved (an assigned task only ends as completed).
    pub fn cancel_task(&self, task_sid: &str, reason: &str) {
        self.cancel_early("cancel_task", "are canceled", task_sid, reason);
    }

    /// A voice call transferred cold by the agent holding it, as Flex's TransferTask does — to
    /// another worker, or to themselves to park it (the transfer-park plugin): the accepted
    /// reservation goes to `wrapping` (`reservation.wrapup`; the agent's leg is gone), the task
    /// back to `reserved`, and a new pending reservation offers the call to `to_worker`
    /// (`reservation.created`). Returns its `WR…` SID. Panics unless the task is assigned.
    pub fn transfer_call(&self, task_sid: &str, to_worker: &str) -> String {
        self.play("transfer_call", |state, now| {
            transfer_call(state, task_sid, to_worker, now)
        })
    }

    /// The task ran out of its workflow unmatched (no worker took it before the last filter's
    /// timeout and no default queue caught it): `workflow.timeout`, then the task is canceled
    /// with the reason [`WORKFLOW_TIMEOUT`] (its pending reservations `canceled` first, then
    /// `task.canceled`). Panics unless the task is pending or reserved.
    pub fn time_out_workflow(&self, task_sid: &str) {
        self.leave_workflow(
            "time_out_workflow",
            "time out of",
            "workflow.timeout",
            task_sid,
            WORKFLOW_TIMEOUT,
        );
    }

    /// The task leaves its workflow through a `skip_if` in the final step (its expression
    /// matched, so TaskRouter skips the step and the task has nowhere left to go):
    /// `workflow.skipped` (the Task fields, `WorkflowSid`), then the task is canceled with the
    /// reason [`WORKFLOW_SKIPPED`] (its pending reservations `canceled` first, then
    /// `task.canceled`). Panics unless the task is pending or reserved.
    pub fn skip_workflow(&self, task_sid: &str) {
        self.leave_workflow(
            "skip_workflow",
            "skip",
            "workflow.skipped",
            task_sid,
            WORKFLOW_SKIPPED,
        );
    }

    /// A task leaving its workflow unrouted: the `workflow.*` event, then the cancel.
    fn leave_workflow(
        &self,
        what: &str,
        verb: &str,
        event_type: &str,
        task_sid: &str,
        reason: &str,
    ) {
        self.play(what, |state, now| {
            let status = task_status(state, task_sid)?;
            if !matches!(status, TaskStatus::Pending | TaskStatus::Reserved) {
                return Err(format!(
                    "task {task_sid} is {status}; only pending or reserved tasks {verb} their workflow"
                ));
            }
            state.emit_workflow(now, event_type, task_sid);
            state.move_task(task_sid, TaskStatus::Canceled, Some(reason.to_owned()), now);
            Ok(())
        });
    }

    fn cancel_early(&self, what: &str, verb: &str, task_sid: &str, reason: &str) {
        self.play(what, |state, now| {
            let status = task_status(state, task_sid)?;
            if !matches!(status, TaskStatus::Pending | TaskStatus::Reserved) {
                return Err(format!(
                    "task {task_sid} is {status}; only pending or reserved tasks {verb}"
                ));
            }
            state.move_task(task_sid, TaskStatus::Canceled, Some(reason.to_owned()), now);
            Ok(())
        });
    }

    /// The worker changes activity (an agent picking a status in Flex), as a REST
    /// `UpdateWorker` with `ActivitySid` does: `worker.activity.update` with the new
    /// `WorkerActivitySid`/`Name` and the `WorkerPreviousActivitySid`/`Name` it left. The
    /// activity is given by SID or friendly name. Nothing happens if the worker is in it
    /// already. Panics if the worker or the activity does not exist.
    pub fn set_worker_activity(&self, worker_sid: &str, activity: &str) {
        self.play("set_worker_activity", |state, now| {
            if !state.workers.contains_key(worker_sid) {
                return Err(format!("worker {worker_sid} does not exist"));
            }
            let activity_sid = state
                .activities
                .iter()
                .find(|a| a.sid == activity)
                .or_else(|| {
                    state
                        .activities
                        .iter()
                        .find(|a| a.friendly_name == activity)
                })
                .map(|a| a.sid.clone())
                .ok_or_else(|| format!("activity {activity} does not exist"))?;
            state.set_worker_activity(worker_sid, &activity_sid, now);
            Ok(())
        });
    }

    /// The agent ends the work: the accepted reservation goes to `wrapping`
    /// (`reservation.wrapup`), then the task (`task.wrapup`). Panics unless the task is assigned.
    pub fn wrap_up(&self, task_sid: &str) {
        self.play("wrap_up", |state, now| {
            let status = task_status(state, task_sid)?;
            if status != TaskStatus::Assigned {
                return Err(format!("task {task_sid} is {status}, not assigned"));
            }
            state.move_task(task_sid, TaskStatus::Wrapping, None, now);
            Ok(())
        });
    }

    /// The agent completes the task: its reservation `completed` (`reservation.completed`), then
    /// the task (`task.completed`). Panics unless the task is assigned or wrapping.
    pub fn complete(&self, task_sid: &str) {
        self.play("complete", |state, now| {
            let status = task_status(state, task_sid)?;
            if !matches!(status, TaskStatus::Assigned | TaskStatus::Wrapping) {
                return Err(format!(
                    "task {task_sid} is {status}, not assigned or wrapping"
                ));
            }
            state.move_task(task_sid, TaskStatus::Completed, None, now);
            Ok(())
        });
    }

    /// Turns the move of a worker whose reservation timed out to the timeout activity on or off
    /// ([`StandInConfig::timeout_moves_worker_offline`]).
    ///
    /// [`StandInConfig::timeout_moves_worker_offline`]: crate::StandInConfig::timeout_moves_worker_offline
    pub fn set_timeout_moves_worker_offline(&self, on: bool) {
        self.shared.lock().settings.timeout_moves_worker_offline = on;
    }

    /// Turns automatic offers of new tasks on or off ([`StandInConfig::auto_offer`]).
    ///
    /// [`StandInConfig::auto_offer`]: crate::StandInConfig::auto_offer
    pub fn set_auto_offer(&self, on: bool) {
        self.shared.lock().settings.auto_offer = on;
    }
}
