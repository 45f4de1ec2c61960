//! Orphaned conversations: a Flex conversation that no task owns any more stays open (its
//! interaction channel for 180 days), and the customer's next message opens no new task. baton
//! closes it — but only when nothing could still want it: no live task, no pending invite or
//! transfer, no park. This module holds those rules, pure; `store::conversations` gathers the
//! facts they read and `app::orphans` runs them.

use super::event::TaskRouterEventType;
use super::guard::Guard;
use super::outbound::{create_invite, OperationKind, Procedure, Product, TwilioRequest};
use super::planned::PlannedCall;
use super::transfer;
use crate::domain::paths;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A conversation as a task's attributes name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRef {
    pub conversation_sid: String,
    /// The interaction (KD) and its channel (UO), for Flex Conversations tasks.
    pub interaction: Option<(String, String)>,
    pub channel_type: Option<String>,
}

impl ConversationRef {
    /// The Flex Conversations conversation a task serves (`conversationSid`), if any. Legacy
    /// Programmable Chat channels (`channelSid`) are not conversations baton closes: that API
    /// reached end of life.
    pub fn from_attributes(attributes: &Value) -> Option<ConversationRef> {
        let keys = transfer::conversation_keys(attributes);
        let conversation_sid = keys.conversation_sid.filter(|s| s.starts_with("CH"))?;
        let interaction = match (keys.interaction_sid, keys.interaction_channel_sid) {
            (Some(kd), Some(uo)) if kd.starts_with("KD") && uo.starts_with("UO") => Some((kd, uo)),
            _ => None,
        };
        let channel_type = attributes
            .get("channelType")
            .and_then(Value::as_str)
            .or_else(|| {
                attributes
                    .get("conversations")
                    .and_then(|c| c.get("communication_channel"))
                    .and_then(Value::as_str)
            })
            .map(str::to_ascii_lowercase);
        Some(ConversationRef {
            conversation_sid,
            interaction,
            channel_type,
        })
    }
}

/// Whether this event ends a task's hold on its conversation (and so may leave it orphaned).
/// A declined known-worker invite ends as `task.canceled`.
pub fn ends_task(event_type: &TaskRouterEventType) -> bool {
    matches!(
        event_type.as_str(),
        "task.canceled"
            | "task.completed"
            | "task.deleted"
            | "task.system-deleted"
            | "workflow.timeout"
            | "workflow.skipped"
    )
}

/// What baton knows holds a conversation open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Occupancy {
    /// Twilio's state as last seen (`active`, `inactive`, `closed`).
    pub state: String,
    pub removed: bool,
    /// Tasks of the conversation still pending, reserved or assigned.
    pub live_tasks: Vec<String>,
    /// Invites (or tasks) baton is creating for it: outbox calls not yet sent, or sent so
    /// recently that their task may not have been reported yet.
    pub pending_invites: Vec<i64>,
    /// Transfers asked of baton whose target task does not exist yet.
    pub transfers_in_flight: Vec<String>,
    /// Parks holding it.
    pub parks: Vec<String>,
    /// baton already decided to close it.
    pub close_decided: bool,
}

/// Why a conversation is kept open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    AlreadyClosed,
    Removed,
    CloseAlreadyDecided,
    LiveTask(String),
    PendingInvite(i64),
    TransferInFlight(String),
    Parked(String),
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::AlreadyClosed => write!(f, "already closed"),
            Keep::Removed => write!(f, "removed"),
            Keep::CloseAlreadyDecided => write!(f, "close already decided"),
            Keep::LiveTask(t) => write!(f, "live task {t}"),
            Keep::PendingInvite(id) => write!(f, "pending invite (outbox {id})"),
            Keep::TransferInFlight(t) => write!(f, "transfer {t} in flight"),
            Keep::Parked(p) => write!(f, "parked ({p})"),
        }
    }
}

impl Occupancy {
    /// `Ok(())` when nothing holds the conversation: it may be closed.
    pub fn verdict(&self) -> Result<(), Keep> {
        if self.removed {
            return Err(Keep::Removed);
        }
        if self.state == "closed" {
            return Err(Keep::AlreadyClosed);
        }
        if let Some(p) = self.parks.first() {
            return Err(Keep::Parked(p.clone()));
        }
        if let Some(t) = self.live_tasks.first() {
            return Err(Keep::LiveTask(t.clone()));
        }
        if let Some(t) = self.transfers_in_flight.first() {
            return Err(Keep::TransferInFlight(t.clone()));
        }
        if let Some(i) = self.pending_invites.first() {
            return Err(Keep::PendingInvite(*i));
        }
        if self.close_decided {
            return Err(Keep::CloseAlreadyDecided);
        }
        Ok(())
    }
}

/// Why baton closes a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Its last task ended and the grace period passed.
    Orphan,
    /// The reconciler found it idle past the threshold, and Twilio confirmed no agent is in it.
    Sweep,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Orphan => "orphan",
            CloseReason::Sweep => "sweep",
        }
    }
}

/// The close call: the interaction channel when there is one (Twilio closes the conversation
/// with it; cancelling interaction tasks through TaskRouter is forbidden), else the
/// conversation. One per decision (`close:{CH}:{generation}`; a close withdrawn at send time may
/// be decided again). The procedure checks again at send time, against baton's state and
/// Twilio's participants.
pub fn close_call(
    conversation: &ConversationRef,
    generation: i32,
    workspace_sid: &str,
) -> PlannedCall {
    let ch = &conversation.conversation_sid;
    let (kind, request) = match &conversation.interaction {
        Some((kd, uo)) => (
            OperationKind::CloseInteractionChannel,
            TwilioRequest::post(
                Product::Flex,
                paths::interaction_channel(kd, uo),
                vec![("Status".into(), "closed".into())],
            ),
        ),
        None => (
            OperationKind::CloseConversation,
            TwilioRequest::post(
                Product::Conversations,
                paths::conversation(ch),
                vec![("State".into(), "closed".into())],
            ),
        ),
    };
    PlannedCall {
        idempotency_key: format!("close:{ch}:{generation}"),
        kind,
        request,
        procedure: Some(Procedure::CloseOrphan {
            conversation_sid: ch.clone(),
            interaction: conversation.interaction.clone(),
        }),
        conversation_sid: Some(ch.clone()),
        guard: Some(Guard::Unattended {
            workspace_sid: workspace_sid.to_owned(),
            conversation_sid: ch.clone(),
            interaction: conversation.interaction.clone(),
            except_tasks: Vec::new(),
            own_park: None,
        }),
        after: None,
    }
}

/// What a close call found when it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseResult {
    /// Twilio closed it.
    Closed,
    /// It was closed (or gone) already.
    AlreadyClosed,
    /// Something still held it (baton's state or Twilio's): kept open, and why.
    Kept(String),
}

impl CloseResult {
    /// What a close withdrawn at send time found (`already_closed`, or `kept: …`).
    pub fn withdrawn(why: &str) -> CloseResult {
        match why {
            "already_closed" => CloseResult::AlreadyClosed,
            other => CloseResult::Kept(other.strip_prefix("kept: ").unwrap_or(other).to_owned()),
        }
    }

    /// Whether the conversation is closed now.
    pub fn closes(&self) -> bool {
        matches!(self, CloseResult::Closed | CloseResult::AlreadyClosed)
    }

    /// Its database and JSON spelling: `closed`, `already_closed`, `kept: …`.
    pub fn spelled(&self) -> String {
        match self {
            CloseResult::Closed => "closed".into(),
            CloseResult::AlreadyClosed => "already_closed".into(),
            CloseResult::Kept(why) => format!("kept: {why}"),
        }
    }
}

/// The method a close uses, as recorded.
pub fn close_method(conversation: &ConversationRef) -> &'static str {
    if conversation.interaction.is_some() {
        "interaction_channel"
    } else {
        "conversation"
    }
}

/// `workflow.timeout` of a customer-facing task with a fallback workflow configured: invite the
/// customer again through that workflow instead of leaving them (Twilio's best practice), with
/// every original attribute. One per timed-out task (`fallback:{WT}`).
pub fn fallback_invite(
    task_sid: &str,
    conversation: &ConversationRef,
    attributes: &Value,
    workspace_sid: &str,
    fallback_workflow_sid: &str,
    task_channel: Option<&str>,
) -> Option<PlannedCall> {
    let (kd, uo) = conversation.interaction.as_ref()?;
    // A task baton made to rescue the customer (a fallback, a route-back) gets no fallback of
    // its own: a customer is re-queued once, not for ever.
    let rescue = attributes.get("baton").is_some_and(|b| {
        b.get("fallback_from_task_sid").is_some() || b.get("returning_from").is_some()
    });
    if rescue {
        return None;
    }
    let key = format!("fallback:{task_sid}");
    let mut attributes = match attributes {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let baton = attributes
        .entry("baton")
        .or_insert_with(|| Value::Object(Default::default()));
    if !baton.is_object() {
        *baton = Value::Object(Default::default());
    }
    if let Some(b) = baton.as_object_mut() {
        b.insert(
            "fallback_from_task_sid".into(),
            Value::String(task_sid.into()),
        );
        b.insert("outbox_key".into(), Value::String(key.clone()));
    }
    let properties = serde_json::json!({
        "workspace_sid": workspace_sid,
        "workflow_sid": fallback_workflow_sid,
        "task_channel_unique_name": task_channel.unwrap_or("chat"),
        "attributes": Value::Object(attributes),
    });
    let (request, lookup) = create_invite(kd, uo, properties);
    Some(PlannedCall {
        idempotency_key: key.clone(),
        kind: OperationKind::CreateInvite,
        request,
        procedure: Some(Procedure::CreateOnce {
            lookup: Some(lookup),
            marker: key,
        }),
        conversation_sid: Some(conversation.conversation_sid.clone()),
        // Only when Twilio shows nobody else holds the conversation.
        guard: Some(Guard::Unattended {
            workspace_sid: workspace_sid.to_owned(),
            conversation_sid: conversation.conversation_sid.clone(),
            interaction: conversation.interaction.clone(),
            except_tasks: vec![task_sid.to_owned()],
            own_park: None,
        }),
        after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CH: &str = "CH00000000000000000000000000000001";
    const KD: &str = "KD00000000000000000000000000000001";
    const UO: &str = "UO00000000000000000000000000000001";

    fn conversation() -> ConversationRef {
        ConversationRef::from_attributes(&json!({
            "conversationSid": CH, "flexInteractionSid": KD, "flexInteractionChannelSid": UO,
            "conversations": {"communication_channel": "SMS"}
        }))
        .expect("a conversation task")
    }

    #[test]
    fn reads_the_conversation_of_a_task() {
        let c = conversation();
        assert_eq!(c.conversation_sid, CH);
        assert_eq!(c.interaction, Some((KD.into(), UO.into())));
        assert_eq!(c.channel_type.as_deref(), Some("sms"));
        // Legacy chat channels and voice tasks name no conversation to close.
        assert_eq!(
            ConversationRef::from_attributes(&json!({"channelSid": CH})),
            None
        );
        assert_eq!(
            ConversationRef::from_attributes(&json!({"call_sid": "CA1"})),
            None
        );
    }

    #[test]
    fn anything_holding_the_conversation_keeps_it_open() {
        let free = Occupancy {
            state: "active".into(),
            ..Default::default()
        };
        assert_eq!(free.verdict(), Ok(()));
        let cases = [
            (
                Occupancy {
                    live_tasks: vec!["WT1".into()],
                    ..free.clone()
                },
                Keep::LiveTask("WT1".into()),
            ),
            (
                Occupancy {
                    pending_invites: vec![7],
                    ..free.clone()
                },
                Keep::PendingInvite(7),
            ),
            (
                Occupancy {
                    transfers_in_flight: vec!["TR1".into()],
                    ..free.clone()
                },
                Keep::TransferInFlight("TR1".into()),
            ),
            (
                Occupancy {
                    parks: vec!["PA1".into()],
                    ..free.clone()
                },
                Keep::Parked("PA1".into()),
            ),
            (
                Occupancy {
                    state: "closed".into(),
                    ..free.clone()
                },
                Keep::AlreadyClosed,
            ),
            (
                Occupancy {
                    removed: true,
                    ..free.clone()
                },
                Keep::Removed,
            ),
            (
                Occupancy {
                    close_decided: true,
                    ..free.clone()
                },
                Keep::CloseAlreadyDecided,
            ),
        ];
        for (occupancy, keep) in cases {
            assert_eq!(occupancy.verdict(), Err(keep));
        }
    }

    #[test]
    fn closes_the_interaction_channel_once_per_decision() {
        let call = close_call(&conversation(), 1, "WS1");
        assert_eq!(call.idempotency_key, format!("close:{CH}:1"));
        assert_eq!(call.kind, OperationKind::CloseInteractionChannel);
        assert_eq!(
            call.request.path,
            format!("/v1/Interactions/{KD}/Channels/{UO}")
        );
        assert_eq!(
            call.request.form,
            vec![("Status".to_owned(), "closed".to_owned())]
        );
        let plain = ConversationRef {
            interaction: None,
            ..conversation()
        };
        let call = close_call(&plain, 2, "WS1");
        assert_eq!(call.idempotency_key, format!("close:{CH}:2"));
        assert_eq!(call.kind, OperationKind::CloseConversation);
        assert_eq!(call.request.path, format!("/v1/Conversations/{CH}"));
        assert_eq!(
            call.request.form,
            vec![("State".to_owned(), "closed".to_owned())]
        );
    }

    #[test]
    fn a_timed_out_task_is_invited_again_through_the_fallback_workflow() {
        let attrs = json!({"conversationSid": CH, "flexInteractionSid": KD,
            "flexInteractionChannelSid": UO, "from": "+1"});
        let call = fallback_invite("WT1", &conversation(), &attrs, "WS1", "WW9", Some("chat"))
            .expect("an interaction task");
        assert_eq!(call.idempotency_key, "fallback:WT1");
        assert_eq!(call.kind, OperationKind::CreateInvite);
        assert_eq!(call.conversation_sid.as_deref(), Some(CH));
        let routing: Value =
            serde_json::from_str(&call.request.form[0].1).expect("routing is JSON");
        assert_eq!(routing["properties"]["workflow_sid"], "WW9");
        assert_eq!(routing["properties"]["attributes"]["from"], "+1");
        assert_eq!(
            routing["properties"]["attributes"]["baton"]["fallback_from_task_sid"],
            "WT1"
        );
    }

    #[test]
    fn a_rescue_task_gets_no_fallback_of_its_own() {
        for baton in [
            json!({"fallback_from_task_sid": "WT0"}),
            json!({"returning_from": "WT0"}),
        ] {
            let attrs = json!({"conversationSid": CH, "flexInteractionSid": KD,
                "flexInteractionChannelSid": UO, "baton": baton});
            assert_eq!(
                fallback_invite("WT1", &conversation(), &attrs, "WS1", "WW9", None),
                None
            );
        }
        let call = fallback_invite("WT1", &conversation(), &json!({}), "WS1", "WW9", None)
            .expect("a customer task");
        assert_eq!(
            call.guard,
            Some(Guard::Unattended {
                workspace_sid: "WS1".into(),
                conversation_sid: CH.into(),
                interaction: Some((KD.into(), UO.into())),
                except_tasks: vec!["WT1".into()],
                own_park: None,
            })
        );
    }

    #[test]
    fn close_results_are_spelled_as_recorded() {
        assert_eq!(
            CloseResult::withdrawn("already_closed"),
            CloseResult::AlreadyClosed
        );
        let kept = CloseResult::withdrawn("kept: live task WT1");
        assert_eq!(kept, CloseResult::Kept("live task WT1".into()));
        assert_eq!(kept.spelled(), "kept: live task WT1");
        assert!(!kept.closes() && CloseResult::Closed.closes());
    }

    #[test]
    fn terminal_events() {
        for t in [
            "task.canceled",
            "task.completed",
            "task.deleted",
            "task.system-deleted",
            "workflow.timeout",
            "workflow.skipped",
        ] {
            assert!(ends_task(&TaskRouterEventType::parse(t)), "{t}");
        }
        assert!(!ends_task(&TaskRouterEventType::parse("task.wrapup")));
    }
}
