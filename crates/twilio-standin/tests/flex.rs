mod common;

use common::{assert_error, start, Client};
use serde_json::{json, Value};
use twilio_standin::{
    ChannelStatus, ConversationStatus, Effect, ParticipantStatus, RecloseChannel, SeedConversation,
    SeedConversationParticipant, SeedInteraction, SeedInteractionParticipant, SeedTask, SeedWorker,
    StandIn, StandInConfig, TaskStatus,
};

struct Scene {
    twilio: StandIn,
    client: Client,
    task: String,
    worker: String,
    conversation: String,
    agent_member: String,
    kd: String,
    uo: String,
    customer: String,
    agent: String,
}

async fn scene(config: StandInConfig) -> Scene {
    let twilio = StandIn::start(config).await;
    let client = Client::new(&twilio);
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    let conversation = twilio.seed_conversation(
        SeedConversation::new()
            .participant(SeedConversationParticipant::sms(
                "+15550001111",
                "+15550002222",
            ))
            .participant(SeedConversationParticipant::identity("alice")),
    );
    let agent_member = twilio.conversation(&conversation).unwrap().participants[1]
        .sid
        .clone();
    let seeded = twilio.seed_interaction(
        SeedInteraction::new()
            .conversation(&conversation)
            .participant(SeedInteractionParticipant::customer())
            .participant(
                SeedInteractionParticipant::agent(&task)
                    .worker(&worker)
                    .conversation_participant(&agent_member),
            ),
    );
    Scene {
        client,
        task,
        worker,
        conversation,
        agent_member,
        kd: seeded.interaction_sid,
        uo: seeded.channel_sid,
        customer: seeded.participant_sids[0].clone(),
        agent: seeded.participant_sids[1].clone(),
        twilio,
    }
}

impl Scene {
    fn channel_path(&self) -> String {
        format!("/v1/Interactions/{}/Channels/{}", self.kd, self.uo)
    }
}

#[tokio::test]
async fn invite_with_routing_creates_a_pending_task() {
    let s = scene(StandInConfig::default()).await;
    let routing = json!({"properties": {
        "workspace_sid": s.twilio.workspace_sid(),
        "workflow_sid": s.twilio.default_workflow_sid(),
        "task_channel_unique_name": "chat",
        "worker_sid": s.worker,
        "attributes": {"transferTargetType": "worker", "conversations": {"conversation_id": s.task}},
    }})
    .to_string();
    let r = s
        .client
        .post(
            &format!("{}/Invites", s.channel_path()),
            &[("Routing", routing.as_str())],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let kg = r.str("sid").to_owned();
    assert!(kg.starts_with("KG") && kg.len() == 34);
    assert_eq!(r.str("channel_sid"), s.uo);
    assert_eq!(r.str("interaction_sid"), s.kd);
    assert_eq!(r.json["routing"]["reservation"], Value::Null);
    let properties = &r.json["routing"]["properties"];
    let new_task = properties["sid"].as_str().unwrap().to_owned();
    assert!(new_task.starts_with("WT"));
    assert_eq!(properties["assignment_status"], "pending");
    assert_eq!(properties["routing_target"], s.worker.as_str());
    assert_eq!(properties["task_channel_unique_name"], "chat");
    let attributes: Value =
        serde_json::from_str(properties["attributes"].as_str().unwrap()).unwrap();
    assert_eq!(attributes["transferTargetType"], "worker");
    assert_eq!(attributes["flexInteractionSid"], s.kd.as_str());
    assert_eq!(attributes["flexInteractionChannelSid"], s.uo.as_str());
    assert_eq!(attributes["flexChannelInviteSid"], kg.as_str());
    assert_eq!(attributes["conversationSid"], s.conversation.as_str());

    let task = s.twilio.task(&new_task).expect("invite task exists");
    assert_eq!(task.assignment_status, TaskStatus::Pending);
    assert_eq!(
        s.twilio.effects(),
        vec![
            Effect::TaskCreated {
                task_sid: new_task.clone(),
                invite_sid: Some(kg.clone())
            },
            Effect::InviteCreated {
                interaction_sid: s.kd.clone(),
                channel_sid: s.uo.clone(),
                invite_sid: kg.clone(),
                task_sid: new_task.clone()
            },
        ]
    );
    let list = s.client.get(&format!("{}/Invites", s.channel_path())).await;
    assert_eq!(list.json["meta"]["key"], "invites");
    assert_eq!(list.json["invites"][0]["sid"], kg.as_str());

    // Routing is required, must be a JSON object with properties in this workspace.
    let path = format!("{}/Invites", s.channel_path());
    let r = s.client.post(&path, &[]).await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("Routing"));
    let r = s.client.post(&path, &[("Routing", "nope")]).await;
    assert_error(&r, 400, 20001);
    let r = s
        .client
        .post(&path, &[("Routing", r#"{"properties":{}}"#)])
        .await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("workspace_sid"));
    assert_eq!(s.twilio.channel(&s.uo).unwrap().invites.len(), 1);
}

#[tokio::test]
async fn closing_the_channel_wraps_tasks_and_closes_the_conversation() {
    let s = scene(StandInConfig::default()).await;
    // Tasks found through their attributes, as Flex tags them.
    let tagged = json!({"flexInteractionChannelSid": s.uo});
    let second = s.twilio.seed_task(
        SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&s.worker)
            .attributes(tagged.clone()),
    );
    let waiting = s.twilio.seed_task(SeedTask::new().attributes(tagged));
    let unrelated = s.twilio.seed_task(
        SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&s.worker)
            .attributes(json!({"flexInteractionChannelSid": "UO0123456789abcdef0123456789abcdef"})),
    );
    let r = s
        .client
        .post(&s.channel_path(), &[("Status", "closed")])
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.str("status"), "closed");
    assert_eq!(r.str("type"), "chat");
    assert_eq!(
        s.twilio.channel(&s.uo).unwrap().status,
        ChannelStatus::Closed
    );
    assert_eq!(
        s.twilio.task(&s.task).unwrap().assignment_status,
        TaskStatus::Wrapping
    );
    let status = |sid: &str| s.twilio.task(sid).unwrap().assignment_status;
    assert_eq!(status(&second), TaskStatus::Wrapping);
    assert_eq!(status(&waiting), TaskStatus::Canceled);
    assert_eq!(status(&unrelated), TaskStatus::Assigned);
    assert_eq!(
        s.twilio.conversation(&s.conversation).unwrap().state,
        ConversationStatus::Closed
    );

    // Closing again: 200, unchanged, no effect, warning 80906 logged.
    let before = s.twilio.effects();
    let again = s
        .client
        .post(&s.channel_path(), &[("Status", "closed")])
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.str("status"), "closed");
    assert_eq!(s.twilio.effects(), before);
    assert_eq!(s.twilio.requests().last().unwrap().warning, Some(80906));
    let closes = before
        .iter()
        .filter(|e| matches!(e, Effect::ChannelStatusChanged { .. }))
        .count();
    assert_eq!(closes, 1);

    // Status is required and an enum.
    let r = s.client.post(&s.channel_path(), &[]).await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("Status"));
    let r = s
        .client
        .post(&s.channel_path(), &[("Status", "open")])
        .await;
    assert_error(&r, 400, 20001);
    // An invite on a closed channel: 400 80906.
    let routing = json!({"properties": {"workspace_sid": s.twilio.workspace_sid()}}).to_string();
    let r = s
        .client
        .post(
            &format!("{}/Invites", s.channel_path()),
            &[("Routing", routing.as_str())],
        )
        .await;
    assert_error(&r, 400, 80906);
    // Unknown channel or mismatched interaction: 404.
    let other = "/v1/Interactions/KD0123456789abcdef0123456789abcdef/Channels";
    assert_error(
        &s.client.get(&format!("{other}/{}", s.uo)).await,
        404,
        20404,
    );
}

#[tokio::test]
async fn closing_with_routing_closed_completes_and_reclose_can_be_rejected() {
    let config = StandInConfig {
        reclose_channel: RecloseChannel::Reject,
        ..StandInConfig::default()
    };
    let s = scene(config).await;
    let r = s
        .client
        .post(
            &s.channel_path(),
            &[("Status", "closed"), ("Routing", r#"{"status":"closed"}"#)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.twilio.task(&s.task).unwrap().assignment_status,
        TaskStatus::Completed
    );
    let again = s
        .client
        .post(&s.channel_path(), &[("Status", "closed")])
        .await;
    assert_error(&again, 400, 80906);
    // inactive needs Routing status closed.
    let s2 = scene(StandInConfig::default()).await;
    let r = s2
        .client
        .post(&s2.channel_path(), &[("Status", "inactive")])
        .await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("Routing"));
}

#[tokio::test]
async fn closing_an_agent_participant_completes_its_task_only() {
    let s = scene(StandInConfig::default()).await;
    let path = format!("{}/Participants/{}", s.channel_path(), s.agent);
    let r = s.client.post(&path, &[("Status", "closed")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.str("sid"), s.agent);
    assert_eq!(r.str("type"), "agent");
    assert_eq!(r.json["routing_properties"]["task_sid"], s.task.as_str());
    assert_eq!(
        s.twilio.task(&s.task).unwrap().assignment_status,
        TaskStatus::Completed
    );
    // The channel and conversation stay open; the agent left the conversation.
    assert_eq!(
        s.twilio.channel(&s.uo).unwrap().status,
        ChannelStatus::Active
    );
    let conversation = s.twilio.conversation(&s.conversation).unwrap();
    assert_eq!(conversation.state, ConversationStatus::Active);
    assert!(conversation
        .participants
        .iter()
        .all(|p| p.sid != s.agent_member));
    let participant = &s.twilio.channel(&s.uo).unwrap().participants[1];
    assert_eq!(participant.status, Some(ParticipantStatus::Closed));

    // Again: 200, no new effect. wrapup after closed: 400.
    let before = s.twilio.effects().len();
    assert_eq!(
        s.client.post(&path, &[("Status", "closed")]).await.status,
        200
    );
    assert_eq!(s.twilio.effects().len(), before);
    assert_error(
        &s.client.post(&path, &[("Status", "wrapup")]).await,
        400,
        20001,
    );

    let list = s
        .client
        .get(&format!("{}/Participants", s.channel_path()))
        .await;
    assert_eq!(list.json["meta"]["key"], "participants");
    assert_eq!(list.json["participants"][0]["sid"], s.customer.as_str());
    assert_eq!(
        list.json["participants"][0]["routing_properties"],
        Value::Null
    );
    assert_error(
        &s.client
            .post(
                &format!(
                    "{}/Participants/UT0123456789abcdef0123456789abcdef",
                    s.channel_path()
                ),
                &[("Status", "closed")],
            )
            .await,
        404,
        20404,
    );
}

#[tokio::test]
async fn flex_token_validation() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    twilio.seed_flex_token("jwe-alice", "alice", Some(&worker), &["agent"]);
    let path = format!("/v1/Accounts/{}/Tokens/validate", twilio.account_sid());

    let ok = client
        .post_json(&path, &json!({"token": "jwe-alice"}))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["valid"], true);
    assert_eq!(ok.json["identity"], "alice");
    assert_eq!(ok.json["worker_sid"], worker.as_str());
    assert_eq!(ok.json["roles"], json!(["agent"]));
    assert!(ok.json["expiration"].is_string());

    let bad = client.post_json(&path, &json!({"token": "forged"})).await;
    assert_eq!(bad.status, 200);
    assert_eq!(bad.json["valid"], false);
    assert_eq!(bad.json["code"], 20101);
    assert!(bad.json["message"].is_string());

    twilio.seed_flex_token_until(
        "jwe-old",
        "bob",
        None,
        &[],
        chrono::Utc::now() - chrono::Duration::minutes(1),
    );
    let expired = client.post_json(&path, &json!({"token": "jwe-old"})).await;
    assert_eq!(expired.json["valid"], false);
    assert_eq!(expired.json["code"], 20104);

    let missing = client.post_json(&path, &json!({})).await;
    assert_error(&missing, 400, 20001);
    let other = client
        .post_json(
            "/v1/Accounts/AC0123456789abcdef0123456789abcdef/Tokens/validate",
            &json!({"token": "jwe-alice"}),
        )
        .await;
    assert_error(&other, 404, 20404);
}
