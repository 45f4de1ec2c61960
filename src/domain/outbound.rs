//! Outbound Twilio operations baton decides on, and which Twilio errors mean "already done" for
//! each (so a retried or duplicated call converges instead of dead-lettering).

use serde::{Deserialize, Serialize};

/// The Twilio product an operation talks to (each has its own host unless overridden).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    TaskRouter,
    Conversations,
    Flex,
}

/// One REST call, as stored in the outbox: everything needed to send it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioRequest {
    pub product: Product,
    pub method: String,
    /// Twilio's own path, e.g. `/v1/Workspaces/WS…/Tasks/WT…`.
    pub path: String,
    /// Form parameters (repeated keys allowed).
    #[serde(default)]
    pub form: Vec<(String, String)>,
    /// `If-Match` for task updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
}

/// What an outbox row does, in Twilio's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// `POST /v1/Workspaces/{WS}/Tasks/{WT}` `AssignmentStatus=completed`.
    CompleteTask,
    /// `POST /v1/Workspaces/{WS}/Tasks/{WT}` `Attributes=…`.
    UpdateTaskAttributes,
    /// `POST /v1/Workspaces/{WS}/Workers/{WK}` `ActivitySid=…`.
    UpdateWorkerActivity,
    /// `POST /v1/Conversations/{CH}` `State=closed`.
    CloseConversation,
    /// `POST /v1/Interactions/{KD}/Channels/{UO}` `Status=closed`.
    CloseInteractionChannel,
    /// `POST /v1/Interactions/{KD}/Channels/{UO}/Invites`.
    CreateInvite,
    /// `POST /v1/Interactions/{KD}/Channels/{UO}/Participants/{UT}` `Status=closed`.
    CloseInteractionParticipant,
    /// Anything else (no special already-done rule).
    Other,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::CompleteTask => "complete_task",
            OperationKind::UpdateTaskAttributes => "update_task_attributes",
            OperationKind::UpdateWorkerActivity => "update_worker_activity",
            OperationKind::CloseConversation => "close_conversation",
            OperationKind::CloseInteractionChannel => "close_interaction_channel",
            OperationKind::CreateInvite => "create_invite",
            OperationKind::CloseInteractionParticipant => "close_interaction_participant",
            OperationKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> OperationKind {
        [
            OperationKind::CompleteTask,
            OperationKind::UpdateTaskAttributes,
            OperationKind::UpdateWorkerActivity,
            OperationKind::CloseConversation,
            OperationKind::CloseInteractionChannel,
            OperationKind::CreateInvite,
            OperationKind::CloseInteractionParticipant,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(OperationKind::Other)
    }

    /// Whether a Twilio error answer means this operation's effect is already in place.
    /// - Completing a task: 20001 (not in a state that allows it: already completed or canceled)
    ///   and 20404 (gone) — what Twilio's own Flex templates treat as success.
    /// - Closing a conversation, channel or participant that is gone (20404) or no longer open
    ///   (80906 "Interaction not open").
    pub fn already_done(self, status: u16, code: Option<u32>) -> bool {
        let gone = status == 404 || code == Some(20404);
        match self {
            OperationKind::CompleteTask => gone || code == Some(20001),
            OperationKind::CloseConversation
            | OperationKind::CloseInteractionChannel
            | OperationKind::CloseInteractionParticipant => gone || code == Some(80906),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completing_a_completed_or_missing_task_is_done() {
        assert!(OperationKind::CompleteTask.already_done(400, Some(20001)));
        assert!(OperationKind::CompleteTask.already_done(404, Some(20404)));
        assert!(!OperationKind::CompleteTask.already_done(400, Some(20002)));
        assert!(!OperationKind::CreateInvite.already_done(404, Some(20404)));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [
            OperationKind::CompleteTask,
            OperationKind::CloseInteractionChannel,
        ] {
            assert_eq!(OperationKind::parse(kind.as_str()), kind);
        }
        assert_eq!(OperationKind::parse("nonsense"), OperationKind::Other);
    }
}
