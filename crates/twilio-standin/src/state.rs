//! The stand-in's in-memory Twilio: resources, effects, request log, fault engine, and the
//! state transitions shared by several endpoints.

use crate::callback_queue::CallbackQueue;
use crate::effects::Effect;
use crate::error::ApiError;
use crate::faults::FaultEngine;
use crate::log::LoggedRequest;
use crate::model::*;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

/// What closing an Interaction Channel that is already closed answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecloseChannel {
    /// 200 with the channel unchanged, no effect; warning 80906 ("Interaction not open") is
    /// noted in the request log. Twilio documents 80906 as a *warning* logged when a completion
    /// reaches an interaction that is already closed (<https://www.twilio.com/docs/api/errors/80906>).
    #[default]
    Ok,
    /// HTTP 400 with error code 80906, for testing clients against the stricter reading.
    Reject,
}

/// Fixed settings copied from the config.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub account_sid: String,
    pub auth_token: String,
    pub workspace_sid: String,
    pub workspace_name: String,
    pub chat_service_sid: String,
    pub flex_instance_sid: String,
    pub generate_events: bool,
    /// Offer new tasks to a worker at once (see `task_routing::task_created`); can be changed
    /// later.
    pub auto_offer: bool,
    pub reclose_channel: RecloseChannel,
    pub log_limit: usize,
    /// `MG…`: the messaging service of conversations seeded without one.
    pub messaging_service_sid: String,
    /// A reservation timeout moves its worker to the workspace's timeout activity.
    pub timeout_moves_worker_offline: bool,
}

/// A TaskRouter event in the Events list.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord {
    pub seq: u64,
    pub date_ms: i64,
    pub value: Value,
}

/// Callback parameters of an event beyond its envelope, in the order sent.
pub(crate) type Fields = Vec<(&'static str, String)>;

pub(crate) struct State {
    pub settings: Settings,
    rng: StdRng,
    /// Event SIDs and idempotency tokens come from their own generator, so whether events are
    /// produced does not change the SIDs of tasks, reservations, ….
    pub(crate) event_rng: StdRng,
    /// The `TimestampMs` of the last event: each event gets a later millisecond, so the order
    /// of `TimestampMs` is the order the events were produced in.
    pub(crate) last_event_ms: i64,
    pub callbacks: CallbackQueue,
    pub tasks: HashMap<String, TaskState>,
    /// Interaction channel SID → tasks whose attributes named it (`flexInteractionChannelSid`)
    /// at some point; checked against current attributes when used.
    tasks_by_channel: HashMap<String, Vec<String>>,
    pub reservations: HashMap<String, ReservationState>,
    /// Native voice transfers (`TT…`).
    pub transfers: HashMap<String, TransferState>,
    pub workers: HashMap<String, WorkerState>,
    /// Worker SIDs in the order they were seeded (automatic offers pick the first that fits).
    pub worker_order: Vec<String>,
    pub activities: Vec<ActivityState>,
    pub queues: HashMap<String, TaskQueueState>,
    pub workflows: Vec<WorkflowState>,
    pub task_channels: Vec<TaskChannelState>,
    pub events: Vec<EventRecord>,
    pub(crate) event_seq: u64,
    pub conversations: HashMap<String, ConversationState>,
    pub interactions: HashMap<String, InteractionState>,
    pub channels: HashMap<String, ChannelState>,
    pub tokens: HashMap<String, FlexTokenState>,
    pub effects: Vec<Effect>,
    pub log: VecDeque<LoggedRequest>,
    next_request_id: u64,
    pub faults: FaultEngine,
    pub default_workflow_sid: String,
    pub default_task_queue_sid: String,
    /// The Workspace's `DefaultActivitySid` (`Offline`).
    pub default_activity_sid: String,
    /// The Workspace's `TimeoutActivitySid` (`Offline`): where a reservation timeout sends the
    /// worker (when `timeout_moves_worker_offline`).
    pub timeout_activity_sid: String,
    pub workspace_date_created: DateTime<Utc>,
    /// The Conversations service's post-event webhook (`PostWebhookUrl`, `Filters`).
    pub service_webhook: ServiceWebhook,
}

/// The Conversations service-level post-event webhook.
#[derive(Debug, Clone)]
pub(crate) struct ServiceWebhook {
    pub url: Option<String>,
    pub filters: Vec<String>,
}

/// The service webhook's filters until a test sets others.
pub(crate) const DEFAULT_WEBHOOK_FILTERS: &[&str] = &[
    "onConversationStateUpdated",
    "onConversationRemoved",
    "onMessageAdded",
];

/// Twilio's date format: `2014-05-14T18:50:02Z`.
pub(crate) fn fmt_date(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn opt_date(dt: Option<DateTime<Utc>>) -> Value {
    dt.map(|d| Value::String(fmt_date(d)))
        .unwrap_or(Value::Null)
}

impl State {
    pub(crate) fn new(
        settings: Settings,
        seed: u64,
        faults: FaultEngine,
        callbacks: CallbackQueue,
    ) -> State {
        let now = Utc::now();
        // SIDs come from their own generator (seed-derived) so a run is reproducible.
        let mut state = State {
            settings,
            rng: StdRng::seed_from_u64(seed ^ 0x5349_445f_5345_4544),
            event_rng: StdRng::seed_from_u64(seed ^ 0x4556_454e_545f_5349),
            last_event_ms: 0,
            callbacks,
            tasks: HashMap::new(),
            tasks_by_channel: HashMap::new(),
            reservations: HashMap::new(),
            transfers: HashMap::new(),
            workers: HashMap::new(),
            worker_order: Vec::new(),
            activities: Vec::new(),
            queues: HashMap::new(),
            workflows: Vec::new(),
            task_channels: Vec::new(),
            events: Vec::new(),
            event_seq: 0,
            conversations: HashMap::new(),
            interactions: HashMap::new(),
            channels: HashMap::new(),
            tokens: HashMap::new(),
            effects: Vec::new(),
            log: VecDeque::new(),
            next_request_id: 0,
            faults,
            default_workflow_sid: String::new(),
            default_task_queue_sid: String::new(),
            default_activity_sid: String::new(),
            timeout_activity_sid: String::new(),
            workspace_date_created: now,
            service_webhook: ServiceWebhook {
                url: None,
                filters: DEFAULT_WEBHOOK_FILTERS
                    .iter()
                    .map(|f| (*f).to_owned())
                    .collect(),
            },
        };
        for (name, available) in [
            ("Offline", false),
            ("Available", true),
            ("Unavailable", false),
        ] {
            let sid = state.sid("WA");
            state.activities.push(ActivityState {
                sid,
                friendly_name: name.into(),
                available,
                date_created: now,
            });
        }
        // Twilio's default workspace template: new workers and timed-out ones are `Offline`.
        let offline = state.activities[0].sid.clone();
        state.default_activity_sid.clone_from(&offline);
        state.timeout_activity_sid = offline;
        for name in ["default", "voice", "chat", "sms", "email", "video"] {
            let sid = state.sid("TC");
            state.task_channels.push(TaskChannelState {
                sid,
                unique_name: name.into(),
            });
        }
        let queue = state.sid("WQ");
        state.queues.insert(
            queue.clone(),
            TaskQueueState {
                sid: queue.clone(),
                friendly_name: "Everyone".into(),
                target_workers: "1==1".into(),
                task_order: "FIFO".into(),
                max_reserved_workers: 1,
                date_created: now,
            },
        );
        let workflow = state.sid("WW");
        let configuration =
            json!({"task_routing": {"filters": [], "default_filter": {"queue": queue}}});
        state.workflows.push(WorkflowState {
            sid: workflow.clone(),
            friendly_name: "Assign to Anyone".into(),
            configuration: configuration.to_string(),
            default_task_queue_sid: queue.clone(),
            assignment_callback_url: None,
            task_reservation_timeout: 120,
            date_created: now,
        });
        state.default_task_queue_sid = queue;
        state.default_workflow_sid = workflow;
        state
    }

    /// A new `I-Twilio-Idempotency-Token` (from the event generator, like event SIDs).
    pub(crate) fn idempotency_token(&mut self) -> String {
        format!("{:032x}", self.event_rng.gen::<u128>())
    }

    /// A new SID: the prefix and 32 lower-case hex digits.
    pub(crate) fn sid(&mut self, prefix: &str) -> String {
        format!("{prefix}{:032x}", self.rng.gen::<u128>())
    }

    /// Notes a task's `flexInteractionChannelSid` attribute, so closing that channel finds it
    /// without scanning every task. Call after inserting a task or changing its attributes.
    pub(crate) fn index_task(&mut self, task_sid: &str) {
        let Some(channel) = self.tasks.get(task_sid).and_then(|t| {
            t.attributes_json()
                .get("flexInteractionChannelSid")
                .cloned()
        }) else {
            return;
        };
        if let Value::String(channel) = channel {
            let tasks = self.tasks_by_channel.entry(channel).or_default();
            if !tasks.iter().any(|t| t == task_sid) {
                tasks.push(task_sid.to_owned());
            }
        }
    }

    /// Tasks whose attributes name this interaction channel now, oldest first.
    pub(crate) fn tasks_naming_channel(&self, channel_sid: &str) -> Vec<String> {
        self.tasks_by_channel
            .get(channel_sid)
            .map(|tasks| {
                tasks
                    .iter()
                    .filter(|t| {
                        self.tasks.get(*t).is_some_and(|task| {
                            task.attributes_json()
                                .get("flexInteractionChannelSid")
                                .and_then(Value::as_str)
                                == Some(channel_sid)
                        })
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    pub(crate) fn next_request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    pub(crate) fn push_log(&mut self, entry: LoggedRequest) {
        if self.settings.log_limit == 0 {
            return;
        }
        while self.log.len() >= self.settings.log_limit {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    pub(crate) fn log_entry(&mut self, id: u64) -> Option<&mut LoggedRequest> {
        // Entries are in id order; search from the back (the entry is usually recent).
        self.log.iter_mut().rev().find(|e| e.id == id)
    }

    pub(crate) fn ws_url(&self, base: &str) -> String {
        format!("{base}/v1/Workspaces/{}", self.settings.workspace_sid)
    }

    pub(crate) fn activity(&self, sid: &str) -> Option<&ActivityState> {
        self.activities.iter().find(|a| a.sid == sid)
    }

    pub(crate) fn workflow(&self, sid: &str) -> Option<&WorkflowState> {
        self.workflows.iter().find(|w| w.sid == sid)
    }

    /// A TaskChannel by SID or unique name.
    pub(crate) fn task_channel(&self, key: &str) -> Option<&TaskChannelState> {
        self.task_channels
            .iter()
            .find(|c| c.sid == key || c.unique_name == key)
    }

    /// A Conversation's SID from its SID or unique name.
    pub(crate) fn conversation_sid(&self, key: &str) -> Option<String> {
        if self.conversations.contains_key(key) {
            return Some(key.to_owned());
        }
        self.conversations
            .values()
            .find(|c| c.unique_name.as_deref() == Some(key))
            .map(|c| c.sid.clone())
    }

    // ---- shared transitions ----

    /// Moves a task to `to` (no validation: callers check what Twilio allows). Bumps the
    /// version, records the effect and moves its reservations along. Returns whether it changed.
    pub(crate) fn move_task(
        &mut self,
        task_sid: &str,
        to: TaskStatus,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(task) = self.tasks.get_mut(task_sid) else {
            return false;
        };
        let from = task.assignment_status;
        if from == to {
            return false;
        }
        task.assignment_status = to;
        task.version += 1;
        task.date_updated = now;
        if reason.is_some() {
            task.reason.clone_from(&reason);
        }
        if to == TaskStatus::Pending && task.task_queue_entered_date.is_none() {
            task.task_queue_entered_date = Some(now);
        }
        let reservations = task.reservations.clone();
        self.effect(Effect::TaskStatusChanged {
            task_sid: task_sid.to_owned(),
            from: from.as_str().into(),
            to: to.as_str().into(),
            reason,
        });
        for wr in reservations {
            let Some(current) = self.reservations.get(&wr).map(|r| r.status) else {
                continue;
            };
            let next = match (to, current) {
                (
                    TaskStatus::Completed,
                    ReservationStatus::Accepted | ReservationStatus::Wrapping,
                ) => Some(ReservationStatus::Completed),
                (TaskStatus::Wrapping, ReservationStatus::Accepted) => {
                    Some(ReservationStatus::Wrapping)
                }
                (TaskStatus::Canceled | TaskStatus::Completed, ReservationStatus::Pending) => {
                    Some(ReservationStatus::Canceled)
                }
                _ => None,
            };
            if let Some(next) = next {
                self.set_reservation_status(&wr, next, now);
            }
        }
        let event = match to {
            TaskStatus::Completed => Some("task.completed"),
            TaskStatus::Canceled => Some("task.canceled"),
            TaskStatus::Wrapping => Some("task.wrapup"),
            _ => None,
        };
        if let Some(event) = event {
            self.emit_task(now, event, task_sid);
        }
        true
    }

    /// Sets a reservation's status and records the effect (no validation).
    pub(crate) fn set_reservation_status(
        &mut self,
        reservation_sid: &str,
        to: ReservationStatus,
        now: DateTime<Utc>,
    ) {
        let Some(reservation) = self.reservations.get_mut(reservation_sid) else {
            return;
        };
        let from = reservation.status;
        if from == to {
            return;
        }
        reservation.status = to;
        reservation.date_updated = now;
        let (task_sid, worker_sid) = (reservation.task_sid.clone(), reservation.worker_sid.clone());
        self.effect(Effect::ReservationStatusChanged {
            reservation_sid: reservation_sid.to_owned(),
            task_sid: task_sid.clone(),
            worker_sid: worker_sid.clone(),
            from: from.as_str().into(),
            to: to.as_str().into(),
        });
        let event_type = match to {
            ReservationStatus::Wrapping => "reservation.wrapup".to_owned(),
            other => format!("reservation.{}", other.as_str()),
        };
        self.emit_reservation(now, &event_type, reservation_sid);
    }

    /// Whether a reservation may go from `from` to `to`.
    fn reservation_allowed(from: ReservationStatus, to: ReservationStatus) -> bool {
        use ReservationStatus::*;
        match from {
            Pending => matches!(to, Accepted | Rejected | Timeout | Canceled | Rescinded),
            Accepted => matches!(to, Wrapping | Completed),
            Wrapping => to == Completed,
            _ => false,
        }
    }

    /// A reservation moving to `to` as TaskRouter moves it, for the REST update and the control
    /// methods alike: accepting assigns the task (then `reservation.accepted`, whose task fields
    /// say `assigned`) and rescinds the task's other pending reservations; wrapping and
    /// completing move an assigned task along; any other end of a pending reservation frees a
    /// reserved task that has no pending reservation left.
    pub(crate) fn change_reservation(
        &mut self,
        reservation_sid: &str,
        to: ReservationStatus,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let Some(reservation) = self.reservations.get(reservation_sid).cloned() else {
            return Err(ApiError::invalid(format!(
                "Reservation {reservation_sid} does not exist"
            )));
        };
        if !State::reservation_allowed(reservation.status, to) {
            return Err(ApiError::invalid(format!(
                "Reservation {reservation_sid} is not in a state that allows ReservationStatus {to} (reservation_status is {})",
                reservation.status
            )));
        }
        let task_sid = reservation.task_sid;
        let Some(task_status) = self.tasks.get(&task_sid).map(|t| t.assignment_status) else {
            return Err(ApiError::invalid(format!(
                "Task {task_sid} of reservation {reservation_sid} does not exist"
            )));
        };
        // A native transfer's reservation is accepted while the initiating worker still holds
        // the task.
        let transferring =
            task_status == TaskStatus::Assigned && self.open_transfer_of(reservation_sid).is_some();
        if to == ReservationStatus::Accepted && task_status != TaskStatus::Reserved && !transferring
        {
            return Err(ApiError::invalid(format!(
                "Cannot accept reservation {reservation_sid}: task {task_sid} is not in a state that allows it (assignment_status is {task_status})"
            )));
        }
        match to {
            ReservationStatus::Accepted => {
                self.move_task(&task_sid, TaskStatus::Assigned, None, now);
                self.set_reservation_status(reservation_sid, to, now);
                self.join_interaction_channel(&task_sid, reservation_sid, &reservation.worker_sid);
                let others = self
                    .tasks
                    .get(&task_sid)
                    .map(|t| t.reservations.clone())
                    .unwrap_or_default();
                for wr in others {
                    let pending = self
                        .reservations
                        .get(&wr)
                        .is_some_and(|r| r.status == ReservationStatus::Pending);
                    if pending {
                        self.set_reservation_status(&wr, ReservationStatus::Rescinded, now);
                    }
                }
                self.transfer_accepted(reservation_sid, now);
            }
            ReservationStatus::Wrapping => {
                self.set_reservation_status(reservation_sid, to, now);
                let held = self.transfer_holds_task(
                    &task_sid,
                    reservation_sid,
                    &[ReservationStatus::Accepted],
                );
                if task_status == TaskStatus::Assigned && !held {
                    self.move_task(&task_sid, TaskStatus::Wrapping, None, now);
                }
            }
            ReservationStatus::Completed => {
                self.set_reservation_status(reservation_sid, to, now);
                let held = self.transfer_holds_task(
                    &task_sid,
                    reservation_sid,
                    &[ReservationStatus::Accepted, ReservationStatus::Wrapping],
                );
                if matches!(task_status, TaskStatus::Assigned | TaskStatus::Wrapping) && !held {
                    self.move_task(&task_sid, TaskStatus::Completed, None, now);
                }
            }
            _ => {
                self.set_reservation_status(reservation_sid, to, now);
                self.release_task(&task_sid, now);
                if matches!(to, ReservationStatus::Rejected | ReservationStatus::Timeout) {
                    self.transfer_attempt_failed(reservation_sid, now);
                }
                // TaskRouter moves a worker who let a reservation time out to the workspace's
                // timeout activity (after `reservation.timeout`).
                if to == ReservationStatus::Timeout && self.settings.timeout_moves_worker_offline {
                    let activity = self.timeout_activity_sid.clone();
                    self.set_worker_activity(&reservation.worker_sid, &activity, now);
                }
            }
        }
        Ok(())
    }

    /// Accepting a Flex Conversations task (one whose attributes name an interaction channel)
    /// joins the worker to that channel as an `agent` participant working the task, as Flex
    /// does: that participant is what a cold transfer or a park later closes.
    fn join_interaction_channel(
        &mut self,
        task_sid: &str,
        reservation_sid: &str,
        worker_sid: &str,
    ) {
        let Some(channel_sid) = self
            .tasks
            .get(task_sid)
            .and_then(|t| serde_json::from_str::<Value>(&t.attributes).ok())
            .and_then(|a| {
                a.get("flexInteractionChannelSid")?
                    .as_str()
                    .map(str::to_owned)
            })
        else {
            return;
        };
        let Some(already) = self.channels.get(&channel_sid).map(|c| {
            c.participants
                .iter()
                .any(|p| p.task_sid() == Some(task_sid) && p.status.is_none())
        }) else {
            return;
        };
        if already {
            return;
        }
        let sid = self.sid("UT");
        let workspace_sid = self.settings.workspace_sid.clone();
        // The agent joins the channel's conversation too, as a chat participant named by the
        // worker's identity (what Flex's Conversations SDK client is), so the conversation's
        // participant list shows who is still in it.
        let conversation_participant_sid = self
            .channels
            .get(&channel_sid)
            .and_then(|c| c.conversation_sid.clone())
            .and_then(|ch| {
                let identity = self.workers.get(worker_sid)?.friendly_name.clone();
                let mb = self.sid("MB");
                let now = Utc::now();
                let conversation = self.conversations.get_mut(&ch)?;
                conversation
                    .participants
                    .push(ConversationParticipantState {
                        sid: mb.clone(),
                        identity: Some(identity),
                        attributes: "{}".into(),
                        messaging_binding: None,
                        role_sid: None,
                        date_created: now,
                        date_updated: now,
                    });
                Some(mb)
            });
        if let Some(channel) = self.channels.get_mut(&channel_sid) {
            channel.participants.push(InteractionParticipantState {
                sid,
                participant_type: "agent".into(),
                status: None,
                routing_properties: Some(serde_json::json!({
                    "workspace_sid": workspace_sid,
                    "task_sid": task_sid,
                    "worker_sid": worker_sid,
                    "reservation_sid": reservation_sid,
                })),
                conversation_participant_sid,
            });
        }
    }

    /// After a reservation stops being pending: a reserved task with no pending reservation left
    /// goes back to pending.
    pub(crate) fn release_task(&mut self, task_sid: &str, now: DateTime<Utc>) {
        let Some(task) = self.tasks.get(task_sid) else {
            return;
        };
        if task.assignment_status != TaskStatus::Reserved {
            return;
        }
        let any_pending = task.reservations.iter().any(|wr| {
            self.reservations
                .get(wr)
                .is_some_and(|r| r.status == ReservationStatus::Pending)
        });
        if !any_pending {
            self.move_task(task_sid, TaskStatus::Pending, None, now);
        }
    }

    /// Changes a worker's activity and records the effect. Unknown activities are the caller's
    /// concern (validated before).
    pub(crate) fn set_worker_activity(
        &mut self,
        worker_sid: &str,
        activity_sid: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(worker) = self.workers.get_mut(worker_sid) else {
            return false;
        };
        if worker.activity_sid == activity_sid {
            return false;
        }
        let since = worker.date_status_changed;
        let from = std::mem::replace(&mut worker.activity_sid, activity_sid.to_owned());
        worker.date_status_changed = now;
        worker.date_updated = now;
        self.effect(Effect::WorkerActivityChanged {
            worker_sid: worker_sid.to_owned(),
            from_activity_sid: from.clone(),
            to_activity_sid: activity_sid.to_owned(),
        });
        if self.emitting() {
            let name_of = |sid: &str| {
                self.activity(sid)
                    .map(|a| a.friendly_name.clone())
                    .unwrap_or_default()
            };
            let (name, previous_name) = (name_of(activity_sid), name_of(&from));
            let in_previous_ms = (now - since).num_milliseconds().max(0);
            let extra = vec![
                ("WorkerPreviousActivitySid", from),
                ("WorkerPreviousActivityName", previous_name),
                (
                    "WorkerTimeInPreviousActivity",
                    (in_previous_ms / 1000).to_string(),
                ),
                ("WorkerTimeInPreviousActivityMs", in_previous_ms.to_string()),
            ];
            self.emit_worker(
                now,
                "worker.activity.update",
                worker_sid,
                format!("Worker {worker_sid} updated to {name} Activity"),
                extra,
            );
        }
        true
    }

    /// Sets a conversation's state and records the effect. Returns the state it left, if it
    /// changed (the caller decides whether `onConversationStateUpdated` fires).
    pub(crate) fn set_conversation_state(
        &mut self,
        conversation_sid: &str,
        to: ConversationStatus,
        now: DateTime<Utc>,
    ) -> Option<ConversationStatus> {
        let conversation = self.conversations.get_mut(conversation_sid)?;
        let from = conversation.state;
        if from == to {
            return None;
        }
        conversation.state = to;
        conversation.date_updated = now;
        self.effect(Effect::ConversationStateChanged {
            conversation_sid: conversation_sid.to_owned(),
            from: from.as_str().into(),
            to: to.as_str().into(),
        });
        Some(from)
    }

    /// The task a Flex side effect (channel or participant close) ends: assigned tasks wrap
    /// (or complete when `complete`), wrapping tasks complete when `complete`, tasks not yet
    /// assigned are canceled. Terminal tasks are left alone.
    pub(crate) fn end_task(
        &mut self,
        task_sid: &str,
        complete: bool,
        reason: &str,
        now: DateTime<Utc>,
    ) {
        let Some(status) = self.tasks.get(task_sid).map(|t| t.assignment_status) else {
            return;
        };
        let to = match status {
            TaskStatus::Assigned if complete => TaskStatus::Completed,
            TaskStatus::Assigned => TaskStatus::Wrapping,
            TaskStatus::Wrapping if complete => TaskStatus::Completed,
            TaskStatus::Pending | TaskStatus::Reserved => TaskStatus::Canceled,
            _ => return,
        };
        let reason = to.is_terminal().then(|| reason.to_owned());
        self.move_task(task_sid, to, reason, now);
    }
}
