//! Typed Twilio events, as the edge parses them once from raw payloads, and their identity.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Where an event reached baton from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// TaskRouter workspace `EventCallbackUrl`.
    TaskrouterCallback,
    /// Conversations post-action webhook (global, service or conversation-scoped).
    ConversationsWebhook,
    /// Event Streams webhook sink (CloudEvents).
    EventStreams,
    /// `GET /v1/Workspaces/{WS}/Events` (backfill and reconciliation).
    EventsApi,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::TaskrouterCallback => "taskrouter_callback",
            Source::ConversationsWebhook => "conversations_webhook",
            Source::EventStreams => "event_streams",
            Source::EventsApi => "events_api",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        [
            Source::TaskrouterCallback,
            Source::ConversationsWebhook,
            Source::EventStreams,
            Source::EventsApi,
        ]
        .into_iter()
        .find(|src| src.as_str() == s)
    }
}

/// Declares an open-ended event type enum: known Twilio names as variants, anything else kept
/// verbatim in `Other` (Twilio adds types without notice; an unknown one is stored, not refused).
macro_rules! event_types {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            Other(String),
        }

        impl $name {
            pub fn parse(s: &str) -> $name {
                match s {
                    $($wire => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

event_types! {
    /// TaskRouter event types (TaskRouter Events reference).
    TaskRouterEventType {
        ActivityCreated => "activity.created",
        ActivityUpdated => "activity.updated",
        ActivityDeleted => "activity.deleted",
        ReservationCreated => "reservation.created",
        ReservationAccepted => "reservation.accepted",
        ReservationRejected => "reservation.rejected",
        ReservationTimeout => "reservation.timeout",
        ReservationCanceled => "reservation.canceled",
        ReservationRescinded => "reservation.rescinded",
        ReservationCompleted => "reservation.completed",
        ReservationFailed => "reservation.failed",
        ReservationWrapup => "reservation.wrapup",
        TaskCreated => "task.created",
        TaskUpdated => "task.updated",
        TaskCanceled => "task.canceled",
        TaskWrapup => "task.wrapup",
        TaskCompleted => "task.completed",
        TaskDeleted => "task.deleted",
        TaskSystemDeleted => "task.system-deleted",
        TaskTransferInitiated => "task.transfer-initiated",
        TaskTransferAttemptFailed => "task.transfer-attempt-failed",
        TaskTransferFailed => "task.transfer-failed",
        TaskTransferCanceled => "task.transfer-canceled",
        TaskTransferCompleted => "task.transfer-completed",
        TaskChannelCreated => "task-channel.created",
        TaskChannelUpdated => "task-channel.updated",
        TaskChannelDeleted => "task-channel.deleted",
        TaskQueueCreated => "task-queue.created",
        TaskQueueDeleted => "task-queue.deleted",
        TaskQueueEntered => "task-queue.entered",
        TaskQueueTimeout => "task-queue.timeout",
        TaskQueueMoved => "task-queue.moved",
        TaskQueueExpressionUpdated => "task-queue.expression.updated",
        WorkerCreated => "worker.created",
        WorkerActivityUpdate => "worker.activity.update",
        WorkerAttributesUpdate => "worker.attributes.update",
        WorkerCapacityUpdate => "worker.capacity.update",
        WorkerChannelAvailabilityUpdate => "worker.channel.availability.update",
        WorkerDeleted => "worker.deleted",
        WorkflowCreated => "workflow.created",
        WorkflowUpdated => "workflow.updated",
        WorkflowDeleted => "workflow.deleted",
        WorkflowTargetMatched => "workflow.target-matched",
        WorkflowEntered => "workflow.entered",
        WorkflowTimeout => "workflow.timeout",
        WorkflowSkipped => "workflow.skipped",
        WorkspaceCreated => "workspace.created",
        WorkspaceUpdated => "workspace.updated",
        WorkspaceDeleted => "workspace.deleted",
    }
}

event_types! {
    /// Conversations post-action (and pre-action) webhook event types.
    ConversationsEventType {
        MessageAdded => "onMessageAdded",
        MessageUpdated => "onMessageUpdated",
        MessageRemoved => "onMessageRemoved",
        ConversationAdded => "onConversationAdded",
        ConversationUpdated => "onConversationUpdated",
        ConversationRemoved => "onConversationRemoved",
        ConversationStateUpdated => "onConversationStateUpdated",
        ParticipantAdded => "onParticipantAdded",
        ParticipantUpdated => "onParticipantUpdated",
        ParticipantRemoved => "onParticipantRemoved",
        DeliveryUpdated => "onDeliveryUpdated",
        UserAdded => "onUserAdded",
        UserUpdated => "onUserUpdated",
        MessageAdd => "onMessageAdd",
        MessageUpdate => "onMessageUpdate",
        MessageRemove => "onMessageRemove",
        ConversationAdd => "onConversationAdd",
        ConversationUpdate => "onConversationUpdate",
        ConversationRemove => "onConversationRemove",
        ParticipantAdd => "onParticipantAdd",
        ParticipantUpdate => "onParticipantUpdate",
        ParticipantRemove => "onParticipantRemove",
        UserUpdate => "onUserUpdate",
    }
}

impl TaskRouterEventType {
    /// The kind of resource an event of this type is about, from its name (`task.created` → task).
    /// Both callback and Event Streams deliveries map to it, so it is part of the event identity.
    pub fn resource_group(&self) -> &str {
        let s = self.as_str();
        match s.find('.') {
            Some(i) => &s[..i],
            None => s,
        }
    }
}

/// An event time in milliseconds since the Unix epoch, and whether it really has millisecond
/// precision (a TaskRouter `Timestamp` in seconds does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTime {
    pub ms: i64,
    pub millisecond_precision: bool,
}

/// The task fields an event carries: a snapshot of the task as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskSnapshot {
    pub task_sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_status: Option<String>,
    /// Parsed `TaskAttributes`. Stored in its own inbox column, not inside the event JSON.
    #[serde(skip)]
    pub attributes: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_channel_unique_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_reason: Option<String>,
}

/// The worker fields an event carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    pub worker_sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_activity_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
}

/// The transfer a `task.transfer-*` event is about (Flex's native transfers: voice transfers keep
/// their task and give it a new reservation). TaskRouter documents no callback fields for it;
/// see `ingest::parse` for the names read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TransferSnapshot {
    /// `TT…`.
    pub transfer_sid: String,
    /// `WARM` or `COLD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The worker (`WK…`) or queue (`WQ…`) it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `WORKER` or `QUEUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_type: Option<String>,
    /// `INITIATED`, `FAILED`, `COMPLETED` or `CANCELED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiating_worker_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiating_reservation_sid: Option<String>,
}

/// A TaskRouter workspace event, whichever way it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRouterEvent {
    pub event_type: TaskRouterEventType,
    /// The event's own SID (`EV…`), when the delivery carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_queue_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_queue_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferSnapshot>,
}

impl TaskRouterEvent {
    /// The SID of the resource the event is about, derived from its type so that every source
    /// agrees (`ResourceSid` is not in every delivery).
    pub fn subject_sid(&self) -> Option<&str> {
        let from_group = match self.event_type.resource_group() {
            "task" | "workflow" | "task-queue" => {
                self.task.as_ref().map(|t| t.task_sid.as_str()).or(
                    match self.event_type.resource_group() {
                        "workflow" => self.workflow_sid.as_deref(),
                        "task-queue" => self.task_queue_sid.as_deref(),
                        _ => None,
                    },
                )
            }
            "reservation" => self.reservation_sid.as_deref(),
            "worker" => self.worker.as_ref().map(|w| w.worker_sid.as_str()),
            "workspace" => self.workspace_sid.as_deref(),
            _ => None,
        };
        from_group.or(self.resource_sid.as_deref())
    }
}

/// A Conversations event (webhook, or Event Streams `com.twilio.conversations.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationsEvent {
    pub event_type: ConversationsEventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_service_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `SDK` or `API`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<EventTime>,
}

/// Any event baton stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TwilioEvent {
    Taskrouter(Box<TaskRouterEvent>),
    Conversations(Box<ConversationsEvent>),
    /// A delivery baton could not interpret (unknown CloudEvent type, missing event type, …).
    /// Kept so nothing is lost; flagged with the reason.
    Unrecognized {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<String>,
    },
}

impl TwilioEvent {
    pub fn event_type(&self) -> Option<&str> {
        match self {
            TwilioEvent::Taskrouter(e) => Some(e.event_type.as_str()),
            TwilioEvent::Conversations(e) => Some(e.event_type.as_str()),
            TwilioEvent::Unrecognized { event_type } => event_type.as_deref(),
        }
    }

    pub fn time(&self) -> Option<EventTime> {
        match self {
            TwilioEvent::Taskrouter(e) => e.time,
            TwilioEvent::Conversations(e) => e.time,
            TwilioEvent::Unrecognized { .. } => None,
        }
    }
}

/// What the delivery itself says about identity, besides the event's content.
#[derive(Debug, Clone, Default)]
pub struct DeliveryIdentity {
    /// The CloudEvent `id` (Event Streams).
    pub cloud_event_id: Option<String>,
    /// `I-Twilio-Idempotency-Token`, when Twilio sent one.
    pub idempotency_token: Option<String>,
    /// Hex SHA-256 of the canonical content (sorted form params, or the CloudEvent JSON). Only
    /// needed when the event has no identity of its own ([`TwilioEvent::has_own_identity`]).
    pub content_hash: Option<String>,
}

/// The identity of one real event. `key` is unique per event; `natural_key`, when present, is a
/// second unique identity that a delivery from another source may share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIdentity {
    pub key: String,
    pub natural_key: Option<String>,
}

impl TwilioEvent {
    /// The natural key of a TaskRouter event whose time has millisecond precision.
    fn natural_key(&self) -> Option<String> {
        match self {
            TwilioEvent::Taskrouter(e) => match (e.subject_sid(), e.time) {
                (Some(subject), Some(t)) if t.millisecond_precision => {
                    Some(format!("tr:{}:{}:{}", e.event_type, subject, t.ms))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn event_sid(&self) -> Option<&str> {
        match self {
            TwilioEvent::Taskrouter(e) => e.event_sid.as_deref(),
            _ => None,
        }
    }

    /// Whether the event identifies itself (event SID or natural key), so no delivery hint or
    /// content hash is needed.
    pub fn has_own_identity(&self) -> bool {
        self.event_sid().is_some() || self.natural_key().is_some()
    }

    /// The event identity (documented in the README, "Event identity"):
    /// - TaskRouter events, from any source: `tr:sid:{EventSid}` when the event SID is known; the
    ///   natural key `tr:{type}:{subject sid}:{ms}` whenever the time has millisecond precision
    ///   (it is the key itself when there is no event SID).
    /// - Otherwise the CloudEvent id (`ce:{id}`), else `I-Twilio-Idempotency-Token`
    ///   (`{source}:idem:{token}`), else a hash of the canonical signed content
    ///   (`{source}:sha256:{hex}`).
    pub fn identity(&self, source: Source, delivery: &DeliveryIdentity) -> EventIdentity {
        let natural_key = self.natural_key();
        let event_sid = self.event_sid();
        let key = if let Some(sid) = event_sid {
            format!("tr:sid:{sid}")
        } else if let Some(natural) = &natural_key {
            natural.clone()
        } else if let Some(id) = &delivery.cloud_event_id {
            format!("ce:{id}")
        } else if let Some(token) = &delivery.idempotency_token {
            format!("{}:idem:{token}", source.as_str())
        } else {
            let hash = delivery.content_hash.as_deref().unwrap_or("none");
            format!("{}:sha256:{hash}", source.as_str())
        };
        EventIdentity { key, natural_key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task_event(sid: Option<&str>, ms: i64, precise: bool) -> TwilioEvent {
        TwilioEvent::Taskrouter(Box::new(TaskRouterEvent {
            event_type: TaskRouterEventType::TaskCreated,
            event_sid: sid.map(str::to_owned),
            account_sid: None,
            workspace_sid: None,
            resource_type: None,
            resource_sid: None,
            time: Some(EventTime {
                ms,
                millisecond_precision: precise,
            }),
            task: Some(TaskSnapshot {
                task_sid: "WT1".into(),
                ..Default::default()
            }),
            reservation_sid: None,
            worker: None,
            task_queue_sid: None,
            task_queue_name: None,
            workflow_sid: None,
            reason: None,
            transfer: None,
        }))
    }

    fn delivery(ce: Option<&str>, idem: Option<&str>) -> DeliveryIdentity {
        DeliveryIdentity {
            cloud_event_id: ce.map(str::to_owned),
            idempotency_token: idem.map(str::to_owned),
            content_hash: Some("abc".into()),
        }
    }

    #[test]
    fn event_sid_wins_and_the_natural_key_is_kept_beside_it() {
        let id = task_event(Some("EV1"), 1_700_000_000_123, true)
            .identity(Source::EventStreams, &delivery(Some("CE1"), None));
        assert_eq!(id.key, "tr:sid:EV1");
        assert_eq!(
            id.natural_key.as_deref(),
            Some("tr:task.created:WT1:1700000000123")
        );
    }

    #[test]
    fn callback_without_sid_and_cloud_event_share_the_natural_key() {
        let callback = task_event(None, 1_700_000_000_123, true)
            .identity(Source::TaskrouterCallback, &delivery(None, Some("tok")));
        let streamed = task_event(Some("EV1"), 1_700_000_000_123, true)
            .identity(Source::EventStreams, &delivery(Some("CE1"), None));
        assert_eq!(callback.key, "tr:task.created:WT1:1700000000123");
        assert_eq!(callback.natural_key, streamed.natural_key);
    }

    #[test]
    fn second_precision_times_make_no_natural_key() {
        let id = task_event(None, 1_700_000_000_000, false)
            .identity(Source::TaskrouterCallback, &delivery(None, Some("tok")));
        assert_eq!(id.key, "taskrouter_callback:idem:tok");
        assert_eq!(id.natural_key, None);
        let id = task_event(None, 1_700_000_000_000, false)
            .identity(Source::TaskrouterCallback, &delivery(None, None));
        assert_eq!(id.key, "taskrouter_callback:sha256:abc");
    }

    #[test]
    fn event_types_round_trip_and_keep_unknown_names() {
        let t = TaskRouterEventType::parse("task.system-deleted");
        assert_eq!(t, TaskRouterEventType::TaskSystemDeleted);
        assert_eq!(t.resource_group(), "task");
        let u = TaskRouterEventType::parse("task.brand-new");
        assert_eq!(u, TaskRouterEventType::Other("task.brand-new".into()));
        assert!(!u.is_known());
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"task.brand-new\"");
        assert_eq!(
            TaskRouterEventType::parse("task-queue.expression.updated").resource_group(),
            "task-queue"
        );
    }
}
