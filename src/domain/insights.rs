//! Flex Insights linkage: Insights groups the tasks of one customer conversation by their
//! `conversations.conversation_id` (a task without one counts as its own SID), and reads task
//! attributes only until the task completes. Which tasks of a chain are linked, and what the
//! Insights backfill does with each.

use crate::domain::transfer::conversation_keys;
use serde_json::Value;

/// Whether a task whose `conversations.conversation_id` is `insights_id` is in chain
/// `chain_id`'s Insights conversation. The root without an id is: Insights falls back to the
/// task SID, which is the chain id.
pub fn is_linked(task_sid: &str, insights_id: Option<&str>, chain_id: &str) -> bool {
    match insights_id {
        Some(id) => id == chain_id,
        None => task_sid == chain_id,
    }
}

/// The `conversations.conversation_id` a task's attributes carry.
pub fn insights_id(attributes: &Value) -> Option<String> {
    conversation_keys(attributes).insights_conversation_id
}

/// Whether TaskRouter still lets a task's attributes reach Insights (not completed or canceled).
pub fn is_live(assignment_status: Option<&str>) -> bool {
    !matches!(assignment_status, Some("completed" | "canceled"))
}

/// What the backfill did with one task (the report's `action` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackfillAction {
    /// Written now (GET → `If-Match` POST).
    Stamped,
    /// It already carried the chain id (or is the root, which needs none).
    AlreadyLinked,
    /// `--dry-run`: it would be stamped.
    WouldStamp,
    /// Completed or canceled without the chain id: Insights will not see a change any more.
    CompletedUnchangeable,
    /// Twilio no longer has it (404 / 20404).
    Gone,
    /// Twilio refused or kept failing.
    Failed(String),
}

impl BackfillAction {
    pub fn label(&self) -> String {
        match self {
            BackfillAction::Stamped => "stamped".into(),
            BackfillAction::AlreadyLinked => "already_linked".into(),
            BackfillAction::WouldStamp => "would_stamp".into(),
            BackfillAction::CompletedUnchangeable => "completed_unchangeable".into(),
            BackfillAction::Gone => "gone".into(),
            BackfillAction::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// What a read of the task says to do: `None` when it should be stamped (or would be, in a dry
/// run), else the final action.
pub fn judge(
    task_sid: &str,
    chain_id: &str,
    assignment_status: Option<&str>,
    attributes: &Value,
) -> Option<BackfillAction> {
    if is_linked(task_sid, insights_id(attributes).as_deref(), chain_id) {
        Some(BackfillAction::AlreadyLinked)
    } else if !is_live(assignment_status) {
        Some(BackfillAction::CompletedUnchangeable)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_root_without_an_id_is_linked_others_need_the_chain_id() {
        assert!(is_linked("WT1", None, "WT1"));
        assert!(!is_linked("WT2", None, "WT1"));
        assert!(is_linked("WT2", Some("WT1"), "WT1"));
        assert!(
            !is_linked("WT1", Some("WT9"), "WT1"),
            "a wrong id on the root"
        );
    }

    #[test]
    fn judging_a_read() {
        let none = json!({"conversations": {"communication_channel": "sms"}});
        let linked = json!({"conversations": {"conversation_id": "WT1"}});
        let wrong = json!({"conversations": {"conversation_id": "WT7"}});
        assert_eq!(judge("WT2", "WT1", Some("assigned"), &none), None);
        assert_eq!(judge("WT2", "WT1", Some("wrapping"), &wrong), None);
        assert_eq!(
            judge("WT2", "WT1", Some("completed"), &linked),
            Some(BackfillAction::AlreadyLinked)
        );
        assert_eq!(
            judge("WT2", "WT1", Some("canceled"), &none),
            Some(BackfillAction::CompletedUnchangeable)
        );
        assert_eq!(
            BackfillAction::Failed("HTTP 400".into()).label(),
            "failed: HTTP 400"
        );
    }
}
