//! `onParticipantRemoved`: a conversation participant removed over REST (with the webhook
//! header), by closing its interaction participant, or by a play that does that; delivered to
//! the service webhook when its filters name the event and to scoped webhooks that do.

mod common;

use common::receiver::{expected_signature, Received, Receiver};
use common::Client;
use serde_json::json;
use twilio_standin::{
    Effect, SeedConversation, SeedConversationParticipant, SeedInteraction,
    SeedInteractionParticipant, SeedTask, SeedWorker, StandIn, StandInConfig,
};

const IS: &str = "IS00000000000000000000000000000001";

fn names(r: &Received) -> Vec<&str> {
    r.pairs.iter().map(|(k, _)| k.as_str()).collect()
}

/// `2024-01-01T00:00:00.000Z`.
fn webhook_date(dt: chrono::DateTime<chrono::Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn assert_webhook_date(value: &str) {
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .unwrap_or_else(|e| panic!("{value:?} is not RFC 3339: {e}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "{value}");
    assert_eq!(value.len(), 24, "{value}");
}

/// A conversation with an agent (chat identity, with attributes) and an SMS customer.
fn conversation(twilio: &StandIn) -> (String, String, String) {
    let ch = twilio.seed_conversation(
        SeedConversation::new()
            .participant(SeedConversationParticipant {
                attributes: json!({"role": "agent"}),
                ..SeedConversationParticipant::identity("alice")
            })
            .participant(SeedConversationParticipant::sms(
                "+15550001111",
                "+15550002222",
            )),
    );
    let members = twilio.conversation(&ch).unwrap().participants;
    (ch, members[0].sid.clone(), members[1].sid.clone())
}

async fn scoped_webhook(client: &Client, ch: &str, url: &str, filter: &str) -> String {
    let r = client
        .post(
            &format!("/v1/Conversations/{ch}/Webhooks"),
            &[
                ("Target", "webhook"),
                ("Configuration.Url", url),
                ("Configuration.Filters", filter),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.str("sid").to_owned()
}

async fn delete(client: &Client, path: &str, webhooks: bool) {
    let headers: &[(&str, &str)] = if webhooks {
        &[("X-Twilio-Webhook-Enabled", "true")]
    } else {
        &[]
    };
    let r = client
        .send(reqwest::Method::DELETE, path, &[], headers)
        .await
        .expect("DELETE");
    assert_eq!(r.status, 204, "{r:?}");
}

#[tokio::test]
async fn a_rest_removal_with_the_header_reaches_the_service_and_scoped_webhooks() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    let service_url = receiver.url_for("/conversations");
    twilio.set_conversations_webhook_url(Some(service_url.clone()));
    twilio.set_conversations_webhook_filters(&["onMessageAdded", "onParticipantRemoved"]);
    let (ch, _agent, customer) = conversation(&twilio);
    let scoped_url = receiver.url_for("/scoped?x=1");
    let hook = scoped_webhook(&client, &ch, &scoped_url, "onParticipantRemoved").await;
    // Another event's webhook gets nothing.
    scoped_webhook(
        &client,
        &ch,
        &receiver.url_for("/other"),
        "onConversationRemoved",
    )
    .await;
    let seeded = twilio.conversation(&ch).unwrap().participants[1].clone();
    twilio.clear_effects();

    delete(
        &client,
        &format!("/v1/Conversations/{ch}/Participants/{customer}"),
        true,
    )
    .await;
    twilio.settle().await;

    let left: Vec<String> = twilio
        .conversation(&ch)
        .unwrap()
        .participants
        .into_iter()
        .map(|p| p.sid)
        .collect();
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&customer));
    assert_eq!(
        twilio.effects(),
        vec![Effect::ConversationParticipantRemoved {
            conversation_sid: ch.clone(),
            participant_sid: customer.clone(),
        }]
    );
    assert_eq!(
        receiver.types(),
        ["onParticipantRemoved", "onParticipantRemoved"]
    );
    let received = receiver.received();
    let callbacks = twilio.callbacks();
    assert_eq!(received[0].path, "/conversations");
    assert_eq!(callbacks[0].callback.url, service_url);
    assert_eq!(callbacks[0].callback.webhook_sid, None);
    assert_eq!(received[1].path, "/scoped?x=1");
    assert_eq!(callbacks[1].callback.url, scoped_url);
    assert_eq!(
        callbacks[1].callback.webhook_sid.as_deref(),
        Some(hook.as_str())
    );
    assert_ne!(
        callbacks[0].callback.idempotency_token,
        callbacks[1].callback.idempotency_token
    );
    for (got, sent) in received.iter().zip(&callbacks) {
        assert!(sent.is_conversations());
        assert_eq!(sent.event_type(), "onParticipantRemoved");
        assert_eq!(got.pairs, sent.callback.params);
        assert_eq!(
            got.header("x-twilio-signature"),
            Some(expected_signature(twilio.auth_token(), &sent.callback.url, &got.pairs).as_str())
        );
    }
    assert_eq!(received[0].pairs, received[1].pairs);

    let removed = &received[0];
    assert_eq!(
        names(removed),
        [
            "AccountSid",
            "EventType",
            "Source",
            "ChatServiceSid",
            "ConversationSid",
            "ParticipantSid",
            "DateCreated",
            "DateUpdated",
            "DateRemoved",
            "MessagingBinding.Address",
            "MessagingBinding.ProxyAddress",
            "MessagingBinding.Type",
            "Attributes",
        ]
    );
    let p = |name: &str| removed.param(name).unwrap();
    assert_eq!(p("AccountSid"), twilio.account_sid());
    assert_eq!(p("EventType"), "onParticipantRemoved");
    assert_eq!(p("Source"), "API");
    assert_eq!(p("ChatServiceSid"), IS);
    assert_eq!(p("ConversationSid"), ch);
    assert_eq!(p("ParticipantSid"), customer);
    assert_eq!(p("DateCreated"), webhook_date(seeded.date_created));
    assert_eq!(p("DateUpdated"), webhook_date(seeded.date_updated));
    assert_webhook_date(p("DateRemoved"));
    assert!(p("DateRemoved") >= p("DateUpdated"));
    assert_eq!(p("MessagingBinding.Address"), "+15550001111");
    assert_eq!(p("MessagingBinding.ProxyAddress"), "+15550002222");
    assert_eq!(p("MessagingBinding.Type"), "SMS");
    assert_eq!(p("Attributes"), "{}");
}

#[tokio::test]
async fn a_chat_participant_is_named_by_identity_and_needs_the_header_over_rest() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    twilio.set_conversations_webhook_filters(&["onParticipantRemoved"]);
    let (ch, agent, customer) = conversation(&twilio);

    // Without the header: removed, no webhook.
    delete(
        &client,
        &format!("/v1/Conversations/{ch}/Participants/{customer}"),
        false,
    )
    .await;
    // With it, addressed by identity.
    delete(
        &client,
        &format!("/v1/Conversations/{ch}/Participants/alice"),
        true,
    )
    .await;
    twilio.settle().await;

    assert!(twilio.conversation(&ch).unwrap().participants.is_empty());
    assert_eq!(twilio.effects().len(), 2);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let removed = &received[0];
    assert_eq!(
        names(removed),
        [
            "AccountSid",
            "EventType",
            "Source",
            "ChatServiceSid",
            "ConversationSid",
            "ParticipantSid",
            "DateCreated",
            "DateUpdated",
            "DateRemoved",
            "Identity",
            "Attributes",
        ]
    );
    assert_eq!(removed.param("ParticipantSid"), Some(agent.as_str()));
    assert_eq!(removed.param("Identity"), Some("alice"));
    assert_eq!(removed.param("Attributes"), Some(r#"{"role":"agent"}"#));
}

#[tokio::test]
async fn the_default_service_filters_leave_it_to_scoped_webhooks() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    assert_eq!(
        twilio.conversations_webhook_filters(),
        [
            "onConversationStateUpdated",
            "onConversationRemoved",
            "onMessageAdded"
        ]
    );
    let (ch, _agent, customer) = conversation(&twilio);
    let other = twilio.seed_conversation(
        SeedConversation::new().participant(SeedConversationParticipant::identity("bob")),
    );
    let bob = twilio.conversation(&other).unwrap().participants[0]
        .sid
        .clone();
    scoped_webhook(
        &client,
        &ch,
        &receiver.url_for("/scoped"),
        "onParticipantRemoved",
    )
    .await;

    for path in [
        format!("/v1/Conversations/{ch}/Participants/{customer}"),
        format!("/v1/Conversations/{other}/Participants/{bob}"),
    ] {
        delete(&client, &path, true).await;
    }
    twilio.settle().await;

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/scoped");
    assert_eq!(received[0].param("ParticipantSid"), Some(customer.as_str()));
}

/// A Flex conversation task accepted by alice: she is in the channel and the conversation.
async fn flex_chat(twilio: &StandIn) -> (String, String, String, String, String) {
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let ch = twilio.seed_conversation(SeedConversation::new().participant(
        SeedConversationParticipant::sms("+15550001111", "+15550002222"),
    ));
    let seeded = twilio.seed_interaction(
        SeedInteraction::new()
            .conversation(&ch)
            .participant(SeedInteractionParticipant::customer()),
    );
    let task = twilio.seed_task(SeedTask::new().channel("chat").attributes(json!({
        "conversationSid": ch,
        "flexInteractionSid": seeded.interaction_sid,
        "flexInteractionChannelSid": seeded.channel_sid,
    })));
    let reservation = twilio.offer(&task, &alice);
    twilio.accept(&reservation);
    let alice_ut = twilio.channel(&seeded.channel_sid).unwrap().participants[1]
        .sid
        .clone();
    let alice_mb = twilio.conversation(&ch).unwrap().participants[1]
        .sid
        .clone();
    let path = format!(
        "/v1/Interactions/{}/Channels/{}/Participants/{alice_ut}",
        seeded.interaction_sid, seeded.channel_sid
    );
    (ch, task, alice, alice_mb, path)
}

#[tokio::test]
async fn closing_the_agents_interaction_participant_always_fires_after_the_task_events() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    let (ch, task, _alice, alice_mb, path) = flex_chat(&twilio).await;
    twilio.set_callback_url(Some(receiver.url.clone()));
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    twilio.set_conversations_webhook_filters(&["onParticipantRemoved"]);

    // No webhook header: the removal is Twilio's own.
    let r = client.post(&path, &[("Status", "closed")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    twilio.settle().await;

    assert_eq!(
        receiver.types(),
        [
            "reservation.completed",
            "task.completed",
            "onParticipantRemoved"
        ]
    );
    let received = receiver.received();
    let removed = &received[2];
    assert_eq!(removed.path, "/conversations");
    assert_eq!(received[1].param("TaskSid"), Some(task.as_str()));
    assert_eq!(removed.param("ConversationSid"), Some(ch.as_str()));
    assert_eq!(removed.param("ParticipantSid"), Some(alice_mb.as_str()));
    assert_eq!(removed.param("Identity"), Some("alice"));
    assert_eq!(removed.param("Source"), Some("API"));
    assert_eq!(removed.param("MessagingBinding.Address"), None);
    assert_eq!(twilio.conversation(&ch).unwrap().participants.len(), 1);
}

#[tokio::test]
async fn plays_that_close_the_agent_fire_it_too() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let (ch, task, _alice, alice_mb, _path) = flex_chat(&twilio).await;
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    twilio.set_conversations_webhook_filters(&["onParticipantRemoved"]);

    twilio.fpt_transfer(&task, &bob, false);
    twilio.settle().await;

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].event_type(), "onParticipantRemoved");
    assert_eq!(received[0].param("ConversationSid"), Some(ch.as_str()));
    assert_eq!(received[0].param("ParticipantSid"), Some(alice_mb.as_str()));
}
