//! Checking baton's calls: the stand-in's request log read as it grows, each write classified
//! as the call it is, counted per SID, and followed by what Twilio would report after it.

use super::{lock, random_sid, Conversation, Kind, Run, TaskPlan, TAIL_EVERY};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a call in the stand-in's log was, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum CallKind {
    /// An agent's interaction participant closed (transfer finished, parking agent leaves).
    CloseParticipant,
    /// Insights linkage written on a task.
    InsightsStamp,
    /// An orphaned interaction channel closed.
    CloseChannel,
    ParkWebhook,
    ResumeInvite,
    RemoveParkWebhook,
    CompleteTask,
    CloseConversation,
    /// Flex's own channel close when an agent ends a chat (the load's, not baton's).
    FlexEndsChat,
    UpdateReservation,
    UpdateWorker,
    CreateTask,
    Other,
}

impl CallKind {
    pub(super) const REPORTED: [CallKind; 6] = [
        CallKind::CloseParticipant,
        CallKind::InsightsStamp,
        CallKind::CloseChannel,
        CallKind::ParkWebhook,
        CallKind::ResumeInvite,
        CallKind::RemoveParkWebhook,
    ];

    pub(super) fn name(&self) -> &'static str {
        match self {
            CallKind::CloseParticipant => "close agent participant",
            CallKind::InsightsStamp => "insights stamp",
            CallKind::CloseChannel => "close orphaned channel",
            CallKind::ParkWebhook => "park webhook",
            CallKind::ResumeInvite => "resume invite",
            CallKind::RemoveParkWebhook => "remove park webhook",
            CallKind::CompleteTask => "complete task",
            CallKind::CloseConversation => "close conversation",
            CallKind::FlexEndsChat => "(flex ends chat)",
            CallKind::UpdateReservation => "update reservation",
            CallKind::UpdateWorker => "update worker",
            CallKind::CreateTask => "create task",
            CallKind::Other => "other write",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Logged {
    id: u64,
    method: String,
    path: String,
    status: Option<u16>,
    processed_status: Option<u16>,
    #[serde(default)]
    form: Vec<(String, String)>,
}

impl Logged {
    fn applied(&self) -> bool {
        self.processed_status
            .is_some_and(|s| (200..300).contains(&s))
    }

    fn form(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The write this request is, with the SID it acts on; `None` for reads.
    fn classify(&self) -> Option<(CallKind, String)> {
        if self.method == "GET" {
            return None;
        }
        let parts: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let target = |i: usize| parts.get(i).map(|s| (*s).to_owned()).unwrap_or_default();
        let post = self.method == "POST";
        let kind = match parts.as_slice() {
            ["v1", "Interactions", _, "Channels", _, "Participants", _] if post => {
                (CallKind::CloseParticipant, target(6))
            }
            ["v1", "Interactions", _, "Channels", _, "Invites"] if post => {
                (CallKind::ResumeInvite, target(4))
            }
            ["v1", "Interactions", _, "Channels", _] if post => (CallKind::CloseChannel, target(4)),
            ["v1", "Workspaces", _, "Tasks"] if post => (CallKind::CreateTask, String::new()),
            ["v1", "Workspaces", _, "Tasks", _] if post => {
                if self.form("AssignmentStatus").is_some() {
                    (CallKind::CompleteTask, target(4))
                } else {
                    (CallKind::InsightsStamp, target(4))
                }
            }
            ["v1", "Workspaces", _, "Tasks", _, "Reservations", _] if post => {
                (CallKind::UpdateReservation, target(6))
            }
            ["v1", "Workspaces", _, "Workers", _] if post => (CallKind::UpdateWorker, target(4)),
            ["v1", "Conversations", _, "Webhooks"] if post => (CallKind::ParkWebhook, target(2)),
            ["v1", "Conversations", _, "Webhooks", _] if self.method == "DELETE" => {
                (CallKind::RemoveParkWebhook, target(2))
            }
            ["v1", "Conversations", _] if post => (CallKind::CloseConversation, target(2)),
            _ => (CallKind::Other, format!("{} {}", self.method, self.path)),
        };
        Some(kind)
    }
}

/// Reads the stand-in's request log as it grows, counts the writes, and sends what Twilio
/// would report after each of baton's calls.
pub(super) async fn tail(run: Arc<Run>) -> anyhow::Result<()> {
    loop {
        let stopping = run.stop_tailing.load(Ordering::SeqCst);
        loop {
            let after = lock(&run.seen).last_id;
            #[derive(Deserialize)]
            struct Page {
                requests: Vec<Logged>,
            }
            let page: Page = run
                .client
                .get(format!("{}/requests?after={after}", run.control))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if page.requests.is_empty() {
                break;
            }
            for request in page.requests {
                observe(&run, request);
            }
        }
        if stopping {
            return Ok(());
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
}

fn observe(run: &Arc<Run>, request: Logged) {
    let mut call = request.classify();
    if let Some((CallKind::CloseChannel, uo)) = &call {
        // Flex ending a chat, not baton: once per channel it closed.
        if request.applied() && lock(&run.flex_closes).remove(uo) {
            call = Some((CallKind::FlexEndsChat, uo.clone()));
        }
    }
    {
        let mut seen = lock(&run.seen);
        seen.last_id = request.id;
        match &call {
            None => seen.reads += 1,
            Some((kind, target)) => {
                seen.last_write = Some(Instant::now());
                if request.applied() {
                    *seen
                        .applied
                        .entry((kind.clone(), target.clone()))
                        .or_default() += 1;
                } else {
                    *seen
                        .refused
                        .entry(kind.clone())
                        .or_default()
                        .entry(request.status.unwrap_or(0))
                        .or_default() += 1;
                }
            }
        }
    }
    let Some((kind, target)) = call else {
        return;
    };
    if !request.applied() {
        return;
    }
    let reaction = match kind {
        CallKind::CloseParticipant => run
            .by_participant
            .get(&target)
            .map(|(c, is_b)| Reaction::ParticipantClosed(c.clone(), *is_b)),
        CallKind::ResumeInvite => run
            .by_channel
            .get(&target)
            .map(|c| Reaction::Invited(c.clone())),
        CallKind::CloseChannel => run
            .by_channel
            .get(&target)
            .map(|c| Reaction::ChannelClosed(c.clone())),
        _ => None,
    };
    if let Some(reaction) = reaction {
        run.running.fetch_add(1, Ordering::SeqCst);
        let run = run.clone();
        tokio::spawn(async move {
            react(&run, reaction).await;
            run.running.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

enum Reaction {
    /// An agent's participant was closed: TaskRouter completes their task.
    ParticipantClosed(Arc<Conversation>, bool),
    /// A resume invite created a task: it is routed to the agent and handled to the end.
    Invited(Arc<Conversation>),
    /// The orphaned channel was closed: its conversation closes.
    ChannelClosed(Arc<Conversation>),
}

async fn react(run: &Run, reaction: Reaction) {
    match reaction {
        Reaction::ParticipantClosed(c, is_b) => {
            let task = if is_b { c.b.as_ref() } else { Some(&c.a) };
            if let Some(task) = task {
                run.completed(&c, task, "Interaction participant closed")
                    .await;
            }
        }
        Reaction::ChannelClosed(c) => {
            run.conversations_event(&c, "/webhooks/conversations", "onConversationStateUpdated")
                .await;
        }
        Reaction::Invited(c) => {
            let channel: Value = match run
                .client
                .get(format!("{}/channels/{}", run.control, c.uo))
                .send()
                .await
            {
                Ok(res) => res.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let Some(invite) = channel["invites"].as_array().and_then(|i| i.last()) else {
                return;
            };
            let (Some(sid), Some(bob)) = (invite["task_sid"].as_str(), c.b.as_ref()) else {
                return;
            };
            // Routing properties hold the attributes as a JSON string (or an object).
            let attributes = match &invite["routing"]["properties"]["attributes"] {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            let resumed = TaskPlan {
                sid: sid.to_owned(),
                attributes,
                reservation_sid: random_sid("WR"),
                worker: bob.worker.clone(),
            };
            let step = Duration::from_secs_f64(run.conversation_secs * 0.05);
            run.routed(&c, &resumed, step).await;
            tokio::time::sleep(step * 2).await;
            run.end_chat(&c, &resumed, step).await;
        }
    }
}

pub(super) fn expected_calls(conversations: &[Arc<Conversation>]) -> Vec<(CallKind, String)> {
    let mut expected = Vec::new();
    for c in conversations {
        match c.kind {
            Kind::Canceled => expected.push((CallKind::CloseChannel, c.uo.clone())),
            Kind::Transfer | Kind::Park => {
                if let Some(ut) = &c.participant_a {
                    expected.push((CallKind::CloseParticipant, ut.clone()));
                }
                if let Some(b) = &c.b {
                    expected.push((CallKind::InsightsStamp, b.sid.clone()));
                }
                if c.kind == Kind::Park {
                    if let Some(ut) = &c.participant_b {
                        expected.push((CallKind::CloseParticipant, ut.clone()));
                    }
                    expected.push((CallKind::ParkWebhook, c.ch.clone()));
                    expected.push((CallKind::ResumeInvite, c.uo.clone()));
                    expected.push((CallKind::RemoveParkWebhook, c.ch.clone()));
                }
            }
        }
    }
    expected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(method: &str, path: &str, form: &[(&str, &str)]) -> Logged {
        Logged {
            id: 1,
            method: method.into(),
            path: path.into(),
            status: Some(200),
            processed_status: Some(200),
            form: form
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_log_is_read_as_the_calls_baton_makes() {
        let ws = "/v1/Workspaces/WS1";
        let cases = [
            (
                logged(
                    "POST",
                    "/v1/Interactions/KD1/Channels/UO1/Participants/UT1",
                    &[("Status", "closed")],
                ),
                Some((CallKind::CloseParticipant, "UT1")),
            ),
            (
                logged("POST", "/v1/Interactions/KD1/Channels/UO1/Invites", &[]),
                Some((CallKind::ResumeInvite, "UO1")),
            ),
            (
                logged(
                    "POST",
                    "/v1/Interactions/KD1/Channels/UO1",
                    &[("Status", "closed")],
                ),
                Some((CallKind::CloseChannel, "UO1")),
            ),
            (
                logged("POST", &format!("{ws}/Tasks/WT1"), &[("Attributes", "{}")]),
                Some((CallKind::InsightsStamp, "WT1")),
            ),
            (
                logged(
                    "POST",
                    &format!("{ws}/Tasks/WT1"),
                    &[("AssignmentStatus", "completed")],
                ),
                Some((CallKind::CompleteTask, "WT1")),
            ),
            (
                logged("POST", "/v1/Conversations/CH1/Webhooks", &[]),
                Some((CallKind::ParkWebhook, "CH1")),
            ),
            (
                logged("DELETE", "/v1/Conversations/CH1/Webhooks/WH1", &[]),
                Some((CallKind::RemoveParkWebhook, "CH1")),
            ),
            (
                logged("GET", "/v1/Interactions/KD1/Channels/UO1/Participants", &[]),
                None,
            ),
        ];
        for (request, want) in cases {
            let got = request.classify();
            assert_eq!(
                got,
                want.map(|(k, t)| (k, t.to_owned())),
                "{} {}",
                request.method,
                request.path
            );
        }
    }
}
