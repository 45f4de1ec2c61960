//! The stand-in's in-memory Twilio: resources, effects, request log, fault engine, and the
//! state transitions shared by several endpoints.

use crate::effects::Effect;
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
    pub reclose_channel: RecloseChannel,
    pub log_limit: usize,
}

/// A TaskRouter event in the Events list.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord {
    pub seq: u64,
    pub date_ms: i64,
    pub value: Value,
}

pub(crate) struct State {
    pub settings: Settings,
    rng: StdRng,
    pub tasks: HashMap<String, TaskState>,
    /// Interaction channel SID → tasks whose attributes named it (`flexInteractionChannelSid`)
    /// at some point; checked against current attributes when used.
    tasks_by_channel: HashMap<String, Vec<String>>,
    pub reservations: HashMap<String, ReservationState>,
    pub workers: HashMap<String, WorkerState>,
    pub activities: Vec<ActivityState>,
    pub queues: HashMap<String, TaskQueueState>,
    pub workflows: Vec<WorkflowState>,
    pub task_channels: Vec<TaskChannelState>,
    pub events: Vec<EventRecord>,
    event_seq: u64,
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
}

/// Twilio's date format: `2014-05-14T18:50:02Z`.
pub(crate) fn fmt_date(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn opt_date(dt: Option<DateTime<Utc>>) -> Value {
    dt.map(|d| Value::String(fmt_date(d)))
        .unwrap_or(Value::Null)
}

impl State {
    pub(crate) fn new(settings: Settings, seed: u64, faults: FaultEngine) -> State {
        let now = Utc::now();
        // SIDs come from their own generator (seed-derived) so a run is reproducible.
        let mut state = State {
            settings,
            rng: StdRng::seed_from_u64(seed ^ 0x5349_445f_5345_4544),
            tasks: HashMap::new(),
            tasks_by_channel: HashMap::new(),
            reservations: HashMap::new(),
            workers: HashMap::new(),
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

    // ---- events ----

    /// Appends an event to the Events list (caller-built JSON, already complete).
    pub(crate) fn push_event_value(&mut self, date_ms: i64, value: Value) {
        self.event_seq += 1;
        self.events.push(EventRecord {
            seq: self.event_seq,
            date_ms,
            value,
        });
    }

    /// Records a TaskRouter event for a state change, when `generate_events` is on.
    pub(crate) fn emit(
        &mut self,
        now: DateTime<Utc>,
        event_type: &str,
        resource_type: &str,
        resource_sid: &str,
        description: String,
        event_data: Value,
    ) {
        if !self.settings.generate_events {
            return;
        }
        let sid = self.sid("EV");
        let ws = self.settings.workspace_sid.clone();
        let resource_path = match resource_type {
            "task" => format!("Tasks/{resource_sid}"),
            "worker" => format!("Workers/{resource_sid}"),
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
        let value = json!({
            "account_sid": self.settings.account_sid,
            "actor_sid": self.settings.account_sid,
            "actor_type": "account",
            "actor_url": format!("https://api.twilio.com/2010-04-01/Accounts/{}", self.settings.account_sid),
            "description": description,
            "event_data": event_data,
            "event_date": fmt_date(now),
            "event_date_ms": now.timestamp_millis(),
            "event_type": event_type,
            "resource_sid": resource_sid,
            "resource_type": resource_type,
            "resource_url": format!("https://taskrouter.twilio.com/v1/Workspaces/{ws}/{resource_path}"),
            "sid": sid,
            "source": "twilio",
            "source_ip_address": "127.0.0.1",
            "url": format!("https://taskrouter.twilio.com/v1/Workspaces/{ws}/Events/{sid}"),
            "workspace_sid": ws,
        });
        self.push_event_value(now.timestamp_millis(), value);
    }

    fn task_event_data(&self, task: &TaskState) -> Value {
        json!({
            "task_sid": task.sid,
            "task_attributes": task.attributes,
            "task_assignment_status": task.assignment_status.as_str(),
            "task_priority": task.priority.to_string(),
            "task_queue_sid": task.task_queue_sid,
            "workflow_sid": task.workflow_sid,
            "task_channel_unique_name": task.task_channel_unique_name,
            "workspace_sid": self.settings.workspace_sid,
            "workspace_name": self.settings.workspace_name,
        })
    }

    pub(crate) fn emit_task(&mut self, now: DateTime<Utc>, event_type: &str, task_sid: &str) {
        if !self.settings.generate_events {
            return;
        }
        let Some(task) = self.tasks.get(task_sid) else {
            return;
        };
        let data = self.task_event_data(task);
        let description = format!("Task {task_sid} {}", event_type.trim_start_matches("task."));
        self.emit(now, event_type, "task", task_sid, description, data);
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
        if self.settings.generate_events {
            let data = json!({
                "reservation_sid": reservation_sid,
                "task_sid": task_sid,
                "worker_sid": worker_sid,
                "workspace_sid": self.settings.workspace_sid,
            });
            let event_type = match to {
                ReservationStatus::Wrapping => "reservation.wrapup".to_owned(),
                other => format!("reservation.{}", other.as_str()),
            };
            self.emit(
                now,
                &event_type,
                "reservation",
                reservation_sid,
                format!("Reservation {reservation_sid} {}", to.as_str()),
                data,
            );
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
        let from = std::mem::replace(&mut worker.activity_sid, activity_sid.to_owned());
        worker.date_status_changed = now;
        worker.date_updated = now;
        self.effect(Effect::WorkerActivityChanged {
            worker_sid: worker_sid.to_owned(),
            from_activity_sid: from,
            to_activity_sid: activity_sid.to_owned(),
        });
        if self.settings.generate_events {
            let name = self
                .activity(activity_sid)
                .map(|a| a.friendly_name.clone())
                .unwrap_or_default();
            let data = json!({
                "worker_sid": worker_sid,
                "worker_activity_sid": activity_sid,
                "worker_activity_name": name,
                "workspace_sid": self.settings.workspace_sid,
            });
            self.emit(
                now,
                "worker.activity.update",
                "worker",
                worker_sid,
                format!("Worker {worker_sid} updated to {name} Activity"),
                data,
            );
        }
        true
    }

    /// Sets a conversation's state and records the effect. Returns whether it changed.
    pub(crate) fn set_conversation_state(
        &mut self,
        conversation_sid: &str,
        to: ConversationStatus,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(conversation) = self.conversations.get_mut(conversation_sid) else {
            return false;
        };
        let from = conversation.state;
        if from == to {
            return false;
        }
        conversation.state = to;
        conversation.date_updated = now;
        self.effect(Effect::ConversationStateChanged {
            conversation_sid: conversation_sid.to_owned(),
            from: from.as_str().into(),
            to: to.as_str().into(),
        });
        true
    }

    /// Removes a conversation participant and records the effect.
    pub(crate) fn remove_conversation_participant(
        &mut self,
        conversation_sid: &str,
        participant_sid: &str,
    ) -> bool {
        let Some(conversation) = self.conversations.get_mut(conversation_sid) else {
            return false;
        };
        let before = conversation.participants.len();
        conversation
            .participants
            .retain(|p| p.sid != participant_sid);
        if conversation.participants.len() == before {
            return false;
        }
        self.effect(Effect::ConversationParticipantRemoved {
            conversation_sid: conversation_sid.to_owned(),
            participant_sid: participant_sid.to_owned(),
        });
        true
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
