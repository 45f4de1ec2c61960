//! Playing the voice transfer-park plugin (the "Flex Transfer Park Plugin" design): an agent
//! parks a live call by transferring it to themselves, marked `workerParked`, and later picks
//! it up by accepting that transfer's reservation. Its task attribute update and reservation
//! calls go through the stand-in's own routes ([`crate::internal`]); the transfer is the one
//! [`StandIn::transfer_call`] plays. Nothing ever clears the marks: every later event of the
//! task carries them.

use crate::internal::{object_in, text, Rest};
use crate::task_routing::{holder, transfer_call};
use crate::StandIn;
use serde_json::{json, Value};

impl StandIn {
    /// The agent holding an assigned voice task parks the call, as the plugin does:
    ///
    /// 1. the task's attributes get `workerParked: true` and `targetWorkerContactUri` (the
    ///    worker's `contact_uri` attribute, else `client:<friendly name>`), through
    ///    `POST …/Tasks/{task}` `Attributes`: `task.updated`;
    /// 2. Flex's cold `TransferTask` to that same worker, as [`StandIn::transfer_call`] plays
    ///    it: the accepted reservation `wrapping` (`reservation.wrapup`), and a new pending
    ///    reservation of the same task offered to the same worker (`reservation.created`; the
    ///    task is `reserved`);
    /// 3. the plugin's `afterTransferTask` listener completes the first reservation
    ///    (`POST …/Reservations/{WR}` `ReservationStatus=completed`: `reservation.completed`);
    ///    the task stays `reserved`, waiting for the pickup.
    ///
    /// Returns the park reservation's `WR…` SID. Panics unless the task is assigned through an
    /// accepted reservation.
    pub fn plugin_park_call(&self, task_sid: &str) -> String {
        let base = self.base_url();
        self.play("plugin_park_call", |state, now| {
            let task = state
                .tasks
                .get(task_sid)
                .cloned()
                .ok_or_else(|| format!("task {task_sid} does not exist"))?;
            let live = holder(state, task_sid)?;
            let worker = state
                .workers
                .get(&live.worker_sid)
                .ok_or_else(|| format!("worker {} does not exist", live.worker_sid))?;
            let worker_attributes = object_in(Some(&worker.attributes));
            let contact_uri = text(&worker_attributes, "contact_uri")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("client:{}", worker.friendly_name));

            let mut attributes = object_in(Some(&task.attributes));
            attributes.insert("workerParked".into(), json!(true));
            attributes.insert("targetWorkerContactUri".into(), json!(contact_uri));
            let attributes = Value::Object(attributes).to_string();
            let mut rest = Rest::new(state, &base, now);
            let task_path = format!("{}/Tasks/{task_sid}", rest.workspace());
            rest.post(&task_path, &[("Attributes", attributes.as_str())])?;

            let park = transfer_call(state, task_sid, &live.worker_sid, now)?;

            let mut rest = Rest::new(state, &base, now);
            rest.post(
                &format!("{task_path}/Reservations/{}", live.sid),
                &[("ReservationStatus", "completed")],
            )?;
            Ok(park)
        })
    }

    /// The worker picks the parked call up: they accept the park reservation
    /// (`POST …/Workers/{WK}/Reservations/{WR}` `ReservationStatus=accepted`:
    /// `reservation.accepted`; the task is `assigned` again). `workerParked` and
    /// `targetWorkerContactUri` stay on the task. Panics unless the reservation is pending and
    /// its task is marked `workerParked`.
    pub fn plugin_pickup(&self, park_reservation_sid: &str) {
        let base = self.base_url();
        self.play("plugin_pickup", |state, now| {
            let reservation = state
                .reservations
                .get(park_reservation_sid)
                .cloned()
                .ok_or_else(|| format!("reservation {park_reservation_sid} does not exist"))?;
            let parked = state.tasks.get(&reservation.task_sid).is_some_and(|t| {
                object_in(Some(&t.attributes)).get("workerParked") == Some(&Value::Bool(true))
            });
            if !parked {
                return Err(format!(
                    "task {} of reservation {park_reservation_sid} is not parked (no workerParked)",
                    reservation.task_sid
                ));
            }
            let mut rest = Rest::new(state, &base, now);
            let path = format!(
                "{}/Workers/{}/Reservations/{park_reservation_sid}",
                rest.workspace(),
                reservation.worker_sid
            );
            rest.post(&path, &[("ReservationStatus", "accepted")])?;
            Ok(())
        })
    }
}
