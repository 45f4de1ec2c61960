//! The control routes of a stand-in run as a process: seeding Flex conversations and reading
//! the request log over HTTP.

mod common;

use common::{start, Client};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use twilio_standin::{control, ParticipantStatus, TaskStatus};

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn post_json(http: &reqwest::Client, url: String, body: Value) -> Value {
    http.post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn seeds_conversations_and_pages_through_the_request_log() {
    let twilio = Arc::new(start().await);
    let client = Client::new(&twilio);
    let (addr, handle) =
        control::serve(twilio.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).expect("control");
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    let setup = post_json(&http, format!("{base}/setup"), json!({"workers": 2})).await;
    let workers: Vec<String> = setup["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(workers.len(), 2);
    assert_eq!(setup["workflow_sid"], twilio.default_workflow_sid());
    assert_eq!(setup["task_queue_sid"], twilio.default_task_queue_sid());

    let ch = "CH00000000000000000000000000000077";
    let a = "WT000000000000000000000000000000aa";
    let seeded = post_json(
        &http,
        format!("{base}/conversations"),
        json!([{"conversation_sid": ch, "customer": "+14155550100",
            "proxy": "+18005550100", "tasks": [{"sid": a, "status": "assigned",
            "worker_sid": workers[0], "agent": true, "attributes": {"from": "+14155550100"}}]}]),
    )
    .await;
    let seeded = &seeded[0];
    let (kd, uo) = (
        seeded["interaction_sid"].as_str().unwrap(),
        seeded["channel_sid"].as_str().unwrap(),
    );
    let task = twilio.task(a).expect("task");
    assert_eq!(task.assignment_status, TaskStatus::Assigned);
    assert_eq!(task.task_channel_unique_name, "chat");
    let attributes: Value = serde_json::from_str(&task.attributes).unwrap();
    assert_eq!(
        attributes,
        json!({"from": "+14155550100", "conversationSid": ch,
               "flexInteractionSid": kd, "flexInteractionChannelSid": uo})
    );
    assert_eq!(seeded["reservations"][a], task.reservations[0].as_str());
    let channel = twilio.channel(uo).expect("channel");
    assert_eq!(channel.conversation_sid.as_deref(), Some(ch));
    assert_eq!(channel.participants.len(), 2, "the customer and A's agent");
    assert_eq!(channel.participants[1].task_sid(), Some(a));
    let ut = seeded["participants"][a].as_str().unwrap();
    assert_eq!(channel.participants[1].sid, ut);
    // The same SID twice is refused, and nothing is seeded.
    let again = http
        .post(format!("{base}/conversations"))
        .json(&json!([{"conversation_sid": ch, "customer": "+1", "proxy": "+1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);

    // Closing A's participant through Twilio's API shows in the log, with its answer.
    let path = format!("/v1/Interactions/{kd}/Channels/{uo}/Participants/{ut}");
    let closed = client.post(&path, &[("Status", "closed")]).await;
    assert_eq!(closed.status, 200);
    assert_eq!(
        twilio.channel(uo).unwrap().participants[1].status,
        Some(ParticipantStatus::Closed)
    );
    client
        .get(&format!("/v1/Interactions/{kd}/Channels/{uo}"))
        .await;
    let page = |after: u64| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let page = get_json(&http, format!("{base}/requests?after={after}")).await;
            page["requests"].as_array().unwrap().clone()
        }
    };
    let all = page(0).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["method"], "POST");
    assert_eq!(all[0]["path"], path.as_str());
    assert_eq!(all[0]["status"], 200);
    assert_eq!(all[0]["form"], json!([["Status", "closed"]]));
    assert_eq!(all[1]["method"], "GET");
    let after_first = page(all[0]["id"].as_u64().unwrap()).await;
    assert_eq!(after_first, all[1..].to_vec());
    assert!(page(all[1]["id"].as_u64().unwrap()).await.is_empty());

    let channel = get_json(&http, format!("{base}/channels/{uo}")).await;
    assert_eq!(channel["sid"], uo);
    handle.stop(false).await;
}
