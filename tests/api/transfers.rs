//! Transfer chains end to end: baton on a real database, the Twilio stand-in playing TaskRouter
//! (signed callbacks to baton's real webhook route), baton's dispatcher calling the stand-in's
//! REST API. Tests assert on the exact requests Twilio received and on the chain baton serves.

use crate::flex::*;
use baton::domain::chain::CompleteOn;
use serde_json::{json, Value};
use twilio_standin::{LoggedRequest, Release, SeedWorkflow, TaskStatus};

#[tokio::test]
async fn cold_transfer_of_a_conversation_to_a_worker_closes_the_original_agent_after_acceptance() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;

    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob, "notes": "billing question"}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["transfer"]["state"], "requested");
    let transfer_id = body["transfer"]["transfer_id"].as_str().unwrap().to_owned();
    flex.quiesce().await;

    // One invite on the task's interaction channel, carrying every original attribute.
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(
        invites.len(),
        2,
        "the customer's own invite, then the transfer's"
    );
    let routing: Value = serde_json::from_str(form(&invites[1], "Routing").unwrap()).unwrap();
    let props = &routing["properties"];
    assert_eq!(props["workflow_sid"], flex.transfer_workflow);
    let attrs = &props["attributes"];
    assert_eq!(attrs["customerName"], "Ada");
    assert_eq!(attrs["from"], "+14155550100");
    assert_eq!(attrs["conversations"]["communication_channel"], "sms");
    assert_eq!(attrs["conversations"]["conversation_id"], a.as_str());
    assert_eq!(attrs["baton"]["previous_task_sid"], a.as_str());
    assert_eq!(attrs["baton"]["transfer_id"], transfer_id.as_str());
    assert_eq!(attrs["transferTargetSid"], flex.bob.as_str());
    assert_eq!(attrs["transferTargetType"], "worker");
    // `accepted`: Alice keeps the customer until Bob accepts.
    assert!(flex.requests("POST", "/Participants/").is_empty());
    assert_eq!(flex.status(&a), TaskStatus::Assigned);

    let b = flex.task_after(&a);
    flex.accept(&b, &flex.bob).await;
    let closes = flex.requests("POST", &format!("/Channels/{uo}/Participants/"));
    assert_eq!(
        closes.len(),
        1,
        "Alice's participant is closed exactly once"
    );
    assert_eq!(form(&closes[0], "Status"), Some("closed"));
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    assert_eq!(flex.status(&b), TaskStatus::Assigned);
    let _ = kd;

    let chain = flex.chain(&b).await;
    assert_eq!(chain["chain_id"], a.as_str());
    assert_eq!(chain["root_task_sid"], a.as_str());
    assert_eq!(chain["tasks"].as_array().unwrap().len(), 2);
    let hops = chain["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{chain}");
    let hop = &hops[0];
    assert_eq!(hop["seq"], 1);
    assert_eq!(hop["from_task_sid"], a.as_str());
    assert_eq!(hop["to_task_sid"], b.as_str());
    assert_eq!(hop["from_worker_sid"], flex.alice.as_str());
    assert_eq!(hop["to_worker_sid"], flex.bob.as_str());
    assert_eq!(hop["target_type"], "worker");
    assert_eq!(hop["target_sid"], flex.bob.as_str());
    assert_eq!(hop["mode"], "cold");
    assert_eq!(hop["notes"], "billing question");
    assert_eq!(hop["initiated_by"], "ops");
    assert_eq!(hop["vocabulary"], "baton");
    assert_eq!(hop["transfer_id"], transfer_id.as_str());
    assert_eq!(hop["outcome"], "completed");
    for field in ["initiated_at", "offered_at", "accepted_at", "finished_at"] {
        assert!(hop[field].is_string(), "{field} in {hop}");
    }
    // The chain id was in B's attributes from its creation: linked, no stamp needed.
    let b_entry = &chain["tasks"][1];
    assert_eq!(b_entry["insights_conversation_id"], a.as_str());
    assert!(b_entry["linked_at"].is_string());

    let transfer = flex.get_transfer(&transfer_id).await;
    assert_eq!(transfer["transfer"]["state"], "completed");
    assert_eq!(transfer["transfer"]["new_task_sid"], b.as_str());
}

#[tokio::test]
async fn cold_transfer_of_a_legacy_task_to_a_queue_creates_a_task_and_completes_the_original_once()
{
    let flex = flex(CompleteOn::Accepted).await;
    let a = flex
        .legacy_task_with(
            &flex.alice,
            json!({"channelSid": "CH00000000000000000000000000000042", "name": "Ada"}),
        )
        .await;
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.sales, "idempotency_key": "click-1"}))
        .await;
    assert_eq!(status, 202, "{body}");
    // A double click: same key, same transfer, nothing new.
    let (again, body2) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.sales, "idempotency_key": "click-1"}))
        .await;
    assert_eq!(again, 200);
    assert_eq!(
        body2["transfer"]["transfer_id"],
        body["transfer"]["transfer_id"]
    );
    assert_eq!(body2["created"], false);
    flex.quiesce().await;
    // A second transfer while this one is in flight names it.
    let (conflict, body3) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob}))
        .await;
    assert_eq!(conflict, 409, "{body3}");
    assert_eq!(body3["error"]["code"], "transfer_in_flight");
    assert_eq!(
        body3["error"]["detail"]["transfer_id"],
        body["transfer"]["transfer_id"]
    );

    let creates = flex.requests("POST", "/Tasks");
    let creates: Vec<_> = creates
        .iter()
        .filter(|r| r.path.ends_with("/Tasks"))
        .collect();
    assert_eq!(
        creates.len(),
        2,
        "the original and exactly one transfer task"
    );
    assert_eq!(
        form(creates[1], "WorkflowSid"),
        Some(flex.transfer_workflow.as_str())
    );
    assert_eq!(form(creates[1], "TaskChannel"), Some("chat"));
    let attrs: Value = serde_json::from_str(form(creates[1], "Attributes").unwrap()).unwrap();
    assert_eq!(attrs["name"], "Ada");
    assert_eq!(attrs["transferQueueName"], "Sales");
    assert_eq!(attrs["transferTargetType"], "queue");

    let b = flex.task_after(&a);
    assert_eq!(flex.status(&a), TaskStatus::Assigned);
    flex.accept(&b, &flex.bob).await;
    let completes: Vec<LoggedRequest> = flex
        .requests("POST", &format!("/Tasks/{a}"))
        .into_iter()
        .filter(|r| form(r, "AssignmentStatus") == Some("completed"))
        .collect();
    assert_eq!(completes.len(), 1);
    assert!(form(&completes[0], "Reason").unwrap().contains(&b));
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    let chain = flex.chain(&a).await;
    assert_eq!(chain["hops"][0]["target_type"], "queue");
    assert_eq!(chain["hops"][0]["target_sid"], flex.sales.as_str());
    assert_eq!(chain["hops"][0]["target_name"], "Sales");
    assert_eq!(chain["hops"][0]["outcome"], "completed");
}

#[tokio::test]
async fn a_failed_transfer_leaves_the_customer_with_the_original_agent_under_accepted() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let (status, _) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.sales}))
        .await;
    assert_eq!(status, 202);
    flex.quiesce().await;
    let b = flex.task_after(&a);
    let reservation = flex.twilio.offer(&b, &flex.bob);
    flex.twilio.reject(&reservation);
    flex.twilio.time_out_task(&b);
    flex.quiesce().await;
    assert!(flex
        .requests("POST", &format!("/Channels/{uo}/Participants/"))
        .is_empty());
    assert_eq!(
        flex.status(&a),
        TaskStatus::Assigned,
        "Alice still has the customer"
    );
    let chain = flex.chain(&a).await;
    assert_eq!(chain["hops"][0]["outcome"], "failed");
    assert!(chain["hops"][0]["finished_at"].is_string());
}

#[tokio::test]
async fn a_failed_transfer_is_routed_back_under_created() {
    let flex = flex(CompleteOn::Created).await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let (status, _) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.sales}))
        .await;
    assert_eq!(status, 202);
    flex.quiesce().await;
    // `created`: Alice is released as soon as the transfer task exists.
    let b = flex.task_after(&a);
    assert_eq!(
        flex.requests("POST", &format!("/Channels/{uo}/Participants/"))
            .len(),
        1
    );
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    flex.twilio.time_out_task(&b);
    flex.quiesce().await;
    // Routed back to Alice by known-agent routing, once.
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(invites.len(), 3, "customer, transfer, return");
    let routing: Value = serde_json::from_str(form(&invites[2], "Routing").unwrap()).unwrap();
    // Known-agent routing: no explicit `worker_sid`, whose decline would cancel the task.
    assert_eq!(routing["properties"].get("worker_sid"), None);
    assert_eq!(
        routing["properties"]["attributes"]["originalRouting"]["workerSid"],
        flex.alice.as_str()
    );
    assert_eq!(
        routing["properties"]["attributes"]["baton"]["initiated_by"],
        "baton:return"
    );
    assert_eq!(
        routing["properties"]["attributes"]["baton"]["returning_from"],
        b.as_str()
    );
    assert_eq!(routing["properties"]["attributes"]["customerName"], "Ada");
    let c = flex.task_after(&b);
    flex.accept(&c, &flex.alice).await;
    let chain = flex.chain(&a).await;
    let hops = chain["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{chain}");
    assert_eq!(hops[0]["outcome"], "returned");
    assert_eq!(hops[1]["to_task_sid"], c.as_str());
    assert_eq!(hops[1]["to_worker_sid"], flex.alice.as_str());
    assert_eq!(hops[1]["outcome"], "completed");
}

#[tokio::test]
async fn a_three_hop_chain_is_recorded_in_order() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    flex.transfer(json!({"task_sid": a, "target_sid": flex.bob}))
        .await;
    flex.quiesce().await;
    let b = flex.task_after(&a);
    flex.accept(&b, &flex.bob).await;
    flex.transfer(json!({"task_sid": b, "target_sid": flex.carol, "mode": "cold"}))
        .await;
    flex.quiesce().await;
    let c = flex.task_after(&b);
    flex.accept(&c, &flex.carol).await;
    let chain = flex.chain(&c).await;
    assert_eq!(chain["chain_id"], a.as_str());
    let order: Vec<&str> = chain["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_sid"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec![a.as_str(), b.as_str(), c.as_str()]);
    let hops: Vec<(String, String, String)> = chain["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from_task_sid"].as_str().unwrap().to_owned(),
                h["to_task_sid"].as_str().unwrap().to_owned(),
                h["to_worker_sid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        vec![
            (a.clone(), b.clone(), flex.bob.clone()),
            (b.clone(), c.clone(), flex.carol.clone())
        ]
    );
    assert_eq!(
        flex.requests("POST", &format!("/Channels/{uo}/Participants/"))
            .len(),
        2
    );
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    assert_eq!(flex.status(&b), TaskStatus::Completed);
    assert_eq!(flex.status(&c), TaskStatus::Assigned);
}

#[tokio::test]
async fn duplicated_and_reordered_deliveries_finish_the_original_once_and_record_one_hop() {
    let flex = flex(CompleteOn::Accepted).await;
    let a = flex
        .legacy_task_with(
            &flex.alice,
            json!({"channelSid": "CH00000000000000000000000000000043"}),
        )
        .await;
    flex.twilio.hold_callbacks(true);
    // A transfer made by plugin-chat-sms-transfer (its attributes, its own task creation).
    let b = flex
        .create_task(
            json!({"channelSid": "CH00000000000000000000000000000043", "targetSid": flex.bob,
                        "transferTargetType": "worker", "ignoreAgent": "alice",
                        "conversations": {"conversation_id": a}}),
        )
        .await;
    let reservation = flex.twilio.offer(&b, &flex.bob);
    flex.twilio.accept(&reservation);
    // Everything arrives shuffled, then again.
    flex.twilio.release_callbacks(Release::Shuffled(11));
    flex.quiesce().await;
    for delivered in flex.twilio.callbacks() {
        flex.twilio.redeliver(delivered.event_sid());
    }
    flex.quiesce().await;
    let completes: Vec<LoggedRequest> = flex
        .requests("POST", &format!("/Tasks/{a}"))
        .into_iter()
        .filter(|r| form(r, "AssignmentStatus") == Some("completed"))
        .collect();
    assert_eq!(completes.len(), 1, "the original is finished exactly once");
    let chain = flex.chain(&a).await;
    let hops = chain["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{chain}");
    assert_eq!(hops[0]["vocabulary"], "chat_sms_transfer");
    assert_eq!(hops[0]["initiated_by"], "alice");
    assert_eq!(hops[0]["outcome"], "completed");
    let stored_hops: i64 = sqlx::query_scalar("SELECT count(*) FROM hops")
        .fetch_one(&flex.app.pool)
        .await
        .unwrap();
    assert_eq!(stored_hops, 1);
}

#[tokio::test]
async fn insights_linkage_is_stamped_on_a_chain_task_before_it_completes() {
    let flex = flex(CompleteOn::Accepted).await;
    let a = flex
        .legacy_task_with(
            &flex.alice,
            json!({"channelSid": "CH00000000000000000000000000000044",
            "conversations": {"communication_channel": "chat"}}),
        )
        .await;
    // plugin-chat-sms-transfer's guard: `conversations` existed, so conversation_id is missing.
    let ws = flex.twilio.workspace_sid().to_owned();
    flex.twilio.fail_next(
        "POST",
        &format!("/v1/Workspaces/{ws}/Tasks/WT"),
        1,
        412,
        20412,
    );
    let b = flex
        .create_task(json!({"channelSid": "CH00000000000000000000000000000044", "targetSid": flex.sales,
                        "ignoreAgent": "alice", "conversations": {"communication_channel": "chat"}}))
        .await;
    flex.quiesce().await;
    let attrs: Value = serde_json::from_str(&flex.twilio.task(&b).unwrap().attributes).unwrap();
    assert_eq!(attrs["conversations"]["conversation_id"], a.as_str());
    assert_eq!(
        attrs["conversations"]["communication_channel"], "chat",
        "merged, not replaced"
    );
    assert_eq!(
        attrs["targetSid"],
        flex.sales.as_str(),
        "other attributes kept"
    );
    // GET (ETag) then POST with If-Match; the first write met a 412 and was re-read.
    let writes = flex.requests("POST", &format!("/Tasks/{b}"));
    assert_eq!(writes.len(), 2, "412, then the successful write");
    assert!(writes.iter().all(|w| w.header("if-match").is_some()));
    assert_eq!(writes[0].status, Some(412));
    assert_eq!(
        flex.status(&b),
        TaskStatus::Pending,
        "stamped before completion"
    );
    let chain = flex.chain(&b).await;
    assert!(chain["tasks"][1]["stamped_at"].is_string(), "{chain}");
    assert!(chain["tasks"][1]["linked_at"].is_string(), "{chain}");
    let stamps: Vec<(String, bool)> =
        sqlx::query_as("SELECT task_sid, already_linked FROM insights_stamps")
            .fetch_all(&flex.app.pool)
            .await
            .unwrap();
    assert_eq!(stamps, vec![(b.clone(), false)]);
}

#[tokio::test]
async fn transfer_requests_are_validated() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, _, _) = flex.conversation_with(&flex.alice).await;
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": "XX123"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    let unknown = "WK0000000000000000000000000000dead";
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": unknown}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no such worker"));
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob, "mode": "lukewarm"}))
        .await;
    assert_eq!(status, 400, "{body}");
    flex.twilio.complete(&a);
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "task_not_live");
    let response = flex
        .app
        .client
        .post(format!("{}/api/v1/transfers", flex.app.address))
        .json(&json!({"task_sid": a, "target_sid": flex.bob}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        flex.requests("POST", "/Invites").len() == 1,
        "no transfer was attempted"
    );
}

#[tokio::test]
async fn a_warm_transfer_keeps_the_original_agent_and_a_workflow_target_routes_by_it() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let escalations = flex.twilio.seed_workflow(SeedWorkflow::new("Escalations"));
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": escalations, "mode": "warm"}))
        .await;
    assert_eq!(status, 202, "{body}");
    flex.quiesce().await;
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    let routing: Value = serde_json::from_str(form(&invites[1], "Routing").unwrap()).unwrap();
    assert_eq!(routing["properties"]["workflow_sid"], escalations.as_str());
    assert_eq!(
        routing["properties"]["attributes"]["transferTargetType"],
        "workflow"
    );
    let b = flex.task_after(&a);
    flex.accept(&b, &flex.bob).await;
    // Warm: both agents stay; Alice leaves when she chooses.
    assert!(flex
        .requests("POST", &format!("/Channels/{uo}/Participants/"))
        .is_empty());
    assert_eq!(flex.status(&a), TaskStatus::Assigned);
    let chain = flex.chain(&a).await;
    assert_eq!(chain["hops"][0]["mode"], "warm");
    assert_eq!(chain["hops"][0]["target_type"], "workflow");
    assert_eq!(chain["hops"][0]["outcome"], "completed");
}

#[tokio::test]
async fn a_transfer_back_to_an_agent_in_wrap_up_finishes_that_wrap_up_first() {
    let flex = flex(CompleteOn::Accepted).await;
    let a = flex
        .legacy_task_with(
            &flex.alice,
            json!({"channelSid": "CH00000000000000000000000000000045"}),
        )
        .await;
    flex.transfer(json!({"task_sid": a, "target_sid": flex.bob, "mode": "warm"}))
        .await;
    flex.quiesce().await;
    let b = flex.task_after(&a);
    flex.accept(&b, &flex.bob).await;
    flex.twilio.wrap_up(&a);
    flex.quiesce().await;
    assert_eq!(flex.status(&a), TaskStatus::Wrapping, "Alice is in wrap-up");
    // Bob sends the customer back to Alice.
    let (status, body) = flex
        .transfer(json!({"task_sid": b, "target_sid": flex.alice}))
        .await;
    assert_eq!(status, 202, "{body}");
    flex.quiesce().await;
    // Before any offer reaches Alice, baton completed her stale wrap-up.
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    let completes: Vec<LoggedRequest> = flex
        .requests("POST", &format!("/Tasks/{a}"))
        .into_iter()
        .filter(|r| form(r, "AssignmentStatus") == Some("completed"))
        .collect();
    assert_eq!(completes.len(), 1);
    assert!(form(&completes[0], "Reason").unwrap().contains("wrap-up"));
    let c = flex.task_after(&b);
    flex.accept(&c, &flex.alice).await;
    assert_eq!(flex.status(&c), TaskStatus::Assigned);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_without_a_duplicate_effect() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    let channel = format!("/v1/Interactions/{kd}/Channels/{uo}");
    flex.twilio.fault_next(
        "POST",
        &format!("{channel}/Invites"),
        1,
        twilio_standin::FaultKind::RateLimited,
    );
    flex.twilio.fault_next(
        "POST",
        &format!("{channel}/Invites"),
        1,
        twilio_standin::FaultKind::ErrorAfterApply,
    );
    flex.transfer(json!({"task_sid": a, "target_sid": flex.bob}))
        .await;
    flex.quiesce().await;
    // 429, then a 500 after the invite was made: the retry finds it instead of inviting twice.
    let attempts = flex.requests("POST", &format!("{channel}/Invites"));
    assert_eq!(attempts.len(), 3, "customer, 429, 500-after-apply");
    assert_eq!(attempts[1].status, Some(429));
    let transfer_tasks = flex
        .twilio
        .tasks()
        .into_iter()
        .filter(|t| {
            t.attributes
                .contains(&format!("\"previous_task_sid\":\"{a}\""))
        })
        .count();
    assert_eq!(transfer_tasks, 1, "exactly one transfer task");
    let b = flex.task_after(&a);
    flex.twilio.fault_next(
        "POST",
        &format!("{channel}/Participants/"),
        2,
        twilio_standin::FaultKind::ServerError,
    );
    flex.accept(&b, &flex.bob).await;
    let closes = flex.requests("POST", &format!("{channel}/Participants/"));
    assert_eq!(closes.len(), 3, "two 500s, then the close");
    assert_eq!(closes[2].status, Some(200));
    let closed = flex
        .twilio
        .effects()
        .iter()
        .filter(|e| e.completes_task(&a))
        .count();
    assert_eq!(closed, 1);
    let outbox: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT kind, state, attempts FROM outbox ORDER BY id")
            .fetch_all(&flex.app.pool)
            .await
            .unwrap();
    assert_eq!(
        outbox,
        vec![
            ("create_invite".to_owned(), "done".to_owned(), 3),
            (
                "close_interaction_participant".to_owned(),
                "done".to_owned(),
                3
            ),
        ]
    );
}

#[tokio::test]
async fn a_call_twilio_keeps_refusing_is_dead_lettered_and_shown() {
    let flex = flex_with(CompleteOn::Accepted, 3).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    let invites = format!("/v1/Interactions/{kd}/Channels/{uo}/Invites");
    flex.twilio.fault_next(
        "POST",
        &invites,
        10,
        twilio_standin::FaultKind::ServiceUnavailable,
    );
    let (_, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob}))
        .await;
    let transfer_id = body["transfer"]["transfer_id"].as_str().unwrap().to_owned();
    flex.quiesce().await;
    let (state, last_status, attempts): (String, Option<i32>, i32) = sqlx::query_as(
        "SELECT state, last_status, attempts FROM outbox WHERE idempotency_key = $1",
    )
    .bind(format!("transfer:{transfer_id}"))
    .fetch_one(&flex.app.pool)
    .await
    .unwrap();
    assert_eq!(
        (state.as_str(), last_status, attempts),
        ("dead", Some(503), 3)
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_attempts")
        .fetch_one(&flex.app.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 3);
    let transfer = flex.get_transfer(&transfer_id).await;
    assert_eq!(transfer["transfer"]["state"], "dead");
    assert_eq!(
        flex.status(&a),
        TaskStatus::Assigned,
        "Alice keeps the customer"
    );
}

#[tokio::test]
async fn flex_users_authenticate_with_their_token() {
    let flex = flex(CompleteOn::Accepted).await;
    let (a, _, _) = flex.conversation_with(&flex.alice).await;
    flex.twilio.seed_flex_token(
        "agent-token",
        "alice@example.com",
        Some(&flex.alice),
        &["agent"],
    );
    flex.twilio
        .seed_flex_token("lead-token", "lee@example.com", None, &["supervisor"]);
    let post = |token: &'static str| {
        flex.app
            .client
            .post(format!("{}/api/v1/transfers", flex.app.address))
            .bearer_auth(token)
            .json(&json!({"task_sid": a, "target_sid": flex.bob}))
            .send()
    };
    let refused = post("forged-token").await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let accepted = post("agent-token").await.unwrap();
    assert_eq!(accepted.status(), 202);
    flex.quiesce().await;
    let b = flex.task_after(&a);
    let attrs: Value = serde_json::from_str(&flex.twilio.task(&b).unwrap().attributes).unwrap();
    assert_eq!(attrs["baton"]["initiated_by"], flex.alice.as_str());
    assert_eq!(attrs["workerSidsInConversation"], json!([flex.alice]));
    // History is for supervisors and ops.
    let chain_as = |token: &'static str| {
        flex.app
            .client
            .get(format!("{}/api/v1/tasks/{a}/chain", flex.app.address))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(chain_as("agent-token").await.unwrap().status(), 403);
    assert_eq!(chain_as("lead-token").await.unwrap().status(), 200);
    // Validations are cached: one call to Twilio per token.
    let validations = flex.requests("POST", "/Tokens/validate");
    assert_eq!(validations.len(), 3, "forged, agent, lead");
    assert!(validations
        .iter()
        .all(|r| !format!("{r:?}").contains(flex.twilio.auth_token())));
}

#[tokio::test]
async fn cold_transfers_to_a_worker_a_queue_and_a_workflow_for_interaction_and_legacy_tasks() {
    let flex = flex(CompleteOn::Accepted).await;
    let escalations = flex.twilio.seed_workflow(SeedWorkflow::new("Escalations"));
    let targets = [
        ("worker", flex.carol.clone()),
        ("queue", flex.sales.clone()),
        ("workflow", escalations.clone()),
    ];
    for (n, (kind, target)) in targets.iter().enumerate() {
        // Flex Conversations: an invite, then Alice's participant closed.
        let (a, _, uo) = flex.conversation_with(&flex.alice).await;
        let (status, body) = flex
            .transfer(json!({"task_sid": a, "target_sid": target}))
            .await;
        assert_eq!(status, 202, "{kind}: {body}");
        flex.quiesce().await;
        assert_eq!(body["transfer"]["method"], "invite");
        let b = flex.task_after(&a);
        flex.accept(&b, &flex.bob).await;
        assert_eq!(
            flex.requests("POST", &format!("/Channels/{uo}/Participants/"))
                .len(),
            1,
            "{kind}"
        );
        assert_eq!(flex.status(&a), TaskStatus::Completed, "{kind}");
        let chain = flex.chain(&b).await;
        assert_eq!(chain["hops"][0]["target_type"], *kind);
        assert_eq!(chain["hops"][0]["target_sid"], target.as_str());
        assert_eq!(chain["hops"][0]["outcome"], "completed");

        // Legacy: a new task with every attribute, then the original completed.
        let channel = format!("CH{:032x}", 0x100 + n);
        let a = flex
            .legacy_task_with(&flex.alice, json!({"channelSid": channel, "n": n}))
            .await;
        let (status, body) = flex
            .transfer(json!({"task_sid": a, "target_sid": target}))
            .await;
        assert_eq!(status, 202, "{kind}: {body}");
        assert_eq!(body["transfer"]["method"], "task");
        flex.quiesce().await;
        let b = flex.task_after(&a);
        let created = flex.twilio.task(&b).unwrap();
        let expected_workflow = if *kind == "workflow" {
            escalations.clone()
        } else {
            flex.transfer_workflow.clone()
        };
        assert_eq!(
            created.workflow_sid.as_deref(),
            Some(expected_workflow.as_str())
        );
        assert!(created.attributes.contains(&format!("\"n\":{n}")));
        flex.accept(&b, &flex.bob).await;
        let completes = flex
            .requests("POST", &format!("/Tasks/{a}"))
            .into_iter()
            .filter(|r| form(r, "AssignmentStatus") == Some("completed"))
            .count();
        assert_eq!(completes, 1, "{kind}");
        let chain = flex.chain(&a).await;
        assert_eq!(chain["hops"][0]["target_type"], *kind);
        assert_eq!(chain["hops"][0]["outcome"], "completed");
    }
}
