//! Parks end to end: voice parks observed from the transfer-park plugin's attributes, messaging
//! parks asked of baton and resumed by the customer, ops or the TTL.

use crate::flex::*;
use serde_json::{json, Value};
use std::time::Duration;
use twilio_standin::{LoggedRequest, Release, TaskStatus};

const GRACE: Duration = Duration::from_millis(300);

async fn rig(park_ttl: Duration) -> Flex {
    Flex::start(FlexOptions {
        orphan_grace: Some(GRACE),
        park_ttl,
        ..FlexOptions::default()
    })
    .await
}

impl Flex {
    /// A voice call accepted by `worker`: the task and the worker's reservation.
    async fn call_with(&self, worker: &str) -> (String, String) {
        let ws = self.twilio.workspace_sid().to_owned();
        let task = self
            .twilio_post(
                &format!("/v1/Workspaces/{ws}/Tasks"),
                &[
                    (
                        "Attributes",
                        json!({"call_sid": "CA00000000000000000000000000000001",
                               "from": "+14155550123", "type": "inbound"})
                        .to_string(),
                    ),
                    ("WorkflowSid", self.twilio.default_workflow_sid()),
                    ("TaskChannel", "voice".into()),
                ],
            )
            .await["sid"]
            .as_str()
            .expect("sid")
            .to_owned();
        let reservation = self.twilio.offer(&task, worker);
        self.twilio.accept(&reservation);
        self.quiesce().await;
        (task, reservation)
    }

    /// What the transfer-park plugin does: mark the task parked for the agent's own contact
    /// URI, then transfer the call to the agent: the park reservation.
    async fn park_call(&self, task: &str, worker: &str) -> String {
        let ws = self.twilio.workspace_sid().to_owned();
        let current: Value =
            serde_json::from_str(&self.twilio.task(task).expect("task").attributes)
                .expect("attributes");
        let mut parked = current.clone();
        parked["workerParked"] = json!(true);
        parked["targetWorkerContactUri"] = json!("client:alice");
        self.twilio_post(
            &format!("/v1/Workspaces/{ws}/Tasks/{task}"),
            &[("Attributes", parked.to_string())],
        )
        .await;
        let reservation = self.twilio.transfer_call(task, worker);
        self.quiesce().await;
        reservation
    }

    async fn parks(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.api_get(&format!("/api/v1/parks{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["parks"].as_array().expect("parks").clone()
    }

    /// The one open park's id.
    async fn parked_id(&self) -> String {
        let parks = self.parks("?state=parked").await;
        assert_eq!(parks.len(), 1, "{parks:?}");
        parks[0]["park_id"].as_str().expect("park_id").to_owned()
    }

    async fn park_view(&self, park_id: &str) -> Value {
        let (status, body) = self.api_get(&format!("/api/v1/parks/{park_id}")).await;
        assert_eq!(status, 200, "{body}");
        body["park"].clone()
    }

    async fn wait_for_park_state(&self, park_id: &str, state: &str) -> Value {
        wait_until(
            &format!("park {park_id} {state}"),
            Duration::from_secs(15),
            || async { self.park_view(park_id).await["state"] == state },
        )
        .await;
        self.quiesce().await;
        self.park_view(park_id).await
    }

    /// Parks a conversation task through baton: the park.
    async fn park_conversation(&self, task: &str, extra: Value) -> Value {
        let mut body = json!({"task_sid": task});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, body) = self.api_post("/api/v1/parks", body).await;
        assert_eq!(status, 201, "{body}");
        self.quiesce().await;
        body["park"].clone()
    }
}

fn conversation_of(flex: &Flex, uo: &str) -> String {
    flex.twilio
        .channel(uo)
        .and_then(|c| c.conversation_sid)
        .expect("conversation")
}

fn routing(invite: &LoggedRequest) -> Value {
    serde_json::from_str(form(invite, "Routing").expect("Routing")).expect("JSON")
}

// ---- voice ----

#[tokio::test]
async fn a_parked_call_is_recorded_its_left_behind_reservation_finished_once_and_picked_up() {
    let flex = rig(Duration::from_secs(600)).await;
    let (task, own) = flex.call_with(&flex.alice).await;
    let parked = flex.park_call(&task, &flex.alice).await;

    let finishes = flex.requests("POST", &format!("/Reservations/{own}"));
    assert_eq!(finishes.len(), 1, "the left-behind reservation, once");
    assert_eq!(form(&finishes[0], "ReservationStatus"), Some("completed"));
    let parks = flex.parks("?state=parked").await;
    assert_eq!(parks.len(), 1);
    let park = &parks[0];
    assert_eq!(park["kind"], "voice");
    assert_eq!(park["task_sid"], task.as_str());
    assert_eq!(park["worker_sid"], flex.alice.as_str());
    assert_eq!(park["vocabulary"], "worker_parked");
    assert_eq!(park["reservation_sids"], json!([parked]));
    let id = park["park_id"].as_str().unwrap().to_owned();
    let by_worker = flex.parks(&format!("?worker_sid={}", flex.alice)).await;
    assert_eq!(by_worker.len(), 1);
    assert!(flex
        .parks(&format!("?worker_sid={}", flex.bob))
        .await
        .is_empty());

    // Alice picks the call up.
    flex.twilio.accept(&parked);
    let park = flex.wait_for_park_state(&id, "resumed").await;
    assert_eq!(park["ended_by"], "pickup");
    assert_eq!(
        flex.requests("POST", &format!("/Reservations/{own}")).len(),
        1,
        "still once"
    );
}

#[tokio::test]
async fn a_parked_call_never_picked_up_is_unparked_to_its_queue_after_the_ttl() {
    let flex = rig(Duration::from_secs(1)).await;
    let (task, _) = flex.call_with(&flex.alice).await;
    flex.park_call(&task, &flex.alice).await;
    let id = flex.parked_id().await;
    let park = flex.wait_for_park_state(&id, "expired").await;
    assert_eq!(park["ended_by"], "ttl");
    let updates: Vec<LoggedRequest> = flex
        .requests("POST", &format!("/Tasks/{task}"))
        .into_iter()
        .filter(|r| r.path.ends_with(&task) && form(r, "Attributes").is_some())
        .collect();
    // The plugin's own update, then baton's un-park.
    assert_eq!(updates.len(), 2, "{updates:?}");
    let unparked: Value = serde_json::from_str(form(&updates[1], "Attributes").unwrap()).unwrap();
    assert_eq!(unparked.get("workerParked"), None);
    assert_eq!(unparked.get("targetWorkerContactUri"), None);
    assert_eq!(unparked["baton_unparked"], id.as_str());
    assert_eq!(unparked["from"], "+14155550123", "nothing else is lost");
    assert!(updates[1]
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("if-match")));
}

#[tokio::test]
async fn a_parked_reservation_that_times_out_puts_the_worker_back_in_their_activity() {
    let flex = rig(Duration::from_secs(600)).await;
    let before = flex.twilio.worker(&flex.alice).expect("alice").activity_sid;
    let (task, _) = flex.call_with(&flex.alice).await;
    let parked = flex.park_call(&task, &flex.alice).await;
    flex.twilio.time_out_reservation(&parked);
    flex.quiesce().await;
    wait_until(
        "alice back in her activity",
        Duration::from_secs(15),
        || async { flex.twilio.worker(&flex.alice).expect("alice").activity_sid == before },
    )
    .await;
    flex.quiesce().await;
    let restores = flex.requests("POST", &format!("/Workers/{}", flex.alice));
    assert_eq!(restores.len(), 1, "restored once");
    assert_eq!(form(&restores[0], "ActivitySid"), Some(before.as_str()));
    assert_eq!(
        flex.parks("?state=parked").await.len(),
        1,
        "still parked: the call waits to be offered again"
    );
}

#[tokio::test]
async fn a_caller_hanging_up_while_parked_ends_the_park() {
    let flex = rig(Duration::from_secs(600)).await;
    let (task, _) = flex.call_with(&flex.alice).await;
    flex.park_call(&task, &flex.alice).await;
    let id = flex.parked_id().await;
    flex.twilio.cancel_task(&task, "hangup");
    let park = flex.wait_for_park_state(&id, "ended").await;
    assert_eq!(park["ended_by"], "hangup");
}

// ---- messaging ----

#[tokio::test]
async fn a_parked_conversation_resumes_once_when_the_customer_writes_with_its_hold_time() {
    let flex = rig(Duration::from_secs(600)).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    let park = flex
        .park_conversation(&a, json!({"notes": "waiting for a photo"}))
        .await;
    let id = park["park_id"].as_str().unwrap().to_owned();
    assert_eq!(park["state"], "parked");
    assert_eq!(park["kind"], "messaging");
    assert_eq!(
        park["expires_at"],
        Value::Null,
        "SMS parks have no default TTL"
    );

    let webhooks = flex.requests("POST", &format!("/v1/Conversations/{ch}/Webhooks"));
    assert_eq!(webhooks.len(), 1);
    assert_eq!(form(&webhooks[0], "Target"), Some("webhook"));
    assert_eq!(
        form(&webhooks[0], "Configuration.Filters"),
        Some("onMessageAdded")
    );
    let url = form(&webhooks[0], "Configuration.Url").unwrap();
    assert_eq!(
        url,
        format!("{}/webhooks/conversations?park={id}", flex.app.address)
    );
    let leaves = flex.requests("POST", &format!("/Channels/{uo}/Participants/"));
    assert_eq!(leaves.len(), 1, "Alice leaves");
    assert_eq!(flex.status(&a), TaskStatus::Completed);
    // Parked: the orphan cleanup leaves it alone.
    flex.quiesce().await;
    tokio::time::sleep(GRACE * 4).await;
    flex.quiesce().await;
    assert!(flex
        .requests("POST", &format!("/Channels/{uo}"))
        .iter()
        .all(|r| !r.path.ends_with(&uo)));

    // The customer writes twice; the webhooks arrive duplicated.
    flex.twilio.hold_callbacks(true);
    flex.twilio.customer_writes(&ch, "here is the photo");
    flex.twilio.customer_writes(&ch, "hello?");
    flex.twilio.release_callbacks(Release::Duplicated);
    let park = flex.wait_for_park_state(&id, "resumed").await;
    assert_eq!(park["ended_by"], "customer_message");
    assert_eq!(park["resume_route"], "same_worker");

    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(
        invites.len(),
        2,
        "the customer's first invite, then one resume"
    );
    let props = &routing(&invites[1])["properties"];
    let attrs = &props["attributes"];
    assert_eq!(attrs["customerName"], "Ada", "every original attribute");
    assert_eq!(attrs["originalRouting"]["workerSid"], flex.alice.as_str());
    assert!(attrs["originalRouting"]["queueSid"].is_string());
    assert_eq!(props.get("worker_sid"), None, "known-worker routing");
    assert_eq!(attrs["conversations"]["conversation_id"], a.as_str());
    let hold = attrs["conversations"]["hold_time"]
        .as_i64()
        .expect("hold_time");
    assert!((hold - park["hold_seconds"].as_i64().unwrap()).abs() <= 1);
    // The webhook is removed.
    assert_eq!(
        flex.requests("DELETE", &format!("/v1/Conversations/{ch}/Webhooks/"))
            .len(),
        1
    );
    assert!(flex
        .twilio
        .conversation(&ch)
        .expect("conversation")
        .webhooks
        .is_empty());

    let resumed = park["resumed_task_sid"]
        .as_str()
        .expect("resumed task")
        .to_owned();
    let chain = flex.chain(&resumed).await;
    assert_eq!(chain["chain_id"], a.as_str());
    let hops = chain["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0]["from_task_sid"], a.as_str());
    assert_eq!(hops[0]["to_task_sid"], resumed.as_str());
    let view = flex.api_get(&format!("/api/v1/conversations/{ch}")).await.1;
    assert_eq!(view["parks"][0]["park_id"], id.as_str());
    let _ = kd;
}

#[tokio::test]
async fn ops_resume_a_park_to_the_same_worker_or_to_the_queue() {
    let flex = rig(Duration::from_secs(600)).await;
    let (a, _, uo_a) = flex.conversation_with(&flex.alice).await;
    let (b, _, uo_b) = flex.conversation_with(&flex.bob).await;
    let park_a = flex.park_conversation(&a, json!({})).await["park_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let park_b = flex.park_conversation(&b, json!({})).await["park_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, body) = flex
        .api_post(
            &format!("/api/v1/parks/{park_a}/resume"),
            json!({"route": "same_worker"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["park"]["ended_by"], "ops");
    let (status, body) = flex
        .api_post(
            &format!("/api/v1/parks/{park_b}/resume"),
            json!({"route": "queue"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["park"]["resume_route"], "queue");
    flex.quiesce().await;

    let to_alice = flex.requests("POST", &format!("/Channels/{uo_a}/Invites"));
    assert_eq!(
        routing(&to_alice[1])["properties"]["attributes"]["originalRouting"]["workerSid"],
        flex.alice.as_str()
    );
    let to_queue = flex.requests("POST", &format!("/Channels/{uo_b}/Invites"));
    let original = &routing(&to_queue[1])["properties"]["attributes"]["originalRouting"];
    assert_eq!(original.get("workerSid"), None);
    assert!(original["queueSid"].is_string());

    // Resuming twice is refused, naming the state.
    let (status, body) = flex
        .api_post(&format!("/api/v1/parks/{park_a}/resume"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_parked");
    let (status, body) = flex
        .api_post(
            &format!("/api/v1/parks/{park_a}/resume"),
            json!({"route": "anywhere"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // An id baton never made is not found; one it could not have made is not an id.
    let unknown = format!("PA{}", "0".repeat(32));
    let (status, _) = flex
        .api_post(&format!("/api/v1/parks/{unknown}/resume"), json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, body) = flex
        .api_post("/api/v1/parks/PA0000/resume", json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(flex.parks("?state=resumed").await.len(), 2);
    let (status, body) = flex.api_get("/api/v1/parks?state=sleeping").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(flex.parks("?state=resumed&limit=1").await.len(), 1);
    // The page size follows the one rule of every listing, and says so.
    let (status, body) = flex.api_get("/api/v1/parks?limit=ten").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "limit \"ten\" must be a whole number from 1 to 500"
    );
}

#[tokio::test]
async fn a_park_past_its_ttl_is_resumed_to_the_queue() {
    let flex = rig(Duration::from_secs(600)).await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let id = flex.park_conversation(&a, json!({"ttl_seconds": 1})).await["park_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let park = flex.wait_for_park_state(&id, "expired").await;
    assert_eq!(park["ended_by"], "ttl");
    assert_eq!(park["resume_route"], "queue");
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    assert_eq!(invites.len(), 2);
    assert_eq!(
        routing(&invites[1])["properties"]["attributes"]["originalRouting"].get("workerSid"),
        None
    );
}

#[tokio::test]
async fn parking_a_task_that_is_not_live_is_a_conflict() {
    let flex = rig(Duration::from_secs(600)).await;
    let c = flex.customer_writes_in().await;
    flex.quiesce().await;
    let (status, body) = flex
        .api_post("/api/v1/parks", json!({"task_sid": c.task}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "task_not_live");
    let (a, _, _) = flex.conversation_with(&flex.alice).await;
    flex.park_conversation(&a, json!({})).await;
    let (status, body) = flex.api_post("/api/v1/parks", json!({"task_sid": a})).await;
    assert_eq!(status, 409, "parked tasks are completed: {body}");
    assert!(flex.requests("POST", "/Webhooks").len() == 1);
}

#[tokio::test]
async fn an_unsigned_resume_webhook_is_refused_and_resumes_nothing() {
    let flex = rig(Duration::from_secs(600)).await;
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    let id = flex.park_conversation(&a, json!({})).await["park_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = flex
        .app
        .client
        .post(format!(
            "{}/webhooks/conversations?park={id}",
            flex.app.address
        ))
        .form(&[
            ("EventType", "onMessageAdded"),
            ("ConversationSid", ch.as_str()),
            ("Body", "let me in"),
            ("Author", "+14155550100"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
    flex.quiesce().await;
    assert_eq!(flex.park_view(&id).await["state"], "parked");
    assert_eq!(
        flex.requests("POST", &format!("/Channels/{uo}/Invites"))
            .len(),
        1
    );
}

#[tokio::test]
async fn a_conversation_closed_while_parked_ends_the_park() {
    let flex = rig(Duration::from_secs(600)).await;
    flex.twilio.set_conversations_webhook_url(Some(format!(
        "{}/webhooks/conversations",
        flex.app.address
    )));
    let (a, _, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    let id = flex.park_conversation(&a, json!({})).await["park_id"]
        .as_str()
        .unwrap()
        .to_owned();
    flex.twilio.close_conversation_by_timer(&ch);
    let park = flex.wait_for_park_state(&id, "ended").await;
    assert_eq!(park["ended_by"], "conversation_closed");
    assert_eq!(
        flex.requests("POST", &format!("/Channels/{uo}/Invites"))
            .len(),
        1
    );
}

#[tokio::test]
async fn a_park_asked_before_baton_saw_the_parked_task_resumes_into_its_chain() {
    let flex = rig(Duration::from_secs(600)).await;
    let (a, kd, uo) = flex.conversation_with(&flex.alice).await;
    let ch = conversation_of(&flex, &uo);
    // A plugin's cold transfer (its own invite, no Insights id; it removes Alice itself),
    // accepted and parked at once: baton has processed none of B's events when the park is
    // asked.
    flex.twilio.hold_callbacks(true);
    let b = flex
        .invite(
            &kd,
            &uo,
            json!({"conversationSid": ch, "from": "+14155550100", "customerName": "Ada",
                   "transferTargetSid": flex.bob, "transferTargetType": "worker",
                   "workerSidsInConversation": [flex.alice]}),
        )
        .await;
    flex.close_agent_participant(&kd, &uo, &a).await;
    let reservation = flex.twilio.offer(&b, &flex.bob);
    flex.twilio.accept(&reservation);
    let id = flex.park_conversation(&b, json!({})).await["park_id"]
        .as_str()
        .unwrap()
        .to_owned();
    flex.twilio.release_callbacks(Release::InOrder);
    flex.quiesce().await;

    flex.twilio.customer_writes(&ch, "back again");
    let park = flex.wait_for_park_state(&id, "resumed").await;
    let invites = flex.requests("POST", &format!("/Channels/{uo}/Invites"));
    let resume = invites.last().expect("the resume invite");
    let attrs = &routing(resume)["properties"]["attributes"];
    assert_eq!(
        attrs["conversations"]["conversation_id"],
        a.as_str(),
        "the chain's id, not the parked task's own SID"
    );
    let c = park["resumed_task_sid"].as_str().expect("resumed task");
    let chain = flex.chain(c).await;
    assert_eq!(chain["chain_id"], a.as_str());
    assert!(
        flex.requests("POST", &format!("/Tasks/{c}")).is_empty(),
        "linked from its creation: no Insights stamp needed"
    );
    // B alone needed its stamp.
    let stamps: Vec<String> = sqlx::query_scalar("SELECT task_sid FROM insights_stamps")
        .fetch_all(&flex.app.pool)
        .await
        .unwrap();
    assert_eq!(stamps, vec![b.clone()]);
}

#[tokio::test]
async fn a_park_asked_while_twilio_rate_limits_the_task_read_waits_and_parks() {
    let flex = rig(Duration::from_secs(600)).await;
    let (a, _, _) = flex.conversation_with(&flex.alice).await;
    let path = format!("/v1/Workspaces/{}/Tasks/{a}", flex.twilio.workspace_sid());
    // One 429 (Retry-After: 1) and one 500 on the read baton makes while the caller waits.
    flex.twilio
        .fault_next("GET", &path, 1, twilio_standin::FaultKind::RateLimited);
    flex.twilio
        .fault_next("GET", &path, 1, twilio_standin::FaultKind::ServerError);
    let started = std::time::Instant::now();
    let park = flex.park_conversation(&a, json!({})).await;
    assert_eq!(park["state"], "parked", "{park}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Twilio's Retry-After was honoured"
    );
    let reads = flex.requests("GET", &path).len();
    assert!(
        reads >= 3,
        "the 429, the 500, then the read that answered: {reads}"
    );
}
