//! State changes the stand-in actually applied, in order. A request answered with an error (or a
//! fault injected before processing) applies none; a no-op request (closing what is already
//! closed) applies none either. Tests use this to assert "exactly once". The control methods
//! that play TaskRouter ([`StandIn::offer`], [`StandIn::accept`], …) record theirs too: they are
//! changes Twilio made, told apart from baton's by when the test made them.
//!
//! [`StandIn::offer`]: crate::StandIn::offer
//! [`StandIn::accept`]: crate::StandIn::accept

use serde::Serialize;

/// One applied state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// A task was created (`CreateTask`, or an Invite: `invite_sid` is then set).
    TaskCreated {
        task_sid: String,
        invite_sid: Option<String>,
    },
    /// Non-status task fields changed (`Attributes`, `Priority`, `TaskChannel`,
    /// `VirtualStartTime`); `changed` lists the form parameter names.
    TaskUpdated {
        task_sid: String,
        changed: Vec<String>,
    },
    /// `assignment_status` changed (API update, or a side effect of a reservation, channel or
    /// participant change).
    TaskStatusChanged {
        task_sid: String,
        from: String,
        to: String,
        reason: Option<String>,
    },
    TaskDeleted {
        task_sid: String,
    },
    /// A pending reservation was created: [`StandIn::offer`](crate::StandIn::offer) or an
    /// automatic offer (`auto_offer`).
    ReservationCreated {
        reservation_sid: String,
        task_sid: String,
        worker_sid: String,
    },
    ReservationStatusChanged {
        reservation_sid: String,
        task_sid: String,
        worker_sid: String,
        from: String,
        to: String,
    },
    /// A native voice transfer started
    /// ([`StandIn::start_transfer`](crate::StandIn::start_transfer)); `mode` is `WARM` or
    /// `COLD`, `to` the worker or queue.
    TransferInitiated {
        transfer_sid: String,
        task_sid: String,
        mode: String,
        to: String,
    },
    /// A native voice transfer left `INITIATED` (`COMPLETED`, `FAILED` with `reason`,
    /// `CANCELED`).
    TransferStatusChanged {
        transfer_sid: String,
        task_sid: String,
        from: String,
        to: String,
        reason: Option<String>,
    },
    WorkerActivityChanged {
        worker_sid: String,
        from_activity_sid: String,
        to_activity_sid: String,
    },
    /// `Attributes` / `FriendlyName` of a worker changed.
    WorkerUpdated {
        worker_sid: String,
        changed: Vec<String>,
    },
    ConversationStateChanged {
        conversation_sid: String,
        from: String,
        to: String,
    },
    /// Non-state conversation fields changed; `changed` lists the form parameter names.
    ConversationUpdated {
        conversation_sid: String,
        changed: Vec<String>,
    },
    /// A conversation was removed (`DeleteConversation` or
    /// [`StandIn::remove_conversation`](crate::StandIn::remove_conversation)).
    ConversationRemoved {
        conversation_sid: String,
    },
    /// A message was added ([`StandIn::customer_writes`](crate::StandIn::customer_writes)).
    MessageAdded {
        conversation_sid: String,
        message_sid: String,
        participant_sid: Option<String>,
    },
    ConversationParticipantRemoved {
        conversation_sid: String,
        participant_sid: String,
    },
    WebhookCreated {
        conversation_sid: String,
        webhook_sid: String,
    },
    WebhookDeleted {
        conversation_sid: String,
        webhook_sid: String,
    },
    ChannelStatusChanged {
        interaction_sid: String,
        channel_sid: String,
        from: String,
        to: String,
        /// `Routing.status` sent with the update (`closed` completes tasks instead of wrapping).
        routing_status: Option<String>,
    },
    InviteCreated {
        interaction_sid: String,
        channel_sid: String,
        invite_sid: String,
        task_sid: String,
    },
    InteractionParticipantStatusChanged {
        interaction_sid: String,
        channel_sid: String,
        participant_sid: String,
        from: Option<String>,
        to: String,
    },
}

impl Effect {
    /// The variant name in snake case (`task_status_changed`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::TaskCreated { .. } => "task_created",
            Effect::TaskUpdated { .. } => "task_updated",
            Effect::TaskStatusChanged { .. } => "task_status_changed",
            Effect::TaskDeleted { .. } => "task_deleted",
            Effect::ReservationCreated { .. } => "reservation_created",
            Effect::ReservationStatusChanged { .. } => "reservation_status_changed",
            Effect::TransferInitiated { .. } => "transfer_initiated",
            Effect::TransferStatusChanged { .. } => "transfer_status_changed",
            Effect::WorkerActivityChanged { .. } => "worker_activity_changed",
            Effect::WorkerUpdated { .. } => "worker_updated",
            Effect::ConversationStateChanged { .. } => "conversation_state_changed",
            Effect::ConversationUpdated { .. } => "conversation_updated",
            Effect::ConversationRemoved { .. } => "conversation_removed",
            Effect::MessageAdded { .. } => "message_added",
            Effect::ConversationParticipantRemoved { .. } => "conversation_participant_removed",
            Effect::WebhookCreated { .. } => "webhook_created",
            Effect::WebhookDeleted { .. } => "webhook_deleted",
            Effect::ChannelStatusChanged { .. } => "channel_status_changed",
            Effect::InviteCreated { .. } => "invite_created",
            Effect::InteractionParticipantStatusChanged { .. } => {
                "interaction_participant_status_changed"
            }
        }
    }

    /// Whether this effect moved `task_sid` to `completed`.
    pub fn completes_task(&self, task_sid: &str) -> bool {
        matches!(self, Effect::TaskStatusChanged { task_sid: t, to, .. } if t == task_sid && to == "completed")
    }
}
