//! Outbound Twilio operations baton decides on, and which Twilio errors mean "already done" for
//! each (so a retried or duplicated call converges instead of dead-lettering).

use super::sid::{Sid, SidKind};
use crate::domain::paths;
use serde::{Deserialize, Serialize};

/// The Twilio product an operation talks to (each has its own host unless overridden).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    TaskRouter,
    Conversations,
    Flex,
    /// `iam.twilio.com`: Flex token validation.
    Iam,
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

impl TwilioRequest {
    pub fn get(product: Product, path: impl Into<String>) -> TwilioRequest {
        TwilioRequest {
            product,
            method: "GET".into(),
            path: path.into(),
            form: Vec::new(),
            if_match: None,
        }
    }

    pub fn post(
        product: Product,
        path: impl Into<String>,
        form: Vec<(String, String)>,
    ) -> TwilioRequest {
        TwilioRequest {
            product,
            method: "POST".into(),
            path: path.into(),
            form,
            if_match: None,
        }
    }
}

impl TwilioRequest {
    /// The first SID of `kind` its Twilio path names (`/v1/Workspaces/WS…/Tasks/WT…` names a
    /// task), for ops' view of the outbox.
    pub fn path_sid(&self, kind: SidKind) -> Option<&str> {
        self.path
            .split(['/', '?'])
            .find(|segment| Sid::parse_kind(segment, kind).is_ok())
    }
}

/// `POST /v1/Interactions/{KD}/Channels/{UO}/Invites` with `Routing={"properties": …}`, and the
/// invite list that shows whether an earlier attempt created it ([`Procedure::CreateOnce`]).
pub fn create_invite(
    interaction_sid: &str,
    channel_sid: &str,
    properties: serde_json::Value,
) -> (TwilioRequest, TwilioRequest) {
    let invites = paths::interaction_channel_invites(interaction_sid, channel_sid);
    let routing = serde_json::json!({ "properties": properties }).to_string();
    (
        TwilioRequest::post(
            Product::Flex,
            invites.clone(),
            vec![("Routing".into(), routing)],
        ),
        TwilioRequest::get(Product::Flex, invites),
    )
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
    /// `POST /v1/Workspaces/{WS}/Tasks` (legacy transfers and routing back).
    CreateTask,
    /// Make a task's `conversations.conversation_id` its chain's id (see [`Procedure`]).
    StampInsights,
    /// `POST /v1/Conversations/{CH}/Webhooks` (a park's customer-message webhook).
    CreateConversationWebhook,
    /// `DELETE /v1/Conversations/{CH}/Webhooks/{WH}`.
    DeleteConversationWebhook,
    /// `POST /v1/Workspaces/{WS}/Tasks/{WT}/Reservations/{WR}` `ReservationStatus=completed`.
    CompleteReservation,
    /// `POST /v1/Conversations/{CH}` `Attributes=…` (stale invites removed).
    UpdateConversationAttributes,
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
            OperationKind::CreateTask => "create_task",
            OperationKind::StampInsights => "stamp_insights",
            OperationKind::CreateConversationWebhook => "create_conversation_webhook",
            OperationKind::DeleteConversationWebhook => "delete_conversation_webhook",
            OperationKind::CompleteReservation => "complete_reservation",
            OperationKind::UpdateConversationAttributes => "update_conversation_attributes",
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
            OperationKind::CreateTask,
            OperationKind::StampInsights,
            OperationKind::CreateConversationWebhook,
            OperationKind::DeleteConversationWebhook,
            OperationKind::CompleteReservation,
            OperationKind::UpdateConversationAttributes,
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
            OperationKind::CompleteTask | OperationKind::CompleteReservation => {
                gone || code == Some(20001)
            }
            // A conversation that is gone has no invites left to clear.
            OperationKind::DeleteConversationWebhook
            | OperationKind::UpdateConversationAttributes => gone,
            OperationKind::CloseConversation
            | OperationKind::CloseInteractionChannel
            | OperationKind::CloseInteractionParticipant => gone || code == Some(80906),
            _ => false,
        }
    }
}

/// Calls that take more than one request: a read decides the write. Kept with the outbox row
/// (its `request` is the write, or the first read), and run by the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "procedure", rename_all = "snake_case")]
pub enum Procedure {
    /// GET the task (its `ETag`), merge `conversations.conversation_id` into its attributes,
    /// POST them with `If-Match`; a 412 means someone else wrote in between: read again.
    StampInsights {
        workspace_sid: String,
        task_sid: String,
        chain_id: String,
    },
    /// List the interaction channel's participants and close the agent participant working
    /// `task_sid` (none left: done).
    CloseAgentParticipant {
        interaction_sid: String,
        channel_sid: String,
        task_sid: String,
    },
    /// A create Twilio does not de-duplicate. After an attempt whose fate is unknown (timeout,
    /// reset, 5xx), `lookup` is read first and the create counts as done if the answer holds
    /// `marker` (written into the created resource's attributes).
    CreateOnce {
        lookup: Option<TwilioRequest>,
        marker: String,
    },
    /// Close an orphaned conversation: check baton's state again (a task, invite, transfer or
    /// park may have appeared since the decision), confirm with Twilio that only the customer
    /// is left, then close the interaction channel (or the conversation).
    CloseOrphan {
        conversation_sid: String,
        interaction: Option<(String, String)>,
    },
    /// A voice park past its TTL: GET the task, remove its park marks, POST with `If-Match`
    /// (as [`Procedure::StampInsights`]).
    UnparkTask {
        workspace_sid: String,
        task_sid: String,
        park_id: String,
    },
    /// A parked call's reservation timed out and TaskRouter moved the worker to the workspace's
    /// timeout activity: put them back in the activity they had (baton's worker facts'
    /// `previous_activity_sid`), if they are still in the timeout activity.
    RestoreWorkerActivity {
        workspace_sid: String,
        worker_sid: String,
    },
    /// List the conversation's webhooks and delete each whose URL holds `marker` (none left:
    /// done).
    RemoveWebhooks {
        conversation_sid: String,
        marker: String,
    },
    /// GET the conversation, remove the `invites` entries of `task_sids` (invite tasks that
    /// ended) from its attributes, POST the rest (none of them left: done). Conversations
    /// offers no `If-Match`, so the read and the write follow each other at once.
    ClearStaleInvites {
        conversation_sid: String,
        task_sids: Vec<String>,
    },
}

impl Procedure {
    /// The task the procedure works on, when its request's path does not name it (an agent
    /// participant is found by its task).
    pub fn task_sid(&self) -> Option<&str> {
        match self {
            Procedure::StampInsights { task_sid, .. }
            | Procedure::CloseAgentParticipant { task_sid, .. }
            | Procedure::UnparkTask { task_sid, .. } => Some(task_sid),
            _ => None,
        }
    }
}

/// The attributes to write so `attributes` carries `chain_id` as its Insights conversation id,
/// merged into the existing `conversations` object; `None` when they already do.
pub fn stamp_attributes(
    attributes: &serde_json::Value,
    chain_id: &str,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    let current = attributes
        .get("conversations")
        .and_then(|c| c.get("conversation_id"))
        .and_then(Value::as_str);
    if current == Some(chain_id) {
        return None;
    }
    let mut merged = match attributes {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let conversations = merged
        .entry("conversations")
        .or_insert_with(|| Value::Object(Default::default()));
    if !conversations.is_object() {
        *conversations = Value::Object(Default::default());
    }
    if let Some(c) = conversations.as_object_mut() {
        c.insert("conversation_id".into(), Value::String(chain_id.to_owned()));
    }
    Some(Value::Object(merged))
}

/// The agent participant working `task_sid` in an Interactions participant list answer.
pub fn agent_participant(list: &serde_json::Value, task_sid: &str) -> Option<String> {
    list.get("participants")?
        .as_array()?
        .iter()
        .find(|p| {
            p.get("type").and_then(|t| t.as_str()) == Some("agent")
                && p.get("routing_properties")
                    .and_then(|r| r.get("task_sid"))
                    .and_then(|t| t.as_str())
                    == Some(task_sid)
        })
        .and_then(|p| p.get("sid")?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamping_merges_into_the_existing_conversations_object() {
        let attrs = json!({"from": "+1", "conversations": {"communication_channel": "sms"}});
        assert_eq!(
            stamp_attributes(&attrs, "WT1"),
            Some(
                json!({"from": "+1", "conversations": {"communication_channel": "sms", "conversation_id": "WT1"}})
            )
        );
        assert_eq!(
            stamp_attributes(&json!({"conversations": {"conversation_id": "WT1"}}), "WT1"),
            None
        );
        assert_eq!(
            stamp_attributes(&json!({"conversations": "odd"}), "WT1"),
            Some(json!({"conversations": {"conversation_id": "WT1"}}))
        );
    }

    #[test]
    fn finds_the_agent_participant_of_a_task() {
        let list = json!({"participants": [
            {"sid": "UT1", "type": "customer", "routing_properties": null},
            {"sid": "UT2", "type": "agent", "routing_properties": {"task_sid": "WT9"}},
            {"sid": "UT3", "type": "agent", "routing_properties": {"task_sid": "WT1"}}
        ]});
        assert_eq!(agent_participant(&list, "WT1").as_deref(), Some("UT3"));
        assert_eq!(agent_participant(&list, "WT5"), None);
    }

    #[test]
    fn completing_a_completed_or_missing_task_is_done() {
        assert!(OperationKind::CompleteTask.already_done(400, Some(20001)));
        assert!(OperationKind::CompleteTask.already_done(404, Some(20404)));
        assert!(!OperationKind::CompleteTask.already_done(400, Some(20002)));
        assert!(!OperationKind::CreateInvite.already_done(404, Some(20404)));
    }

    #[test]
    fn a_path_names_its_task_and_conversation() {
        let task = format!("WT{}", "a".repeat(32));
        let call = TwilioRequest::get(
            Product::TaskRouter,
            format!("/v1/Workspaces/WS{}/Tasks/{task}", "1".repeat(32)),
        );
        assert_eq!(call.path_sid(SidKind::Task), Some(task.as_str()));
        assert_eq!(call.path_sid(SidKind::Conversation), None);
        let webhooks = TwilioRequest::get(
            Product::Conversations,
            format!(
                "/v1/Conversations/CH{}/Webhooks?PageSize=50",
                "b".repeat(32)
            ),
        );
        assert_eq!(
            webhooks.path_sid(SidKind::Conversation),
            Some(format!("CH{}", "b".repeat(32)).as_str())
        );
        // Not a SID: too short, or not hex.
        let odd = TwilioRequest::get(Product::TaskRouter, "/v1/Workspaces/WS1/Tasks/WTzz");
        assert_eq!(odd.path_sid(SidKind::Task), None);
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
