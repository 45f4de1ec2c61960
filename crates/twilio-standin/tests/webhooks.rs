//! Conversations post-action webhooks: what the stand-in POSTs to the service webhook and to
//! conversation-scoped webhooks, and how they share the TaskRouter callback queue.

mod common;

use common::receiver::{expected_signature, Received, Receiver};
use common::{assert_error, Client};
use serde_json::json;
use twilio_standin::{
    AttemptOutcome, CallbackKind, ConversationStatus, DeliveredCallback, Effect, Release,
    SeedConversation, SeedConversationParticipant, SeedInteraction, SeedInteractionParticipant,
    SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus,
};

const MG: &str = "MG00000000000000000000000000000001";
const IS: &str = "IS00000000000000000000000000000001";

fn names(r: &Received) -> Vec<&str> {
    let mut names: Vec<&str> = r.pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names
}

/// `2024-01-01T00:00:00.000Z`: ISO 8601, UTC, milliseconds.
fn assert_webhook_date(value: &str) {
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .unwrap_or_else(|e| panic!("{value:?} is not RFC 3339: {e}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "{value}");
    assert_eq!(value.len(), 24, "{value}");
    assert!(
        value.ends_with('Z') && value.as_bytes()[19] == b'.',
        "{value}"
    );
}

/// The receiver got exactly what the stand-in recorded, signed for the recorded URL.
fn assert_signed(twilio: &StandIn, received: &[Received], callbacks: &[DeliveredCallback]) {
    assert_eq!(received.len(), callbacks.len());
    for (got, sent) in received.iter().zip(callbacks) {
        assert_eq!(got.method, "POST");
        assert_eq!(got.pairs, sent.callback.params);
        assert_eq!(
            got.header("x-twilio-signature"),
            Some(sent.callback.signature.as_str())
        );
        assert_eq!(
            sent.callback.signature,
            expected_signature(twilio.auth_token(), &sent.callback.url, &got.pairs)
        );
        assert_eq!(
            got.header("i-twilio-idempotency-token"),
            Some(sent.callback.idempotency_token.as_str())
        );
        assert_eq!(
            got.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(got.header("user-agent"), Some("TwilioProxy/1.1"));
    }
}

/// An SMS customer and an agent (a worker's chat identity).
fn sms_conversation(twilio: &StandIn) -> (String, String, String) {
    twilio.seed_worker(SeedWorker::new("alice").attributes(json!({"contact_uri": "client:alice"})));
    let ch = twilio.seed_conversation(
        SeedConversation::new()
            .participant(SeedConversationParticipant::identity("alice"))
            .participant(SeedConversationParticipant::sms(
                "+15550001111",
                "+15550002222",
            )),
    );
    let members = twilio.conversation(&ch).unwrap().participants;
    (ch, members[0].sid.clone(), members[1].sid.clone())
}

#[tokio::test]
async fn a_customer_message_sends_on_message_added_with_twilios_parameters() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let url = receiver.url_for("/webhooks/conversations?tenant=acme");
    twilio.set_conversations_webhook_url(Some(url.clone()));
    assert_eq!(twilio.conversations_webhook_url(), Some(url.clone()));
    assert_eq!(
        twilio.conversations_webhook_filters(),
        [
            "onConversationStateUpdated",
            "onConversationRemoved",
            "onMessageAdded"
        ]
    );
    let (ch, _agent, customer) = sms_conversation(&twilio);

    let first = twilio.customer_writes(&ch, "héllo ✓ & = +");
    let second = twilio.customer_writes(&ch, "still there?");
    twilio.settle().await;

    assert!(first.starts_with("IM") && first.len() == 34);
    let messages = twilio.messages(&ch);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].sid, first);
    assert_eq!(messages[1].sid, second);
    assert_eq!(messages[0].index, 0);
    assert_eq!(messages[1].index, 1);
    assert_eq!(messages[0].author, "+15550001111");
    assert_eq!(
        messages[0].participant_sid.as_deref(),
        Some(customer.as_str())
    );
    assert!(twilio.effects().contains(&Effect::MessageAdded {
        conversation_sid: ch.clone(),
        message_sid: first.clone(),
        participant_sid: Some(customer.clone()),
    }));

    let received = receiver.received();
    let callbacks = twilio.callbacks();
    assert_eq!(received.len(), 2);
    assert_signed(&twilio, &received, &callbacks);
    let added = &received[0];
    assert_eq!(added.path, "/webhooks/conversations?tenant=acme");
    assert_eq!(
        names(added),
        [
            "AccountSid",
            "Attributes",
            "Author",
            "Body",
            "ChatServiceSid",
            "ConversationSid",
            "DateCreated",
            "EventType",
            "Index",
            "MessageSid",
            "MessagingServiceSid",
            "ParticipantSid",
            "Source",
        ]
    );
    let p = |name: &str| added.param(name).unwrap();
    assert_eq!(p("AccountSid"), twilio.account_sid());
    assert_eq!(p("EventType"), "onMessageAdded");
    assert_eq!(p("Source"), "SDK");
    assert_eq!(p("ChatServiceSid"), IS);
    assert_eq!(p("ConversationSid"), ch);
    assert_eq!(p("MessageSid"), first);
    assert_eq!(p("MessagingServiceSid"), MG);
    assert_eq!(p("Index"), "0");
    assert_eq!(p("Body"), "héllo ✓ & = +");
    assert_eq!(p("Author"), "+15550001111");
    assert_eq!(p("ParticipantSid"), customer);
    assert_eq!(p("Attributes"), "{}");
    assert_webhook_date(p("DateCreated"));
    assert_eq!(
        p("DateCreated"),
        messages[0]
            .date_created
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    );
    assert_eq!(received[1].param("Index"), Some("1"));
    assert_eq!(received[1].param("MessageSid"), Some(second.as_str()));

    // How a test finds them: kind, event type, the URL signed, the token as the id.
    let c = &callbacks[0];
    assert_eq!(c.kind(), CallbackKind::Conversations);
    assert!(c.is_conversations());
    assert_eq!(c.event_type(), "onMessageAdded");
    assert_eq!(c.callback.url, url);
    assert_eq!(c.callback.webhook_sid, None);
    assert_eq!(c.event_sid(), c.callback.idempotency_token);
    assert_ne!(
        callbacks[0].callback.idempotency_token,
        callbacks[1].callback.idempotency_token
    );
    assert_eq!(c.attempts, [AttemptOutcome::Status(204)]);
}

#[tokio::test]
async fn a_chat_customer_writes_as_an_sdk_client_and_wakes_an_inactive_conversation() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    let worker = twilio.seed_worker(SeedWorker::new("Agent Smith"));
    let task = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    // The agent's identity names no worker: the interaction channel says it is the agent.
    let ch = twilio.seed_conversation(
        SeedConversation::new()
            .state(ConversationStatus::Inactive)
            .participant(SeedConversationParticipant::identity("agent-smith-7"))
            .participant(SeedConversationParticipant::identity("customer-42")),
    );
    let members = twilio.conversation(&ch).unwrap().participants;
    twilio.seed_interaction(
        SeedInteraction::new()
            .conversation(&ch)
            .participant(SeedInteractionParticipant::customer())
            .participant(
                SeedInteractionParticipant::agent(&task)
                    .worker(&worker)
                    .conversation_participant(&members[0].sid),
            ),
    );

    let im = twilio.customer_writes(&ch, "hi");
    twilio.settle().await;
    assert_eq!(
        twilio.conversation(&ch).unwrap().state,
        ConversationStatus::Active
    );
    let received = receiver.received();
    assert_eq!(
        receiver.types(),
        ["onConversationStateUpdated", "onMessageAdded"]
    );
    let woke = &received[0];
    assert_eq!(woke.param("Reason"), Some("EVENT"));
    assert_eq!(woke.param("StateFrom"), Some("inactive"));
    assert_eq!(woke.param("StateTo"), Some("active"));
    assert_eq!(woke.param("Source"), Some("SDK"));
    assert_eq!(woke.param("ClientIdentity"), Some("customer-42"));
    let added = &received[1];
    assert_eq!(added.param("MessageSid"), Some(im.as_str()));
    assert_eq!(added.param("Author"), Some("customer-42"));
    assert_eq!(added.param("ClientIdentity"), Some("customer-42"));
    assert_eq!(added.param("Source"), Some("SDK"));
    assert_eq!(added.param("ParticipantSid"), Some(members[1].sid.as_str()));
}

#[tokio::test]
async fn rest_state_changes_and_deletes_fire_only_with_the_webhook_header() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    let ch = twilio.seed_conversation(SeedConversation::new());
    let path = format!("/v1/Conversations/{ch}");

    // Without the header (or with false): the change, no webhook.
    let r = client.post(&path, &[("State", "inactive")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .post_with(
            &path,
            &[("State", "active")],
            &[("X-Twilio-Webhook-Enabled", "false")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    twilio.settle().await;
    assert!(receiver.received().is_empty());

    let r = client
        .post_with(
            &path,
            &[("State", "closed")],
            &[("X-Twilio-Webhook-Enabled", "true")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Closing again changes nothing and sends nothing.
    let r = client
        .post_with(
            &path,
            &[("State", "closed")],
            &[("X-Twilio-Webhook-Enabled", "true")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    twilio.settle().await;
    let received = receiver.received();
    assert_eq!(receiver.types(), ["onConversationStateUpdated"]);
    let updated = &received[0];
    assert_eq!(
        names(updated),
        [
            "AccountSid",
            "ChatServiceSid",
            "ConversationSid",
            "EventType",
            "MessagingServiceSid",
            "Reason",
            "Source",
            "StateFrom",
            "StateTo",
            "StateUpdated",
        ]
    );
    let p = |name: &str| updated.param(name).unwrap();
    assert_eq!(p("AccountSid"), twilio.account_sid());
    assert_eq!(p("ChatServiceSid"), IS);
    assert_eq!(p("ConversationSid"), ch);
    assert_eq!(p("MessagingServiceSid"), MG);
    assert_eq!(p("Reason"), "API");
    assert_eq!(p("Source"), "API");
    assert_eq!(p("StateFrom"), "active");
    assert_eq!(p("StateTo"), "closed");
    assert_webhook_date(p("StateUpdated"));
    assert_signed(&twilio, &received, &twilio.callbacks());

    // DELETE without the header: removed, no webhook.
    let quiet = twilio.seed_conversation(SeedConversation::new());
    let r = client.delete(&format!("/v1/Conversations/{quiet}")).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert!(twilio.conversation(&quiet).is_none());
    assert!(twilio.effects().contains(&Effect::ConversationRemoved {
        conversation_sid: quiet.clone(),
    }));
    // By unique name, with the header: onConversationRemoved.
    let loud = twilio.seed_conversation(
        SeedConversation::new()
            .unique_name("support-7")
            .friendly_name("Support 7")
            .attributes(json!({"k": "v"})),
    );
    let before = twilio.conversation(&loud).unwrap();
    let r = client
        .send(
            reqwest::Method::DELETE,
            "/v1/Conversations/support-7",
            &[],
            &[("X-Twilio-Webhook-Enabled", "true")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 204, "{r:?}");
    assert_error(
        &client.delete(&format!("/v1/Conversations/{loud}")).await,
        404,
        20404,
    );
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        ["onConversationStateUpdated", "onConversationRemoved"]
    );
    let removed = &receiver.received()[1];
    assert_eq!(
        names(removed),
        [
            "AccountSid",
            "Attributes",
            "ChatServiceSid",
            "ConversationSid",
            "DateCreated",
            "DateRemoved",
            "DateUpdated",
            "EventType",
            "FriendlyName",
            "MessagingServiceSid",
            "Source",
            "State",
            "UniqueName",
        ]
    );
    let p = |name: &str| removed.param(name).unwrap();
    assert_eq!(p("ConversationSid"), loud);
    assert_eq!(p("ChatServiceSid"), IS);
    assert_eq!(p("MessagingServiceSid"), MG);
    assert_eq!(p("FriendlyName"), "Support 7");
    assert_eq!(p("UniqueName"), "support-7");
    assert_eq!(p("Attributes"), r#"{"k":"v"}"#);
    assert_eq!(p("State"), "active");
    assert_eq!(p("Source"), "API");
    assert_eq!(
        p("DateCreated"),
        before
            .date_created
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    );
    for date in ["DateCreated", "DateUpdated", "DateRemoved"] {
        assert_webhook_date(p(date));
    }
}

#[tokio::test]
async fn interaction_closes_timers_and_removals_fire_their_webhooks() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));

    // Closing the interaction channel closes its conversation: Twilio's own change, Reason=API.
    let ch = twilio.seed_conversation(SeedConversation::new());
    let seeded = twilio.seed_interaction(SeedInteraction::new().conversation(&ch));
    let r = client
        .post(
            &format!(
                "/v1/Interactions/{}/Channels/{}",
                seeded.interaction_sid, seeded.channel_sid
            ),
            &[("Status", "closed")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // The close timer.
    let timed =
        twilio.seed_conversation(SeedConversation::new().state(ConversationStatus::Inactive));
    twilio.close_conversation_by_timer(&timed);
    assert_eq!(
        twilio.conversation(&timed).unwrap().state,
        ConversationStatus::Closed
    );
    // Twilio removes one.
    twilio.remove_conversation(&timed);
    assert!(twilio.conversation(&timed).is_none());
    twilio.settle().await;

    assert_eq!(
        receiver.types(),
        [
            "onConversationStateUpdated",
            "onConversationStateUpdated",
            "onConversationRemoved"
        ]
    );
    let received = receiver.received();
    let fields = |r: &Received| {
        [
            "ConversationSid",
            "Reason",
            "StateFrom",
            "StateTo",
            "Source",
        ]
        .map(|n| r.param(n).unwrap_or_default().to_owned())
    };
    assert_eq!(
        fields(&received[0]),
        [ch.as_str(), "API", "active", "closed", "API"]
    );
    assert_eq!(
        fields(&received[1]),
        [timed.as_str(), "TIMER", "inactive", "closed", "API"]
    );
    assert_eq!(received[2].param("ConversationSid"), Some(timed.as_str()));
    assert_eq!(received[2].param("State"), Some("closed"));
}

#[tokio::test]
async fn conversation_scoped_webhooks_get_what_their_filters_name_at_their_url() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    let (ch, _agent, _customer) = sms_conversation(&twilio);
    let hooks = format!("/v1/Conversations/{ch}/Webhooks");
    let create = |form: Vec<(&'static str, String)>| {
        let client = &client;
        let hooks = &hooks;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = client.post(hooks, &form).await;
            assert_eq!(r.status, 201, "{r:?}");
            r.str("sid").to_owned()
        }
    };
    let messages_url = receiver.url_for("/unpark?x=1");
    // Configured as GET: delivered as POST anyway.
    let messages_hook = create(vec![
        ("Target", "webhook".into()),
        ("Configuration.Url", messages_url.clone()),
        ("Configuration.Method", "GET".into()),
        ("Configuration.Filters", "onMessageAdded".into()),
        ("Configuration.Filters", "onConversationStateUpdated".into()),
    ])
    .await;
    let removed_url = receiver.url_for("/removed");
    let removed_hook = create(vec![
        ("Target", "webhook".into()),
        ("Configuration.Url", removed_url.clone()),
        ("Configuration.Filters", "onConversationRemoved".into()),
    ])
    .await;
    // Not webhooks: never delivered.
    create(vec![
        ("Target", "trigger".into()),
        ("Configuration.Url", receiver.url_for("/trigger")),
        ("Configuration.Triggers", "keyword".into()),
    ])
    .await;
    create(vec![
        ("Target", "studio".into()),
        (
            "Configuration.FlowSid",
            "FW00000000000000000000000000000001".into(),
        ),
    ])
    .await;

    // No service webhook: only the scoped ones.
    let im = twilio.customer_writes(&ch, "back again");
    twilio.settle().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, "/unpark?x=1");
    assert_eq!(received[0].param("MessageSid"), Some(im.as_str()));
    let callbacks = twilio.callbacks();
    assert_eq!(callbacks[0].callback.url, messages_url);
    assert_eq!(
        callbacks[0].callback.webhook_sid.as_deref(),
        Some(messages_hook.as_str())
    );

    // With the service webhook too: each target its own delivery and token.
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/service")));
    let r = client
        .post_with(
            &format!("/v1/Conversations/{ch}"),
            &[("State", "closed")],
            &[("X-Twilio-Webhook-Enabled", "true")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/Conversations/{ch}"),
            &[],
            &[("X-Twilio-Webhook-Enabled", "true")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 204, "{r:?}");
    twilio.settle().await;
    let received = receiver.received();
    let got: Vec<(&str, &str)> = received[1..]
        .iter()
        .map(|r| (r.path.as_str(), r.event_type()))
        .collect();
    assert_eq!(
        got,
        [
            ("/service", "onConversationStateUpdated"),
            ("/unpark?x=1", "onConversationStateUpdated"),
            ("/service", "onConversationRemoved"),
            ("/removed", "onConversationRemoved"),
        ]
    );
    assert_eq!(received[1].pairs, received[2].pairs);
    assert_ne!(
        received[1].header("i-twilio-idempotency-token"),
        received[2].header("i-twilio-idempotency-token")
    );
    let callbacks = twilio.callbacks();
    assert_signed(&twilio, &received, &callbacks);
    assert_eq!(callbacks[4].callback.url, removed_url);
    assert_eq!(
        callbacks[4].callback.webhook_sid.as_deref(),
        Some(removed_hook.as_str())
    );
    assert!(callbacks.iter().all(DeliveredCallback::is_conversations));
}

#[tokio::test]
async fn conversations_webhooks_share_the_queue_with_taskrouter_callbacks() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    twilio.set_callback_url(Some(receiver.url.clone()));
    let conversations_url = receiver.url_for("/webhooks/conversations");
    twilio.set_conversations_webhook_url(Some(conversations_url.clone()));
    let (ch, _agent, _customer) = sms_conversation(&twilio);

    // Held, then released reversed: both products, in one order.
    twilio.hold_callbacks(true);
    let r = client
        .post(
            &format!("{}/Tasks", client.ws(&twilio)),
            &[("Attributes", "{}")],
        )
        .await;
    assert_eq!(r.status, 201);
    twilio.customer_writes(&ch, "one");
    let queued = twilio.queued_callbacks();
    assert_eq!(
        queued.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [
            CallbackKind::TaskRouter,
            CallbackKind::TaskRouter,
            CallbackKind::Conversations
        ]
    );
    // A TaskRouter callback gets its URL when sent; a Conversations one has it already.
    assert_eq!(queued[0].url, "");
    assert_eq!(queued[2].url, conversations_url);
    twilio.settle().await;
    assert!(receiver.received().is_empty());
    twilio.release_callbacks(Release::Reversed);
    twilio.settle().await;
    let got: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| (r.path.clone(), r.event_type().to_owned()))
        .collect();
    assert_eq!(
        got,
        [
            ("/webhooks/conversations".into(), "onMessageAdded".into()),
            ("/webhooks/taskrouter".into(), "task-queue.entered".into()),
            ("/webhooks/taskrouter".into(), "task.created".into()),
        ]
    );

    // Duplicated: the second a redelivery with the same token and signature.
    twilio.hold_callbacks(true);
    twilio.customer_writes(&ch, "two");
    twilio.release_callbacks(Release::Duplicated);
    twilio.settle().await;
    let received = receiver.received();
    assert_eq!(received.len(), 5);
    assert_eq!(received[3].pairs, received[4].pairs);
    for header in ["i-twilio-idempotency-token", "x-twilio-signature"] {
        assert_eq!(received[3].header(header), received[4].header(header));
    }
    let callbacks = twilio.callbacks();
    assert_eq!(
        callbacks[3..]
            .iter()
            .map(|c| c.redelivery)
            .collect::<Vec<_>>(),
        [false, true]
    );

    // A 500 is retried with the same token; redeliver() by the callback's id.
    receiver.answer(&[500]);
    twilio.customer_writes(&ch, "three");
    twilio.settle().await;
    let third = twilio.callbacks()[5].clone();
    assert_eq!(
        third.attempts,
        [AttemptOutcome::Status(500), AttemptOutcome::Status(204)]
    );
    assert_eq!(third.param("Body"), Some("three"));
    twilio.redeliver(third.event_sid());
    twilio.settle().await;
    let again = twilio.callbacks()[6].clone();
    assert!(again.redelivery);
    assert_eq!(again.callback, third.callback);
    let received = receiver.received();
    assert_eq!(received.len(), 8);
    for r in &received[6..] {
        assert_eq!(r.pairs, received[5].pairs);
        assert_eq!(
            r.header("i-twilio-idempotency-token"),
            Some(third.callback.idempotency_token.as_str())
        );
        assert_eq!(r.path, "/webhooks/conversations");
    }

    // Clearing the Workspace URL strands TaskRouter callbacks, not Conversations ones.
    twilio.set_callback_url(None);
    twilio.hold_callbacks(true);
    twilio.set_callback_url(Some(receiver.url.clone()));
    let r = client
        .post(
            &format!("{}/Tasks", client.ws(&twilio)),
            &[("Attributes", "{}")],
        )
        .await;
    assert_eq!(r.status, 201);
    twilio.set_callback_url(None);
    twilio.customer_writes(&ch, "four");
    twilio.hold_callbacks(false);
    twilio.settle().await;
    assert_eq!(
        receiver.received().last().unwrap().param("Body"),
        Some("four")
    );
    assert_eq!(twilio.queued_callbacks().len(), 2);
    twilio.set_callback_url(Some(receiver.url.clone()));
    twilio.settle().await;
    assert!(twilio.queued_callbacks().is_empty());
    assert_eq!(
        receiver.types()[receiver.types().len() - 2..],
        ["task.created", "task-queue.entered"]
    );
}

#[tokio::test]
async fn nothing_is_sent_without_a_webhook_for_the_event() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    let (ch, _agent, _customer) = sms_conversation(&twilio);
    twilio.customer_writes(&ch, "anyone?");
    twilio.settle().await;
    assert!(twilio.callbacks().is_empty());
    assert!(twilio.queued_callbacks().is_empty());
    assert_eq!(twilio.messages(&ch).len(), 1);

    // A service webhook whose filters do not name the event.
    twilio.set_conversations_webhook_url(Some(receiver.url_for("/conversations")));
    twilio.set_conversations_webhook_filters(&["onConversationRemoved"]);
    twilio.customer_writes(&ch, "hello?");
    twilio.close_conversation_by_timer(&ch);
    twilio.settle().await;
    assert!(receiver.received().is_empty());
    twilio.remove_conversation(&ch);
    twilio.settle().await;
    assert_eq!(receiver.types(), ["onConversationRemoved"]);
    assert!(twilio.messages(&ch).is_empty());

    // From the config, as from the setter.
    let receiver = Receiver::start();
    let config = StandInConfig {
        conversations_webhook_url: Some(receiver.url_for("/c")),
        ..StandInConfig::default()
    };
    let twilio = StandIn::start(config).await;
    let (ch, _agent, _customer) = sms_conversation(&twilio);
    twilio.customer_writes(&ch, "hi");
    twilio.settle().await;
    assert_eq!(receiver.types(), ["onMessageAdded"]);
}

#[tokio::test]
#[should_panic(expected = "is closed")]
async fn a_closed_conversation_takes_no_customer_message() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let (ch, _agent, _customer) = sms_conversation(&twilio);
    twilio.close_conversation_by_timer(&ch);
    twilio.customer_writes(&ch, "too late");
}

#[tokio::test]
#[should_panic(expected = "no customer participant")]
async fn a_conversation_of_agents_has_no_customer() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    twilio.seed_worker(SeedWorker::new("alice"));
    let ch = twilio.seed_conversation(
        SeedConversation::new().participant(SeedConversationParticipant::identity("alice")),
    );
    twilio.customer_writes(&ch, "hello?");
}

#[tokio::test]
#[should_panic(expected = "already closed")]
async fn the_close_timer_does_not_close_twice() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let ch = twilio.seed_conversation(SeedConversation::new());
    twilio.close_conversation_by_timer(&ch);
    twilio.close_conversation_by_timer(&ch);
}
