//! What a task's attributes say about how it came to be: the transfer vocabularies in production
//! (plugin-chat-sms-transfer, flex-project-template, native Flex transfers, baton's own) read
//! into one canonical shape, and the keys that tie tasks of one customer conversation together.

use super::event::{TaskRouterEventType, TransferSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote the transfer attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vocabulary {
    /// plugin-chat-sms-transfer: `targetSid`, `transferTargetType`, `ignoreAgent`.
    ChatSmsTransfer,
    /// flex-project-template conversation-transfer / chat-transfer: `transferTargetSid`,
    /// `transferQueueName`, `workerSidsInConversation`, `ignoreWorkerContactUri`.
    ProjectTemplate,
    /// Flex's native transfers: `transfer_sid`, `previous_task_sid`.
    NativeFlex,
    /// baton's own `POST /api/v1/transfers`: the `baton` object.
    Baton,
}

/// What a transfer was aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    Worker,
    Queue,
    Workflow,
}

impl TargetType {
    /// From a SID's prefix (`WK`, `WQ`, `WW`).
    pub fn from_sid(sid: &str) -> Option<TargetType> {
        match sid.get(..2) {
            Some("WK") => Some(TargetType::Worker),
            Some("WQ") => Some(TargetType::Queue),
            Some("WW") => Some(TargetType::Workflow),
            _ => None,
        }
    }

    fn from_word(word: &str) -> Option<TargetType> {
        match word.to_ascii_lowercase().as_str() {
            "worker" | "agent" => Some(TargetType::Worker),
            "queue" => Some(TargetType::Queue),
            "workflow" => Some(TargetType::Workflow),
            _ => None,
        }
    }

    /// Its database and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Worker => "worker",
            TargetType::Queue => "queue",
            TargetType::Workflow => "workflow",
        }
    }

    /// From its spelling in any vocabulary (`worker`, `QUEUE`, `agent`…).
    pub fn parse(word: &str) -> Option<TargetType> {
        TargetType::from_word(word)
    }
}

/// How a transfer hands over: `cold` (the transferring agent leaves) or `warm` (they stay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Cold,
    Warm,
}

impl Mode {
    fn from_word(word: &str) -> Option<Mode> {
        match word.to_ascii_lowercase().as_str() {
            "cold" | "cold_transfer" => Some(Mode::Cold),
            "warm" | "warm_transfer" | "multi_participant" => Some(Mode::Warm),
            _ => None,
        }
    }

    /// Its database and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cold => "cold",
            Mode::Warm => "warm",
        }
    }

    /// From its spelling in any vocabulary (`cold`, `WARM`, `multi_participant`…).
    pub fn parse(word: &str) -> Option<Mode> {
        Mode::from_word(word)
    }
}

/// Where a transfer asked of baton (`POST /api/v1/transfers`) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestedTransferState {
    /// Its call is not made yet.
    Requested,
    /// The new task exists.
    Offered,
    /// The hop's outcomes.
    Completed,
    Failed,
    Canceled,
    Returned,
    /// Twilio refused the call (see the outbox).
    Dead,
}

impl RequestedTransferState {
    pub const ALL: [RequestedTransferState; 7] = [
        RequestedTransferState::Requested,
        RequestedTransferState::Offered,
        RequestedTransferState::Completed,
        RequestedTransferState::Failed,
        RequestedTransferState::Canceled,
        RequestedTransferState::Returned,
        RequestedTransferState::Dead,
    ];

    /// Its database and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestedTransferState::Requested => "requested",
            RequestedTransferState::Offered => "offered",
            RequestedTransferState::Completed => "completed",
            RequestedTransferState::Failed => "failed",
            RequestedTransferState::Canceled => "canceled",
            RequestedTransferState::Returned => "returned",
            RequestedTransferState::Dead => "dead",
        }
    }

    /// Still under way: no outcome yet, and not dead.
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            RequestedTransferState::Requested | RequestedTransferState::Offered
        )
    }
}

impl TryFrom<String> for RequestedTransferState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RequestedTransferState::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown transfer state {s:?}"))
    }
}

/// Where a native transfer is (TaskRouter's transfer statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    Initiated,
    Completed,
    Failed,
    Canceled,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Initiated => "initiated",
            TransferStatus::Completed => "completed",
            TransferStatus::Failed => "failed",
            TransferStatus::Canceled => "canceled",
        }
    }

    pub fn parse(word: &str) -> Option<TransferStatus> {
        match word.to_ascii_lowercase().as_str() {
            "initiated" => Some(TransferStatus::Initiated),
            "completed" => Some(TransferStatus::Completed),
            "failed" => Some(TransferStatus::Failed),
            "canceled" | "cancelled" => Some(TransferStatus::Canceled),
            _ => None,
        }
    }
}

/// A native (Flex) transfer of a task, as its `task.transfer-*` events tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeTransfer {
    pub transfer_sid: String,
    pub mode: Option<Mode>,
    pub target_sid: Option<String>,
    pub target_type: Option<TargetType>,
    pub initiating_worker_sid: Option<String>,
    pub initiating_reservation_sid: Option<String>,
    pub status: TransferStatus,
    /// When it reached its status (for a terminal one, when it ended).
    pub status_ms: Option<i64>,
    pub initiated_ms: Option<i64>,
}

/// What one `task.transfer-*` event says, typed, with the event's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSnapshotAt {
    pub transfer_sid: String,
    pub mode: Option<Mode>,
    pub target_sid: Option<String>,
    pub target_type: Option<TargetType>,
    pub initiating_worker_sid: Option<String>,
    pub initiating_reservation_sid: Option<String>,
    pub status: TransferStatus,
    pub failed_reason: Option<String>,
    pub ms: i64,
}

impl TransferSnapshotAt {
    /// Reads a transfer event. The event type decides the status when the event names none.
    pub fn read(
        event_type: &TaskRouterEventType,
        snapshot: &TransferSnapshot,
        ms: i64,
    ) -> Option<TransferSnapshotAt> {
        use TaskRouterEventType as T;
        let by_type = match event_type {
            T::TaskTransferInitiated | T::TaskTransferAttemptFailed => TransferStatus::Initiated,
            T::TaskTransferCompleted => TransferStatus::Completed,
            T::TaskTransferFailed => TransferStatus::Failed,
            T::TaskTransferCanceled => TransferStatus::Canceled,
            _ => return None,
        };
        let status = snapshot
            .status
            .as_deref()
            .and_then(TransferStatus::parse)
            .unwrap_or(by_type);
        Some(TransferSnapshotAt {
            transfer_sid: snapshot.transfer_sid.clone(),
            mode: snapshot.mode.as_deref().and_then(Mode::parse),
            target_sid: snapshot.to.clone(),
            target_type: snapshot
                .transfer_type
                .as_deref()
                .and_then(TargetType::parse)
                .or_else(|| snapshot.to.as_deref().and_then(TargetType::from_sid)),
            initiating_worker_sid: snapshot.initiating_worker_sid.clone(),
            initiating_reservation_sid: snapshot.initiating_reservation_sid.clone(),
            status,
            failed_reason: snapshot.failed_reason.clone(),
            ms,
        })
    }
}

/// The canonical reading of a transferred task's attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferMarks {
    pub vocabulary: Vocabulary,
    /// An explicit pointer to the task this one was transferred from.
    pub previous_task_sid: Option<String>,
    pub target_type: Option<TargetType>,
    pub target_sid: Option<String>,
    /// A queue or worker name where the vocabulary gives one instead of (or beside) a SID.
    pub target_name: Option<String>,
    pub mode: Option<Mode>,
    pub notes: Option<String>,
    /// Who initiated it: a worker SID, or a Flex identity (`ignoreAgent`).
    pub initiated_by: Option<String>,
    /// Workers the new task must not be offered to (the transferring agents).
    pub excluded_workers: Vec<String>,
    /// Flex's own transfer id (native transfers).
    pub native_transfer_sid: Option<String>,
}

/// The keys that tie tasks of one customer conversation together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationKeys {
    /// Flex Insights' `conversations.conversation_id` (root task SID or a CH SID by convention).
    pub insights_conversation_id: Option<String>,
    /// `conversationSid` (CH…), Flex Conversations.
    pub conversation_sid: Option<String>,
    /// `flexInteractionSid` (KD…).
    pub interaction_sid: Option<String>,
    /// `flexInteractionChannelSid` (UO…).
    pub interaction_channel_sid: Option<String>,
    /// `channelSid` (CH…), legacy Programmable Chat (end of life June 2026, still in attributes).
    pub chat_channel_sid: Option<String>,
}

fn text(attrs: &Value, key: &str) -> Option<String> {
    match attrs.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn flag(attrs: &Value, key: &str) -> bool {
    match attrs.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn strings(attrs: &Value, key: &str) -> Vec<String> {
    match attrs.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The keys of a task's attributes that name its customer conversation.
pub fn conversation_keys(attrs: &Value) -> ConversationKeys {
    ConversationKeys {
        insights_conversation_id: attrs
            .get("conversations")
            .and_then(|c| text(c, "conversation_id")),
        conversation_sid: text(attrs, "conversationSid"),
        interaction_sid: text(attrs, "flexInteractionSid"),
        interaction_channel_sid: text(attrs, "flexInteractionChannelSid"),
        chat_channel_sid: text(attrs, "channelSid"),
    }
}

/// Reads the transfer attributes of a task, whichever vocabulary wrote them. `None` for a task
/// that does not say it was transferred (a root task, as far as its attributes go).
pub fn transfer_marks(attrs: &Value) -> Option<TransferMarks> {
    baton_marks(attrs)
        .or_else(|| native_marks(attrs))
        .or_else(|| template_marks(attrs))
        .or_else(|| chat_sms_marks(attrs))
}

fn baton_marks(attrs: &Value) -> Option<TransferMarks> {
    let baton = attrs.get("baton")?;
    let previous = text(baton, "previous_task_sid")?;
    let target_sid = text(baton, "target_sid");
    Some(TransferMarks {
        vocabulary: Vocabulary::Baton,
        previous_task_sid: Some(previous),
        target_type: target_sid.as_deref().and_then(TargetType::from_sid),
        target_sid,
        // baton also writes the template's vocabulary, which existing workflows route on.
        target_name: text(attrs, "transferQueueName"),
        mode: text(baton, "mode").as_deref().and_then(Mode::from_word),
        notes: text(baton, "notes"),
        initiated_by: text(baton, "initiated_by"),
        excluded_workers: strings(attrs, "workerSidsInConversation"),
        native_transfer_sid: None,
    })
}

fn native_marks(attrs: &Value) -> Option<TransferMarks> {
    let previous = text(attrs, "previous_task_sid");
    let transfer_sid = text(attrs, "transfer_sid");
    if previous.is_none() && transfer_sid.is_none() {
        return None;
    }
    // Native transfers may also carry the template's target fields when both are installed.
    let target_sid = text(attrs, "transferTargetSid").or_else(|| text(attrs, "targetSid"));
    Some(TransferMarks {
        vocabulary: Vocabulary::NativeFlex,
        previous_task_sid: previous,
        target_type: target_sid.as_deref().and_then(TargetType::from_sid),
        target_sid,
        target_name: None,
        mode: Some(Mode::Cold),
        notes: text(attrs, "transfer_notes").or_else(|| text(attrs, "notes")),
        initiated_by: None,
        excluded_workers: Vec::new(),
        native_transfer_sid: transfer_sid,
    })
}

fn template_marks(attrs: &Value) -> Option<TransferMarks> {
    let target_sid = text(attrs, "transferTargetSid");
    let queue_name = text(attrs, "transferQueueName");
    if target_sid.is_none() && queue_name.is_none() {
        return None;
    }
    let target_type = text(attrs, "transferTargetType")
        .as_deref()
        .and_then(TargetType::from_word)
        .or_else(|| target_sid.as_deref().and_then(TargetType::from_sid))
        .or(queue_name.as_ref().map(|_| TargetType::Queue));
    let excluded = strings(attrs, "workerSidsInConversation");
    Some(TransferMarks {
        vocabulary: Vocabulary::ProjectTemplate,
        previous_task_sid: None,
        target_type,
        target_sid,
        target_name: queue_name.or_else(|| text(attrs, "transferWorkerName")),
        mode: text(attrs, "transferMode")
            .as_deref()
            .and_then(Mode::from_word),
        notes: None,
        initiated_by: excluded.last().cloned(),
        excluded_workers: excluded,
        native_transfer_sid: None,
    })
}

fn chat_sms_marks(attrs: &Value) -> Option<TransferMarks> {
    let target_sid = text(attrs, "targetSid")?;
    let target_type = text(attrs, "transferTargetType")
        .as_deref()
        .and_then(TargetType::from_word)
        .or_else(|| TargetType::from_sid(&target_sid));
    Some(TransferMarks {
        vocabulary: Vocabulary::ChatSmsTransfer,
        // The plugin sets conversations.conversation_id to the original task only when the
        // task had no `conversations` object, so it is a root pointer at best, never relied on.
        previous_task_sid: None,
        target_type,
        target_sid: Some(target_sid),
        target_name: None,
        mode: Some(Mode::Cold),
        notes: None,
        initiated_by: text(attrs, "ignoreAgent"),
        excluded_workers: Vec::new(),
        native_transfer_sid: None,
    })
}

/// Park vocabularies (voice POC, multi-call handling, park-interaction): whether a task is a park.
pub fn is_park(attrs: &Value) -> bool {
    flag(attrs, "workerParked") || flag(attrs, "holdAssignment") || flag(attrs, "selfPark")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WK: &str = "WK00000000000000000000000000000002";
    const WQ: &str = "WQ00000000000000000000000000000003";
    const WT: &str = "WT00000000000000000000000000000001";

    #[test]
    fn plugin_chat_sms_transfer_attributes() {
        let attrs = json!({"targetSid": WQ, "transferTargetType": "queue", "ignoreAgent": "alice",
            "channelSid": "CH1", "conversations": {"conversation_id": WT}});
        let marks = transfer_marks(&attrs).unwrap();
        assert_eq!(marks.vocabulary, Vocabulary::ChatSmsTransfer);
        assert_eq!(marks.target_type, Some(TargetType::Queue));
        assert_eq!(marks.target_sid.as_deref(), Some(WQ));
        assert_eq!(marks.initiated_by.as_deref(), Some("alice"));
        assert_eq!(marks.mode, Some(Mode::Cold));
        let keys = conversation_keys(&attrs);
        assert_eq!(keys.insights_conversation_id.as_deref(), Some(WT));
        assert_eq!(keys.chat_channel_sid.as_deref(), Some("CH1"));
    }

    #[test]
    fn plugin_target_type_falls_back_to_the_sid_prefix() {
        let marks = transfer_marks(&json!({"targetSid": WK})).unwrap();
        assert_eq!(marks.target_type, Some(TargetType::Worker));
        let marks =
            transfer_marks(&json!({"targetSid": "WW00000000000000000000000000000004"})).unwrap();
        assert_eq!(marks.target_type, Some(TargetType::Workflow));
    }

    #[test]
    fn project_template_attributes() {
        let attrs = json!({"transferTargetSid": WQ, "transferTargetType": "queue",
            "transferQueueName": "Sales", "workerSidsInConversation": ["WK1", "WK9"],
            "conversationSid": "CHa", "flexInteractionSid": "KDa", "flexInteractionChannelSid": "UOa",
            "conversations": {"conversation_id": WT, "communication_channel": "sms"}});
        let marks = transfer_marks(&attrs).unwrap();
        assert_eq!(marks.vocabulary, Vocabulary::ProjectTemplate);
        assert_eq!(marks.target_type, Some(TargetType::Queue));
        assert_eq!(marks.target_name.as_deref(), Some("Sales"));
        assert_eq!(
            marks.excluded_workers,
            vec!["WK1".to_owned(), "WK9".to_owned()]
        );
        assert_eq!(marks.initiated_by.as_deref(), Some("WK9"));
        let keys = conversation_keys(&attrs);
        assert_eq!(keys.interaction_channel_sid.as_deref(), Some("UOa"));
        assert_eq!(keys.conversation_sid.as_deref(), Some("CHa"));
    }

    #[test]
    fn native_flex_transfer_attributes() {
        let attrs =
            json!({"transfer_sid": "UX1", "previous_task_sid": WT, "flexInteractionSid": "KDa"});
        let marks = transfer_marks(&attrs).unwrap();
        assert_eq!(marks.vocabulary, Vocabulary::NativeFlex);
        assert_eq!(marks.previous_task_sid.as_deref(), Some(WT));
        assert_eq!(marks.native_transfer_sid.as_deref(), Some("UX1"));
    }

    #[test]
    fn baton_attributes_win_over_the_others() {
        let attrs = json!({"baton": {"previous_task_sid": WT, "target_sid": WK, "mode": "warm",
            "notes": "VIP", "initiated_by": "WK5"}, "targetSid": WQ});
        let marks = transfer_marks(&attrs).unwrap();
        assert_eq!(marks.vocabulary, Vocabulary::Baton);
        assert_eq!(marks.target_type, Some(TargetType::Worker));
        assert_eq!(marks.mode, Some(Mode::Warm));
        assert_eq!(marks.notes.as_deref(), Some("VIP"));
    }

    #[test]
    fn a_root_task_has_no_transfer_marks() {
        assert_eq!(
            transfer_marks(&json!({"from": "+1415", "conversationSid": "CHa"})),
            None
        );
        assert_eq!(transfer_marks(&json!("not an object")), None);
        assert_eq!(transfer_marks(&json!({"targetSid": ""})), None);
    }

    #[test]
    fn park_vocabularies() {
        assert!(is_park(
            &json!({"workerParked": true, "targetWorkerContactUri": "client:alice"})
        ));
        assert!(is_park(&json!({"holdAssignment": "true"})));
        assert!(!is_park(&json!({"workerParked": false})));
    }
}
