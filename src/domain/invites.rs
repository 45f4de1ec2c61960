//! Stale pending invites. flex-project-template's warm transfers keep each outstanding invite in
//! the conversation's attributes (`invites[<invite task SID>] = {invitesTaskSid, targetSid, …}`)
//! and remove an entry only when the invited agent joins or the transferring agent cancels it.
//! An invite whose task was canceled (rejected by a known worker, timed out) or ended otherwise
//! stays there for good — and while it does the template refuses further transfers and never
//! closes the conversation when its agent leaves. baton removes such entries; these are the
//! rules, pure. `store::conversations` finds the ended invite tasks, `app::orphans` runs them.

use super::outbound::{OperationKind, Procedure, Product, TwilioRequest};
use super::planned::PlannedCall;
use crate::domain::paths;
use serde_json::{Map, Value};

/// The task SIDs a conversation's attributes list as pending invites: each `invites` key and
/// each entry's `invitesTaskSid`. `attributes` is the decoded `attributes` of the conversation.
pub fn pending_invite_tasks(attributes: &Value) -> Vec<String> {
    let Some(invites) = attributes.get("invites").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut sids: Vec<String> = invites
        .iter()
        .flat_map(|(key, entry)| {
            let named = entry.get("invitesTaskSid").and_then(Value::as_str);
            [Some(key.as_str()), named]
        })
        .flatten()
        .filter(|sid| sid.starts_with("WT"))
        .map(str::to_owned)
        .collect();
    sids.sort();
    sids.dedup();
    sids
}

/// The attributes without the invite entries of `ended` tasks (matched by key or by
/// `invitesTaskSid`), everything else untouched; `None` when no entry is stale.
pub fn without_stale_invites(attributes: &Value, ended: &[String]) -> Option<Value> {
    let invites = attributes.get("invites")?.as_object()?;
    let is_stale = |key: &str, entry: &Value| {
        let named = entry.get("invitesTaskSid").and_then(Value::as_str);
        ended
            .iter()
            .any(|sid| sid == key || Some(sid.as_str()) == named)
    };
    let kept: Map<String, Value> = invites
        .iter()
        .filter(|(key, entry)| !is_stale(key, entry))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if kept.len() == invites.len() {
        return None;
    }
    let mut merged = attributes.as_object()?.clone();
    merged.insert("invites".into(), Value::Object(kept));
    Some(Value::Object(merged))
}

/// The call that removes the entries of `ended` invite tasks: GET the conversation, drop the
/// stale entries, POST the rest (see [`Procedure::ClearStaleInvites`]). Keyed by the conversation
/// and the tasks, so deciding it again is a no-op.
pub fn clear_call(conversation_sid: &str, ended: &[String]) -> PlannedCall {
    let mut ended = ended.to_vec();
    ended.sort();
    ended.dedup();
    PlannedCall {
        idempotency_key: format!("invites:{conversation_sid}:{}", ended.join(",")),
        kind: OperationKind::UpdateConversationAttributes,
        request: TwilioRequest::get(
            Product::Conversations,
            paths::conversation(conversation_sid),
        ),
        procedure: Some(Procedure::ClearStaleInvites {
            conversation_sid: conversation_sid.to_owned(),
            task_sids: ended,
        }),
        conversation_sid: Some(conversation_sid.to_owned()),
        guard: None,
        after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(sid: &str) -> Value {
        json!({"invitesTaskSid": sid, "targetSid": "WK1", "targetName": "Bob",
               "timestampCreated": "2026-11-30T10:00:00Z", "inviteTargetType": "Worker"})
    }

    #[test]
    fn lists_invite_tasks_by_key_and_by_entry() {
        let attrs = json!({"invites": {"WTa": entry("WTa"), "WTb": entry("WTc"), "junk": 3}});
        assert_eq!(pending_invite_tasks(&attrs), vec!["WTa", "WTb", "WTc"]);
        assert!(pending_invite_tasks(&json!({"invites": "odd"})).is_empty());
        assert!(pending_invite_tasks(&Value::Null).is_empty());
    }

    #[test]
    fn removes_only_the_entries_of_ended_tasks_and_keeps_everything_else() {
        let attrs = json!({"customerName": "Ada",
                           "invites": {"WTa": entry("WTa"), "WTlive": entry("WTlive"), "x": entry("WTb")}});
        let cleared = without_stale_invites(&attrs, &["WTa".into(), "WTb".into()]);
        assert_eq!(
            cleared,
            Some(json!({"customerName": "Ada", "invites": {"WTlive": entry("WTlive")}}))
        );
        assert_eq!(without_stale_invites(&attrs, &["WTother".into()]), None);
        assert_eq!(
            without_stale_invites(&json!({"a": 1}), &["WTa".into()]),
            None
        );
    }

    #[test]
    fn the_call_is_keyed_by_conversation_and_sorted_tasks() {
        let a = clear_call("CH1", &["WTb".into(), "WTa".into(), "WTa".into()]);
        let b = clear_call("CH1", &["WTa".into(), "WTb".into()]);
        assert_eq!(a.idempotency_key, "invites:CH1:WTa,WTb");
        assert_eq!(a, b);
        assert_eq!(a.request.path, "/v1/Conversations/CH1");
    }
}
