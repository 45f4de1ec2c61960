mod common;

use common::{assert_error, start, Client};
use serde_json::{json, Value};
use twilio_standin::{ConversationStatus, Effect, SeedConversation, SeedConversationParticipant};

#[tokio::test]
async fn closing_a_conversation_is_idempotent_and_final() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ch = twilio.seed_conversation(SeedConversation::new().unique_name("support-1"));
    let path = format!("/v1/Conversations/{ch}");

    let first = client
        .post_with(
            &path,
            &[("State", "closed")],
            &[("X-Twilio-Webhook-Enabled", "true")],
        )
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.str("state"), "closed");
    assert_eq!(first.str("sid"), ch);
    assert_eq!(
        first.str("chat_service_sid"),
        "IS00000000000000000000000000000001"
    );
    assert!(first.json["links"]["participants"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/Conversations/{ch}/Participants")));

    let second = client.post(&path, &[("State", "closed")]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.str("state"), "closed");

    let closes: Vec<Effect> = twilio
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::ConversationStateChanged { .. }))
        .collect();
    assert_eq!(
        closes,
        vec![Effect::ConversationStateChanged {
            conversation_sid: ch.clone(),
            from: "active".into(),
            to: "closed".into(),
        }]
    );
    // The header was logged.
    let logged = &twilio.requests()[0];
    assert_eq!(logged.header("X-Twilio-Webhook-Enabled"), Some("true"));

    // Closed is final.
    let reopen = client.post(&path, &[("State", "active")]).await;
    assert_error(&reopen, 400, 20001);
    assert!(reopen.str("message").contains("State"));
    assert_eq!(
        twilio.conversation(&ch).unwrap().state,
        ConversationStatus::Closed
    );

    // Fetch by unique name; bad State enum; unknown conversation.
    let by_name = client.get("/v1/Conversations/support-1").await;
    assert_eq!(by_name.str("sid"), ch);
    let bad = client.post(&path, &[("State", "open")]).await;
    assert_error(&bad, 400, 20001);
    assert!(bad.str("message").contains("State"));
    assert_error(
        &client
            .get("/v1/Conversations/CH0123456789abcdef0123456789abcdef")
            .await,
        404,
        20404,
    );
}

#[tokio::test]
async fn timers_and_attributes() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ch = twilio.seed_conversation(SeedConversation::new());
    let path = format!("/v1/Conversations/{ch}");
    let r = client
        .post(
            &path,
            &[
                ("Timers.Inactive", "PT5M"),
                ("Timers.Closed", "PT30M"),
                ("Attributes", r#"{"a":1}"#),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json["timers"]["date_inactive"].is_string());
    assert!(r.json["timers"]["date_closed"].is_string());
    assert_eq!(r.str("attributes"), r#"{"a":1}"#);
    let short = client.post(&path, &[("Timers.Closed", "PT5M")]).await;
    assert_error(&short, 400, 20001);
    assert!(short.str("message").contains("Timers.Closed"));
}

#[tokio::test]
async fn webhook_with_repeated_filters_then_delete() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ch = twilio.seed_conversation(SeedConversation::new());
    let hooks = format!("/v1/Conversations/{ch}/Webhooks");

    let created = client
        .post(
            &hooks,
            &[
                ("Target", "webhook"),
                ("Configuration.Url", "https://baton.example/unpark"),
                ("Configuration.Method", "POST"),
                ("Configuration.Filters", "onMessageAdded"),
                ("Configuration.Filters", "onConversationStateUpdated"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let wh = created.str("sid").to_owned();
    assert!(wh.starts_with("WH") && wh.len() == 34);
    assert_eq!(created.str("conversation_sid"), ch);
    assert_eq!(created.str("target"), "webhook");
    assert_eq!(
        created.json["configuration"],
        json!({
            "url": "https://baton.example/unpark",
            "method": "post",
            "filters": ["onMessageAdded", "onConversationStateUpdated"],
        })
    );
    // Repeated keys arrive in the log as sent.
    let logged = twilio.requests().pop().unwrap();
    assert_eq!(
        logged.form_values("Configuration.Filters"),
        ["onMessageAdded", "onConversationStateUpdated"]
    );

    let fetched = client.get(&format!("{hooks}/{wh}")).await;
    assert_eq!(fetched.json, created.json);
    let list = client.get(&hooks).await;
    assert_eq!(list.json["meta"]["key"], "webhooks");
    assert_eq!(list.json["webhooks"].as_array().unwrap().len(), 1);

    let deleted = client.delete(&format!("{hooks}/{wh}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.json, Value::Null);
    assert_error(&client.delete(&format!("{hooks}/{wh}")).await, 404, 20404);
    assert_error(&client.get(&format!("{hooks}/{wh}")).await, 404, 20404);

    let webhook_effects: Vec<&'static str> = twilio.effects().iter().map(Effect::kind).collect();
    assert_eq!(webhook_effects, ["webhook_created", "webhook_deleted"]);

    // Target is required and validated; Url is required for Target=webhook.
    let r = client
        .post(&hooks, &[("Configuration.Url", "https://x")])
        .await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("Target"));
    let r = client.post(&hooks, &[("Target", "email")]).await;
    assert_error(&r, 400, 20001);
    let r = client.post(&hooks, &[("Target", "webhook")]).await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("Configuration.Url"));
}

#[tokio::test]
async fn participants_page_and_delete() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let mut seed = SeedConversation::new();
    for i in 0..3 {
        seed = seed.participant(SeedConversationParticipant::identity(format!("agent{i}")));
    }
    seed = seed.participant(SeedConversationParticipant::sms(
        "+15550001111",
        "+15550002222",
    ));
    let ch = twilio.seed_conversation(seed);
    let path = format!("/v1/Conversations/{ch}/Participants");

    let page0 = client.get(&format!("{path}?PageSize=3")).await;
    assert_eq!(page0.json["meta"]["key"], "participants");
    assert_eq!(page0.json["participants"].as_array().unwrap().len(), 3);
    let next = page0.json["meta"]["next_page_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let page1 = client.get(&next).await;
    let last = &page1.json["participants"][0];
    assert_eq!(last["messaging_binding"]["address"], "+15550001111");
    assert_eq!(page1.json["meta"]["next_page_url"], Value::Null);

    let mb = last["sid"].as_str().unwrap().to_owned();
    assert_eq!(client.delete(&format!("{path}/{mb}")).await.status, 204);
    assert_error(&client.get(&format!("{path}/{mb}")).await, 404, 20404);
    assert_eq!(twilio.conversation(&ch).unwrap().participants.len(), 3);
    let too_big = client.get(&format!("{path}?PageSize=101")).await;
    assert_error(&too_big, 400, 20001);
}
