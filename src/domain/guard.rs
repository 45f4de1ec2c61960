//! What baton confirms with Twilio just before a destructive call (a close, a completion, a
//! participant removal, a re-invite): the facts that justified the decision, read again at send
//! time. baton's own state lags Twilio (callbacks are late or lost, other tools act on the same
//! conversation), so a decision is only a proposal until Twilio agrees. Pure: the reads to make
//! and the judgement of their answers; the dispatcher makes the reads.

use super::outbound::{Product, TwilioRequest};
use crate::domain::paths;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The task statuses in which a task still serves (or is about to serve) its customer.
pub const LIVE_TASK_STATUSES: [&str; 4] = ["pending", "reserved", "assigned", "wrapping"];

/// How many of a channel's newest invites are looked at one by one (their tasks fetched) when
/// the task list does not show them.
pub const INVITES_CHECKED: usize = 5;

/// The facts to confirm with Twilio before a call is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "guard", rename_all = "snake_case")]
pub enum Guard {
    /// Nothing could still serve the customer: the channel (or conversation) is open, only the
    /// customer is in it, Twilio has no pending, reserved, assigned or wrapping task for it
    /// (besides `except_tasks`), no invite of it is pending, and no other party's conversation
    /// webhook (a park) waits for the customer.
    Unattended {
        workspace_sid: String,
        conversation_sid: String,
        interaction: Option<(String, String)>,
        #[serde(default)]
        except_tasks: Vec<String>,
        /// baton's own park whose webhook does not count (its resume is what is being sent).
        #[serde(default)]
        own_park: Option<String>,
    },
    /// The task's assignment status is one of `statuses` now.
    TaskIs {
        workspace_sid: String,
        task_sid: String,
        statuses: Vec<String>,
    },
    /// The reservation is what a park left behind: it is wrapping (never the accepted one that
    /// holds a live call), and a newer reservation of its task exists.
    LeftBehind {
        workspace_sid: String,
        task_sid: String,
        reservation_sid: String,
    },
    /// Every one of them.
    All { guards: Vec<Guard> },
}

impl Guard {
    pub fn task_is(workspace_sid: &str, task_sid: &str, statuses: &[&str]) -> Guard {
        Guard::TaskIs {
            workspace_sid: workspace_sid.to_owned(),
            task_sid: task_sid.to_owned(),
            statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// What the answers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The facts hold: send the call.
    Proceed,
    /// Something still needs what the call would end: do not send it (the reason, for ops).
    Keep(String),
    /// What the call would end is gone already (closed, deleted): nothing to do.
    Gone(String),
}

/// `GET /v1/Workspaces/{WS}/Tasks/{WT}`.
pub fn task_read(workspace_sid: &str, task_sid: &str) -> TwilioRequest {
    TwilioRequest::get(Product::TaskRouter, paths::task(workspace_sid, task_sid))
}

/// `GET /v1/Workspaces/{WS}/Tasks/{WT}/Reservations`.
pub fn reservations_read(workspace_sid: &str, task_sid: &str) -> TwilioRequest {
    let mut read = TwilioRequest::get(
        Product::TaskRouter,
        paths::task_reservations(workspace_sid, task_sid),
    );
    read.form = vec![("PageSize".into(), "50".into())];
    read
}

/// The TaskRouter expression that finds the tasks of a conversation: by its conversation SID,
/// or by its interaction channel (every invite's task names it).
pub fn conversation_tasks_expression(
    conversation_sid: &str,
    interaction: Option<&(String, String)>,
) -> String {
    match interaction {
        Some((_, uo)) => format!(
            "conversationSid == '{conversation_sid}' OR flexInteractionChannelSid == '{uo}'"
        ),
        None => format!("conversationSid == '{conversation_sid}'"),
    }
}

/// TaskRouter's task list filtered to the conversation's live tasks.
pub fn live_tasks_read(
    workspace_sid: &str,
    conversation_sid: &str,
    interaction: Option<&(String, String)>,
) -> TwilioRequest {
    let mut read = TwilioRequest::get(Product::TaskRouter, paths::tasks(workspace_sid));
    read.form = vec![(
        "EvaluateTaskAttributes".into(),
        conversation_tasks_expression(conversation_sid, interaction),
    )];
    for status in LIVE_TASK_STATUSES {
        read.form.push(("AssignmentStatus".into(), status.into()));
    }
    read.form.push(("PageSize".into(), "50".into()));
    read
}

/// The reads that show who is in a conversation: the interaction channel (or the
/// conversation), then the conversation's participants, its own fetch (its attributes), its
/// scoped webhooks and, for an interaction, the channel's invites.
pub struct ConversationReads {
    pub resource: TwilioRequest,
    pub participants: TwilioRequest,
    /// `None` when `resource` is the conversation itself.
    pub conversation: Option<TwilioRequest>,
    pub webhooks: TwilioRequest,
    pub invites: Option<TwilioRequest>,
}

pub fn conversation_reads(
    conversation_sid: &str,
    interaction: Option<&(String, String)>,
) -> ConversationReads {
    let conversation = paths::conversation(conversation_sid);
    let page = |path: String| {
        let mut read = TwilioRequest::get(Product::Conversations, path);
        read.form = vec![("PageSize".into(), "50".into())];
        read
    };
    let (resource, own, invites) = match interaction {
        Some((kd, uo)) => (
            TwilioRequest::get(Product::Flex, paths::interaction_channel(kd, uo)),
            Some(TwilioRequest::get(
                Product::Conversations,
                conversation.clone(),
            )),
            Some(TwilioRequest::get(
                Product::Flex,
                paths::interaction_channel_invites(kd, uo),
            )),
        ),
        None => (
            TwilioRequest::get(Product::Conversations, conversation.clone()),
            None,
            None,
        ),
    };
    ConversationReads {
        resource,
        participants: page(paths::conversation_participants(conversation_sid)),
        conversation: own,
        // A conversation has at most five scoped webhooks: one page (Twilio's largest page
        // for this list is five).
        webhooks: TwilioRequest::get(
            Product::Conversations,
            paths::conversation_webhooks(conversation_sid),
        ),
        invites,
    }
}

/// The answers to [`conversation_reads`] (and the live task list), decoded.
#[derive(Debug, Clone, Default)]
pub struct ConversationAnswers {
    pub resource: Value,
    pub participants: Value,
    pub conversation: Value,
    pub webhooks: Value,
    pub live_tasks: Value,
    /// Invite tasks the task list did not show, found live when fetched one by one.
    pub live_invite_tasks: Vec<(String, String)>,
}

fn list<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Whether an interaction channel or conversation answer says it is closed.
pub fn is_closed(resource: &Value) -> bool {
    text(resource, "status") == Some("closed") || text(resource, "state") == Some("closed")
}

/// The tasks a task list answer holds: SID and assignment status.
pub fn listed_tasks(answer: &Value) -> Vec<(String, String)> {
    list(answer, "tasks")
        .iter()
        .filter_map(|t| {
            Some((
                text(t, "sid")?.to_owned(),
                text(t, "assignment_status").unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

/// The invite task SIDs of an invites list answer (`routing.properties.sid`), newest last.
pub fn invite_tasks(answer: &Value) -> Vec<String> {
    list(answer, "invites")
        .iter()
        .filter_map(|i| {
            let routing = i.get("routing")?;
            let routing = match routing {
                Value::String(raw) => serde_json::from_str(raw).ok()?,
                other => other.clone(),
            };
            routing
                .get("properties")?
                .get("sid")?
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// A conversation-scoped webhook that waits for the customer on someone else's behalf: a
/// webhook on new messages (a park: flex-project-template's park-interaction, or baton's own).
/// A Studio webhook does not count: Flex's inbound flow keeps one on every conversation it
/// sent to Flex, and the flow's part is over once an agent's task existed.
fn waiting_webhook(webhook: &Value, own_park: Option<&str>) -> Option<String> {
    let sid = text(webhook, "sid").unwrap_or("a webhook");
    let url = webhook
        .get("configuration")
        .and_then(|c| text(c, "url"))
        .unwrap_or("");
    if own_park.is_some_and(|park| url.contains(&format!("park={park}"))) {
        return None;
    }
    let target = text(webhook, "target").unwrap_or("");
    let filters: Vec<&str> = webhook
        .get("configuration")
        .and_then(|c| c.get("filters"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match target {
        "webhook" if filters.contains(&"onMessageAdded") => Some(format!(
            "conversation webhook {sid} waits for the customer's next message (a park)"
        )),
        _ => None,
    }
}

/// Conversation attributes as Twilio returns them: a JSON document inside a string (an object
/// when a stand-in or proxy decoded it already). Anything else reads as empty.
pub fn conversation_attributes(conversation: &Value) -> Value {
    match conversation.get("attributes") {
        Some(Value::String(raw)) => serde_json::from_str(raw).unwrap_or(Value::Null),
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Null,
    }
}

/// Judges whether nothing could still serve the customer.
pub fn judge_unattended(
    answers: &ConversationAnswers,
    except_tasks: &[String],
    own_park: Option<&str>,
) -> Verdict {
    if is_closed(&answers.resource) {
        return Verdict::Gone("already_closed".into());
    }
    let participants = list(&answers.participants, "participants");
    if participants.len() > 1 {
        let who: Vec<&str> = participants
            .iter()
            .filter_map(|p| text(p, "identity"))
            .collect();
        return Verdict::Keep(if who.is_empty() {
            format!("{} participants are still in it", participants.len())
        } else {
            format!(
                "{} participants are still in it ({})",
                participants.len(),
                who.join(", ")
            )
        });
    }
    let live = listed_tasks(&answers.live_tasks)
        .into_iter()
        .chain(answers.live_invite_tasks.iter().cloned())
        .find(|(sid, status)| {
            !except_tasks.contains(sid) && LIVE_TASK_STATUSES.contains(&status.as_str())
        });
    if let Some((sid, status)) = live {
        return Verdict::Keep(format!("Twilio has task {sid} {status} for it"));
    }
    if let Some(why) = list(&answers.webhooks, "webhooks")
        .iter()
        .find_map(|w| waiting_webhook(w, own_park))
    {
        return Verdict::Keep(why);
    }
    // Invite entries whose task is not live are stale (the sweep clears them); a live one was
    // found above.
    let attributes = conversation_attributes(&answers.conversation);
    if attributes
        .get("webhookSid")
        .and_then(Value::as_str)
        .is_some()
        && attributes.get("taskAttributes").is_some()
    {
        return Verdict::Keep(
            "the conversation's attributes hold a park (flex-project-template)".into(),
        );
    }
    Verdict::Proceed
}

/// Judges a task fetch against the statuses a call needs.
pub fn judge_task(status: u16, task: &Value, task_sid: &str, statuses: &[String]) -> Verdict {
    if status == 404 {
        return Verdict::Gone(format!("task {task_sid} is gone"));
    }
    let current = text(task, "assignment_status").unwrap_or("unknown");
    if statuses.iter().any(|s| s == current) {
        Verdict::Proceed
    } else if matches!(current, "completed" | "canceled") {
        Verdict::Gone(format!("task {task_sid} is {current} already"))
    } else {
        Verdict::Keep(format!("task {task_sid} is {current} at Twilio"))
    }
}

/// Judges a task's reservation list: `reservation_sid` may be completed only while it is
/// wrapping and a newer reservation of the task exists (the park's).
pub fn judge_left_behind(reservations: &Value, reservation_sid: &str) -> Verdict {
    let all = list(reservations, "reservations");
    let Some(this) = all.iter().find(|r| text(r, "sid") == Some(reservation_sid)) else {
        return Verdict::Gone(format!("reservation {reservation_sid} is gone"));
    };
    let status = text(this, "reservation_status").unwrap_or("unknown");
    match status {
        "completed" | "canceled" | "rejected" | "timeout" | "rescinded" => {
            return Verdict::Gone(format!("reservation {reservation_sid} is {status}"))
        }
        "wrapping" => {}
        other => {
            return Verdict::Keep(format!(
                "reservation {reservation_sid} is {other} at Twilio: it may hold the call"
            ))
        }
    }
    let created = |r: &Value| text(r, "date_created").map(str::to_owned);
    let newer = all.iter().any(|r| {
        text(r, "sid") != Some(reservation_sid)
            && created(r) >= created(this)
            && created(r).is_some()
    });
    if newer {
        Verdict::Proceed
    } else {
        Verdict::Keep(format!(
            "reservation {reservation_sid} is the task's newest: no park followed it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CH: &str = "CH00000000000000000000000000000001";

    fn open() -> ConversationAnswers {
        ConversationAnswers {
            resource: json!({"status": "active"}),
            participants: json!({"participants": [{"sid": "MB1", "identity": null}]}),
            conversation: json!({"attributes": "{}"}),
            webhooks: json!({"webhooks": []}),
            live_tasks: json!({"tasks": []}),
            live_invite_tasks: Vec::new(),
        }
    }

    #[test]
    fn reads_attributes_as_a_string_or_an_object() {
        let raw = json!({"attributes": "{\"invites\":{}}"});
        assert_eq!(conversation_attributes(&raw), json!({"invites": {}}));
        assert_eq!(
            conversation_attributes(&json!({"attributes": {"a": 1}})),
            json!({"a": 1})
        );
        assert_eq!(
            conversation_attributes(&json!({"attributes": "not json"})),
            Value::Null
        );
    }

    #[test]
    fn only_the_customer_and_nothing_pending_is_unattended() {
        assert_eq!(judge_unattended(&open(), &[], None), Verdict::Proceed);
        let closed = ConversationAnswers {
            resource: json!({"status": "closed"}),
            ..open()
        };
        assert_eq!(
            judge_unattended(&closed, &[], None),
            Verdict::Gone("already_closed".into())
        );
        let agent = ConversationAnswers {
            participants: json!({"participants": [{"sid": "MB1"}, {"sid": "MB2", "identity": "alice"}]}),
            ..open()
        };
        assert_eq!(
            judge_unattended(&agent, &[], None),
            Verdict::Keep("2 participants are still in it (alice)".into())
        );
    }

    #[test]
    fn a_live_task_at_twilio_keeps_it_unless_excepted() {
        let waiting = ConversationAnswers {
            live_tasks: json!({"tasks": [{"sid": "WT9", "assignment_status": "pending"}]}),
            ..open()
        };
        assert_eq!(
            judge_unattended(&waiting, &[], None),
            Verdict::Keep("Twilio has task WT9 pending for it".into())
        );
        assert_eq!(
            judge_unattended(&waiting, &["WT9".into()], None),
            Verdict::Proceed
        );
        let invite = ConversationAnswers {
            live_invite_tasks: vec![("WT8".into(), "reserved".into())],
            ..open()
        };
        assert_eq!(
            judge_unattended(&invite, &[], None),
            Verdict::Keep("Twilio has task WT8 reserved for it".into())
        );
    }

    #[test]
    fn another_partys_webhook_or_park_keeps_it() {
        let parked = ConversationAnswers {
            webhooks: json!({"webhooks": [{"sid": "WH1", "target": "webhook",
                "configuration": {"filters": ["onMessageAdded"], "url": "https://x/unpark"}}]}),
            ..open()
        };
        assert!(
            matches!(judge_unattended(&parked, &[], None), Verdict::Keep(w) if w.contains("WH1"))
        );
        // Flex's inbound Studio flow keeps its webhook after Send to Flex: not a holder.
        let studio = ConversationAnswers {
            webhooks: json!({"webhooks": [{"sid": "WH2", "target": "studio", "configuration": {}}]}),
            ..open()
        };
        assert_eq!(judge_unattended(&studio, &[], None), Verdict::Proceed);
        let other = ConversationAnswers {
            webhooks: json!({"webhooks": [{"sid": "WH3", "target": "webhook",
                "configuration": {"filters": ["onConversationUpdated"]}}]}),
            ..open()
        };
        assert_eq!(judge_unattended(&other, &[], None), Verdict::Proceed);
        let marks = ConversationAnswers {
            conversation: json!({"attributes": "{\"webhookSid\":\"WH1\",\"taskAttributes\":{}}"}),
            ..open()
        };
        assert!(matches!(
            judge_unattended(&marks, &[], None),
            Verdict::Keep(_)
        ));
    }

    #[test]
    fn task_status_must_be_one_of_those_named() {
        let statuses = vec!["assigned".to_owned()];
        let task = json!({"assignment_status": "assigned"});
        assert_eq!(judge_task(200, &task, "WT1", &statuses), Verdict::Proceed);
        assert_eq!(
            judge_task(
                200,
                &json!({"assignment_status": "wrapping"}),
                "WT1",
                &statuses
            ),
            Verdict::Keep("task WT1 is wrapping at Twilio".into())
        );
        assert!(matches!(
            judge_task(404, &json!({}), "WT1", &statuses),
            Verdict::Gone(_)
        ));
    }

    #[test]
    fn only_a_wrapping_reservation_with_a_newer_one_is_left_behind() {
        let r = |sid: &str, status: &str, at: &str| json!({"sid": sid, "reservation_status": status, "date_created": at});
        let parked = json!({"reservations": [
            r("WR1", "wrapping", "2026-01-01T00:00:01Z"),
            r("WR2", "pending", "2026-01-01T00:00:02Z")]});
        assert_eq!(judge_left_behind(&parked, "WR1"), Verdict::Proceed);
        let picked_up = json!({"reservations": [
            r("WR1", "completed", "2026-01-01T00:00:01Z"),
            r("WR2", "accepted", "2026-01-01T00:00:02Z")]});
        assert!(matches!(
            judge_left_behind(&picked_up, "WR2"),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            judge_left_behind(&picked_up, "WR1"),
            Verdict::Gone(_)
        ));
        let alone = json!({"reservations": [r("WR1", "wrapping", "2026-01-01T00:00:01Z")]});
        assert!(matches!(judge_left_behind(&alone, "WR1"), Verdict::Keep(_)));
    }

    #[test]
    fn the_task_list_read_filters_by_conversation_and_live_status() {
        let read = live_tasks_read("WS1", CH, Some(&("KD1".to_owned(), "UO1".to_owned())));
        assert_eq!(read.path, "/v1/Workspaces/WS1/Tasks");
        assert_eq!(
            read.form[0],
            (
                "EvaluateTaskAttributes".to_owned(),
                format!("conversationSid == '{CH}' OR flexInteractionChannelSid == 'UO1'")
            )
        );
        let statuses: Vec<&str> = read
            .form
            .iter()
            .filter(|(k, _)| k == "AssignmentStatus")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(statuses, LIVE_TASK_STATUSES);
        assert_eq!(
            invite_tasks(
                &json!({"invites": [{"routing": {"properties": {"sid": "WT1"}}},
                {"routing": "{\"properties\":{\"sid\":\"WT2\"}}"}]})
            ),
            vec!["WT1".to_owned(), "WT2".to_owned()]
        );
    }
}
