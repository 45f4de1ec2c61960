//! Parks: a customer put on hold by an agent, kept by baton until resumed.
//!
//! Messaging parks are asked of baton (`POST /api/v1/parks`): a conversation-scoped webhook
//! tells baton when the customer writes, the agent leaves, and everything needed to resume is
//! kept in Postgres. Resuming invites the customer again with the original attributes (plus
//! `originalRouting`, known-worker routing) and the Insights hold time. Voice parks are observed:
//! a task whose attributes say it was parked (the transfer-park plugins' vocabularies).

use super::guard::Guard;
use super::outbound::{create_invite, OperationKind, Procedure, Product, TwilioRequest};
use super::planned::PlannedCall;
use crate::domain::paths;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How a resumed customer is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResumeRoute {
    /// Back to the agent who parked them (known-worker routing through the original workflow).
    SameWorker,
    /// To the original queue, any agent.
    Queue,
}

impl ResumeRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            ResumeRoute::SameWorker => "same_worker",
            ResumeRoute::Queue => "queue",
        }
    }
}

impl std::str::FromStr for ResumeRoute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "same_worker" => Ok(ResumeRoute::SameWorker),
            "queue" => Ok(ResumeRoute::Queue),
            other => Err(format!(
                "route {other:?} must be \"same_worker\" or \"queue\""
            )),
        }
    }
}

/// Where a park is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParkState {
    /// The customer waits.
    Parked,
    /// Picked up, or invited back.
    Resumed,
    /// Its TTL ran out (resumed to the queue).
    Expired,
    /// The call or conversation ended while parked.
    Ended,
}

impl ParkState {
    pub const ALL: [ParkState; 4] = [
        ParkState::Parked,
        ParkState::Resumed,
        ParkState::Expired,
        ParkState::Ended,
    ];

    /// Its database and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ParkState::Parked => "parked",
            ParkState::Resumed => "resumed",
            ParkState::Expired => "expired",
            ParkState::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<ParkState> {
        ParkState::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl TryFrom<String> for ParkState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ParkState::parse(&s).ok_or_else(|| format!("unknown park state {s:?}"))
    }
}

impl std::fmt::Display for ParkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ended a park.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParkEnd {
    /// The customer wrote (messaging).
    CustomerMessage,
    /// Ops asked (`POST /api/v1/parks/{id}/resume`).
    Ops,
    /// The TTL ran out.
    Ttl,
    /// The agent picked the parked call up (voice).
    Pickup,
    /// The caller hung up while parked (voice).
    Hangup,
    /// The conversation was closed while parked.
    ConversationClosed,
}

impl ParkEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ParkEnd::CustomerMessage => "customer_message",
            ParkEnd::Ops => "ops",
            ParkEnd::Ttl => "ttl",
            ParkEnd::Pickup => "pickup",
            ParkEnd::Hangup => "hangup",
            ParkEnd::ConversationClosed => "conversation_closed",
        }
    }

    /// Whether the customer is invited back (a messaging park) or un-parked (a voice park).
    pub fn resumes(self) -> bool {
        matches!(self, ParkEnd::CustomerMessage | ParkEnd::Ops | ParkEnd::Ttl)
    }

    /// Where an ending so resumes to: as asked, but an expired park goes to the queue (the
    /// agent did not come back in time).
    pub fn route(self, asked: ResumeRoute) -> ResumeRoute {
        match self {
            ParkEnd::Ttl => ResumeRoute::Queue,
            _ => asked,
        }
    }

    /// The park's state once it ends so.
    pub fn state(self) -> ParkState {
        match self {
            ParkEnd::CustomerMessage | ParkEnd::Ops | ParkEnd::Pickup => ParkState::Resumed,
            ParkEnd::Ttl => ParkState::Expired,
            ParkEnd::Hangup | ParkEnd::ConversationClosed => ParkState::Ended,
        }
    }
}

/// Everything needed to resume a messaging park, kept in Postgres (conversation attributes are
/// overwritten by others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    pub interaction_sid: String,
    pub channel_sid: String,
    pub conversation_sid: String,
    pub workflow_sid: Option<String>,
    pub task_queue_sid: Option<String>,
    pub task_queue_name: Option<String>,
    pub task_channel: Option<String>,
    pub worker_sid: Option<String>,
    /// The Insights conversation id of the chain (the parked task's, else its SID).
    pub chain_id: String,
    /// Every attribute of the parked task.
    pub attributes: Value,
}

/// The default TTL of a messaging park by channel: 24 h where the channel's messaging window
/// closes after 24 h (chat, WhatsApp…), none for SMS (the reference template's rule).
pub fn default_messaging_ttl(channel_type: Option<&str>) -> Option<Duration> {
    match channel_type {
        Some("sms") => None,
        _ => Some(Duration::from_secs(24 * 3600)),
    }
}

/// The conversation-scoped webhook that tells baton when the parked customer writes. The park
/// id rides in the URL's query, so the signed callback names its park.
pub fn park_webhook(park_id: &str, conversation_sid: &str, webhooks_url: &str) -> PlannedCall {
    let path = paths::conversation_webhooks(conversation_sid);
    let url = format!("{webhooks_url}?park={park_id}");
    PlannedCall {
        idempotency_key: format!("park:{park_id}:webhook"),
        kind: OperationKind::CreateConversationWebhook,
        request: TwilioRequest::post(
            Product::Conversations,
            path.clone(),
            vec![
                ("Target".into(), "webhook".into()),
                ("Configuration.Url".into(), url),
                ("Configuration.Method".into(), "POST".into()),
                ("Configuration.Filters".into(), "onMessageAdded".into()),
            ],
        ),
        procedure: Some(Procedure::CreateOnce {
            lookup: Some(TwilioRequest::get(Product::Conversations, path)),
            marker: park_id.to_owned(),
        }),
        conversation_sid: Some(conversation_sid.to_owned()),
        guard: None,
        after: None,
    }
}

/// The parking agent leaves the conversation: their interaction participant is closed (their
/// task completes; the conversation stays open).
pub fn agent_leaves(
    park_id: &str,
    state: &ResumeState,
    task_sid: &str,
    workspace_sid: &str,
) -> PlannedCall {
    PlannedCall {
        idempotency_key: format!("park:{park_id}:leave"),
        kind: OperationKind::CloseInteractionParticipant,
        request: TwilioRequest::get(
            Product::Flex,
            paths::interaction_channel_participants(&state.interaction_sid, &state.channel_sid),
        ),
        procedure: Some(Procedure::CloseAgentParticipant {
            interaction_sid: state.interaction_sid.clone(),
            channel_sid: state.channel_sid.clone(),
            task_sid: task_sid.to_owned(),
        }),
        conversation_sid: Some(state.conversation_sid.clone()),
        // The agent still has the task they parked (they may have left by themselves).
        guard: Some(Guard::task_is(workspace_sid, task_sid, &["assigned"])),
        // Only once the webhook that brings the customer back exists.
        after: Some(format!("park:{park_id}:webhook")),
    }
}

/// The resume: an invite with every original attribute, `originalRouting` (queue, and the
/// worker for known-worker routing when resuming to them), the chain's Insights id and the hold
/// time; baton's marks make it a hop of the chain.
pub fn resume_invite(
    park_id: &str,
    parked_task_sid: &str,
    state: &ResumeState,
    route: ResumeRoute,
    end: ParkEnd,
    held: Duration,
    workspace_sid: &str,
) -> PlannedCall {
    let key = format!("resume:{park_id}");
    let mut attributes = match &state.attributes {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let worker = match route {
        ResumeRoute::SameWorker => state.worker_sid.clone(),
        ResumeRoute::Queue => None,
    };
    let mut original = json!({
        "queueSid": state.task_queue_sid,
        "queueName": state.task_queue_name,
    });
    if let Some(worker) = &worker {
        original["workerSid"] = Value::String(worker.clone());
    }
    attributes.insert("originalRouting".into(), original);
    let conversations = attributes
        .entry("conversations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !conversations.is_object() {
        *conversations = Value::Object(Map::new());
    }
    if let Some(c) = conversations.as_object_mut() {
        c.insert(
            "conversation_id".into(),
            Value::String(state.chain_id.clone()),
        );
        c.insert("hold_time".into(), json!(held.as_secs()));
    }
    let target_sid = worker.clone().or_else(|| state.task_queue_sid.clone());
    attributes.insert(
        "baton".into(),
        json!({
            "previous_task_sid": parked_task_sid,
            "target_sid": target_sid,
            "mode": "cold",
            "notes": format!("resumed from park {park_id} ({})", end.as_str()),
            "initiated_by": format!("baton:park:{}", end.as_str()),
            "park_id": park_id,
            "outbox_key": key,
        }),
    );
    let mut properties = json!({
        "workspace_sid": workspace_sid,
        "task_channel_unique_name": state.task_channel.clone().unwrap_or_else(|| "chat".into()),
        "attributes": Value::Object(attributes),
    });
    if let Some(workflow) = &state.workflow_sid {
        properties["workflow_sid"] = Value::String(workflow.clone());
    }
    if let Some(queue) = &state.task_queue_sid {
        properties["queue_sid"] = Value::String(queue.clone());
    }
    let (request, lookup) = create_invite(&state.interaction_sid, &state.channel_sid, properties);
    PlannedCall {
        idempotency_key: key.clone(),
        kind: OperationKind::CreateInvite,
        request,
        procedure: Some(Procedure::CreateOnce {
            lookup: Some(lookup),
            marker: key,
        }),
        conversation_sid: Some(state.conversation_sid.clone()),
        // Not if someone else serves the customer already (another tool's resume).
        guard: Some(Guard::Unattended {
            workspace_sid: workspace_sid.to_owned(),
            conversation_sid: state.conversation_sid.clone(),
            interaction: Some((state.interaction_sid.clone(), state.channel_sid.clone())),
            except_tasks: vec![parked_task_sid.to_owned()],
            own_park: Some(park_id.to_owned()),
        }),
        after: None,
    }
}

/// What kind of park ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Parked {
    /// A messaging park, with all it needs to resume.
    Messaging(Box<ResumeState>),
    /// A voice park, observed from its task.
    Voice,
}

/// The calls that carry out a park's end: a messaging park's resume invite (when it resumes)
/// and then, only once the invite went out, its webhook's removal; a voice park's un-park when
/// its TTL ran out.
pub fn end_calls(
    park_id: &str,
    task_sid: &str,
    parked: &Parked,
    end: ParkEnd,
    route: ResumeRoute,
    held: Duration,
    workspace_sid: &str,
) -> Vec<PlannedCall> {
    match parked {
        Parked::Messaging(state) => {
            let remove = remove_park_webhook(park_id, &state.conversation_sid);
            if !end.resumes() {
                return vec![remove];
            }
            let invite = resume_invite(
                park_id,
                task_sid,
                state,
                end.route(route),
                end,
                held,
                workspace_sid,
            );
            // If the invite dies, the webhook stays and the park can still resume.
            let remove = remove.after(&invite.idempotency_key);
            vec![invite, remove]
        }
        Parked::Voice if end == ParkEnd::Ttl => {
            vec![voice_unpark(park_id, task_sid, workspace_sid)]
        }
        Parked::Voice => Vec::new(),
    }
}

/// Removes the park's conversation webhook (every webhook whose URL names the park).
pub fn remove_park_webhook(park_id: &str, conversation_sid: &str) -> PlannedCall {
    PlannedCall {
        idempotency_key: format!("unpark:{park_id}:webhook"),
        kind: OperationKind::DeleteConversationWebhook,
        request: TwilioRequest::get(
            Product::Conversations,
            paths::conversation_webhooks(conversation_sid),
        ),
        procedure: Some(Procedure::RemoveWebhooks {
            conversation_sid: conversation_sid.to_owned(),
            marker: format!("park={park_id}"),
        }),
        conversation_sid: Some(conversation_sid.to_owned()),
        guard: None,
        after: None,
    }
}

/// A voice park past its TTL: the task's park marks are removed (GET → If-Match merge), so the
/// workflow routes it to its queue.
pub fn voice_unpark(park_id: &str, task_sid: &str, workspace_sid: &str) -> PlannedCall {
    PlannedCall {
        idempotency_key: format!("unpark:{park_id}:task"),
        kind: OperationKind::UpdateTaskAttributes,
        request: TwilioRequest::get(Product::TaskRouter, paths::task(workspace_sid, task_sid)),
        procedure: Some(Procedure::UnparkTask {
            workspace_sid: workspace_sid.to_owned(),
            task_sid: task_sid.to_owned(),
            park_id: park_id.to_owned(),
        }),
        conversation_sid: None,
        guard: None,
        after: None,
    }
}

/// Completes the reservation a voice park left behind (what the plugin's `afterTransferTask`
/// did with `CompleteTask`), once (`park-finish:{WR}`).
pub fn finish_left_behind(
    workspace_sid: &str,
    task_sid: &str,
    reservation_sid: &str,
) -> PlannedCall {
    PlannedCall {
        idempotency_key: format!("park-finish:{reservation_sid}"),
        kind: OperationKind::CompleteReservation,
        request: TwilioRequest::post(
            Product::TaskRouter,
            paths::task_reservation(workspace_sid, task_sid, reservation_sid),
            vec![("ReservationStatus".into(), "completed".into())],
        ),
        procedure: None,
        conversation_sid: None,
        guard: Some(Guard::LeftBehind {
            workspace_sid: workspace_sid.to_owned(),
            task_sid: task_sid.to_owned(),
            reservation_sid: reservation_sid.to_owned(),
        }),
        after: None,
    }
}

/// Puts a worker whose parked-call reservation timed out back in their activity, once per
/// reservation (`restore:{WR}`).
pub fn restore_activity(
    workspace_sid: &str,
    worker_sid: &str,
    reservation_sid: &str,
) -> PlannedCall {
    PlannedCall {
        idempotency_key: format!("restore:{reservation_sid}"),
        kind: OperationKind::UpdateWorkerActivity,
        request: TwilioRequest::get(
            Product::TaskRouter,
            paths::worker(workspace_sid, worker_sid),
        ),
        procedure: Some(Procedure::RestoreWorkerActivity {
            workspace_sid: workspace_sid.to_owned(),
            worker_sid: worker_sid.to_owned(),
        }),
        conversation_sid: None,
        guard: None,
        after: None,
    }
}

/// A voice task's attributes saying it is parked: which vocabulary, and the worker it waits
/// for when they name one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceParkMarks {
    /// `worker_parked` (transfer-park plugin), `hold_assignment` (park segment tasks).
    pub vocabulary: &'static str,
    pub target_worker: Option<String>,
    pub contact_uri: Option<String>,
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Reads the park vocabularies of the references: `workerParked == true` with
/// `targetWorkerContactUri` (bryan-palmer's transfer-park plugin), `holdAssignment`/`selfPark`
/// with `targetWorker` (park segment tasks). `isParkPickup` marks the pickup of a park, not a
/// park.
pub fn voice_park_marks(attributes: &Value) -> Option<VoiceParkMarks> {
    if truthy(attributes.get("isParkPickup")) {
        return None;
    }
    let text = |k: &str| attributes.get(k).and_then(Value::as_str).map(str::to_owned);
    let vocabulary = if truthy(attributes.get("workerParked")) {
        "worker_parked"
    } else if truthy(attributes.get("holdAssignment")) || truthy(attributes.get("selfPark")) {
        "hold_assignment"
    } else {
        return None;
    };
    Some(VoiceParkMarks {
        vocabulary,
        target_worker: text("targetWorker").filter(|w| w.starts_with("WK")),
        contact_uri: text("targetWorkerContactUri"),
    })
}

/// The attributes that un-park a voice task: the park marks removed, so the workflow's
/// "Task Parked By Worker" filter no longer matches and the task routes to its queue.
pub fn unparked_attributes(attributes: &Value, park_id: &str) -> Value {
    let mut map = match attributes {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for key in [
        "workerParked",
        "targetWorkerContactUri",
        "holdAssignment",
        "selfPark",
    ] {
        map.remove(key);
    }
    map.insert("baton_unparked".into(), Value::String(park_id.to_owned()));
    Value::Object(map)
}

/// A reservation of a parked voice task, as the park sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedReservation {
    pub reservation_sid: String,
    pub worker_sid: Option<String>,
    pub status: Option<String>,
    pub created_ms: Option<i64>,
}

/// What a voice park calls for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceParkStep {
    /// Complete the reservation the park left behind (the agent's own, before the park).
    FinishLeftBehind(String),
    /// A park reservation timed out: put its worker back in the activity they had.
    RestoreActivity {
        reservation_sid: String,
        worker_sid: String,
    },
    End(ParkEnd),
}

/// The steps of an open voice park, from its task's state. Pure and order-free: the same facts
/// give the same steps (each step's outbox key makes repeating it a no-op).
pub fn voice_park_steps(
    parked_ms: i64,
    task_status: Option<&str>,
    reservations: &[ParkedReservation],
) -> Vec<VoiceParkStep> {
    let mut steps = Vec::new();
    let after = |r: &&ParkedReservation| r.created_ms.is_some_and(|ms| ms >= parked_ms);
    for r in reservations.iter().filter(|r| !after(r)) {
        // Only a wrap-up: an accepted reservation may still hold the call.
        if r.status.as_deref() == Some("wrapping") {
            steps.push(VoiceParkStep::FinishLeftBehind(r.reservation_sid.clone()));
        }
    }
    for r in reservations.iter().filter(after) {
        if let (Some("timeout"), Some(worker)) = (r.status.as_deref(), &r.worker_sid) {
            steps.push(VoiceParkStep::RestoreActivity {
                reservation_sid: r.reservation_sid.clone(),
                worker_sid: worker.clone(),
            });
        }
    }
    let picked_up = reservations.iter().filter(after).any(|r| {
        matches!(
            r.status.as_deref(),
            Some("accepted" | "wrapping" | "completed")
        )
    });
    if picked_up {
        steps.push(VoiceParkStep::End(ParkEnd::Pickup));
    } else if task_status == Some("canceled") {
        steps.push(VoiceParkStep::End(ParkEnd::Hangup));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ResumeState {
        ResumeState {
            interaction_sid: "KD1".into(),
            channel_sid: "UO1".into(),
            conversation_sid: "CH1".into(),
            workflow_sid: Some("WW1".into()),
            task_queue_sid: Some("WQ1".into()),
            task_queue_name: Some("Support".into()),
            task_channel: Some("chat".into()),
            worker_sid: Some("WK1".into()),
            chain_id: "WT0".into(),
            attributes: json!({"from": "+1", "conversations": {"communication_channel": "chat"}}),
        }
    }

    #[test]
    fn resuming_carries_the_original_attributes_routing_and_hold_time() {
        let call = resume_invite(
            "PA1",
            "WT1",
            &state(),
            ResumeRoute::SameWorker,
            ParkEnd::CustomerMessage,
            Duration::from_secs(95),
            "WS1",
        );
        assert_eq!(call.idempotency_key, "resume:PA1");
        assert_eq!(
            call.request.path,
            "/v1/Interactions/KD1/Channels/UO1/Invites"
        );
        let routing: Value = serde_json::from_str(&call.request.form[0].1).unwrap();
        let props = &routing["properties"];
        assert_eq!(props["workflow_sid"], "WW1");
        assert_eq!(props["queue_sid"], "WQ1");
        assert_eq!(
            props.get("worker_sid"),
            None,
            "known-worker routing, not worker_sid"
        );
        let attrs = &props["attributes"];
        assert_eq!(attrs["from"], "+1");
        assert_eq!(
            attrs["originalRouting"],
            json!({"queueSid": "WQ1", "queueName": "Support", "workerSid": "WK1"})
        );
        assert_eq!(attrs["conversations"]["conversation_id"], "WT0");
        assert_eq!(attrs["conversations"]["hold_time"], 95);
        assert_eq!(attrs["conversations"]["communication_channel"], "chat");
        assert_eq!(attrs["baton"]["previous_task_sid"], "WT1");
        let queue = resume_invite(
            "PA1",
            "WT1",
            &state(),
            ResumeRoute::Queue,
            ParkEnd::Ops,
            Duration::ZERO,
            "WS1",
        );
        let routing: Value = serde_json::from_str(&queue.request.form[0].1).unwrap();
        assert_eq!(
            routing["properties"]["attributes"]["originalRouting"],
            json!({"queueSid": "WQ1", "queueName": "Support"})
        );
    }

    #[test]
    fn the_park_webhook_names_its_park() {
        let call = park_webhook(
            "PA1",
            "CH1",
            "https://baton.example.com/webhooks/conversations",
        );
        assert_eq!(call.request.path, "/v1/Conversations/CH1/Webhooks");
        assert!(call.request.form.contains(&(
            "Configuration.Url".into(),
            "https://baton.example.com/webhooks/conversations?park=PA1".into()
        )));
        assert!(call
            .request
            .form
            .contains(&("Configuration.Filters".into(), "onMessageAdded".into())));
    }

    #[test]
    fn voice_park_vocabularies() {
        let plugin = json!({"workerParked": true, "targetWorkerContactUri": "client:alice"});
        assert_eq!(
            voice_park_marks(&plugin),
            Some(VoiceParkMarks {
                vocabulary: "worker_parked",
                target_worker: None,
                contact_uri: Some("client:alice".into()),
            })
        );
        let segment = json!({"holdAssignment": "true", "targetWorker": "WK1"});
        assert_eq!(
            voice_park_marks(&segment).unwrap().vocabulary,
            "hold_assignment"
        );
        assert_eq!(
            voice_park_marks(&segment).unwrap().target_worker.as_deref(),
            Some("WK1")
        );
        assert_eq!(
            voice_park_marks(&json!({"isParkPickup": true, "workerParked": true})),
            None
        );
        assert_eq!(voice_park_marks(&json!({"workerParked": false})), None);
        let unparked = unparked_attributes(&plugin, "PA1");
        assert_eq!(unparked, json!({"baton_unparked": "PA1"}));
    }

    fn r(sid: &str, status: &str, created: i64) -> ParkedReservation {
        ParkedReservation {
            reservation_sid: sid.into(),
            worker_sid: Some("WK1".into()),
            status: Some(status.into()),
            created_ms: Some(created),
        }
    }

    #[test]
    fn voice_park_steps_follow_the_reservations() {
        // Parked at 100: the agent's own reservation is left behind, the park one is pending.
        let parked = [r("WR1", "wrapping", 10), r("WR2", "pending", 110)];
        assert_eq!(
            voice_park_steps(100, Some("reserved"), &parked),
            vec![VoiceParkStep::FinishLeftBehind("WR1".into())]
        );
        let picked = [r("WR1", "completed", 10), r("WR2", "accepted", 110)];
        assert_eq!(
            voice_park_steps(100, Some("assigned"), &picked),
            vec![VoiceParkStep::End(ParkEnd::Pickup)]
        );
        let timed_out = [r("WR1", "completed", 10), r("WR2", "timeout", 110)];
        assert_eq!(
            voice_park_steps(100, Some("pending"), &timed_out),
            vec![VoiceParkStep::RestoreActivity {
                reservation_sid: "WR2".into(),
                worker_sid: "WK1".into()
            }]
        );
        let hung_up = [r("WR1", "completed", 10), r("WR2", "canceled", 110)];
        assert_eq!(
            voice_park_steps(100, Some("canceled"), &hung_up),
            vec![VoiceParkStep::End(ParkEnd::Hangup)]
        );
    }

    #[test]
    fn a_resume_removes_its_webhook_only_after_the_invite_and_an_expired_park_goes_to_the_queue() {
        let messaging = Parked::Messaging(Box::new(state()));
        let calls = end_calls(
            "PA1",
            "WT1",
            &messaging,
            ParkEnd::Ttl,
            ResumeRoute::SameWorker,
            Duration::from_secs(5),
            "WS1",
        );
        let keys: Vec<(&str, Option<&str>)> = calls
            .iter()
            .map(|c| (c.idempotency_key.as_str(), c.after.as_deref()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("resume:PA1", None),
                ("unpark:PA1:webhook", Some("resume:PA1"))
            ]
        );
        let routing: Value = serde_json::from_str(&calls[0].request.form[0].1).unwrap();
        assert_eq!(
            routing["properties"]["attributes"]["originalRouting"].get("workerSid"),
            None,
            "expired: to the queue"
        );
        let closed = end_calls(
            "PA1",
            "WT1",
            &messaging,
            ParkEnd::ConversationClosed,
            ResumeRoute::SameWorker,
            Duration::ZERO,
            "WS1",
        );
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].after, None);
        assert!(end_calls(
            "PA2",
            "WT2",
            &Parked::Voice,
            ParkEnd::Pickup,
            ResumeRoute::SameWorker,
            Duration::ZERO,
            "WS1"
        )
        .is_empty());
        assert_eq!(
            end_calls(
                "PA2",
                "WT2",
                &Parked::Voice,
                ParkEnd::Ttl,
                ResumeRoute::SameWorker,
                Duration::ZERO,
                "WS1"
            )[0]
            .idempotency_key,
            "unpark:PA2:task"
        );
    }

    #[test]
    fn sms_parks_have_no_default_ttl() {
        assert_eq!(default_messaging_ttl(Some("sms")), None);
        assert_eq!(
            default_messaging_ttl(Some("whatsapp")),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(ParkEnd::Ttl.state(), ParkState::Expired);
        assert_eq!(ParkEnd::CustomerMessage.state(), ParkState::Resumed);
        assert_eq!(ParkEnd::Hangup.state(), ParkState::Ended);
        for state in ParkState::ALL {
            assert_eq!(ParkState::parse(state.as_str()), Some(state));
        }
    }
}
