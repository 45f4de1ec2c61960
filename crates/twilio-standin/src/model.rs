//! The resources the stand-in keeps, as tests see them (`StandIn::task`, `::conversation`, …).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the wire spelling (exact match).
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// A Task's `assignment_status` (`task_enum_status`).
    TaskStatus {
        Pending => "pending",
        Reserved => "reserved",
        Assigned => "assigned",
        Canceled => "canceled",
        Completed => "completed",
        Wrapping => "wrapping",
    }
);

impl TaskStatus {
    /// `completed` and `canceled` are terminal.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Canceled)
    }
}

wire_enum!(
    /// A Reservation's `reservation_status` (`task_reservation_enum_status`).
    ReservationStatus {
        Pending => "pending",
        Accepted => "accepted",
        Rejected => "rejected",
        Timeout => "timeout",
        Canceled => "canceled",
        Rescinded => "rescinded",
        Wrapping => "wrapping",
        Completed => "completed",
    }
);

wire_enum!(
    /// A Conversation's `state` (`conversation_enum_state`).
    ConversationStatus {
        Initializing => "initializing",
        Inactive => "inactive",
        Active => "active",
        Closed => "closed",
    }
);

wire_enum!(
    /// An Interaction Channel's `status` (`interaction_channel_enum_channel_status`).
    ChannelStatus {
        Setup => "setup",
        Active => "active",
        Failed => "failed",
        Closed => "closed",
        Inactive => "inactive",
        Pause => "pause",
        Transfer => "transfer",
    }
);

wire_enum!(
    /// An Interaction Channel Participant's status as set through the API
    /// (`interaction_channel_participant_enum_status`). Twilio does not return it; the stand-in
    /// keeps it so tests can inspect it.
    ParticipantStatus {
        Closed => "closed",
        Wrapup => "wrapup",
    }
);

/// A TaskRouter Task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskState {
    pub sid: String,
    pub assignment_status: TaskStatus,
    /// The raw JSON string, as Twilio stores it.
    pub attributes: String,
    pub priority: i64,
    pub reason: Option<String>,
    pub task_queue_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub task_channel_sid: String,
    pub task_channel_unique_name: String,
    pub timeout: i64,
    pub routing_target: Option<String>,
    pub ignore_capacity: bool,
    /// The version the `ETag` header carries; +1 on every change.
    pub version: u64,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    pub task_queue_entered_date: Option<DateTime<Utc>>,
    pub virtual_start_time: DateTime<Utc>,
    /// Reservation SIDs (`WR…`) in creation order.
    pub reservations: Vec<String>,
}

impl TaskState {
    /// The `ETag` header value (the version, unquoted).
    pub fn etag(&self) -> String {
        self.version.to_string()
    }

    /// The attributes parsed (`Value::Null` if they are not JSON).
    pub fn attributes_json(&self) -> Value {
        serde_json::from_str(&self.attributes).unwrap_or(Value::Null)
    }
}

wire_enum!(
    /// A native voice transfer's mode (the TaskRouter JS SDK's `transfer_mode`).
    TransferMode {
        Warm => "WARM",
        Cold => "COLD",
    }
);

wire_enum!(
    /// What a native voice transfer goes to (the TaskRouter JS SDK's `transfer_type`).
    TransferType {
        Worker => "WORKER",
        Queue => "QUEUE",
    }
);

wire_enum!(
    /// A native voice transfer's status (the TaskRouter JS SDK's `transfer_status`).
    TransferStatus {
        Initiated => "INITIATED",
        Failed => "FAILED",
        Completed => "COMPLETED",
        Canceled => "CANCELED",
    }
);

/// A native (Flex) voice transfer (`TT…`): the task stays, and the transfer offers it through
/// reservations of its own ([`StandIn::start_transfer`](crate::StandIn::start_transfer)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferState {
    pub sid: String,
    pub task_sid: String,
    pub mode: TransferMode,
    /// The worker (`WK…`) or queue (`WQ…`) transferred to.
    pub to: String,
    pub transfer_type: TransferType,
    pub status: TransferStatus,
    /// Set when the transfer failed.
    pub failed_reason: Option<String>,
    /// The worker who held the task, and the accepted reservation they held it through.
    pub initiating_worker_sid: String,
    pub initiating_reservation_sid: String,
    /// The task's queue and workflow when the transfer started.
    pub initiating_queue_sid: Option<String>,
    pub initiating_workflow_sid: Option<String>,
    /// Reservations (`WR…`) offered for this transfer, in creation order.
    pub reservations: Vec<String>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A TaskRouter Reservation (reachable under its Task and its Worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservationState {
    pub sid: String,
    pub task_sid: String,
    pub worker_sid: String,
    pub status: ReservationStatus,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A TaskRouter Worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerState {
    pub sid: String,
    pub friendly_name: String,
    pub activity_sid: String,
    pub attributes: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
    pub date_status_changed: DateTime<Utc>,
}

/// A TaskRouter Activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityState {
    pub sid: String,
    pub friendly_name: String,
    pub available: bool,
    pub date_created: DateTime<Utc>,
}

/// A TaskRouter TaskQueue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskQueueState {
    pub sid: String,
    pub friendly_name: String,
    pub target_workers: String,
    pub task_order: String,
    pub max_reserved_workers: i64,
    pub date_created: DateTime<Utc>,
}

/// A TaskRouter Workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowState {
    pub sid: String,
    pub friendly_name: String,
    /// The raw JSON configuration string.
    pub configuration: String,
    /// The queue new tasks on this workflow enter.
    pub default_task_queue_sid: String,
    pub assignment_callback_url: Option<String>,
    pub task_reservation_timeout: i64,
    pub date_created: DateTime<Utc>,
}

/// A TaskRouter TaskChannel (`default`, `voice`, `chat`, `sms`, `email`, `video` exist at start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskChannelState {
    pub sid: String,
    pub unique_name: String,
}

/// A Conversations Participant (`MB…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationParticipantState {
    pub sid: String,
    pub identity: Option<String>,
    pub attributes: String,
    pub messaging_binding: Option<Value>,
    pub role_sid: Option<String>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A conversation-scoped webhook (`WH…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookState {
    pub sid: String,
    /// `webhook`, `trigger` or `studio`.
    pub target: String,
    pub url: Option<String>,
    /// Lower case (`get`/`post`), as the spec's enum spells it.
    pub method: Option<String>,
    /// `Configuration.Filters`, in the order sent (repeated keys).
    pub filters: Vec<String>,
    pub triggers: Vec<String>,
    pub flow_sid: Option<String>,
    pub replay_after: Option<i64>,
    pub date_created: DateTime<Utc>,
}

/// A Conversations Message (`IM…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationMessageState {
    pub sid: String,
    /// 0 for the conversation's first message, then +1 each.
    pub index: u64,
    /// The author's identity (chat) or address (SMS).
    pub author: String,
    pub body: String,
    /// The raw JSON string (`{}` by default).
    pub attributes: String,
    /// The author's participant (`MB…`).
    pub participant_sid: Option<String>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A Conversation (`CH…`) with its participants, webhooks and messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationState {
    pub sid: String,
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub attributes: String,
    pub state: ConversationStatus,
    pub messaging_service_sid: Option<String>,
    pub date_inactive: Option<DateTime<Utc>>,
    pub date_closed: Option<DateTime<Utc>>,
    pub participants: Vec<ConversationParticipantState>,
    pub webhooks: Vec<WebhookState>,
    /// Messages added by [`StandIn::customer_writes`](crate::StandIn::customer_writes), oldest
    /// first.
    pub messages: Vec<ConversationMessageState>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A Flex Interaction (`KD…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionState {
    pub sid: String,
    /// The `channel` object (`{"type": …, "sid": "UO…"}` …).
    pub channel: Value,
    pub routing: Option<Value>,
    pub interaction_context_sid: Option<String>,
    pub webhook_ttid: Option<String>,
    /// Channel SIDs (`UO…`).
    pub channels: Vec<String>,
}

/// A Flex Interaction Channel Participant (`UT…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InteractionParticipantState {
    pub sid: String,
    /// `supervisor`, `customer`, `external`, `agent` or `unknown`.
    pub participant_type: String,
    /// `None` while the participant is in the channel.
    pub status: Option<ParticipantStatus>,
    /// `{"task_sid", "worker_sid", "reservation_sid"}` for agents.
    pub routing_properties: Option<Value>,
    /// The Conversations participant (`MB…`) this agent is, removed from the conversation when
    /// the interaction participant is closed.
    pub conversation_participant_sid: Option<String>,
}

impl InteractionParticipantState {
    /// `routing_properties.task_sid`, if any.
    pub fn task_sid(&self) -> Option<&str> {
        self.routing_properties
            .as_ref()
            .and_then(|r| r.get("task_sid"))
            .and_then(Value::as_str)
    }
}

/// A Flex Interaction Channel Invite (`KG…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteState {
    pub sid: String,
    /// The `routing` object returned (`{"reservation": null, "properties": {…task…}}`).
    pub routing: Value,
    /// The pending task the invite created.
    pub task_sid: String,
}

/// A Flex Interaction Channel (`UO…`) with its participants and invites.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelState {
    pub sid: String,
    pub interaction_sid: String,
    /// `voice`, `sms`, `email`, `web`, `whatsapp`, `chat`, `messenger` or `gbm`.
    pub channel_type: String,
    pub status: ChannelStatus,
    /// The Conversation (`CH…`) behind this channel, if any.
    pub conversation_sid: Option<String>,
    pub participants: Vec<InteractionParticipantState>,
    pub invites: Vec<InviteState>,
}

/// A Flex user token accepted by the token validation endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlexTokenState {
    pub token: String,
    pub identity: String,
    pub worker_sid: Option<String>,
    pub roles: Vec<String>,
    pub expiration: DateTime<Utc>,
}
