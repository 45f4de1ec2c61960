//! Playing the voice transfer-park plugin: park a call to yourself, pick it up later; the
//! marks stay on the task for good.

mod common;

use common::{event_types, timeless_events, Client};
use serde_json::{json, Value};
use twilio_standin::{
    Effect, ReservationStatus, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus,
};

struct Call {
    twilio: StandIn,
    client: Client,
    worker: String,
    task: String,
    live: String,
    events_before: usize,
}

async fn call(worker_attributes: Value) -> Call {
    let twilio = StandIn::start(StandInConfig {
        generate_events: true,
        ..StandInConfig::default()
    })
    .await;
    let client = Client::new(&twilio);
    let worker = twilio.seed_worker(SeedWorker::new("alice").attributes(worker_attributes));
    let task = twilio.seed_task(
        SeedTask::new()
            .channel("voice")
            .status(TaskStatus::Assigned)
            .worker(&worker)
            .attributes(json!({"call_sid": "CA01", "from": "+15550001111"})),
    );
    let live = twilio.task(&task).unwrap().reservations[0].clone();
    let events_before = twilio.events().len();
    Call {
        twilio,
        client,
        worker,
        task,
        live,
        events_before,
    }
}

fn marked(contact_uri: &str) -> Value {
    json!({"call_sid": "CA01", "from": "+15550001111",
           "workerParked": true, "targetWorkerContactUri": contact_uri})
}

#[tokio::test]
async fn parking_marks_the_task_transfers_it_to_the_same_worker_and_completes_the_live_leg() {
    let c = call(json!({"contact_uri": "client:alice_uri"})).await;
    let park = c.twilio.plugin_park_call(&c.task);
    assert_ne!(park, c.live);

    let task = c.twilio.task(&c.task).unwrap();
    assert_eq!(task.attributes_json(), marked("client:alice_uri"));
    assert_eq!(task.assignment_status, TaskStatus::Reserved);
    assert_eq!(task.reservations, [c.live.clone(), park.clone()]);
    let parked = c.twilio.reservation(&park).unwrap();
    assert_eq!(parked.worker_sid, c.worker);
    assert_eq!(parked.status, ReservationStatus::Pending);
    assert_eq!(
        c.twilio.reservation(&c.live).unwrap().status,
        ReservationStatus::Completed
    );
    let reservation = |sid: &str, from: &str, to: &str| Effect::ReservationStatusChanged {
        reservation_sid: sid.to_owned(),
        task_sid: c.task.clone(),
        worker_sid: c.worker.clone(),
        from: from.into(),
        to: to.into(),
    };
    let task_status = |from: &str, to: &str| Effect::TaskStatusChanged {
        task_sid: c.task.clone(),
        from: from.into(),
        to: to.into(),
        reason: None,
    };
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::TaskUpdated {
                task_sid: c.task.clone(),
                changed: vec!["Attributes".into()],
            },
            reservation(&c.live, "accepted", "wrapping"),
            task_status("assigned", "pending"),
            Effect::ReservationCreated {
                reservation_sid: park.clone(),
                task_sid: c.task.clone(),
                worker_sid: c.worker.clone(),
            },
            task_status("pending", "reserved"),
            reservation(&c.live, "wrapping", "completed"),
        ]
    );
    assert_eq!(
        event_types(&c.twilio, c.events_before),
        [
            "task.updated",
            "reservation.wrapup",
            "reservation.created",
            "reservation.completed"
        ]
    );
    let events = c.twilio.events();
    let reservations: Vec<&str> = events[c.events_before + 1..]
        .iter()
        .map(|e| e["resource_sid"].as_str().unwrap())
        .collect();
    assert_eq!(reservations, [&c.live, &park, &c.live]);
    // Every one of them already carries the marks, and none closes the task.
    for event in &events[c.events_before..] {
        let attributes: Value =
            serde_json::from_str(event["event_data"]["task_attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attributes, marked("client:alice_uri"));
        assert_ne!(event["event_data"]["task_assignment_status"], "completed");
    }
    assert!(c.twilio.requests().is_empty());
}

#[tokio::test]
async fn without_a_contact_uri_the_target_is_the_client_identity() {
    let c = call(json!({})).await;
    c.twilio.plugin_park_call(&c.task);
    assert_eq!(
        c.twilio.task(&c.task).unwrap().attributes_json(),
        marked("client:alice")
    );
}

#[tokio::test]
async fn picking_up_accepts_the_park_and_the_marks_stay_to_the_end() {
    let c = call(json!({"contact_uri": "client:alice"})).await;
    let park = c.twilio.plugin_park_call(&c.task);
    c.twilio.clear_effects();
    let before = c.twilio.events().len();
    c.twilio.plugin_pickup(&park);
    assert_eq!(
        c.twilio.task(&c.task).unwrap().assignment_status,
        TaskStatus::Assigned
    );
    assert_eq!(
        c.twilio.reservation(&park).unwrap().status,
        ReservationStatus::Accepted
    );
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::TaskStatusChanged {
                task_sid: c.task.clone(),
                from: "reserved".into(),
                to: "assigned".into(),
                reason: None,
            },
            Effect::ReservationStatusChanged {
                reservation_sid: park.clone(),
                task_sid: c.task.clone(),
                worker_sid: c.worker.clone(),
                from: "pending".into(),
                to: "accepted".into(),
            },
        ]
    );

    // The call goes on: another attribute change, wrap-up, completion.
    let ws = c.client.ws(&c.twilio);
    let mut attributes = marked("client:alice");
    attributes["note"] = json!("picked up");
    let r = c
        .client
        .post(
            &format!("{ws}/Tasks/{}", c.task),
            &[("Attributes", attributes.to_string().as_str())],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    c.twilio.wrap_up(&c.task);
    c.twilio.complete(&c.task);
    assert_eq!(
        event_types(&c.twilio, before),
        [
            "reservation.accepted",
            "task.updated",
            "reservation.wrapup",
            "task.wrapup",
            "reservation.completed",
            "task.completed"
        ]
    );
    for event in &c.twilio.events()[before..] {
        let attributes: Value =
            serde_json::from_str(event["event_data"]["task_attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attributes["workerParked"], true, "{event}");
        assert_eq!(
            attributes["targetWorkerContactUri"], "client:alice",
            "{event}"
        );
    }
    let task = c.twilio.task(&c.task).unwrap();
    assert_eq!(task.assignment_status, TaskStatus::Completed);
    assert_eq!(task.attributes_json()["workerParked"], true);
}

/// The same call twice (same seed): one plays the plugin, the other makes its calls.
#[tokio::test]
async fn the_park_play_equals_the_plugins_calls() {
    let played = call(json!({"contact_uri": "client:alice"})).await;
    let called = call(json!({"contact_uri": "client:alice"})).await;
    let park = played.twilio.plugin_park_call(&played.task);

    let c = &called;
    let ws = c.client.ws(&c.twilio);
    let r = c
        .client
        .post(
            &format!("{ws}/Tasks/{}", c.task),
            &[("Attributes", marked("client:alice").to_string().as_str())],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.twilio.transfer_call(&c.task, &c.worker), park);
    let r = c
        .client
        .post(
            &format!("{ws}/Tasks/{}/Reservations/{}", c.task, c.live),
            &[("ReservationStatus", "completed")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    assert_eq!(played.twilio.effects(), called.twilio.effects());
    let events = timeless_events(&played.twilio, played.events_before);
    assert_eq!(events.len(), 4);
    assert_eq!(
        events,
        timeless_events(&called.twilio, called.events_before)
    );
}

#[tokio::test]
#[should_panic(expected = "is pending, not assigned")]
async fn parking_a_call_nobody_holds_panics() {
    let c = call(json!({})).await;
    let waiting = c.twilio.seed_task(SeedTask::new().channel("voice"));
    c.twilio.plugin_park_call(&waiting);
}

#[tokio::test]
#[should_panic(expected = "is not parked (no workerParked)")]
async fn picking_up_a_reservation_that_is_no_park_panics() {
    let c = call(json!({})).await;
    let other = c.twilio.seed_task(SeedTask::new().channel("voice"));
    let offered = c.twilio.offer(&other, &c.worker);
    c.twilio.plugin_pickup(&offered);
}
