mod common;

use common::{assert_error, start, Client};
use serde_json::{json, Value};
use twilio_standin::{Effect, ReservationStatus, SeedTask, SeedWorker, SeedWorkflow, TaskStatus};

#[tokio::test]
async fn requests_without_valid_basic_auth_get_401_20003() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let path = format!("{}/Activities", client.ws(&twilio));

    let anonymous = reqwest::Client::new()
        .get(format!("{}{path}", twilio.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"Twilio API\""
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(
        body,
        json!({"code": 20003, "message": "Authenticate",
               "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );

    let wrong = Client {
        password: "not-the-token".into(),
        ..Client::new(&twilio)
    };
    assert_error(&wrong.get(&path).await, 401, 20003);
    let other_account = Client {
        user: "AC00000000000000000000000000000009".into(),
        ..Client::new(&twilio)
    };
    assert_error(&other_account.get(&path).await, 401, 20003);

    // A wrong-auth write changes nothing.
    let task = twilio.seed_task(SeedTask::new());
    let r = wrong
        .post(
            &format!("{}/Tasks/{task}", client.ws(&twilio)),
            &[("AssignmentStatus", "canceled")],
        )
        .await;
    assert_error(&r, 401, 20003);
    assert!(twilio.effects().is_empty());
    assert_eq!(client.get(&path).await.status, 200);
}

#[tokio::test]
async fn create_fetch_update_with_etag_and_if_match() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let tasks = format!("{}/Tasks", client.ws(&twilio));

    let created = client
        .post(
            &tasks,
            &[
                ("Attributes", r#"{"type":"chat"}"#),
                ("Priority", "5"),
                ("TaskChannel", "chat"),
            ],
        )
        .await;
    assert_eq!(created.status, 201);
    let sid = created.str("sid").to_owned();
    assert!(sid.starts_with("WT") && sid.len() == 34);
    assert_eq!(created.str("assignment_status"), "pending");
    assert_eq!(created.str("attributes"), r#"{"type":"chat"}"#);
    assert_eq!(created.json["priority"], 5);
    assert_eq!(created.str("task_channel_unique_name"), "chat");
    assert_eq!(created.str("workspace_sid"), twilio.workspace_sid());
    assert_eq!(created.str("account_sid"), twilio.account_sid());
    assert_eq!(created.str("workflow_sid"), twilio.default_workflow_sid());
    assert!(created.str("url").ends_with(&format!("/Tasks/{sid}")));
    let etag0 = created.header("etag").expect("ETag on create").to_owned();

    let fetched = client.get(&format!("{tasks}/{sid}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("etag"), Some(etag0.as_str()));
    // Identical but for `age`, which moves with the clock.
    let mut expected = created.json.clone();
    expected["age"] = fetched.json["age"].clone();
    assert_eq!(fetched.json, expected);

    // Matching If-Match: applied, new ETag.
    let updated = client
        .post_with(
            &format!("{tasks}/{sid}"),
            &[("Attributes", r#"{"type":"chat","x":1}"#)],
            &[("If-Match", &etag0)],
        )
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    let etag1 = updated.header("etag").expect("ETag on update").to_owned();
    assert_ne!(etag1, etag0);
    assert_eq!(
        etag1.parse::<u64>().unwrap(),
        etag0.parse::<u64>().unwrap() + 1
    );
    assert_eq!(updated.str("attributes"), r#"{"type":"chat","x":1}"#);

    // Stale If-Match: 412, nothing applied.
    let effects_before = twilio.effects().len();
    let stale = client
        .post_with(
            &format!("{tasks}/{sid}"),
            &[("Attributes", r#"{"lost":true}"#)],
            &[("If-Match", &etag0)],
        )
        .await;
    assert_error(&stale, 412, 20412);
    assert_eq!(twilio.effects().len(), effects_before);
    assert_eq!(
        twilio.task(&sid).unwrap().attributes,
        r#"{"type":"chat","x":1}"#
    );

    // Quoted current ETag is accepted.
    let quoted = format!("\"{etag1}\"");
    let ok = client
        .post_with(
            &format!("{tasks}/{sid}"),
            &[("Priority", "7")],
            &[("If-Match", &quoted)],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(twilio.task(&sid).unwrap().version, 2);

    // Invalid enum / SID / JSON: 400 naming the parameter.
    let bad = client
        .post(&format!("{tasks}/{sid}"), &[("AssignmentStatus", "done")])
        .await;
    assert_error(&bad, 400, 20001);
    assert!(bad.str("message").contains("AssignmentStatus"));
    let bad = client.post(&tasks, &[("WorkflowSid", "WW123")]).await;
    assert_error(&bad, 400, 20001);
    assert!(bad.str("message").contains("WorkflowSid"));
    let bad = client.post(&tasks, &[("Attributes", "not json")]).await;
    assert_error(&bad, 400, 20001);
    assert!(bad.str("message").contains("Attributes"));
    // Unknown parameters are ignored.
    let ok = client.post(&tasks, &[("NoSuchParam", "x")]).await;
    assert_eq!(ok.status, 201);

    // Delete: 204, then 404.
    let deleted = client.delete(&format!("{tasks}/{sid}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.json, Value::Null);
    let gone = client.get(&format!("{tasks}/{sid}")).await;
    assert_error(&gone, 404, 20404);
    assert!(gone.str("message").contains(&sid));
    let completing_gone = client
        .post(
            &format!("{tasks}/{sid}"),
            &[("AssignmentStatus", "completed")],
        )
        .await;
    assert_error(&completing_gone, 404, 20404);
    assert_error(&client.get(&format!("{tasks}/WTnotasid")).await, 404, 20404);
}

#[tokio::test]
async fn completing_twice_gives_20001_and_one_effect() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let sid = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    let path = format!("{}/Tasks/{sid}", client.ws(&twilio));
    let form = [("AssignmentStatus", "completed"), ("Reason", "transferred")];

    let first = client.post(&path, &form).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.str("assignment_status"), "completed");
    assert_eq!(first.str("reason"), "transferred");

    let second = client.post(&path, &form).await;
    assert_error(&second, 400, 20001);
    assert!(
        second.str("message").contains("not in a state"),
        "{second:?}"
    );

    let completions: Vec<Effect> = twilio
        .effects()
        .into_iter()
        .filter(|e| e.completes_task(&sid))
        .collect();
    assert_eq!(
        completions,
        vec![Effect::TaskStatusChanged {
            task_sid: sid.clone(),
            from: "assigned".into(),
            to: "completed".into(),
            reason: Some("transferred".into()),
        }]
    );
    // The accepted reservation completed with the task.
    let task = twilio.task(&sid).unwrap();
    assert_eq!(task.reason.as_deref(), Some("transferred"));
    let reservation = twilio.reservation(&task.reservations[0]).unwrap();
    assert_eq!(reservation.status, ReservationStatus::Completed);

    // Other illegal transitions.
    let pending = twilio.seed_task(SeedTask::new());
    let r = client
        .post(
            &format!("{}/Tasks/{pending}", client.ws(&twilio)),
            &[("AssignmentStatus", "wrapping")],
        )
        .await;
    assert_error(&r, 400, 20001);
    let r = client
        .post(
            &format!("{}/Tasks/{pending}", client.ws(&twilio)),
            &[("AssignmentStatus", "canceled"), ("Reason", "gone")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.str("assignment_status"), "canceled");
    let r = client
        .post(
            &format!("{}/Tasks/{pending}", client.ws(&twilio)),
            &[("AssignmentStatus", "completed")],
        )
        .await;
    assert_error(&r, 400, 20001);
}

#[tokio::test]
async fn reservations_and_workers() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ws = client.ws(&twilio);
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let task = twilio.seed_task(SeedTask::new());
    let ra = twilio.seed_reservation(&task, &alice, ReservationStatus::Pending);
    let rb = twilio.seed_reservation(&task, &bob, ReservationStatus::Pending);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Reserved
    );

    // Bob's reservation is not under Alice.
    assert_error(
        &client
            .get(&format!("{ws}/Workers/{alice}/Reservations/{rb}"))
            .await,
        404,
        20404,
    );
    let bad = client
        .post(
            &format!("{ws}/Tasks/{task}/Reservations/{ra}"),
            &[("ReservationStatus", "yes")],
        )
        .await;
    assert_error(&bad, 400, 20001);
    assert!(bad.str("message").contains("ReservationStatus"));

    let accepted = client
        .post(
            &format!("{ws}/Workers/{alice}/Reservations/{ra}"),
            &[("ReservationStatus", "accepted")],
        )
        .await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert_eq!(accepted.str("reservation_status"), "accepted");
    assert_eq!(accepted.str("worker_name"), "alice");
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Assigned
    );
    assert_eq!(
        twilio.reservation(&rb).unwrap().status,
        ReservationStatus::Rescinded
    );

    let list = client
        .get(&format!(
            "{ws}/Tasks/{task}/Reservations?ReservationStatus=accepted"
        ))
        .await;
    assert_eq!(list.json["meta"]["key"], "reservations");
    let items = list.json["reservations"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sid"], ra.as_str());

    let wrapping = client
        .post(
            &format!("{ws}/Tasks/{task}/Reservations/{ra}"),
            &[("ReservationStatus", "wrapping")],
        )
        .await;
    assert_eq!(wrapping.status, 200);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Wrapping
    );
    let again = client
        .post(
            &format!("{ws}/Tasks/{task}/Reservations/{ra}"),
            &[("ReservationStatus", "accepted")],
        )
        .await;
    assert_error(&again, 400, 20001);

    // Worker activity: must exist; changes once.
    let offline = twilio.activity_sid("Offline").unwrap();
    let missing = client
        .post(
            &format!("{ws}/Workers/{alice}"),
            &[("ActivitySid", "WA0123456789abcdef0123456789abcdef")],
        )
        .await;
    assert_error(&missing, 400, 20001);
    assert!(missing.str("message").contains("ActivitySid"));
    for _ in 0..2 {
        let r = client
            .post(
                &format!("{ws}/Workers/{alice}"),
                &[("ActivitySid", offline.as_str())],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.str("activity_name"), "Offline");
        assert_eq!(r.json["available"], false);
    }
    let changes = twilio
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::WorkerActivityChanged { worker_sid, .. } if *worker_sid == alice))
        .count();
    assert_eq!(changes, 1);

    // Queues, workflows, activities.
    let queue = client
        .get(&format!(
            "{ws}/TaskQueues/{}",
            twilio.default_task_queue_sid()
        ))
        .await;
    assert_eq!(queue.str("friendly_name"), "Everyone");
    let workflow = client
        .get(&format!("{ws}/Workflows/{}", twilio.default_workflow_sid()))
        .await;
    assert_eq!(workflow.status, 200);
    let activities = client.get(&format!("{ws}/Activities?Available=true")).await;
    let names: Vec<&str> = activities.json["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["friendly_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Available"]);
}

#[tokio::test]
async fn update_workflow_replaces_its_configuration() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ws = format!("/v1/Workspaces/{}", twilio.workspace_sid());
    let sid = twilio.default_workflow_sid();
    let path = format!("{ws}/Workflows/{sid}");
    let queue = twilio.default_task_queue_sid();
    let config = serde_json::json!({"task_routing": {
        "filters": [{"filter_friendly_name": "F", "expression": "a == 1",
                     "targets": [{"queue": queue, "known_worker_sid": "task.w"}]}],
        "default_filter": {"queue": queue}}});
    let updated = client
        .post(
            &path,
            &[
                ("Configuration", config.to_string().as_str()),
                ("FriendlyName", "Transfers"),
            ],
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.str("friendly_name"), "Transfers");
    let stored: serde_json::Value = serde_json::from_str(updated.str("configuration")).unwrap();
    assert_eq!(stored, config);
    let fetched = client.get(&path).await;
    assert_eq!(fetched.str("configuration"), updated.str("configuration"));
    assert_eq!(twilio.workflow(&sid).unwrap().friendly_name, "Transfers");
    // Not a routing document, or not JSON: 400, nothing changed.
    for bad in [r#"{"filters": []}"#, "not json"] {
        let r = client.post(&path, &[("Configuration", bad)]).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(
        twilio.workflow(&sid).unwrap().configuration,
        config.to_string()
    );
    let missing = client
        .post(
            &format!("{ws}/Workflows/WW0123456789abcdef0123456789abcdef"),
            &[("FriendlyName", "x")],
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn create_task_needs_workflow_when_there_are_several() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let tasks = format!("{}/Tasks", client.ws(&twilio));
    let second = twilio.seed_workflow(SeedWorkflow::new("Transfers"));
    let r = client.post(&tasks, &[("Attributes", "{}")]).await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("WorkflowSid"));
    let r = client
        .post(&tasks, &[("WorkflowSid", second.as_str())])
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.str("workflow_friendly_name"), "Transfers");
    let r = client
        .post(
            &tasks,
            &[("WorkflowSid", "WW0123456789abcdef0123456789abcdef")],
        )
        .await;
    assert_error(&r, 400, 20001);
    // Wrong workspace in the path: 404.
    let r = client
        .post(
            "/v1/Workspaces/WS0123456789abcdef0123456789abcdef/Tasks",
            &[],
        )
        .await;
    assert_error(&r, 404, 20404);
    // Wrong method on a known path: 405.
    let r = client.delete(&tasks).await;
    assert_error(&r, 405, 20004);
}

#[tokio::test]
async fn events_page_across_two_pages_with_filters() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ws = client.ws(&twilio);
    let task = "WT0123456789abcdef0123456789abcdef";
    let now = chrono::Utc::now();
    let ms = |minutes_ago: i64| (now - chrono::Duration::minutes(minutes_ago)).timestamp_millis();
    let e1 = twilio.push_event(json!({"event_type": "task.created", "resource_sid": task,
        "resource_type": "task", "event_data": {"task_sid": task}, "event_date_ms": ms(5)}));
    let e2 = twilio.push_event(json!({"event_type": "reservation.created",
        "event_data": {"task_sid": task}, "event_date_ms": ms(4)}));
    let e3 = twilio.push_event(json!({"event_type": "task.completed", "resource_sid": task,
        "event_data": {"task_sid": task}, "event_date_ms": ms(3)}));
    let old = twilio.push_event(json!({"event_type": "task.created", "event_date_ms": ms(60)}));

    // Default window: the last 15 minutes; newest first; 2 per page.
    let first = client.get(&format!("{ws}/Events?PageSize=2")).await;
    assert_eq!(first.status, 200, "{first:?}");
    let sids = |r: &common::Resp| -> Vec<String> {
        r.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(sids(&first), [e3.as_str(), e2.as_str()]);
    let meta = &first.json["meta"];
    assert_eq!(meta["key"], "events");
    assert_eq!(meta["page"], 0);
    assert_eq!(meta["page_size"], 2);
    assert_eq!(meta["previous_page_url"], Value::Null);
    assert!(meta["first_page_url"]
        .as_str()
        .unwrap()
        .contains("PageSize=2&Page=0"));
    assert!(meta["url"]
        .as_str()
        .unwrap()
        .starts_with(&twilio.base_url()));
    let next = meta["next_page_url"]
        .as_str()
        .expect("next page")
        .to_owned();
    assert!(
        next.contains("Page=1") && next.contains("PageToken="),
        "{next}"
    );

    // A new event while paging does not shift the next page.
    twilio.push_event(json!({"event_type": "task.updated", "event_date_ms": ms(1)}));
    let second = client.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(sids(&second), [e1.as_str()]);
    assert_eq!(second.json["meta"]["page"], 1);
    assert_eq!(second.json["meta"]["next_page_url"], Value::Null);
    let previous = second.json["meta"]["previous_page_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sids(&client.get(&previous).await),
        [e3.as_str(), e2.as_str()]
    );

    // Filters.
    let typed = client
        .get(&format!("{ws}/Events?EventType=task.created"))
        .await;
    assert_eq!(sids(&typed), [e1.as_str()]);
    let by_task = client.get(&format!("{ws}/Events?TaskSid={task}")).await;
    assert_eq!(sids(&by_task), [e3.as_str(), e2.as_str(), e1.as_str()]);
    let start = (now - chrono::Duration::minutes(120)).to_rfc3339();
    let end = (now - chrono::Duration::minutes(30)).to_rfc3339();
    let window = client
        .get(&format!(
            "{ws}/Events?StartDate={}&EndDate={}",
            urlencode(&start),
            urlencode(&end)
        ))
        .await;
    assert_eq!(sids(&window), [old.as_str()]);
    let fetched = client.get(&format!("{ws}/Events/{e2}")).await;
    assert_eq!(fetched.str("event_type"), "reservation.created");

    let too_big = client.get(&format!("{ws}/Events?PageSize=1001")).await;
    assert_error(&too_big, 400, 20001);
    assert!(too_big.str("message").contains("PageSize"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn generated_events_follow_state_changes() {
    let config = twilio_standin::StandInConfig {
        generate_events: true,
        ..Default::default()
    };
    let twilio = twilio_standin::StandIn::start(config).await;
    let client = Client::new(&twilio);
    let created = client
        .post(
            &format!("{}/Tasks", client.ws(&twilio)),
            &[("Attributes", "{}")],
        )
        .await;
    let sid = created.str("sid").to_owned();
    let r = client
        .post(
            &format!("{}/Tasks/{sid}", client.ws(&twilio)),
            &[("AssignmentStatus", "canceled"), ("Reason", "test")],
        )
        .await;
    assert_eq!(r.status, 200);
    let list = client
        .get(&format!("{}/Events?TaskSid={sid}", client.ws(&twilio)))
        .await;
    let types: Vec<&str> = list.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["task.canceled", "task-queue.entered", "task.created"]
    );
}
