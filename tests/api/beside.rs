//! baton beside the tools contact centres already run (flex-project-template, the transfer-park
//! plugin, Flex itself): it never ends live work, asks Twilio before every destructive call,
//! leaves another tool's transfer to that tool, and never strands a customer. Each test asserts
//! the Twilio calls made and, as hard, the ones not made.

use crate::flex::*;
use serde_json::{json, Value};
use std::time::Duration;
use twilio_standin::{LoggedRequest, TaskStatus};

pub(crate) const GRACE: Duration = Duration::from_millis(300);

pub(crate) async fn rig() -> Flex {
    Flex::start(FlexOptions {
        orphan_grace: Some(GRACE),
        ..FlexOptions::default()
    })
    .await
}

/// Every request baton made that could end someone's work: a participant or channel closed, a
/// conversation closed, a task or reservation completed, an invite.
pub(crate) fn destructive(flex: &Flex) -> Vec<LoggedRequest> {
    flex.twilio
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .filter(|r| {
            r.form_value("Status") == Some("closed")
                || r.form_value("State") == Some("closed")
                || r.form_value("AssignmentStatus") == Some("completed")
                || r.form_value("ReservationStatus") == Some("completed")
                || r.path.ends_with("/Invites")
        })
        .collect()
}

/// baton's requests that ended something (closes, completions, removals): every destructive
/// one but invites.
fn ends(flex: &Flex) -> Vec<LoggedRequest> {
    destructive(flex)
        .into_iter()
        .filter(|r| !r.path.ends_with("/Invites"))
        .collect()
}

pub(crate) fn describe(requests: &[LoggedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.form))
        .collect()
}

impl Flex {
    /// Lets several grace periods pass with everything delivered and processed.
    pub(crate) async fn settle_past_grace(&self) {
        self.quiesce().await;
        tokio::time::sleep(GRACE * 4).await;
        self.quiesce().await;
        tokio::time::sleep(GRACE * 2).await;
        self.quiesce().await;
    }

    pub(crate) async fn outbox_rows(&self) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as("SELECT idempotency_key, state, withdrawn FROM outbox ORDER BY id")
            .fetch_all(&self.app.pool)
            .await
            .expect("outbox")
    }

    pub(crate) async fn conversation_view(&self, ch: &str) -> Value {
        let (status, body) = self.api_get(&format!("/api/v1/conversations/{ch}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Delivers TaskRouter callbacks the stand-in held, signed as Twilio signs them.
    pub(crate) async fn deliver(&self, params: &[(String, String)]) {
        self.deliver_to("/webhooks/taskrouter", params).await;
    }

    pub(crate) async fn deliver_to(&self, path: &str, params: &[(String, String)]) {
        let url = format!("{}{path}", self.app.address);
        let signature =
            baton::ingest::signature::compute_signature(self.twilio.auth_token(), &url, params);
        let response = self.app.post_form(path, params, Some(&signature)).await;
        assert!(response.status().is_success(), "{}", response.status());
    }
}

pub(crate) fn conversation_of(flex: &Flex, uo: &str) -> String {
    flex.twilio
        .channel(uo)
        .and_then(|c| c.conversation_sid)
        .expect("conversation")
}

pub(crate) fn agents_in(flex: &Flex, uo: &str) -> Vec<String> {
    flex.twilio
        .channel(uo)
        .expect("channel")
        .participants
        .into_iter()
        .filter(|p| p.participant_type == "agent" && p.status.is_none())
        .filter_map(|p| {
            p.routing_properties?["worker_sid"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_template_warm_transfer_keeps_the_consulting_agent_when_the_target_accepts() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    let b = flex.twilio.fpt_transfer(&a, &flex.bob, true);
    flex.quiesce().await;
    flex.accept(&b, &flex.bob).await;
    flex.twilio.fpt_invite_joined(&ch, &b);
    flex.settle_past_grace().await;

    assert_eq!(
        describe(&destructive(&flex)),
        vec![format!(
            "POST /v1/Interactions/{}/Channels/{uo}/Invites {:?}",
            flex.twilio.channel(&uo).unwrap().interaction_sid,
            destructive(&flex)[0].form
        )],
        "only the customer's own invite: nobody removed, nothing completed or closed"
    );
    assert_eq!(
        flex.status(&a),
        TaskStatus::Assigned,
        "Alice still consults"
    );
    let mut agents = agents_in(&flex, &uo);
    agents.sort();
    let mut both = vec![flex.alice.clone(), flex.bob.clone()];
    both.sort();
    assert_eq!(agents, both);
    // No call was even decided for the transferring side.
    assert!(flex
        .outbox_rows()
        .await
        .iter()
        .all(|(key, _, _)| !key.starts_with("complete:")));
}

#[tokio::test]
async fn a_failed_template_warm_transfer_leaves_the_customer_with_the_consulting_agent() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let b = flex.twilio.fpt_transfer(&a, &flex.sales, true);
    flex.quiesce().await;
    flex.twilio.time_out_task(&b);
    flex.settle_past_grace().await;
    // Alice still has the customer: no route back is even decided.
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(invites.len(), 1, "only the customer's first invite");
    assert!(flex
        .outbox_rows()
        .await
        .iter()
        .all(|(key, _, _)| !key.starts_with("return:")));
    assert_eq!(flex.status(&a), TaskStatus::Assigned);
    assert!(
        destructive(&flex).len() == 1,
        "{:?}",
        describe(&destructive(&flex))
    );
}

#[tokio::test]
async fn a_template_park_is_never_closed_as_an_orphan() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    let webhook = flex
        .twilio
        .fpt_park(&a, "https://template.example.com/unpark-interaction");
    flex.settle_past_grace().await;
    assert_eq!(
        flex.status(&a),
        TaskStatus::Completed,
        "the park removed Alice"
    );

    // The orphan check ran and decided to close; Twilio showed the template's webhook waiting
    // for the customer, so the close was withdrawn.
    let closes = ends(&flex);
    assert!(closes.is_empty(), "{:?}", describe(&closes));
    let view = flex.conversation_view(&ch).await;
    assert_eq!(view["state"], "active");
    let result = view["close"]["result"].as_str().unwrap_or_default();
    assert!(
        result.starts_with("kept:") && result.contains(&webhook),
        "{view}"
    );
    // The park can be resumed: the customer writes, the template unparks.
    let c = flex.twilio.fpt_unpark(&ch, true);
    flex.accept(&c, &flex.alice).await;
    assert_eq!(flex.status(&c), TaskStatus::Assigned);
}

#[tokio::test]
async fn a_picked_up_voice_park_is_not_parked_again_by_its_sticky_marks() {
    let flex = rig().await;
    let task = flex
        .legacy_task_with(
            &flex.alice,
            json!({"call_sid": "CA0001", "from": "+14155550100"}),
        )
        .await;
    let park = flex.twilio.plugin_park_call(&task);
    flex.quiesce().await;
    flex.twilio.plugin_pickup(&park);
    flex.quiesce().await;
    // The call goes on: a later attribute change still carries `workerParked`.
    let ws = flex.twilio.workspace_sid().to_owned();
    let current: Value =
        serde_json::from_str(&flex.twilio.task(&task).unwrap().attributes).unwrap();
    let mut updated = current.clone();
    updated["note"] = json!("customer asked about billing");
    flex.twilio_post(
        &format!("/v1/Workspaces/{ws}/Tasks/{task}"),
        &[("Attributes", updated.to_string())],
    )
    .await;
    flex.settle_past_grace().await;

    let reservation_updates = flex.requests("POST", "/Reservations/");
    assert!(
        reservation_updates.is_empty(),
        "{:?}",
        describe(&reservation_updates)
    );
    assert_eq!(
        flex.twilio.reservation(&park).unwrap().status.as_str(),
        "accepted",
        "the picked-up call goes on"
    );
    let parks: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT state, ended_by FROM parks WHERE task_sid = $1")
            .bind(&task)
            .fetch_all(&flex.app.pool)
            .await
            .unwrap();
    assert_eq!(parks, vec![("resumed".into(), Some("pickup".into()))]);
}

#[tokio::test]
async fn lost_callbacks_of_a_waiting_transfer_do_not_close_its_conversation() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    flex.twilio.hold_callbacks(true);
    let b = flex.twilio.fpt_transfer(&a, &flex.sales, false);
    // TaskRouter does not send a failed callback again: B's never reach baton, Alice's do.
    let held = flex.twilio.take_queued_callbacks();
    flex.twilio.hold_callbacks(false);
    let (lost, delivered): (Vec<_>, Vec<_>) = held
        .into_iter()
        .filter(|c| !c.is_conversations())
        .partition(|c| c.param("TaskSid") == Some(b.as_str()));
    assert!(!lost.is_empty() && !delivered.is_empty());
    for callback in &delivered {
        flex.deliver(&callback.params).await;
    }
    flex.settle_past_grace().await;

    assert_eq!(flex.status(&a), TaskStatus::Completed);
    assert_eq!(
        flex.status(&b),
        TaskStatus::Pending,
        "the customer waits in Sales"
    );
    let closes = ends(&flex);
    assert!(closes.is_empty(), "{:?}", describe(&closes));
    let view = flex.conversation_view(&ch).await;
    let result = view["close"]["result"].as_str().unwrap_or_default();
    assert_eq!(
        result,
        format!("kept: Twilio has task {b} pending for it"),
        "{view}"
    );
    // Baton's own view never saw B: only Twilio's task list could tell.
    let known: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE task_sid = $1")
        .bind(&b)
        .fetch_one(&flex.app.pool)
        .await
        .unwrap();
    assert_eq!(known, 0);
}

#[tokio::test]
async fn a_failed_template_cold_transfer_routes_the_customer_back() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let b = flex.twilio.fpt_transfer(&a, &flex.sales, false);
    flex.quiesce().await;
    assert_eq!(
        flex.status(&a),
        TaskStatus::Completed,
        "the template removed Alice"
    );
    flex.twilio.time_out_task(&b);
    flex.settle_past_grace().await;

    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(invites.len(), 2, "the customer's, then one route back");
    let routing: Value = serde_json::from_str(form(&invites[1], "Routing").unwrap()).unwrap();
    let properties = &routing["properties"];
    assert_eq!(
        properties.get("worker_sid"),
        None,
        "known-worker routing, not an explicit worker"
    );
    assert_eq!(
        properties["workflow_sid"],
        flex.twilio.default_workflow_sid()
    );
    let attributes = &properties["attributes"];
    assert_eq!(
        attributes["originalRouting"]["workerSid"],
        flex.alice.as_str()
    );
    assert_eq!(
        attributes["customerName"], "Ada",
        "every original attribute"
    );
    assert_eq!(attributes["conversations"]["conversation_id"], a.as_str());
    assert_eq!(attributes["baton"]["returning_from"], b.as_str());
    let closes = ends(&flex);
    assert!(closes.is_empty(), "never closed: {:?}", describe(&closes));
    // Alice takes the customer back.
    let c = flex
        .twilio
        .tasks()
        .into_iter()
        .map(|t| t.sid)
        .find(|sid| sid != &a && sid != &b)
        .expect("the route-back task");
    flex.accept(&c, &flex.alice).await;
    let chain = flex.chain(&a).await;
    let outcomes: Vec<&str> = chain["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(outcomes, vec!["returned", "completed"], "{chain}");
}

#[tokio::test]
async fn a_workflow_timeout_with_an_agent_still_in_the_conversation_invites_nobody() {
    let flex = Flex::start(FlexOptions {
        orphan_grace: Some(GRACE),
        timeout_fallback: true,
        ..FlexOptions::default()
    })
    .await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    // A consult to Sales that nobody takes: its workflow times out while Alice still serves.
    let b = flex.twilio.fpt_transfer(&a, &flex.sales, true);
    flex.quiesce().await;
    flex.twilio.time_out_workflow(&b);
    flex.settle_past_grace().await;
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(
        invites.len(),
        1,
        "no fallback: Alice holds the conversation"
    );
    let rows = flex.outbox_rows().await;
    let fallback = rows
        .iter()
        .find(|(key, _, _)| key == &format!("fallback:{b}"))
        .expect("the fallback was considered");
    assert!(
        fallback
            .2
            .as_deref()
            .is_some_and(|w| w.starts_with("kept: 2 participants")),
        "{fallback:?}"
    );
}

#[tokio::test]
async fn a_park_whose_webhook_cannot_be_created_never_removes_the_agent() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    flex.twilio.fail_next(
        "POST",
        &format!("/v1/Conversations/{ch}/Webhooks"),
        50,
        400,
        20001,
    );
    let (status, body) = flex.api_post("/api/v1/parks", json!({"task_sid": a})).await;
    assert_eq!(status, 201, "{body}");
    let park_id = body["park"]["park_id"].as_str().unwrap().to_owned();
    flex.settle_past_grace().await;

    assert!(
        flex.requests("POST", "/Participants/").is_empty(),
        "Alice was not removed"
    );
    assert_eq!(flex.status(&a), TaskStatus::Assigned);
    assert_eq!(agents_in(&flex, &uo), vec![flex.alice.clone()]);
    let rows = flex.outbox_rows().await;
    let state = |key: &str| {
        rows.iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, s, _)| s.clone())
    };
    assert_eq!(
        state(&format!("park:{park_id}:webhook")).as_deref(),
        Some("dead")
    );
    assert_eq!(
        state(&format!("park:{park_id}:leave")).as_deref(),
        Some("dead")
    );
    let (status, dead) = flex.api_get("/api/v1/outbox?state=dead").await;
    assert_eq!(status, 200);
    let errors: Vec<String> = dead["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["last_error"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e == &format!("prerequisite park:{park_id}:webhook is dead: not sent")),
        "{dead}"
    );
}

#[tokio::test]
async fn a_resume_whose_invite_dies_keeps_its_webhook_so_the_park_can_resume_later() {
    let flex = rig().await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    let (status, body) = flex.api_post("/api/v1/parks", json!({"task_sid": a})).await;
    assert_eq!(status, 201, "{body}");
    let park_id = body["park"]["park_id"].as_str().unwrap().to_owned();
    flex.settle_past_grace().await;
    assert_eq!(flex.status(&a), TaskStatus::Completed, "parked: Alice left");
    flex.twilio
        .fail_next("POST", "/v1/Interactions/", 50, 400, 20001);
    flex.twilio.customer_writes(&ch, "I'm back");
    flex.settle_past_grace().await;

    let deletes = flex.requests("DELETE", "/Webhooks/");
    assert!(
        deletes.is_empty(),
        "the webhook stays: {:?}",
        describe(&deletes)
    );
    let rows = flex.outbox_rows().await;
    let state = |key: &str| {
        rows.iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, s, _)| s.clone())
    };
    assert_eq!(state(&format!("resume:{park_id}")).as_deref(), Some("dead"));
    assert_eq!(
        state(&format!("unpark:{park_id}:webhook")).as_deref(),
        Some("dead")
    );
    assert!(
        flex.twilio
            .conversation(&ch)
            .unwrap()
            .webhooks
            .iter()
            .any(|w| w.url.as_deref().is_some_and(|u| u.contains(&park_id))),
        "the park's webhook is still there"
    );
}

/// Alice's chat task, and Flex's native transfer of it to Sales (no worker named), pending.
async fn native_transfer_to_a_queue(flex: &Flex) -> (String, String) {
    let a = flex
        .legacy_task_with(
            &flex.alice,
            json!({"channelSid": "CH9", "from": "+14155550100"}),
        )
        .await;
    let b = flex
        .create_task(json!({"channelSid": "CH9", "from": "+14155550100",
            "previous_task_sid": a, "transfer_sid": "UX00000000000000000000000000000001",
            "conversations": {"conversation_id": a}}))
        .await;
    (a, b)
}

#[tokio::test]
async fn a_queue_transfer_offered_to_an_agent_still_wrapping_up_finishes_that_wrap_up_first() {
    let flex = rig().await;
    let (a, b) = native_transfer_to_a_queue(&flex).await;
    flex.twilio.wrap_up(&a);
    flex.quiesce().await;
    assert!(
        flex.requests("POST", &format!("/Tasks/{a}")).is_empty(),
        "nobody was offered it yet"
    );
    // Sales offers it to Alice, still in wrap-up.
    flex.twilio.offer(&b, &flex.alice);
    flex.quiesce().await;
    let completions = flex.requests("POST", &format!("/Tasks/{a}"));
    assert_eq!(completions.len(), 1, "{:?}", describe(&completions));
    assert_eq!(form(&completions[0], "AssignmentStatus"), Some("completed"));
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    assert_eq!(
        flex.status(&b),
        TaskStatus::Reserved,
        "the offer still waits for her"
    );
}

#[tokio::test]
async fn an_offer_to_an_agent_still_serving_the_earlier_task_completes_nothing() {
    let flex = rig().await;
    let (a, b) = native_transfer_to_a_queue(&flex).await;
    flex.twilio.offer(&b, &flex.alice);
    flex.settle_past_grace().await;
    assert!(
        flex.requests("POST", &format!("/Tasks/{a}")).is_empty(),
        "Alice's task is live, not a wrap-up"
    );
    assert_eq!(flex.status(&a), TaskStatus::Assigned);
}

#[tokio::test]
async fn native_voice_transfers_are_one_hop_each_whatever_the_offers() {
    let flex = rig().await;
    let task = flex
        .legacy_task_with(
            &flex.alice,
            json!({"call_sid": "CA0002", "from": "+14155550100"}),
        )
        .await;
    // Alice transfers the call to Sales (warm): Bob declines, Carol takes it.
    let first = flex.twilio.start_transfer(&task, &flex.sales, true);
    let to_bob = flex.twilio.offer_transfer(&first, &flex.bob);
    flex.twilio.reject(&to_bob);
    let to_carol = flex.twilio.offer_transfer(&first, &flex.carol);
    flex.twilio.accept(&to_carol);
    flex.quiesce().await;
    // Carol transfers it to Bob (cold); it fails.
    let second = flex.twilio.start_transfer(&task, &flex.bob, false);
    flex.twilio.fail_transfer(&second, "no answer");
    flex.settle_past_grace().await;

    let chain = flex.chain(&task).await;
    let hops: Vec<(String, String, String, String, String, String)> = chain["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let text = |k: &str| h[k].as_str().unwrap_or("-").to_owned();
            (
                text("native_transfer_sid"),
                text("from_worker_sid"),
                text("to_worker_sid"),
                text("target_type"),
                text("mode"),
                text("outcome"),
            )
        })
        .collect();
    assert_eq!(
        hops,
        vec![
            (
                first.clone(),
                flex.alice.clone(),
                flex.carol.clone(),
                "queue".into(),
                "warm".into(),
                "completed".into()
            ),
            (
                second.clone(),
                flex.carol.clone(),
                flex.bob.clone(),
                "worker".into(),
                "cold".into(),
                "failed".into()
            ),
        ],
        "{chain}"
    );
    let (status, stats) = flex
        .api_get("/api/v1/stats/transfers?group_by=target_type")
        .await;
    assert_eq!(status, 200, "{stats}");
    let total: i64 = stats["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["total"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2, "transfers are counted, not offers: {stats}");
    assert!(
        destructive(&flex).is_empty(),
        "Flex's own transfers are Flex's: {:?}",
        describe(&destructive(&flex))
    );
}

#[tokio::test]
async fn a_task_its_workflow_skips_ends_and_its_orphaned_conversation_is_closed() {
    let flex = rig().await;
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    // Only `workflow.skipped` reaches baton (the `task.canceled` after it is lost).
    flex.twilio.hold_callbacks(true);
    flex.twilio.skip_workflow(&c.task);
    let held = flex.twilio.take_queued_callbacks();
    flex.twilio.hold_callbacks(false);
    let types: Vec<&str> = held.iter().map(|c| c.event_type.as_str()).collect();
    assert!(types.contains(&"task.canceled"), "{types:?}");
    for callback in held.iter().filter(|c| c.event_type == "workflow.skipped") {
        flex.deliver(&callback.params).await;
    }
    flex.settle_past_grace().await;
    let view = flex.conversation_view(&c.conversation).await;
    assert_eq!(view["tasks"][0]["assignment_status"], "canceled", "{view}");
    assert_eq!(view["close"]["event_type"], "workflow.skipped", "{view}");
    assert_eq!(view["close"]["result"], "closed", "{view}");
    let closes = ends(&flex);
    assert_eq!(
        describe(&closes),
        vec![format!(
            "POST /v1/Interactions/{}/Channels/{} [(\"Status\", \"closed\")]",
            c.interaction, c.channel
        )]
    );
}

#[tokio::test]
async fn an_agent_leaving_schedules_a_check_even_when_their_task_events_are_lost() {
    let flex = rig().await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    flex.twilio.set_conversations_webhook_url(Some(format!(
        "{}/webhooks/conversations",
        flex.app.address
    )));
    flex.twilio
        .set_conversations_webhook_filters(&["onParticipantRemoved"]);
    flex.twilio.hold_callbacks(true);
    flex.close_agent_participant(&kd, &uo, &a).await;
    let held = flex.twilio.take_queued_callbacks();
    flex.twilio.hold_callbacks(false);
    // Alice's task events are lost; only the Conversations webhook arrives.
    let removed: Vec<_> = held
        .into_iter()
        .filter(|c| c.event_type == "onParticipantRemoved")
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].param("ConversationSid"), Some(ch.as_str()));
    flex.deliver_to("/webhooks/conversations", &removed[0].params)
        .await;
    flex.settle_past_grace().await;

    let view = flex.conversation_view(&ch).await;
    // The check ran on the webhook alone. baton still believes Alice's task is live (its
    // completion was lost): it keeps the conversation, says why, and closes nothing.
    assert_eq!(
        view["last_check_result"],
        format!("kept: live task {a}"),
        "{view}"
    );
    assert_eq!(view["close"], Value::Null);
    // The customer's invite and Alice leaving (the test's own requests): nothing of baton's.
    assert_eq!(
        destructive(&flex).len(),
        2,
        "{:?}",
        describe(&destructive(&flex))
    );
}
