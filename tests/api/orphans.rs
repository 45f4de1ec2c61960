//! Orphaned conversations end to end: a conversation no task owns any more is closed once,
//! after the grace period, and never while a task, invite, transfer or park still holds it.

use crate::flex::*;
use serde_json::{json, Value};
use std::time::Duration;
use twilio_standin::{ChannelStatus, LoggedRequest};

const GRACE: Duration = Duration::from_millis(300);

async fn rig(grace: Duration) -> Flex {
    Flex::start(FlexOptions {
        orphan_grace: Some(grace),
        ..FlexOptions::default()
    })
    .await
}

/// `POST …/Channels/{UO}` (the channel itself, not its participants or invites).
fn channel_closes(flex: &Flex, uo: &str) -> Vec<LoggedRequest> {
    flex.requests("POST", "/Channels/")
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/Channels/{uo}")))
        .collect()
}

impl Flex {
    /// The agent working `task` leaves the conversation (Flex's "leave" or a cold transfer):
    /// their interaction participant is closed, which completes the task.
    async fn agent_leaves(&self, kd: &str, uo: &str, task: &str) {
        self.close_agent_participant(kd, uo, task).await;
        self.quiesce().await;
    }

    async fn conversation(&self, ch: &str) -> Value {
        let (status, body) = self.api_get(&format!("/api/v1/conversations/{ch}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the channel was closed `n` times (or fails after 15 s).
    async fn wait_for_closes(&self, uo: &str, n: usize) {
        wait_until("the channel close", Duration::from_secs(15), || async {
            channel_closes(self, uo).len() >= n
        })
        .await;
        self.quiesce().await;
    }

    /// Lets several grace periods pass with everything delivered and processed.
    async fn let_grace_pass(&self, grace: Duration) {
        self.quiesce().await;
        tokio::time::sleep(grace * 4).await;
        self.quiesce().await;
    }
}

#[tokio::test]
async fn a_canceled_task_closes_its_orphaned_conversation_once() {
    let flex = rig(GRACE).await;
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    flex.twilio.time_out_task(&c.task);
    flex.quiesce().await;
    // The terminal event delivered again, before and after the close.
    let canceled = flex
        .twilio
        .callbacks()
        .into_iter()
        .find(|cb| cb.event_type() == "task.canceled")
        .expect("task.canceled delivered");
    flex.twilio.redeliver(canceled.event_sid());
    flex.wait_for_closes(&c.channel, 1).await;
    flex.twilio.redeliver(canceled.event_sid());
    flex.let_grace_pass(GRACE).await;

    let closes = channel_closes(&flex, &c.channel);
    assert_eq!(closes.len(), 1, "closed exactly once");
    assert_eq!(
        closes[0].path,
        format!("/v1/Interactions/{}/Channels/{}", c.interaction, c.channel)
    );
    assert_eq!(form(&closes[0], "Status"), Some("closed"));
    assert_eq!(form(&closes[0], "Routing"), None, "wrap-ups are left alone");
    assert_eq!(
        flex.twilio.channel(&c.channel).expect("channel").status,
        ChannelStatus::Closed
    );
    // Never by cancelling interaction tasks through TaskRouter.
    assert!(flex.requests("POST", "/Tasks/").is_empty());

    let view = flex.conversation(&c.conversation).await;
    assert_eq!(view["state"], "closed");
    assert_eq!(view["interaction_sid"], c.interaction.as_str());
    assert_eq!(view["tasks"][0]["task_sid"], c.task.as_str());
    assert_eq!(view["tasks"][0]["assignment_status"], "canceled");
    let close = &view["close"];
    assert_eq!(close["reason"], "orphan");
    assert_eq!(close["task_sid"], c.task.as_str());
    assert_eq!(close["event_type"], "task.canceled");
    assert_eq!(close["method"], "interaction_channel");
    assert_eq!(close["result"], "closed");
    assert_eq!(close["outbox_state"], "done");
    assert_eq!(view["orphan_check_due_at"], Value::Null);
}

#[tokio::test]
async fn a_completed_task_whose_conversation_has_another_live_task_does_not_close_it() {
    let flex = rig(GRACE).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob}))
        .await;
    assert_eq!(status, 202, "{body}");
    flex.quiesce().await;
    let b = flex.task_after(&a);
    // Bob accepts: baton closes Alice's participant, which completes her task.
    flex.accept(&b, &flex.bob).await;
    assert_eq!(flex.status(&a), twilio_standin::TaskStatus::Completed);
    flex.let_grace_pass(GRACE).await;
    assert!(
        channel_closes(&flex, &uo).is_empty(),
        "Bob still serves the customer"
    );
    let ch = flex
        .twilio
        .channel(&uo)
        .and_then(|c| c.conversation_sid)
        .expect("conversation");
    let view = flex.conversation(&ch).await;
    assert_eq!(view["close"], Value::Null);
    assert_eq!(view["state"], "active");

    // When Bob leaves too, nothing holds it: closed, and the record names his task.
    flex.agent_leaves(&kd, &uo, &b).await;
    flex.wait_for_closes(&uo, 1).await;
    let view = flex.conversation(&ch).await;
    assert_eq!(view["close"]["task_sid"], b.as_str());
    assert_eq!(view["close"]["event_type"], "task.completed");
    assert_eq!(view["close"]["result"], "closed");
}

#[tokio::test]
async fn a_new_invite_during_the_grace_period_keeps_the_conversation_open() {
    let grace = Duration::from_millis(1500);
    let flex = rig(grace).await;
    let c = flex.customer_writes_in().await;
    let reservation = flex.twilio.offer(&c.task, &flex.alice);
    flex.twilio.accept(&reservation);
    flex.quiesce().await;
    flex.agent_leaves(&c.interaction, &c.channel, &c.task).await;
    // Within the grace period someone invites the customer again (a plugin's re-invite).
    let again = flex
        .invite(
            &c.interaction,
            &c.channel,
            json!({"conversationSid": c.conversation, "from": "+14155550100"}),
        )
        .await;
    flex.let_grace_pass(grace).await;
    assert!(channel_closes(&flex, &c.channel).is_empty());
    assert_eq!(
        flex.conversation(&c.conversation).await["close"],
        Value::Null
    );

    // The new task ends unanswered: now it is an orphan.
    flex.twilio.time_out_task(&again);
    flex.wait_for_closes(&c.channel, 1).await;
    let view = flex.conversation(&c.conversation).await;
    assert_eq!(view["close"]["task_sid"], again.as_str());
    assert_eq!(view["close"]["event_type"], "task.canceled");
}

#[tokio::test]
async fn a_transfer_in_flight_during_the_grace_period_keeps_the_conversation_open() {
    let flex = rig(GRACE).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    // Twilio is slow to take the transfer's invite: it stays pending through several graces.
    flex.twilio.fail_next(
        "POST",
        &format!("/v1/Interactions/{kd}/Channels/{uo}/Invites"),
        5,
        503,
        20503,
    );
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.sales}))
        .await;
    assert_eq!(status, 202, "{body}");
    // Alice leaves at once (a cold transfer done by hand).
    flex.agent_leaves(&kd, &uo, &a).await;
    flex.let_grace_pass(GRACE).await;
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(
        invites.len(),
        1 + 5 + 1,
        "the customer's invite, five refused attempts, the one that worked"
    );
    assert!(
        channel_closes(&flex, &uo).is_empty(),
        "never closed while the transfer was in flight"
    );
    let b = flex.task_after(&a);
    assert_eq!(flex.status(&b), twilio_standin::TaskStatus::Pending);
    let ch = flex
        .twilio
        .channel(&uo)
        .and_then(|c| c.conversation_sid)
        .expect("conversation");
    assert_eq!(flex.conversation(&ch).await["close"], Value::Null);
}

#[tokio::test]
async fn a_workflow_timeout_invites_the_customer_again_through_the_fallback_workflow_once() {
    let flex = Flex::start(FlexOptions {
        orphan_grace: Some(GRACE),
        timeout_fallback: true,
        ..FlexOptions::default()
    })
    .await;
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    flex.twilio.time_out_workflow(&c.task);
    flex.quiesce().await;
    let timeout = flex
        .twilio
        .callbacks()
        .into_iter()
        .find(|cb| cb.event_type() == "workflow.timeout")
        .expect("workflow.timeout delivered");
    flex.twilio.redeliver(timeout.event_sid());
    flex.let_grace_pass(GRACE).await;

    let invites = flex.requests("POST", &format!("/Channels/{}/Invites", c.channel));
    assert_eq!(invites.len(), 2, "the customer's invite, then one fallback");
    let routing: Value = serde_json::from_str(form(&invites[1], "Routing").unwrap()).unwrap();
    let props = &routing["properties"];
    assert_eq!(props["workflow_sid"], flex.transfer_workflow.as_str());
    assert_eq!(props["attributes"]["customerName"], "Ada");
    assert_eq!(
        props["attributes"]["baton"]["fallback_from_task_sid"],
        c.task.as_str()
    );
    let fallback = flex
        .twilio
        .tasks()
        .into_iter()
        .find(|t| t.sid != c.task && t.attributes.contains(&c.channel))
        .expect("the fallback task");
    assert_eq!(fallback.workflow_sid, Some(flex.transfer_workflow.clone()));
    assert!(
        channel_closes(&flex, &c.channel).is_empty(),
        "the customer waits in the fallback workflow, not closed out"
    );
    // The fallback task's own workflow times out: no second fallback (no re-queuing for ever).
    flex.twilio.time_out_workflow(&fallback.sid);
    flex.let_grace_pass(GRACE).await;
    let invites = flex.requests("POST", &format!("/Channels/{}/Invites", c.channel));
    assert_eq!(
        invites.len(),
        2,
        "still the customer's invite and one fallback"
    );
    let fallbacks: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM outbox WHERE idempotency_key LIKE 'fallback:%'",
    )
    .fetch_all(&flex.app.pool)
    .await
    .unwrap();
    assert_eq!(fallbacks, vec![format!("fallback:{}", c.task)]);
}

#[tokio::test]
async fn without_a_fallback_a_workflow_timeout_closes_the_orphan() {
    let flex = rig(GRACE).await;
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    flex.twilio.time_out_workflow(&c.task);
    flex.wait_for_closes(&c.channel, 1).await;
    flex.let_grace_pass(GRACE).await;
    assert_eq!(channel_closes(&flex, &c.channel).len(), 1);
    assert_eq!(
        flex.requests("POST", &format!("/Channels/{}/Invites", c.channel))
            .len(),
        1,
        "no fallback invite"
    );
}

#[tokio::test]
async fn twilio_answering_not_found_counts_as_closed() {
    let flex = rig(GRACE).await;
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    let channel = format!("/v1/Interactions/{}/Channels/{}", c.interaction, c.channel);
    // The channel is found open when confirmed, and gone by the time it is closed.
    flex.twilio.fail_next("POST", &channel, 1, 404, 20404);
    flex.twilio.time_out_task(&c.task);
    flex.wait_for_closes(&c.channel, 1).await;
    flex.let_grace_pass(GRACE).await;
    assert_eq!(channel_closes(&flex, &c.channel).len(), 1, "not retried");
    let close = &flex.conversation(&c.conversation).await["close"];
    assert_eq!(close["result"], "already_closed");
    assert_eq!(close["outbox_state"], "done");
    let attempts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_attempts a JOIN conversation_closes k ON k.outbox_id = a.outbox_id",
    )
    .fetch_one(&flex.app.pool)
    .await
    .unwrap();
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_conversation_closed_elsewhere_is_never_acted_on_again() {
    let flex = rig(GRACE).await;
    flex.twilio.set_conversations_webhook_url(Some(format!(
        "{}/webhooks/conversations",
        flex.app.address
    )));
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    // Its inactivity timer closes it in Twilio; Conversations tells baton.
    flex.twilio.close_conversation_by_timer(&c.conversation);
    flex.quiesce().await;
    let view = flex.conversation(&c.conversation).await;
    assert_eq!(view["state"], "closed");
    assert_eq!(view["state_reason"], "TIMER");
    flex.twilio.clear_requests();
    flex.twilio.time_out_task(&c.task);
    flex.let_grace_pass(GRACE).await;
    assert!(
        flex.requests("GET", "/Channels/").is_empty()
            && flex.requests("POST", "/Channels/").is_empty(),
        "no read, no close: {:?}",
        flex.twilio.requests()
    );
    assert_eq!(
        flex.conversation(&c.conversation).await["close"],
        Value::Null
    );
}

#[tokio::test]
async fn a_sweep_lists_idle_conversations_dry_and_closes_them_for_real() {
    // No orphan checks: only the sweep may close.
    let flex = Flex::start(FlexOptions::default()).await;
    // Idle: its only task was canceled.
    let idle = flex.customer_writes_in().await;
    flex.quiesce().await;
    flex.twilio.time_out_task(&idle.task);
    // Idle in baton's view, but Alice is still in it on Twilio's side.
    let (busy_task, _, busy_uo) = flex.conversation_with(&flex.alice).await;
    flex.twilio.complete(&busy_task);
    flex.quiesce().await;

    let dry = flex
        .sweep(&["--dry-run", "--older-than", "0s", "--json"])
        .await;
    let dry: Value = serde_json::from_str(&dry).expect("JSON output");
    let actions: Vec<(String, String)> = dry
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["channel_sid"].as_str().unwrap().to_owned(),
                i["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(actions.len(), 2, "{dry}");
    assert!(actions.contains(&(idle.channel.clone(), "would_close".into())));
    assert!(actions.contains(&(busy_uo.clone(), "kept".into())), "{dry}");
    assert!(channel_closes(&flex, &idle.channel).is_empty(), "dry run");

    let real = flex.sweep(&["--older-than", "0s", "--json"]).await;
    let real: Value = serde_json::from_str(&real).expect("JSON output");
    let idle_item = real
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["channel_sid"] == idle.channel.as_str())
        .expect("the idle conversation")
        .clone();
    assert_eq!(idle_item["action"], "closed", "{real}");
    assert_eq!(channel_closes(&flex, &idle.channel).len(), 1);
    assert!(channel_closes(&flex, &busy_uo).is_empty());
    let close = &flex.conversation(&idle.conversation).await["close"];
    assert_eq!(close["reason"], "sweep");
    assert_eq!(close["result"], "closed");

    // A table for people.
    let table = flex.sweep(&["--dry-run", "--older-than", "0s"]).await;
    let header = table.lines().next().unwrap_or_default();
    assert!(header.starts_with("CONVERSATION"), "{table}");
    assert!(table.contains("kept"), "{table}");
    assert!(
        table
            .trim_end()
            .ends_with("0 would be closed; 0 would have stale invites cleared (dry run)"),
        "{table}"
    );
}

/// An entry of flex-project-template's `invites` conversation attribute (a warm transfer).
fn invite_entry(task: &str, target: &str) -> Value {
    json!({"invitesTaskSid": task, "targetSid": target, "targetName": "Bob",
           "timestampCreated": "2026-11-30T10:00:00.000Z", "inviteTargetType": "Worker"})
}

#[tokio::test]
async fn a_sweep_clears_the_invites_of_canceled_tasks_and_keeps_the_rest() {
    // No orphan checks: only the sweep acts.
    let flex = Flex::start(FlexOptions::default()).await;
    let c = flex.customer_writes_in().await;
    let reservation = flex.twilio.offer(&c.task, &flex.alice);
    flex.twilio.accept(&reservation);
    // Alice invites Bob (who will decline) and Carol (still ringing), the template's way: one
    // invite each, then the `invites` map written into the conversation's attributes.
    let invite = |target: &str| {
        json!({"conversationSid": c.conversation, "transferTargetSid": target,
               "transferTargetType": "worker", "customerName": "Ada"})
    };
    let declined = flex
        .invite(&c.interaction, &c.channel, invite(&flex.bob))
        .await;
    let ringing = flex
        .invite(&c.interaction, &c.channel, invite(&flex.carol))
        .await;
    let conversation_path = format!("/v1/Conversations/{}", c.conversation);
    let attributes = json!({"customerName": "Ada", "invites": {
        declined.clone(): invite_entry(&declined, &flex.bob),
        ringing.clone(): invite_entry(&ringing, &flex.carol),
    }});
    flex.twilio_post(
        &conversation_path,
        &[("Attributes", attributes.to_string())],
    )
    .await;
    // A declined known-worker invite cancels its task.
    flex.twilio.cancel_task(&declined, "declined by Bob");
    flex.quiesce().await;
    let conversation_writes = |flex: &Flex| -> Vec<LoggedRequest> {
        flex.requests("POST", &conversation_path)
            .into_iter()
            .filter(|r| r.path == conversation_path)
            .collect()
    };
    let stored_attributes = |conversation: &Value| -> Value {
        serde_json::from_str(conversation["attributes"].as_str().expect("attributes"))
            .expect("JSON attributes")
    };
    let invite_items = |out: &str| -> Vec<Value> {
        let items: Value = serde_json::from_str(out).expect("JSON output");
        items
            .as_array()
            .expect("an array")
            .iter()
            .filter(|i| i["action"].as_str().is_some_and(|a| a.contains("invites")))
            .cloned()
            .collect()
    };

    let dry = flex
        .sweep(&["--dry-run", "--older-than", "0s", "--json"])
        .await;
    let items = invite_items(&dry);
    assert_eq!(items.len(), 1, "{dry}");
    assert_eq!(items[0]["conversation_sid"], c.conversation.as_str());
    assert_eq!(items[0]["action"], "would_clear_invites");
    assert_eq!(items[0]["invite_tasks"], json!([declined]));
    assert_eq!(
        conversation_writes(&flex).len(),
        1,
        "a dry run writes nothing"
    );
    assert_eq!(
        stored_attributes(&flex.twilio_get(&conversation_path).await),
        attributes
    );

    let real = flex.sweep(&["--older-than", "0s", "--json"]).await;
    let items = invite_items(&real);
    assert_eq!(items.len(), 1, "{real}");
    assert_eq!(items[0]["action"], "cleared_invites", "{real}");
    assert_eq!(items[0]["invite_tasks"], json!([declined]));
    let expected = json!({"customerName": "Ada", "invites": {
        ringing.clone(): invite_entry(&ringing, &flex.carol),
    }});
    let writes = conversation_writes(&flex);
    assert_eq!(writes.len(), 2, "one write by baton");
    let written: Value =
        serde_json::from_str(form(&writes[1], "Attributes").expect("Attributes")).expect("JSON");
    assert_eq!(written, expected);
    assert_eq!(
        stored_attributes(&flex.twilio_get(&conversation_path).await),
        expected
    );
    // Alice still serves the customer: nothing was closed.
    assert!(channel_closes(&flex, &c.channel).is_empty());

    // Each ended invite task is looked at once: a later sweep neither reads nor writes it.
    let reads_before = flex.requests("GET", &conversation_path).len();
    let again = flex.sweep(&["--older-than", "0s", "--json"]).await;
    assert!(invite_items(&again).is_empty(), "{again}");
    assert_eq!(flex.requests("GET", &conversation_path).len(), reads_before);
    assert_eq!(conversation_writes(&flex).len(), 2);

    let view = flex.conversation(&c.conversation).await;
    let cleanups = view["invite_cleanups"].as_array().expect("invite cleanups");
    assert_eq!(cleanups.len(), 1, "{view}");
    assert_eq!(cleanups[0]["task_sid"], declined.as_str());
    assert_eq!(cleanups[0]["state"], "cleared");
}
