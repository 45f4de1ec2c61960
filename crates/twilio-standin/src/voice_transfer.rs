//! Native (Flex) voice transfers, as TaskRouter runs them: the task stays where it is (assigned
//! to the worker who holds the call) and a transfer (`TT…`) offers it through reservations of
//! its own, announcing each step with a `task.transfer-*` event. What a transfer's reservation
//! does to it (rejected or timed out: an attempt failed; accepted: the transfer is complete)
//! follows from the reservation change itself, REST or control method alike
//! (`State::change_reservation` calls in here).

use crate::effects::Effect;
use crate::model::*;
use crate::state::State;
use crate::task_routing::{add_reservation, holder};
use crate::StandIn;
use chrono::{DateTime, Utc};

impl State {
    /// The transfer still `INITIATED` that offered this reservation.
    pub(crate) fn open_transfer_of(&self, reservation_sid: &str) -> Option<String> {
        self.transfers
            .values()
            .find(|t| {
                t.status == TransferStatus::Initiated
                    && t.reservations.iter().any(|wr| wr == reservation_sid)
            })
            .map(|t| t.sid.clone())
    }

    /// A transfer's reservation was rejected or timed out: `task.transfer-attempt-failed` (the
    /// transfer stays `INITIATED`). Nothing for other reservations.
    pub(crate) fn transfer_attempt_failed(&mut self, reservation_sid: &str, now: DateTime<Utc>) {
        if let Some(transfer) = self.open_transfer_of(reservation_sid) {
            self.emit_transfer(now, "task.transfer-attempt-failed", &transfer);
        }
    }

    /// A transfer's reservation was accepted (after `reservation.accepted`): a cold transfer
    /// wraps the initiating reservation up (`reservation.wrapup`; a warm one leaves it
    /// accepted), then the transfer is `COMPLETED` (`task.transfer-completed`). Nothing for
    /// other reservations.
    pub(crate) fn transfer_accepted(&mut self, reservation_sid: &str, now: DateTime<Utc>) {
        let Some(transfer) = self
            .open_transfer_of(reservation_sid)
            .and_then(|t| self.transfers.get(&t).cloned())
        else {
            return;
        };
        let initiating = &transfer.initiating_reservation_sid;
        let held = self
            .reservations
            .get(initiating)
            .is_some_and(|r| r.status == ReservationStatus::Accepted);
        if transfer.mode == TransferMode::Cold && held {
            self.set_reservation_status(initiating, ReservationStatus::Wrapping, now);
        }
        self.end_transfer(&transfer.sid, TransferStatus::Completed, None, now);
    }

    /// Whether another reservation of a natively transferred task than `reservation_sid` is in
    /// one of `statuses`: such a task follows a reservation that wraps up or completes only
    /// once no other reservation still holds it (after a transfer, the initiating worker
    /// finishing does not finish the task the new one holds).
    pub(crate) fn transfer_holds_task(
        &self,
        task_sid: &str,
        reservation_sid: &str,
        statuses: &[ReservationStatus],
    ) -> bool {
        if !self.transfers.values().any(|t| t.task_sid == task_sid) {
            return false;
        }
        self.tasks.get(task_sid).is_some_and(|task| {
            task.reservations
                .iter()
                .filter(|wr| *wr != reservation_sid)
                .filter_map(|wr| self.reservations.get(wr))
                .any(|r| statuses.contains(&r.status))
        })
    }

    /// Moves an `INITIATED` transfer to `to` (recording the effect), then its
    /// `task.transfer-*` event.
    fn end_transfer(
        &mut self,
        transfer_sid: &str,
        to: TransferStatus,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) {
        let Some(transfer) = self.transfers.get_mut(transfer_sid) else {
            return;
        };
        let from = transfer.status;
        transfer.status = to;
        transfer.failed_reason.clone_from(&reason);
        transfer.date_updated = now;
        let task_sid = transfer.task_sid.clone();
        self.effect(Effect::TransferStatusChanged {
            transfer_sid: transfer_sid.to_owned(),
            task_sid,
            from: from.as_str().into(),
            to: to.as_str().into(),
            reason,
        });
        let event = match to {
            TransferStatus::Completed => "task.transfer-completed",
            TransferStatus::Failed => "task.transfer-failed",
            TransferStatus::Canceled => "task.transfer-canceled",
            TransferStatus::Initiated => "task.transfer-initiated",
        };
        self.emit_transfer(now, event, transfer_sid);
    }

    /// An `INITIATED` transfer, or why not.
    fn open_transfer(&self, transfer_sid: &str) -> Result<TransferState, String> {
        let transfer = self
            .transfers
            .get(transfer_sid)
            .ok_or_else(|| format!("transfer {transfer_sid} does not exist"))?;
        if transfer.status != TransferStatus::Initiated {
            return Err(format!(
                "transfer {transfer_sid} is {}, not INITIATED",
                transfer.status
            ));
        }
        Ok(transfer.clone())
    }

    /// Offers the transferred task to a worker for the transfer: a pending reservation of the
    /// assigned task (which stays assigned), `reservation.created`.
    fn offer_for_transfer(
        &mut self,
        transfer_sid: &str,
        worker_sid: &str,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let transfer = self.open_transfer(transfer_sid)?;
        if transfer.transfer_type == TransferType::Worker && transfer.to != worker_sid {
            return Err(format!(
                "transfer {transfer_sid} goes to worker {}, not {worker_sid}",
                transfer.to
            ));
        }
        let wr = add_reservation(
            self,
            &transfer.task_sid,
            worker_sid,
            &[TaskStatus::Assigned],
            "assigned",
            now,
        )?;
        if let Some(transfer) = self.transfers.get_mut(transfer_sid) {
            transfer.reservations.push(wr.clone());
        }
        self.emit_reservation(now, "reservation.created", &wr);
        Ok(wr)
    }

    /// The worker holding an assigned task starts a transfer of it (see
    /// [`StandIn::start_transfer`]).
    fn start_transfer(
        &mut self,
        task_sid: &str,
        to_sid: &str,
        warm: bool,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let initiating = holder(self, task_sid)?;
        if let Some(open) = self
            .transfers
            .values()
            .find(|t| t.task_sid == task_sid && t.status == TransferStatus::Initiated)
        {
            return Err(format!(
                "task {task_sid} is being transferred already ({})",
                open.sid
            ));
        }
        let transfer_type = if to_sid.starts_with("WK") && self.workers.contains_key(to_sid) {
            TransferType::Worker
        } else if to_sid.starts_with("WQ") && self.queues.contains_key(to_sid) {
            TransferType::Queue
        } else {
            return Err(format!(
                "{to_sid} is neither an existing worker (WK…) nor an existing queue (WQ…)"
            ));
        };
        if to_sid == initiating.worker_sid {
            return Err(format!(
                "worker {to_sid} holds task {task_sid}; a transfer goes to someone else"
            ));
        }
        let task = self
            .tasks
            .get(task_sid)
            .ok_or_else(|| format!("task {task_sid} does not exist"))?;
        let (queue, workflow) = (task.task_queue_sid.clone(), task.workflow_sid.clone());
        let mode = if warm {
            TransferMode::Warm
        } else {
            TransferMode::Cold
        };
        let sid = self.sid("TT");
        self.transfers.insert(
            sid.clone(),
            TransferState {
                sid: sid.clone(),
                task_sid: task_sid.to_owned(),
                mode,
                to: to_sid.to_owned(),
                transfer_type,
                status: TransferStatus::Initiated,
                failed_reason: None,
                initiating_worker_sid: initiating.worker_sid,
                initiating_reservation_sid: initiating.sid,
                initiating_queue_sid: queue,
                initiating_workflow_sid: workflow,
                reservations: Vec::new(),
                date_created: now,
                date_updated: now,
            },
        );
        self.effect(Effect::TransferInitiated {
            transfer_sid: sid.clone(),
            task_sid: task_sid.to_owned(),
            mode: mode.as_str().into(),
            to: to_sid.to_owned(),
        });
        self.emit_transfer(now, "task.transfer-initiated", &sid);
        if transfer_type == TransferType::Worker {
            self.offer_for_transfer(&sid, to_sid, now)?;
        }
        Ok(sid)
    }

    /// Ends an `INITIATED` transfer without a taker: its pending reservations `canceled`
    /// (`reservation.canceled` each), then the transfer `to` with its event.
    fn stop_transfer(
        &mut self,
        transfer_sid: &str,
        to: TransferStatus,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let transfer = self.open_transfer(transfer_sid)?;
        for wr in &transfer.reservations {
            let pending = self
                .reservations
                .get(wr)
                .is_some_and(|r| r.status == ReservationStatus::Pending);
            if pending {
                self.set_reservation_status(wr, ReservationStatus::Canceled, now);
            }
        }
        self.end_transfer(transfer_sid, to, reason, now);
        Ok(())
    }
}

impl StandIn {
    /// The worker holding an assigned voice task transfers it natively (Flex's transfer
    /// button with TaskRouter transfers), cold or `warm`, to a worker (`WK…`) or a queue
    /// (`WQ…`). The task stays `assigned` to them through their accepted reservation (the
    /// initiating one; after an earlier warm transfer, the latest accepted). Emits
    /// `task.transfer-initiated` (the transfer `INITIATED`); to a worker, the task is then
    /// offered to them at once (`reservation.created`); to a queue, nobody yet
    /// ([`StandIn::offer_transfer`]). Returns the transfer's `TT…` SID.
    ///
    /// What follows comes from that reservation: rejected or timed out ([`StandIn::reject`],
    /// [`StandIn::time_out_reservation`], or REST): `task.transfer-attempt-failed` after its
    /// own event, still `INITIATED`; accepted ([`StandIn::accept`] or REST):
    /// `reservation.accepted`, then for a cold transfer the initiating reservation wrapped up
    /// (`reservation.wrapup`), then `task.transfer-completed` (`COMPLETED`); the task stays
    /// `assigned`. [`StandIn::fail_transfer`] and [`StandIn::cancel_transfer`] end it without
    /// a taker.
    ///
    /// Panics unless the task is assigned through an accepted reservation, `to_sid` is an
    /// existing worker other than its holder or an existing queue, and no other transfer of
    /// the task is `INITIATED`.
    pub fn start_transfer(&self, task_sid: &str, to_sid: &str, warm: bool) -> String {
        self.play("start_transfer", |state, now| {
            state.start_transfer(task_sid, to_sid, warm, now)
        })
    }

    /// Offers a transferred task to a worker for the transfer (a queue transfer routed to
    /// them, or a worker transfer offered again after an attempt failed): a pending
    /// reservation, `reservation.created`; the task stays `assigned`. Returns its `WR…` SID.
    /// Panics unless the transfer is `INITIATED`, the worker exists and holds no open
    /// reservation of the task, and (a worker transfer) is the one transferred to.
    pub fn offer_transfer(&self, transfer_sid: &str, worker_sid: &str) -> String {
        self.play("offer_transfer", |state, now| {
            state.offer_for_transfer(transfer_sid, worker_sid, now)
        })
    }

    /// The transfer fails (nobody took it, the call leg failed…): its pending reservations
    /// `canceled` (`reservation.canceled` each), then `task.transfer-failed` (`FAILED`,
    /// `TransferFailedReason` = `reason`). The initiating worker keeps the task. Panics unless
    /// the transfer is `INITIATED`.
    pub fn fail_transfer(&self, transfer_sid: &str, reason: &str) {
        self.play("fail_transfer", |state, now| {
            state.stop_transfer(
                transfer_sid,
                TransferStatus::Failed,
                Some(reason.to_owned()),
                now,
            )
        });
    }

    /// The initiating worker cancels the transfer: its pending reservations `canceled`
    /// (`reservation.canceled` each), then `task.transfer-canceled` (`CANCELED`). The
    /// initiating worker keeps the task. Panics unless the transfer is `INITIATED`.
    pub fn cancel_transfer(&self, transfer_sid: &str) {
        self.play("cancel_transfer", |state, now| {
            state.stop_transfer(transfer_sid, TransferStatus::Canceled, None, now)
        });
    }

    /// A native voice transfer ([`StandIn::start_transfer`]).
    pub fn transfer(&self, transfer_sid: &str) -> Option<TransferState> {
        self.shared.lock().transfers.get(transfer_sid).cloned()
    }
}
