//! Playing flex-project-template: conversation transfers (cold, warm, invite joined or
//! canceled) and park / unpark, against the same state, effects and events as its REST calls.

mod common;

use common::receiver::Receiver;
use common::{event_types, timeless_events, Client};
use serde_json::{json, Value};
use twilio_standin::{
    ConversationStatus, Effect, ParticipantStatus, SeedConversation, SeedConversationParticipant,
    SeedInteraction, SeedInteractionParticipant, SeedTask, SeedTaskQueue, SeedWorker, SeedWorkflow,
    StandIn, StandInConfig, TaskStatus,
};

/// An SMS conversation on a Flex interaction, its task accepted by alice (who joined the
/// channel and the conversation as Flex makes her).
struct Chat {
    twilio: StandIn,
    client: Client,
    alice: String,
    bob: String,
    billing: String,
    ch: String,
    kd: String,
    uo: String,
    task: String,
    reservation: String,
    /// alice's interaction participant (`UT…`) and conversation participant (`MB…`).
    alice_ut: String,
    alice_mb: String,
    /// The original task's attributes.
    attributes: Value,
    /// Events before the play.
    events_before: usize,
}

async fn chat(conversations: Value, conversation_attributes: Value) -> Chat {
    let twilio = StandIn::start(StandInConfig {
        generate_events: true,
        ..StandInConfig::default()
    })
    .await;
    let client = Client::new(&twilio);
    let alice = twilio.seed_worker(
        SeedWorker::new("alice")
            .attributes(json!({"full_name": "Alice Archer", "contact_uri": "client:alice"})),
    );
    let bob =
        twilio.seed_worker(SeedWorker::new("bob").attributes(json!({"full_name": "Bob Baker"})));
    let billing = twilio.seed_task_queue(SeedTaskQueue::new("Billing"));
    let ch = twilio.seed_conversation(
        SeedConversation::new()
            .attributes(conversation_attributes)
            .participant(SeedConversationParticipant::sms(
                "+15550001111",
                "+15550002222",
            )),
    );
    let seeded = twilio.seed_interaction(
        SeedInteraction::new()
            .conversation(&ch)
            .participant(SeedInteractionParticipant::customer()),
    );
    let (kd, uo) = (seeded.interaction_sid, seeded.channel_sid);
    let mut attributes = json!({
        "conversationSid": ch,
        "flexInteractionSid": kd,
        "flexInteractionChannelSid": uo,
        "customerAddress": "+15550001111",
        "channelType": "sms",
    });
    if !conversations.is_null() {
        attributes["conversations"] = conversations;
    }
    let task = twilio.seed_task(
        SeedTask::new()
            .channel("chat")
            .attributes(attributes.clone()),
    );
    let reservation = twilio.offer(&task, &alice);
    twilio.accept(&reservation);
    let channel = twilio.channel(&uo).unwrap();
    let alice_ut = channel.participants[1].sid.clone();
    let alice_mb = twilio.conversation(&ch).unwrap().participants[1]
        .sid
        .clone();
    twilio.clear_effects();
    let events_before = twilio.events().len();
    Chat {
        client,
        alice,
        bob,
        billing,
        ch,
        kd,
        uo,
        task,
        reservation,
        alice_ut,
        alice_mb,
        attributes,
        events_before,
        twilio,
    }
}

impl Chat {
    fn channel_path(&self) -> String {
        format!("/v1/Interactions/{}/Channels/{}", self.kd, self.uo)
    }

    fn attributes_of(&self, task: &str) -> Value {
        self.twilio.task(task).unwrap().attributes_json()
    }

    /// The invite the channel holds for `task`: its `KG…` SID.
    fn invite_for(&self, task: &str) -> String {
        let channel = self.twilio.channel(&self.uo).unwrap();
        channel
            .invites
            .iter()
            .find(|i| i.task_sid == task)
            .map(|i| i.sid.clone())
            .expect("invite")
    }

    fn types(&self) -> Vec<String> {
        event_types(&self.twilio, self.events_before)
    }

    /// What the invite adds to the attributes it is given.
    fn invite_marks(&self, attributes: &mut Value, invite: &str) {
        attributes["flexInteractionSid"] = json!(self.kd);
        attributes["flexInteractionChannelSid"] = json!(self.uo);
        attributes["flexChannelInviteSid"] = json!(invite);
        attributes["conversationSid"] = json!(self.ch);
    }
}

#[tokio::test]
async fn cold_transfer_to_a_worker_invites_then_closes_the_callers_participant() {
    let c = chat(Value::Null, json!({})).await;
    let new_task = c.twilio.fpt_transfer(&c.task, &c.bob, false);
    assert_ne!(new_task, c.task);
    let invite = c.invite_for(&new_task);

    let mut expected = c.attributes.clone();
    expected["workerSidsInConversation"] = json!([c.alice]);
    expected["transferTargetSid"] = json!(c.bob);
    expected["transferQueueName"] = json!("");
    expected["transferTargetType"] = json!("worker");
    expected["conversations"] = json!({"conversation_id": c.task});
    c.invite_marks(&mut expected, &invite);
    assert_eq!(c.attributes_of(&new_task), expected);
    assert!(c.attributes_of(&new_task).get("transferMode").is_none());

    let created = c.twilio.task(&new_task).unwrap();
    assert_eq!(created.assignment_status, TaskStatus::Pending);
    assert_eq!(created.task_channel_unique_name, "chat");
    assert_eq!(
        created.workflow_sid.as_deref(),
        Some(c.twilio.default_workflow_sid().as_str())
    );
    let original = c.twilio.task(&c.task).unwrap();
    assert_eq!(original.assignment_status, TaskStatus::Completed);
    assert_eq!(
        original.reason.as_deref(),
        Some("Interaction participant closed")
    );

    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::TaskCreated {
                task_sid: new_task.clone(),
                invite_sid: Some(invite.clone()),
            },
            Effect::InviteCreated {
                interaction_sid: c.kd.clone(),
                channel_sid: c.uo.clone(),
                invite_sid: invite.clone(),
                task_sid: new_task.clone(),
            },
            Effect::InteractionParticipantStatusChanged {
                interaction_sid: c.kd.clone(),
                channel_sid: c.uo.clone(),
                participant_sid: c.alice_ut.clone(),
                from: None,
                to: "closed".into(),
            },
            Effect::TaskStatusChanged {
                task_sid: c.task.clone(),
                from: "assigned".into(),
                to: "completed".into(),
                reason: Some("Interaction participant closed".into()),
            },
            Effect::ReservationStatusChanged {
                reservation_sid: c.reservation.clone(),
                task_sid: c.task.clone(),
                worker_sid: c.alice.clone(),
                from: "accepted".into(),
                to: "completed".into(),
            },
            Effect::ConversationParticipantRemoved {
                conversation_sid: c.ch.clone(),
                participant_sid: c.alice_mb.clone(),
            },
        ]
    );
    assert_eq!(
        c.types(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.completed",
            "task.completed"
        ]
    );
    // The caller left; the customer and the conversation stay; its attributes are untouched.
    let channel = c.twilio.channel(&c.uo).unwrap();
    assert_eq!(
        channel.participants[1].status,
        Some(ParticipantStatus::Closed)
    );
    let conversation = c.twilio.conversation(&c.ch).unwrap();
    assert_eq!(conversation.state, ConversationStatus::Active);
    assert_eq!(conversation.participants.len(), 1);
    assert_eq!(c.twilio.conversation_attributes(&c.ch), json!({}));
    // A play is not a request.
    assert!(c.twilio.requests().is_empty());
}

#[tokio::test]
async fn the_invites_list_shows_each_invites_task_in_routing_properties_sid() {
    let c = chat(Value::Null, json!({})).await;
    let first = c.twilio.fpt_transfer(&c.task, &c.bob, true);
    let second = c.twilio.fpt_transfer(&c.task, &c.billing, true);
    let r = c.client.get(&format!("{}/Invites", c.channel_path())).await;
    assert_eq!(r.status, 200, "{r:?}");
    let invites = r.json["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 2);
    for (listed, task) in invites.iter().zip([&first, &second]) {
        assert_eq!(listed["sid"], c.invite_for(task).as_str());
        assert_eq!(listed["routing"]["properties"]["sid"], task.as_str());
        assert_eq!(
            listed["routing"]["properties"]["workspace_sid"],
            c.twilio.workspace_sid()
        );
        assert_eq!(listed["routing"]["reservation"], Value::Null);
        assert_eq!(listed["channel_sid"], c.uo.as_str());
    }
}

#[tokio::test]
async fn warm_transfer_to_a_queue_records_the_invite_in_the_conversation() {
    let root = "WT0000000000000000000000000000root";
    let c = chat(
        json!({"conversation_id": root, "initiated_by": "customer"}),
        json!({"keep": 1, "invites": {"WTolder": {"targetSid": "WKx"}}}),
    )
    .await;
    let chat_transfer = c
        .twilio
        .seed_workflow(SeedWorkflow::new("Chat Transfer").queue(&c.billing));
    let new_task = c.twilio.fpt_transfer(&c.task, &c.billing, true);
    let invite = c.invite_for(&new_task);

    let mut expected = c.attributes.clone();
    expected["workerSidsInConversation"] = json!([c.alice]);
    expected["transferTargetSid"] = json!(c.billing);
    expected["transferQueueName"] = json!("Billing");
    expected["transferTargetType"] = json!("queue");
    expected["conversations"] = json!({"conversation_id": root, "initiated_by": "customer"});
    c.invite_marks(&mut expected, &invite);
    assert_eq!(c.attributes_of(&new_task), expected);
    let created = c.twilio.task(&new_task).unwrap();
    assert_eq!(
        created.workflow_sid.as_deref(),
        Some(chat_transfer.as_str())
    );
    assert_eq!(created.task_queue_sid.as_deref(), Some(c.billing.as_str()));

    // The agent stays; the invite is in the conversation's attributes, merged.
    let conversation = c.twilio.conversation_attributes(&c.ch);
    let entry = &conversation["invites"][&new_task];
    let stamp = entry["timestampCreated"].as_str().unwrap().to_owned();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&stamp).is_ok(),
        "{stamp}"
    );
    assert_eq!(
        conversation,
        json!({"keep": 1, "invites": {
            "WTolder": {"targetSid": "WKx"},
            new_task.clone(): {
                "invitesTaskSid": new_task,
                "targetSid": c.billing,
                "timestampCreated": stamp,
                "targetName": "Billing",
                "inviteTargetType": "Queue",
            },
        }})
    );
    assert_eq!(
        c.twilio.task(&c.task).unwrap().assignment_status,
        TaskStatus::Assigned
    );
    assert_eq!(
        c.twilio.channel(&c.uo).unwrap().participants[1].status,
        None
    );
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::TaskCreated {
                task_sid: new_task.clone(),
                invite_sid: Some(invite.clone()),
            },
            Effect::InviteCreated {
                interaction_sid: c.kd.clone(),
                channel_sid: c.uo.clone(),
                invite_sid: invite,
                task_sid: new_task.clone(),
            },
            Effect::ConversationUpdated {
                conversation_sid: c.ch.clone(),
                changed: vec!["Attributes".into()],
            },
        ]
    );
    assert_eq!(c.types(), ["task.created", "task-queue.entered"]);

    // The invited agent joins: the entry goes, the others stay.
    c.twilio.clear_effects();
    c.twilio.fpt_invite_joined(&c.ch, &new_task);
    assert_eq!(
        c.twilio.conversation_attributes(&c.ch),
        json!({"keep": 1, "invites": {"WTolder": {"targetSid": "WKx"}}})
    );
    assert_eq!(
        c.twilio.effects(),
        vec![Effect::ConversationUpdated {
            conversation_sid: c.ch.clone(),
            changed: vec!["Attributes".into()],
        }]
    );
    // Joined again: nothing to remove, nothing written.
    c.twilio.fpt_invite_joined(&c.ch, &new_task);
    assert_eq!(c.twilio.effects().len(), 1);
}

#[tokio::test]
async fn warm_transfer_to_a_worker_names_them_and_the_invite_can_be_canceled() {
    let c = chat(Value::Null, json!({})).await;
    let target = c.bob.clone();
    let new_task = c.twilio.fpt_transfer(&c.task, &target, true);
    let conversation = c.twilio.conversation_attributes(&c.ch);
    let entry = &conversation["invites"][&new_task];
    assert_eq!(entry["targetName"], "Bob Baker");
    assert_eq!(entry["inviteTargetType"], "Worker");
    assert_eq!(entry["targetSid"], target.as_str());
    assert_eq!(entry["invitesTaskSid"], new_task.as_str());
    assert_eq!(c.attributes_of(&new_task)["transferTargetType"], "worker");

    let offered = c.twilio.offer(&new_task, &c.bob);
    c.twilio.clear_effects();
    let before = c.twilio.events().len();
    c.twilio.fpt_cancel_invite(&c.ch, &new_task);
    let canceled = c.twilio.task(&new_task).unwrap();
    assert_eq!(canceled.assignment_status, TaskStatus::Canceled);
    assert_eq!(canceled.reason.as_deref(), Some("canceled by agent"));
    assert_eq!(
        c.twilio.conversation_attributes(&c.ch),
        json!({"invites": {}})
    );
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::TaskStatusChanged {
                task_sid: new_task.clone(),
                from: "reserved".into(),
                to: "canceled".into(),
                reason: Some("canceled by agent".into()),
            },
            Effect::ReservationStatusChanged {
                reservation_sid: offered.clone(),
                task_sid: new_task.clone(),
                worker_sid: c.bob.clone(),
                from: "pending".into(),
                to: "canceled".into(),
            },
            Effect::ConversationUpdated {
                conversation_sid: c.ch.clone(),
                changed: vec!["Attributes".into()],
            },
        ]
    );
    let events = c.twilio.events();
    let types: Vec<&str> = events[before..]
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reservation.canceled", "task.canceled"]);
    assert_eq!(
        events.last().unwrap()["event_data"]["task_canceled_reason"],
        "canceled by agent"
    );
}

#[tokio::test]
#[should_panic(expected = "not in a state that allows this change")]
async fn canceling_an_invite_already_accepted_panics() {
    let c = chat(Value::Null, json!({})).await;
    let new_task = c.twilio.fpt_transfer(&c.task, &c.bob, true);
    let offered = c.twilio.offer(&new_task, &c.bob);
    c.twilio.accept(&offered);
    c.twilio.fpt_cancel_invite(&c.ch, &new_task);
}

#[tokio::test]
#[should_panic(
    expected = "is not a Flex Conversations task: its attributes have no conversationSid"
)]
async fn transferring_a_task_that_is_not_a_flex_conversation_panics() {
    let c = chat(Value::Null, json!({})).await;
    let voice = c.twilio.seed_task(SeedTask::new().channel("voice"));
    c.twilio.fpt_transfer(&voice, &c.bob, false);
}

/// The same setup twice (same seed): one plays, the other makes the template's REST calls.
#[tokio::test]
async fn a_cold_transfer_play_equals_the_templates_rest_calls() {
    let played = chat(json!({"conversation_id": "WTroot"}), json!({})).await;
    let called = chat(json!({"conversation_id": "WTroot"}), json!({})).await;
    let new_task = played
        .twilio
        .fpt_transfer(&played.task, &played.billing, false);

    let c = &called;
    let ws = c.client.ws(&c.twilio);
    let fetched = c.client.get(&format!("{ws}/Tasks/{}", c.task)).await;
    let mut attributes: Value =
        serde_json::from_str(fetched.json["attributes"].as_str().unwrap()).unwrap();
    attributes["workerSidsInConversation"] = json!([c.alice]);
    attributes["transferTargetSid"] = json!(c.billing);
    attributes["transferQueueName"] = json!("Billing");
    attributes["transferTargetType"] = json!("queue");
    attributes["conversations"]["conversation_id"] = json!("WTroot");
    let routing = json!({"properties": {
        "task_channel_unique_name": "chat",
        "workspace_sid": c.twilio.workspace_sid(),
        "workflow_sid": c.twilio.default_workflow_sid(),
        "attributes": attributes,
    }})
    .to_string();
    let invite = c
        .client
        .post(
            &format!("{}/Invites", c.channel_path()),
            &[("Routing", routing.as_str())],
        )
        .await;
    assert_eq!(invite.status, 200, "{invite:?}");
    assert_eq!(
        invite.json["routing"]["properties"]["sid"],
        new_task.as_str()
    );
    let closed = c
        .client
        .post(
            &format!("{}/Participants/{}", c.channel_path(), c.alice_ut),
            &[("Status", "closed")],
        )
        .await;
    assert_eq!(closed.status, 200);

    assert_eq!(played.twilio.effects(), called.twilio.effects());
    assert_eq!(played.twilio.tasks(), {
        let mut tasks = called.twilio.tasks();
        // Only the clock may differ.
        for (mine, theirs) in tasks.iter_mut().zip(played.twilio.tasks()) {
            mine.date_created = theirs.date_created;
            mine.date_updated = theirs.date_updated;
            mine.task_queue_entered_date = theirs.task_queue_entered_date;
            mine.virtual_start_time = theirs.virtual_start_time;
        }
        tasks
    });
    let events = timeless_events(&played.twilio, played.events_before);
    assert_eq!(events.len(), 4);
    assert_eq!(
        events,
        timeless_events(&called.twilio, called.events_before)
    );
}

#[tokio::test]
async fn park_then_unpark_when_the_customer_writes() {
    let receiver = Receiver::start();
    let c = chat(Value::Null, json!({"invites": {"WTgone": {}}})).await;
    let unpark_url = receiver.url_for("/features/park-interaction/common/unpark-interaction");
    let webhook = c.twilio.fpt_park(&c.task, &unpark_url);
    assert!(webhook.starts_with("WH") && webhook.len() == 34);

    let conversation = c.twilio.conversation(&c.ch).unwrap();
    assert_eq!(conversation.webhooks.len(), 1);
    let hook = &conversation.webhooks[0];
    assert_eq!(hook.sid, webhook);
    assert_eq!(hook.target, "webhook");
    assert_eq!(hook.method.as_deref(), Some("post"));
    assert_eq!(hook.filters, ["onMessageAdded"]);
    assert_eq!(hook.url.as_deref(), Some(unpark_url.as_str()));
    // The agent left: their task completed; the conversation stays active with the customer.
    assert_eq!(
        c.twilio.task(&c.task).unwrap().assignment_status,
        TaskStatus::Completed
    );
    assert_eq!(conversation.state, ConversationStatus::Active);
    assert_eq!(conversation.participants.len(), 1);
    // The attributes are replaced (the invites are gone).
    let everyone = c.twilio.default_task_queue_sid();
    assert_eq!(
        c.twilio.conversation_attributes(&c.ch),
        json!({
            "interactionSid": c.kd,
            "channelSid": c.uo,
            "participantSid": c.alice_ut,
            "taskSid": c.task,
            "workflowSid": c.twilio.default_workflow_sid(),
            "taskChannelUniqueName": "chat",
            "queueName": "Everyone",
            "queueSid": everyone,
            "workerSid": c.alice,
            "taskAttributes": c.attributes,
            "webhookSid": webhook,
        })
    );
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::WebhookCreated {
                conversation_sid: c.ch.clone(),
                webhook_sid: webhook.clone(),
            },
            Effect::InteractionParticipantStatusChanged {
                interaction_sid: c.kd.clone(),
                channel_sid: c.uo.clone(),
                participant_sid: c.alice_ut.clone(),
                from: None,
                to: "closed".into(),
            },
            Effect::TaskStatusChanged {
                task_sid: c.task.clone(),
                from: "assigned".into(),
                to: "completed".into(),
                reason: Some("Interaction participant closed".into()),
            },
            Effect::ReservationStatusChanged {
                reservation_sid: c.reservation.clone(),
                task_sid: c.task.clone(),
                worker_sid: c.alice.clone(),
                from: "accepted".into(),
                to: "completed".into(),
            },
            Effect::ConversationParticipantRemoved {
                conversation_sid: c.ch.clone(),
                participant_sid: c.alice_mb.clone(),
            },
            Effect::ConversationUpdated {
                conversation_sid: c.ch.clone(),
                changed: vec!["Attributes".into()],
            },
        ]
    );
    assert_eq!(c.types(), ["reservation.completed", "task.completed"]);

    // The customer writes: the park's webhook gets onMessageAdded.
    let message = c.twilio.customer_writes(&c.ch, "I'm back");
    c.twilio.settle().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].path,
        "/features/park-interaction/common/unpark-interaction"
    );
    assert_eq!(received[0].param("EventType"), Some("onMessageAdded"));
    assert_eq!(received[0].param("MessageSid"), Some(message.as_str()));
    assert_eq!(received[0].param("ConversationSid"), Some(c.ch.as_str()));

    // The unpark function runs.
    c.twilio.clear_effects();
    let before = c.twilio.events().len();
    let stored = c.twilio.conversation_attributes(&c.ch);
    let resumed = c.twilio.fpt_unpark(&c.ch, false);
    let invite = c.invite_for(&resumed);
    let mut expected = c.attributes.clone();
    expected["originalRouting"] =
        json!({"queueName": "Everyone", "queueSid": everyone, "workerSid": c.alice});
    c.invite_marks(&mut expected, &invite);
    assert_eq!(c.attributes_of(&resumed), expected);
    let task = c.twilio.task(&resumed).unwrap();
    assert_eq!(task.assignment_status, TaskStatus::Pending);
    assert_eq!(task.routing_target, None);
    assert_eq!(task.task_channel_unique_name, "chat");
    assert_eq!(
        task.workflow_sid.as_deref(),
        Some(c.twilio.default_workflow_sid().as_str())
    );
    assert!(c.twilio.conversation(&c.ch).unwrap().webhooks.is_empty());
    // The stored attributes are never cleared.
    assert_eq!(c.twilio.conversation_attributes(&c.ch), stored);
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::WebhookDeleted {
                conversation_sid: c.ch.clone(),
                webhook_sid: webhook,
            },
            Effect::TaskCreated {
                task_sid: resumed.clone(),
                invite_sid: Some(invite.clone()),
            },
            Effect::InviteCreated {
                interaction_sid: c.kd.clone(),
                channel_sid: c.uo.clone(),
                invite_sid: invite,
                task_sid: resumed.clone(),
            },
        ]
    );
    assert_eq!(
        event_types(&c.twilio, before),
        ["task.created", "task-queue.entered"]
    );
    // A second message reaches no webhook.
    c.twilio.customer_writes(&c.ch, "hello?");
    c.twilio.settle().await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn unpark_to_the_same_worker_routes_to_them() {
    let c = chat(Value::Null, json!({})).await;
    c.twilio.fpt_park(&c.task, "http://127.0.0.1:9/unpark");
    c.twilio.set_auto_offer(true);
    let before = c.twilio.events().len();
    let resumed = c.twilio.fpt_unpark(&c.ch, true);
    let task = c.twilio.task(&resumed).unwrap();
    assert_eq!(task.routing_target.as_deref(), Some(c.alice.as_str()));
    assert_eq!(
        task.task_queue_sid.as_deref(),
        Some(c.twilio.default_task_queue_sid().as_str())
    );
    assert_eq!(task.assignment_status, TaskStatus::Reserved);
    let reservation = c.twilio.reservation(&task.reservations[0]).unwrap();
    assert_eq!(reservation.worker_sid, c.alice);
    assert_eq!(
        event_types(&c.twilio, before),
        ["task.created", "task-queue.entered", "reservation.created"]
    );
    assert_eq!(
        c.attributes_of(&resumed)["originalRouting"]["workerSid"],
        c.alice.as_str()
    );
}

#[tokio::test]
#[should_panic(expected = "answered 404 (20404)")]
async fn a_second_unpark_stops_at_the_deleted_webhook() {
    let c = chat(Value::Null, json!({})).await;
    c.twilio.fpt_park(&c.task, "http://127.0.0.1:9/unpark");
    c.twilio.fpt_unpark(&c.ch, false);
    c.twilio.fpt_unpark(&c.ch, false);
}

#[tokio::test]
#[should_panic(expected = "no agent working task")]
async fn parking_without_the_agent_in_the_channel_panics() {
    let c = chat(Value::Null, json!({})).await;
    c.twilio.fpt_transfer(&c.task, &c.bob, false);
    c.twilio.fpt_park(&c.task, "http://127.0.0.1:9/unpark");
}
