//! Seeding state for a test. Seeds are setup, not traffic: they record no [`Effect`]s and no
//! log entries. A seed that names something that does not exist panics (a broken test, not a
//! request).
//!
//! [`Effect`]: crate::Effect

use crate::model::*;
use crate::route_spec::is_sid;
use crate::routes::EVENT_FIELDS;
use crate::state::fmt_date;
use crate::StandIn;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

/// A task to seed. Build with [`SeedTask::new`] and the chained setters.
#[derive(Debug, Clone, Default)]
pub struct SeedTask {
    /// A fixed `WT…` SID (default: generated).
    pub sid: Option<String>,
    /// Default `pending`.
    pub status: Option<TaskStatus>,
    /// A JSON object (default `{}`).
    pub attributes: Value,
    /// Default: the built-in workflow.
    pub workflow_sid: Option<String>,
    /// Default: the workflow's queue.
    pub task_queue_sid: Option<String>,
    /// SID or unique name (default `default`).
    pub task_channel: Option<String>,
    pub priority: i64,
    /// Default 86400.
    pub timeout: Option<i64>,
    pub reason: Option<String>,
    /// With a status past `pending`, a reservation for this worker is created in the matching
    /// state (`reserved`→pending, `assigned`→accepted, `wrapping`→wrapping,
    /// `completed`→completed, `canceled`→canceled).
    pub worker_sid: Option<String>,
}

impl SeedTask {
    pub fn new() -> Self {
        SeedTask::default()
    }
    pub fn sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }
    pub fn status(mut self, status: TaskStatus) -> Self {
        self.status = Some(status);
        self
    }
    pub fn attributes(mut self, attributes: Value) -> Self {
        self.attributes = attributes;
        self
    }
    pub fn workflow(mut self, workflow_sid: impl Into<String>) -> Self {
        self.workflow_sid = Some(workflow_sid.into());
        self
    }
    pub fn queue(mut self, task_queue_sid: impl Into<String>) -> Self {
        self.task_queue_sid = Some(task_queue_sid.into());
        self
    }
    pub fn channel(mut self, task_channel: impl Into<String>) -> Self {
        self.task_channel = Some(task_channel.into());
        self
    }
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn worker(mut self, worker_sid: impl Into<String>) -> Self {
        self.worker_sid = Some(worker_sid.into());
        self
    }
}

/// A worker to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedWorker {
    pub friendly_name: String,
    /// Default: the built-in `Available` activity.
    pub activity_sid: Option<String>,
    /// A JSON object (default `{}`).
    pub attributes: Value,
}

impl SeedWorker {
    pub fn new(friendly_name: impl Into<String>) -> Self {
        SeedWorker {
            friendly_name: friendly_name.into(),
            ..SeedWorker::default()
        }
    }
    pub fn activity(mut self, activity_sid: impl Into<String>) -> Self {
        self.activity_sid = Some(activity_sid.into());
        self
    }
    pub fn attributes(mut self, attributes: Value) -> Self {
        self.attributes = attributes;
        self
    }
}

/// A task queue to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedTaskQueue {
    pub friendly_name: String,
    /// Default `1==1`.
    pub target_workers: Option<String>,
}

impl SeedTaskQueue {
    pub fn new(friendly_name: impl Into<String>) -> Self {
        SeedTaskQueue {
            friendly_name: friendly_name.into(),
            target_workers: None,
        }
    }
}

/// A workflow to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedWorkflow {
    pub friendly_name: String,
    /// The queue its tasks enter (default: the built-in `Everyone` queue).
    pub task_queue_sid: Option<String>,
    /// Default: a `default_filter` to that queue.
    pub configuration: Option<Value>,
}

impl SeedWorkflow {
    pub fn new(friendly_name: impl Into<String>) -> Self {
        SeedWorkflow {
            friendly_name: friendly_name.into(),
            ..SeedWorkflow::default()
        }
    }
    pub fn queue(mut self, task_queue_sid: impl Into<String>) -> Self {
        self.task_queue_sid = Some(task_queue_sid.into());
        self
    }
    /// Its configuration (a JSON object with `task_routing`).
    pub fn configuration(mut self, configuration: Value) -> Self {
        self.configuration = Some(configuration);
        self
    }
}

/// An activity to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedActivity {
    pub friendly_name: String,
    pub available: bool,
}

impl SeedActivity {
    pub fn new(friendly_name: impl Into<String>, available: bool) -> Self {
        SeedActivity {
            friendly_name: friendly_name.into(),
            available,
        }
    }
}

/// A Conversations participant to seed with its conversation.
#[derive(Debug, Clone, Default)]
pub struct SeedConversationParticipant {
    pub identity: Option<String>,
    /// A JSON object (default `{}`).
    pub attributes: Value,
    pub messaging_binding: Option<Value>,
}

impl SeedConversationParticipant {
    /// A chat participant (an agent or a web chat user).
    pub fn identity(identity: impl Into<String>) -> Self {
        SeedConversationParticipant {
            identity: Some(identity.into()),
            ..Self::default()
        }
    }
    /// An SMS participant.
    pub fn sms(address: impl Into<String>, proxy_address: impl Into<String>) -> Self {
        SeedConversationParticipant {
            messaging_binding: Some(json!({
                "type": "sms",
                "address": address.into(),
                "proxy_address": proxy_address.into(),
            })),
            ..Self::default()
        }
    }
}

/// A conversation to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedConversation {
    /// A fixed `CH…` SID (default: generated).
    pub sid: Option<String>,
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    /// A JSON value (default `{}`).
    pub attributes: Value,
    /// Default `active`.
    pub state: Option<ConversationStatus>,
    /// `MG…` (default: [`StandInConfig::messaging_service_sid`](crate::StandInConfig)).
    pub messaging_service_sid: Option<String>,
    pub participants: Vec<SeedConversationParticipant>,
}

impl SeedConversation {
    pub fn new() -> Self {
        SeedConversation::default()
    }
    pub fn state(mut self, state: ConversationStatus) -> Self {
        self.state = Some(state);
        self
    }
    pub fn unique_name(mut self, name: impl Into<String>) -> Self {
        self.unique_name = Some(name.into());
        self
    }
    pub fn attributes(mut self, attributes: Value) -> Self {
        self.attributes = attributes;
        self
    }
    pub fn participant(mut self, participant: SeedConversationParticipant) -> Self {
        self.participants.push(participant);
        self
    }
    pub fn friendly_name(mut self, name: impl Into<String>) -> Self {
        self.friendly_name = Some(name.into());
        self
    }
    pub fn messaging_service(mut self, messaging_service_sid: impl Into<String>) -> Self {
        self.messaging_service_sid = Some(messaging_service_sid.into());
        self
    }
}

/// An interaction channel participant to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedInteractionParticipant {
    /// `customer`, `agent`, `supervisor`, `external` or `unknown`.
    pub participant_type: String,
    pub task_sid: Option<String>,
    pub worker_sid: Option<String>,
    pub reservation_sid: Option<String>,
    /// The Conversations participant (`MB…`) this is; removed from the conversation when the
    /// interaction participant is closed.
    pub conversation_participant_sid: Option<String>,
    pub status: Option<ParticipantStatus>,
}

impl SeedInteractionParticipant {
    pub fn customer() -> Self {
        SeedInteractionParticipant {
            participant_type: "customer".into(),
            ..Self::default()
        }
    }
    /// An agent working `task_sid` (its `routing_properties.task_sid`).
    pub fn agent(task_sid: impl Into<String>) -> Self {
        SeedInteractionParticipant {
            participant_type: "agent".into(),
            task_sid: Some(task_sid.into()),
            ..Self::default()
        }
    }
    pub fn worker(mut self, worker_sid: impl Into<String>) -> Self {
        self.worker_sid = Some(worker_sid.into());
        self
    }
    pub fn reservation(mut self, reservation_sid: impl Into<String>) -> Self {
        self.reservation_sid = Some(reservation_sid.into());
        self
    }
    pub fn conversation_participant(mut self, participant_sid: impl Into<String>) -> Self {
        self.conversation_participant_sid = Some(participant_sid.into());
        self
    }
}

/// An interaction (`KD…`) with one channel (`UO…`) to seed.
#[derive(Debug, Clone, Default)]
pub struct SeedInteraction {
    /// Default `chat`.
    pub channel_type: Option<String>,
    /// Default `active`.
    pub channel_status: Option<ChannelStatus>,
    /// The Conversation (`CH…`) behind the channel.
    pub conversation_sid: Option<String>,
    pub routing: Option<Value>,
    pub participants: Vec<SeedInteractionParticipant>,
}

impl SeedInteraction {
    pub fn new() -> Self {
        SeedInteraction::default()
    }
    pub fn channel_type(mut self, channel_type: impl Into<String>) -> Self {
        self.channel_type = Some(channel_type.into());
        self
    }
    pub fn status(mut self, status: ChannelStatus) -> Self {
        self.channel_status = Some(status);
        self
    }
    pub fn conversation(mut self, conversation_sid: impl Into<String>) -> Self {
        self.conversation_sid = Some(conversation_sid.into());
        self
    }
    pub fn participant(mut self, participant: SeedInteractionParticipant) -> Self {
        self.participants.push(participant);
        self
    }
}

/// The SIDs a seeded interaction got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededInteraction {
    pub interaction_sid: String,
    pub channel_sid: String,
    /// `UT…` SIDs, in the order the participants were given.
    pub participant_sids: Vec<String>,
}

fn object_string(value: &Value, what: &str) -> String {
    match value {
        Value::Null => "{}".to_owned(),
        Value::Object(_) => value.to_string(),
        other => panic!("twilio-standin seed: {what} must be a JSON object, got {other}"),
    }
}

fn reservation_for(status: TaskStatus) -> Option<ReservationStatus> {
    match status {
        TaskStatus::Pending => None,
        TaskStatus::Reserved => Some(ReservationStatus::Pending),
        TaskStatus::Assigned => Some(ReservationStatus::Accepted),
        TaskStatus::Wrapping => Some(ReservationStatus::Wrapping),
        TaskStatus::Completed => Some(ReservationStatus::Completed),
        TaskStatus::Canceled => Some(ReservationStatus::Canceled),
    }
}

impl StandIn {
    /// Adds a task. Returns its `WT…` SID.
    pub fn seed_task(&self, seed: SeedTask) -> String {
        let attributes = object_string(&seed.attributes, "task attributes");
        let now = Utc::now();
        let mut state = self.shared.lock();
        let workflow = seed
            .workflow_sid
            .unwrap_or_else(|| state.default_workflow_sid.clone());
        let Some(default_queue) = state
            .workflow(&workflow)
            .map(|w| w.default_task_queue_sid.clone())
        else {
            panic!("twilio-standin seed_task: workflow {workflow} does not exist");
        };
        let queue = seed.task_queue_sid.unwrap_or(default_queue);
        assert!(
            state.queues.contains_key(&queue),
            "twilio-standin seed_task: task queue {queue} does not exist"
        );
        let channel_key = seed.task_channel.unwrap_or_else(|| "default".into());
        let Some(channel) = state.task_channel(&channel_key).cloned() else {
            panic!("twilio-standin seed_task: task channel {channel_key} does not exist");
        };
        if let Some(worker) = &seed.worker_sid {
            assert!(
                state.workers.contains_key(worker),
                "twilio-standin seed_task: worker {worker} does not exist"
            );
        }
        let sid = match seed.sid {
            Some(sid) => {
                assert!(
                    is_sid(&sid, "WT"),
                    "twilio-standin seed_task: {sid} is not a WT SID"
                );
                sid
            }
            None => state.sid("WT"),
        };
        let status = seed.status.unwrap_or(TaskStatus::Pending);
        let mut reservations = Vec::new();
        if let (Some(worker), Some(res_status)) = (&seed.worker_sid, reservation_for(status)) {
            let wr = state.sid("WR");
            state.reservations.insert(
                wr.clone(),
                ReservationState {
                    sid: wr.clone(),
                    task_sid: sid.clone(),
                    worker_sid: worker.clone(),
                    status: res_status,
                    date_created: now,
                    date_updated: now,
                },
            );
            reservations.push(wr);
        }
        state.tasks.insert(
            sid.clone(),
            TaskState {
                sid: sid.clone(),
                assignment_status: status,
                attributes,
                priority: seed.priority,
                reason: seed.reason,
                task_queue_sid: Some(queue),
                workflow_sid: Some(workflow),
                task_channel_sid: channel.sid,
                task_channel_unique_name: channel.unique_name,
                timeout: seed.timeout.unwrap_or(86_400),
                routing_target: None,
                ignore_capacity: false,
                version: 0,
                date_created: now,
                date_updated: now,
                task_queue_entered_date: Some(now),
                virtual_start_time: now,
                reservations,
            },
        );
        state.index_task(&sid);
        sid
    }

    /// Adds a reservation of `task_sid` for `worker_sid` and moves the task to the matching
    /// status (`pending`→reserved, `accepted`→assigned, `wrapping`→wrapping,
    /// `completed`→completed). Returns its `WR…` SID.
    pub fn seed_reservation(
        &self,
        task_sid: &str,
        worker_sid: &str,
        status: ReservationStatus,
    ) -> String {
        let now = Utc::now();
        let mut state = self.shared.lock();
        assert!(
            state.workers.contains_key(worker_sid),
            "twilio-standin seed_reservation: worker {worker_sid} does not exist"
        );
        let wr = state.sid("WR");
        let Some(task) = state.tasks.get_mut(task_sid) else {
            panic!("twilio-standin seed_reservation: task {task_sid} does not exist");
        };
        task.reservations.push(wr.clone());
        let task_status = match status {
            ReservationStatus::Pending => Some(TaskStatus::Reserved),
            ReservationStatus::Accepted => Some(TaskStatus::Assigned),
            ReservationStatus::Wrapping => Some(TaskStatus::Wrapping),
            ReservationStatus::Completed => Some(TaskStatus::Completed),
            _ => None,
        };
        if let Some(task_status) = task_status {
            task.assignment_status = task_status;
        }
        state.reservations.insert(
            wr.clone(),
            ReservationState {
                sid: wr.clone(),
                task_sid: task_sid.to_owned(),
                worker_sid: worker_sid.to_owned(),
                status,
                date_created: now,
                date_updated: now,
            },
        );
        wr
    }

    /// Adds a worker. Returns its `WK…` SID.
    pub fn seed_worker(&self, seed: SeedWorker) -> String {
        let attributes = object_string(&seed.attributes, "worker attributes");
        let now = Utc::now();
        let mut state = self.shared.lock();
        let activity = match seed.activity_sid {
            Some(wa) => {
                assert!(
                    state.activity(&wa).is_some(),
                    "twilio-standin seed_worker: activity {wa} does not exist"
                );
                wa
            }
            None => state
                .activities
                .iter()
                .find(|a| a.friendly_name == "Available")
                .or(state.activities.first())
                .map(|a| a.sid.clone())
                .unwrap_or_default(),
        };
        let sid = state.sid("WK");
        state.workers.insert(
            sid.clone(),
            WorkerState {
                sid: sid.clone(),
                friendly_name: seed.friendly_name,
                activity_sid: activity,
                attributes,
                date_created: now,
                date_updated: now,
                date_status_changed: now,
            },
        );
        state.worker_order.push(sid.clone());
        sid
    }

    /// Adds an activity. Returns its `WA…` SID.
    pub fn seed_activity(&self, seed: SeedActivity) -> String {
        let mut state = self.shared.lock();
        let sid = state.sid("WA");
        state.activities.push(ActivityState {
            sid: sid.clone(),
            friendly_name: seed.friendly_name,
            available: seed.available,
            date_created: Utc::now(),
        });
        sid
    }

    /// Adds a task queue. Returns its `WQ…` SID.
    pub fn seed_task_queue(&self, seed: SeedTaskQueue) -> String {
        let mut state = self.shared.lock();
        let sid = state.sid("WQ");
        state.queues.insert(
            sid.clone(),
            TaskQueueState {
                sid: sid.clone(),
                friendly_name: seed.friendly_name,
                target_workers: seed.target_workers.unwrap_or_else(|| "1==1".into()),
                task_order: "FIFO".into(),
                max_reserved_workers: 1,
                date_created: Utc::now(),
            },
        );
        sid
    }

    /// Adds a workflow. Returns its `WW…` SID. With more than one workflow, `CreateTask` needs
    /// `WorkflowSid`, as on Twilio.
    pub fn seed_workflow(&self, seed: SeedWorkflow) -> String {
        let mut state = self.shared.lock();
        let queue = seed
            .task_queue_sid
            .unwrap_or_else(|| state.default_task_queue_sid.clone());
        assert!(
            state.queues.contains_key(&queue),
            "twilio-standin seed_workflow: task queue {queue} does not exist"
        );
        let configuration = seed.configuration.unwrap_or_else(
            || json!({"task_routing": {"filters": [], "default_filter": {"queue": queue}}}),
        );
        let sid = state.sid("WW");
        state.workflows.push(WorkflowState {
            sid: sid.clone(),
            friendly_name: seed.friendly_name,
            configuration: configuration.to_string(),
            default_task_queue_sid: queue,
            assignment_callback_url: None,
            task_reservation_timeout: 120,
            date_created: Utc::now(),
        });
        sid
    }

    /// Adds a conversation with its participants. Returns its `CH…` SID; the participants'
    /// `MB…` SIDs are in [`StandIn::conversation`].
    pub fn seed_conversation(&self, seed: SeedConversation) -> String {
        let attributes = match &seed.attributes {
            Value::Null => "{}".to_owned(),
            other => other.to_string(),
        };
        let now = Utc::now();
        let mut state = self.shared.lock();
        let sid = match seed.sid {
            Some(sid) => {
                assert!(
                    is_sid(&sid, "CH"),
                    "twilio-standin seed_conversation: {sid} is not a CH SID"
                );
                sid
            }
            None => state.sid("CH"),
        };
        let messaging_service_sid = match seed.messaging_service_sid {
            Some(mg) => {
                assert!(
                    is_sid(&mg, "MG"),
                    "twilio-standin seed_conversation: {mg} is not an MG SID"
                );
                mg
            }
            None => state.settings.messaging_service_sid.clone(),
        };
        let mut participants = Vec::new();
        for p in seed.participants {
            let attributes = object_string(&p.attributes, "participant attributes");
            participants.push(ConversationParticipantState {
                sid: state.sid("MB"),
                identity: p.identity,
                attributes,
                messaging_binding: p.messaging_binding,
                role_sid: None,
                date_created: now,
                date_updated: now,
            });
        }
        state.conversations.insert(
            sid.clone(),
            ConversationState {
                sid: sid.clone(),
                unique_name: seed.unique_name,
                friendly_name: seed.friendly_name,
                attributes,
                state: seed.state.unwrap_or(ConversationStatus::Active),
                messaging_service_sid: Some(messaging_service_sid),
                date_inactive: None,
                date_closed: None,
                participants,
                webhooks: Vec::new(),
                messages: Vec::new(),
                date_created: now,
                date_updated: now,
            },
        );
        sid
    }

    /// Adds an interaction with one channel and its participants.
    pub fn seed_interaction(&self, seed: SeedInteraction) -> SeededInteraction {
        let mut state = self.shared.lock();
        if let Some(ch) = &seed.conversation_sid {
            assert!(
                state.conversations.contains_key(ch),
                "twilio-standin seed_interaction: conversation {ch} does not exist"
            );
        }
        let interaction_sid = state.sid("KD");
        let channel_sid = state.sid("UO");
        let channel_type = seed.channel_type.unwrap_or_else(|| "chat".into());
        let mut participants = Vec::new();
        for p in seed.participants {
            let routing_properties = p.task_sid.as_ref().map(|task| {
                json!({
                    "task_sid": task,
                    "worker_sid": p.worker_sid,
                    "reservation_sid": p.reservation_sid,
                })
            });
            participants.push(InteractionParticipantState {
                sid: state.sid("UT"),
                participant_type: p.participant_type,
                status: p.status,
                routing_properties,
                conversation_participant_sid: p.conversation_participant_sid,
            });
        }
        let participant_sids = participants.iter().map(|p| p.sid.clone()).collect();
        let mut channel_object = Map::new();
        channel_object.insert("type".into(), json!(channel_type));
        channel_object.insert("sid".into(), json!(channel_sid));
        if let Some(ch) = &seed.conversation_sid {
            channel_object.insert("media_channel_sid".into(), json!(ch));
        }
        state.interactions.insert(
            interaction_sid.clone(),
            InteractionState {
                sid: interaction_sid.clone(),
                channel: Value::Object(channel_object),
                routing: seed.routing,
                interaction_context_sid: None,
                webhook_ttid: None,
                channels: vec![channel_sid.clone()],
            },
        );
        state.channels.insert(
            channel_sid.clone(),
            ChannelState {
                sid: channel_sid.clone(),
                interaction_sid: interaction_sid.clone(),
                channel_type,
                status: seed.channel_status.unwrap_or(ChannelStatus::Active),
                conversation_sid: seed.conversation_sid,
                participants,
                invites: Vec::new(),
            },
        );
        SeededInteraction {
            interaction_sid,
            channel_sid,
            participant_sids,
        }
    }

    /// Makes `token` a valid Flex user token (for an hour) at the token validation endpoint.
    pub fn seed_flex_token(
        &self,
        token: &str,
        identity: &str,
        worker_sid: Option<&str>,
        roles: &[&str],
    ) {
        self.seed_flex_token_until(
            token,
            identity,
            worker_sid,
            roles,
            Utc::now() + Duration::hours(1),
        );
    }

    /// Like [`StandIn::seed_flex_token`] with an explicit expiry (a past one makes the token
    /// answer `valid: false`, code 20104).
    pub fn seed_flex_token_until(
        &self,
        token: &str,
        identity: &str,
        worker_sid: Option<&str>,
        roles: &[&str],
        expiration: DateTime<Utc>,
    ) {
        let mut state = self.shared.lock();
        state.tokens.insert(
            token.to_owned(),
            FlexTokenState {
                token: token.to_owned(),
                identity: identity.to_owned(),
                worker_sid: worker_sid.map(str::to_owned),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                expiration,
            },
        );
    }

    /// Adds an entry to the TaskRouter Events list. `event` is an object with Event resource
    /// fields (`event_type`, `resource_sid`, `event_data`, `event_date` …); missing ones are
    /// filled (`sid`, `account_sid`, `workspace_sid`, `url`, `event_date`/`event_date_ms` =
    /// now …). Returns the `EV…` SID. Panics on a field the Event resource does not have.
    pub fn push_event(&self, event: Value) -> String {
        let Value::Object(mut fields) = event else {
            panic!("twilio-standin push_event: the event must be a JSON object");
        };
        if let Some(unknown) = fields.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
            panic!("twilio-standin push_event: `{unknown}` is not a field of the Event resource");
        }
        let now = Utc::now();
        let date = match (fields.get("event_date"), fields.get("event_date_ms")) {
            (_, Some(ms)) => ms
                .as_i64()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .unwrap_or_else(|| panic!("twilio-standin push_event: bad event_date_ms {ms}")),
            (Some(date), None) => date
                .as_str()
                .and_then(crate::ctx::parse_datetime)
                .unwrap_or_else(|| panic!("twilio-standin push_event: bad event_date {date}")),
            (None, None) => now,
        };
        let mut state = self.shared.lock();
        let sid = match fields.get("sid").and_then(Value::as_str) {
            Some(sid) => sid.to_owned(),
            None => state.sid("EV"),
        };
        let ws = state.settings.workspace_sid.clone();
        let defaults = [
            ("account_sid", json!(state.settings.account_sid)),
            ("actor_sid", Value::Null),
            ("actor_type", Value::Null),
            ("actor_url", Value::Null),
            ("description", Value::Null),
            ("event_data", json!({})),
            ("event_date", json!(fmt_date(date))),
            ("event_date_ms", json!(date.timestamp_millis())),
            ("event_type", Value::Null),
            ("resource_sid", Value::Null),
            ("resource_type", Value::Null),
            ("resource_url", Value::Null),
            ("sid", json!(sid)),
            ("source", json!("twilio")),
            ("source_ip_address", Value::Null),
            (
                "url",
                json!(format!(
                    "https://taskrouter.twilio.com/v1/Workspaces/{ws}/Events/{sid}"
                )),
            ),
            ("workspace_sid", json!(ws)),
        ];
        for (key, value) in defaults {
            fields.entry(key.to_owned()).or_insert(value);
        }
        state.push_event_value(date.timestamp_millis(), Value::Object(fields));
        sid
    }
}
