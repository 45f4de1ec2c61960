//! TaskRouter events: built once from the state (`State::emit`), then appended to the Events
//! list and queued as a signed callback. The field groups (Task, Worker, reservation) every
//! event type carries are built here.

use crate::model::*;
use crate::state::{fmt_date, EventRecord, Fields, State};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};

/// `TaskQueueSid` → `task_queue_sid`: callback parameter names as Events list `event_data` keys.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl State {
    /// Appends an event to the Events list (caller-built JSON, already complete).
    pub(crate) fn push_event_value(&mut self, date_ms: i64, value: Value) {
        self.event_seq += 1;
        self.events.push(EventRecord {
            seq: self.event_seq,
            date_ms,
            value,
        });
    }

    /// Whether events are wanted at all: for the Events list (`generate_events`) or for
    /// callbacks (a callback URL is set). When not, nothing is built.
    pub(crate) fn emitting(&self) -> bool {
        self.settings.generate_events || self.callbacks.enabled()
    }

    /// The one place TaskRouter events are produced. The callback parameters are the truth:
    /// the envelope every event has (§2.2 of the protocol notes), then `fields`; the Events list
    /// entry is built from the same parameters (`event_data` has their snake_case names).
    pub(crate) fn emit(
        &mut self,
        now: DateTime<Utc>,
        event_type: &str,
        resource_type: &str,
        resource_sid: &str,
        description: String,
        fields: Fields,
    ) {
        if !self.emitting() {
            return;
        }
        let ms = now.timestamp_millis().max(self.last_event_ms + 1);
        self.last_event_ms = ms;
        let date = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(now);
        let sid = format!("EV{:032x}", self.event_rng.gen::<u128>());
        let settings = &self.settings;
        let params: Vec<(String, String)> = [
            ("AccountSid", settings.account_sid.clone()),
            ("WorkspaceSid", settings.workspace_sid.clone()),
            ("WorkspaceName", settings.workspace_name.clone()),
            ("Sid", sid.clone()),
            ("EventType", event_type.to_owned()),
            ("EventDescription", description.clone()),
            ("ResourceType", resource_type.to_owned()),
            ("ResourceSid", resource_sid.to_owned()),
            ("Timestamp", (ms / 1000).to_string()),
            ("TimestampMs", ms.to_string()),
        ]
        .into_iter()
        .chain(fields)
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if self.settings.generate_events {
            let value = self.event_value(
                &sid,
                date,
                event_type,
                resource_type,
                resource_sid,
                &description,
                &params,
            );
            self.push_event_value(ms, value);
        }
        if self.callbacks.enabled() {
            let token = self.idempotency_token();
            self.callbacks
                .enqueue(sid, event_type.to_owned(), params, token);
        }
    }

    /// The Events list resource for an event whose callback parameters are `params`.
    #[allow(clippy::too_many_arguments)]
    fn event_value(
        &self,
        sid: &str,
        date: DateTime<Utc>,
        event_type: &str,
        resource_type: &str,
        resource_sid: &str,
        description: &str,
        params: &[(String, String)],
    ) -> Value {
        let ws = &self.settings.workspace_sid;
        let resource_path = match resource_type {
            "task" => format!("Tasks/{resource_sid}"),
            "worker" => format!("Workers/{resource_sid}"),
            "workflow" => format!("Workflows/{resource_sid}"),
            "reservation" => {
                let task = self
                    .reservations
                    .get(resource_sid)
                    .map(|r| r.task_sid.clone())
                    .unwrap_or_default();
                format!("Tasks/{task}/Reservations/{resource_sid}")
            }
            _ => String::new(),
        };
        // The envelope is the resource's own fields; the rest (and the workspace) is event_data.
        let envelope = [
            "AccountSid",
            "Sid",
            "EventType",
            "EventDescription",
            "ResourceType",
            "ResourceSid",
            "Timestamp",
            "TimestampMs",
        ];
        let event_data: serde_json::Map<String, Value> = params
            .iter()
            .filter(|(k, _)| !envelope.contains(&k.as_str()))
            .map(|(k, v)| (snake_case(k), Value::String(v.clone())))
            .collect();
        json!({
            "account_sid": self.settings.account_sid,
            "actor_sid": self.settings.account_sid,
            "actor_type": "account",
            "actor_url": format!("https://api.twilio.com/2010-04-01/Accounts/{}", self.settings.account_sid),
            "description": description,
            "event_data": event_data,
            "event_date": fmt_date(date),
            "event_date_ms": date.timestamp_millis(),
            "event_type": event_type,
            "resource_sid": resource_sid,
            "resource_type": resource_type,
            "resource_url": format!("https://taskrouter.twilio.com/v1/Workspaces/{ws}/{resource_path}"),
            "sid": sid,
            "source": "twilio",
            "source_ip_address": "127.0.0.1",
            "url": format!("https://taskrouter.twilio.com/v1/Workspaces/{ws}/Events/{sid}"),
            "workspace_sid": ws,
        })
    }

    /// The Task field group (`TaskSid`, `TaskAttributes`, `TaskAge`, `TaskPriority`,
    /// `TaskAssignmentStatus`, the canceled/completed reason once there is one) with the
    /// TaskChannel and Workflow fields real payloads carry; `queue` adds `TaskQueueSid` and its
    /// name, which every task event has except `task.created` (it precedes routing).
    fn task_fields(&self, task: &TaskState, now: DateTime<Utc>, queue: bool) -> Fields {
        let mut fields: Fields = vec![
            ("TaskSid", task.sid.clone()),
            ("TaskAttributes", task.attributes.clone()),
            (
                "TaskAssignmentStatus",
                task.assignment_status.as_str().to_owned(),
            ),
            (
                "TaskAge",
                (now - task.date_created).num_seconds().max(0).to_string(),
            ),
            ("TaskPriority", task.priority.to_string()),
            ("TaskDateCreated", task.date_created.timestamp().to_string()),
            ("TaskChannelSid", task.task_channel_sid.clone()),
            (
                "TaskChannelUniqueName",
                task.task_channel_unique_name.clone(),
            ),
        ];
        match (task.assignment_status, &task.reason) {
            (TaskStatus::Canceled, Some(reason)) => {
                fields.push(("TaskCanceledReason", reason.clone()));
            }
            (TaskStatus::Completed, Some(reason)) => {
                fields.push(("TaskCompletedReason", reason.clone()));
            }
            _ => {}
        }
        if queue {
            if let Some(q) = task.task_queue_sid.as_deref() {
                fields.push(("TaskQueueSid", q.to_owned()));
                if let Some(queue) = self.queues.get(q) {
                    fields.push(("TaskQueueName", queue.friendly_name.clone()));
                    fields.push(("TaskQueueTargetExpression", queue.target_workers.clone()));
                }
                if let Some(entered) = task.task_queue_entered_date {
                    fields.push(("TaskQueueEnteredDate", entered.timestamp().to_string()));
                }
            }
        }
        if let Some(w) = task.workflow_sid.as_deref() {
            fields.push(("WorkflowSid", w.to_owned()));
            if let Some(workflow) = self.workflow(w) {
                fields.push(("WorkflowName", workflow.friendly_name.clone()));
            }
        }
        fields
    }

    /// The Worker field group (`WorkerSid`, `WorkerName`, `WorkerAttributes`, and the activity
    /// the worker is in now).
    fn worker_fields(&self, worker: &WorkerState) -> Fields {
        let activity_name = self
            .activity(&worker.activity_sid)
            .map(|a| a.friendly_name.clone())
            .unwrap_or_default();
        vec![
            ("WorkerSid", worker.sid.clone()),
            ("WorkerName", worker.friendly_name.clone()),
            ("WorkerAttributes", worker.attributes.clone()),
            ("WorkerActivitySid", worker.activity_sid.clone()),
            ("WorkerActivityName", activity_name),
        ]
    }

    /// A `task.*` or `task-queue.*` event about the task as it is now.
    pub(crate) fn emit_task(&mut self, now: DateTime<Utc>, event_type: &str, task_sid: &str) {
        if !self.emitting() {
            return;
        }
        let Some(task) = self.tasks.get(task_sid) else {
            return;
        };
        let fields = self.task_fields(task, now, event_type != "task.created");
        let description = match event_type {
            "task-queue.entered" => {
                let queue = task
                    .task_queue_sid
                    .as_deref()
                    .and_then(|q| self.queues.get(q))
                    .map(|q| q.friendly_name.clone())
                    .unwrap_or_default();
                format!("Task {task_sid} entered TaskQueue {queue}")
            }
            // TaskRouter describes a TTL cancel as "Task TTL Exceeded": the reason itself.
            "task.canceled" => task
                .reason
                .clone()
                .unwrap_or_else(|| format!("Task {task_sid} canceled")),
            other => format!("Task {task_sid} {}", other.trim_start_matches("task.")),
        };
        self.emit(now, event_type, "task", task_sid, description, fields);
    }

    /// A `workflow.*` event that ends the task's routing: `workflow.timeout` (it ran out of its
    /// workflow's filters and timeouts unmatched) or `workflow.skipped` (a `skip_if` let it
    /// leave the final step). Its resource is the workflow; it carries the Task group.
    pub(crate) fn emit_workflow(&mut self, now: DateTime<Utc>, event_type: &str, task_sid: &str) {
        if !self.emitting() {
            return;
        }
        let Some(task) = self.tasks.get(task_sid) else {
            return;
        };
        let fields = self.task_fields(task, now, true);
        let workflow = task.workflow_sid.clone().unwrap_or_default();
        let description = match event_type {
            "workflow.skipped" => format!("Task {task_sid} skipped Workflow {workflow}"),
            _ => format!("Task {task_sid} timed out of Workflow {workflow}"),
        };
        self.emit(now, event_type, "workflow", &workflow, description, fields);
    }

    /// A `task.transfer-*` event about a native voice transfer as it is now: the Task group
    /// (with the queue), then `TransferSid`, `TransferMode`, `TransferTo`, `TransferType`,
    /// `TransferStatus`, `TransferFailedReason` (once failed), `TransferInitiatingWorkerSid`,
    /// `TransferInitiatingReservationSid`. Its resource is the task.
    pub(crate) fn emit_transfer(
        &mut self,
        now: DateTime<Utc>,
        event_type: &str,
        transfer_sid: &str,
    ) {
        if !self.emitting() {
            return;
        }
        let Some(transfer) = self.transfers.get(transfer_sid) else {
            return;
        };
        let Some(task) = self.tasks.get(&transfer.task_sid) else {
            return;
        };
        let mut fields = self.task_fields(task, now, true);
        fields.extend([
            ("TransferSid", transfer.sid.clone()),
            ("TransferMode", transfer.mode.as_str().to_owned()),
            ("TransferTo", transfer.to.clone()),
            ("TransferType", transfer.transfer_type.as_str().to_owned()),
            ("TransferStatus", transfer.status.as_str().to_owned()),
        ]);
        if let Some(reason) = &transfer.failed_reason {
            fields.push(("TransferFailedReason", reason.clone()));
        }
        fields.extend([
            (
                "TransferInitiatingWorkerSid",
                transfer.initiating_worker_sid.clone(),
            ),
            (
                "TransferInitiatingReservationSid",
                transfer.initiating_reservation_sid.clone(),
            ),
        ]);
        let task_sid = task.sid.clone();
        let what = event_type
            .trim_start_matches("task.transfer-")
            .replace('-', " ");
        let description = format!("Task {task_sid} transfer {transfer_sid} {what}");
        self.emit(now, event_type, "task", &task_sid, description, fields);
    }

    /// A `reservation.*` event: the Task and Worker groups, `ReservationSid`, queue, workflow.
    pub(crate) fn emit_reservation(
        &mut self,
        now: DateTime<Utc>,
        event_type: &str,
        reservation_sid: &str,
    ) {
        if !self.emitting() {
            return;
        }
        let Some(reservation) = self.reservations.get(reservation_sid) else {
            return;
        };
        let Some(task) = self.tasks.get(&reservation.task_sid) else {
            return;
        };
        let mut fields = self.task_fields(task, now, true);
        if let Some(worker) = self.workers.get(&reservation.worker_sid) {
            fields.extend(self.worker_fields(worker));
        }
        fields.push(("ReservationSid", reservation_sid.to_owned()));
        let description = match event_type {
            "reservation.created" => format!(
                "Reservation {reservation_sid} created for Worker {}",
                reservation.worker_sid
            ),
            _ => format!(
                "Reservation {reservation_sid} {}",
                reservation.status.as_str()
            ),
        };
        self.emit(
            now,
            event_type,
            "reservation",
            reservation_sid,
            description,
            fields,
        );
    }

    /// A `worker.*` event about the worker as it is now, with `extra` fields.
    pub(crate) fn emit_worker(
        &mut self,
        now: DateTime<Utc>,
        event_type: &str,
        worker_sid: &str,
        description: String,
        extra: Fields,
    ) {
        if !self.emitting() {
            return;
        }
        let Some(worker) = self.workers.get(worker_sid) else {
            return;
        };
        let mut fields = self.worker_fields(worker);
        fields.extend(extra);
        self.emit(now, event_type, "worker", worker_sid, description, fields);
    }

    /// `worker.attributes.update` after a worker's attributes changed.
    pub(crate) fn emit_worker_attributes(&mut self, now: DateTime<Utc>, worker_sid: &str) {
        self.emit_worker(
            now,
            "worker.attributes.update",
            worker_sid,
            format!("Worker {worker_sid} attributes updated"),
            Vec::new(),
        );
    }
}
