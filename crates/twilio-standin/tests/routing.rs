//! Playing TaskRouter: the control methods that stand in for agents and timers (offers,
//! rejects, reservation and task timeouts, automatic offers, cancels, worker activities) and
//! the callbacks they send to a receiver standing in for baton.

mod common;

use common::callbacks::{create_task, standin};
use common::receiver::{Received, Receiver};
use serde_json::json;
use twilio_standin::{
    Effect, SeedConversation, SeedInteraction, SeedWorker, StandIn, StandInConfig, TaskStatus,
    TASK_TTL_EXCEEDED,
};

#[tokio::test]
async fn time_out_task_cancels_with_ttl_exceeded() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = create_task(&twilio, &client, "{}").await;
    let reservation = twilio.offer(&task, &alice);
    twilio.time_out_task(&task);
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.canceled",
            "task.canceled"
        ]
    );
    let received = receiver.received();
    let canceled = received.last().unwrap();
    assert_eq!(
        canceled.param("TaskCanceledReason"),
        Some(TASK_TTL_EXCEEDED)
    );
    assert_eq!(
        canceled.param("EventDescription"),
        Some("Task TTL Exceeded")
    );
    assert_eq!(canceled.param("TaskAssignmentStatus"), Some("canceled"));
    assert_eq!(
        received[3].param("ReservationSid"),
        Some(reservation.as_str())
    );
    let state = twilio.task(&task).unwrap();
    assert_eq!(state.assignment_status, TaskStatus::Canceled);
    assert_eq!(state.reason.as_deref(), Some(TASK_TTL_EXCEEDED));
}

#[tokio::test]
async fn reject_and_reservation_timeout_free_the_task() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let task = create_task(&twilio, &client, "{}").await;
    let first = twilio.offer(&task, &alice);
    twilio.reject(&first);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Pending
    );
    let second = twilio.offer(&task, &bob);
    twilio.time_out_reservation(&second);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Pending
    );
    // Two at once: accepting one rescinds the other.
    let third = twilio.offer(&task, &alice);
    let fourth = twilio.offer(&task, &bob);
    twilio.accept(&fourth);
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.rejected",
            "reservation.created",
            "reservation.timeout",
            // The timeout sent bob to the timeout activity.
            "worker.activity.update",
            "reservation.created",
            "reservation.created",
            "reservation.accepted",
            "reservation.rescinded"
        ]
    );
    let received = receiver.received();
    assert_eq!(received[10].param("ReservationSid"), Some(third.as_str()));
    assert_eq!(received[10].param("WorkerName"), Some("alice"));
    assert!(twilio.effects().contains(&Effect::ReservationCreated {
        reservation_sid: fourth,
        task_sid: task.clone(),
        worker_sid: bob,
    }));
    // The REST API sees the same reservations.
    let list = client
        .get(&format!("{}/Tasks/{task}/Reservations", client.ws(&twilio)))
        .await;
    assert_eq!(list.json["reservations"].as_array().unwrap().len(), 4);
}

#[tokio::test]
#[should_panic(expected = "only pending or reserved tasks time out")]
async fn an_assigned_task_does_not_time_out() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(
        twilio_standin::SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&alice),
    );
    twilio.time_out_task(&task);
}

#[tokio::test]
async fn auto_offer_routes_to_the_named_worker_or_the_first_available() {
    let receiver = Receiver::start();
    let config = StandInConfig {
        auto_offer: true,
        ..StandInConfig::default()
    };
    let (twilio, client) = standin(config, &receiver).await;
    let offline = twilio.activity_sid("Offline").unwrap();
    let carol = twilio.seed_worker(SeedWorker::new("carol").activity(&offline));
    let alice = twilio
        .seed_worker(SeedWorker::new("alice").attributes(json!({"contact_uri": "client:alice"})));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let reserved_for = |task: &str| {
        let task = twilio.task(task).unwrap();
        assert_eq!(task.assignment_status, TaskStatus::Reserved);
        assert_eq!(task.reservations.len(), 1);
        twilio
            .reservation(&task.reservations[0])
            .unwrap()
            .worker_sid
    };

    // No target: the first available worker (carol is offline). The answer still shows the
    // task as created: routing comes after.
    let r = client
        .post(
            &format!("{}/Tasks", client.ws(&twilio)),
            &[("Attributes", "{}")],
        )
        .await;
    assert_eq!(r.str("assignment_status"), "pending");
    assert_eq!(r.header("etag"), Some("0"));
    let plain = r.str("sid").to_owned();
    assert_eq!(reserved_for(&plain), alice);
    // Named workers, in every vocabulary, get it at once (even offline).
    for attributes in [
        json!({"targetSid": bob}),
        json!({"transferTargetSid": carol}),
        json!({"baton": {"target_sid": bob, "previous_task_sid": plain}}),
    ] {
        let task = create_task(&twilio, &client, &attributes.to_string()).await;
        let expected = attributes["targetSid"]
            .as_str()
            .or(attributes["transferTargetSid"].as_str())
            .or(attributes["baton"]["target_sid"].as_str())
            .unwrap();
        assert_eq!(reserved_for(&task), expected, "{attributes}");
    }
    // Excluded workers are skipped.
    let excluded = create_task(
        &twilio,
        &client,
        &json!({"workerSidsInConversation": [alice]}).to_string(),
    )
    .await;
    assert_eq!(reserved_for(&excluded), bob);
    let ignored = create_task(&twilio, &client, r#"{"ignoreAgent":"alice"}"#).await;
    assert_eq!(reserved_for(&ignored), bob);
    // A queue target: the task enters that queue.
    let sales = twilio.seed_task_queue(twilio_standin::SeedTaskQueue::new("Sales"));
    let queued = create_task(
        &twilio,
        &client,
        &json!({"transferTargetSid": sales, "workerSidsInConversation": [alice]}).to_string(),
    )
    .await;
    assert_eq!(reserved_for(&queued), bob);
    assert_eq!(
        twilio.task(&queued).unwrap().task_queue_sid.as_deref(),
        Some(sales.as_str())
    );
    twilio.settle().await;
    let received = receiver.received();
    let entered = received
        .iter()
        .find(|r| {
            r.event_type() == "task-queue.entered" && r.param("TaskSid") == Some(queued.as_str())
        })
        .unwrap();
    assert_eq!(entered.param("TaskQueueName"), Some("Sales"));
    // Every task: created, entered, offered.
    assert_eq!(received.len(), 7 * 3);
    for triple in received.chunks(3) {
        let t: Vec<&str> = triple.iter().map(Received::event_type).collect();
        assert_eq!(
            t,
            ["task.created", "task-queue.entered", "reservation.created"]
        );
    }
    // Nobody available and not excluded: no offer.
    twilio.set_auto_offer(true);
    let nobody = create_task(
        &twilio,
        &client,
        &json!({"workerSidsInConversation": [alice, bob]}).to_string(),
    )
    .await;
    assert_eq!(
        twilio.task(&nobody).unwrap().assignment_status,
        TaskStatus::Pending
    );
}

#[tokio::test]
async fn an_invite_creates_a_task_that_is_offered_to_its_worker() {
    let receiver = Receiver::start();
    let config = StandInConfig {
        auto_offer: true,
        ..StandInConfig::default()
    };
    let (twilio, client) = standin(config, &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let conversation = twilio.seed_conversation(SeedConversation::new());
    let seeded = twilio.seed_interaction(SeedInteraction::new().conversation(&conversation));
    let routing = json!({"properties": {
        "workspace_sid": twilio.workspace_sid(),
        "workflow_sid": twilio.default_workflow_sid(),
        "task_channel_unique_name": "chat",
        "worker_sid": bob,
        "attributes": {"transferTargetType": "worker"},
    }})
    .to_string();
    let r = client
        .post(
            &format!(
                "/v1/Interactions/{}/Channels/{}/Invites",
                seeded.interaction_sid, seeded.channel_sid
            ),
            &[("Routing", routing.as_str())],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let task = r.json["routing"]["properties"]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        ["task.created", "task-queue.entered", "reservation.created"]
    );
    let received = receiver.received();
    assert_eq!(received[0].param("TaskSid"), Some(task.as_str()));
    assert_eq!(received[0].param("TaskChannelUniqueName"), Some("chat"));
    assert!(received[0]
        .param("TaskAttributes")
        .unwrap()
        .contains(&seeded.channel_sid));
    assert_eq!(received[2].param("WorkerSid"), Some(bob.as_str()));
    assert_ne!(received[2].param("WorkerSid"), Some(alice.as_str()));
}

#[tokio::test]
async fn a_reservation_timeout_sends_the_worker_to_the_timeout_activity() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let ws = client.ws(&twilio);
    let offline = twilio.activity_sid("Offline").unwrap();
    let available = twilio.activity_sid("Available").unwrap();
    assert_eq!(twilio.timeout_activity_sid(), offline);
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = create_task(&twilio, &client, "{}").await;
    let reservation = twilio.offer(&task, &alice);
    twilio.time_out_reservation(&reservation);
    twilio.settle().await;

    assert_eq!(twilio.worker(&alice).unwrap().activity_sid, offline);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Pending
    );
    assert_eq!(
        receiver.types(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.timeout",
            "worker.activity.update"
        ]
    );
    let received = receiver.received();
    // The timeout carries the worker as it was when the reservation timed out.
    let timeout = &received[3];
    assert_eq!(timeout.param("ReservationSid"), Some(reservation.as_str()));
    assert_eq!(timeout.param("WorkerSid"), Some(alice.as_str()));
    assert_eq!(timeout.param("WorkerName"), Some("alice"));
    assert_eq!(timeout.param("WorkerAttributes"), Some("{}"));
    assert_eq!(timeout.param("WorkerActivitySid"), Some(available.as_str()));
    assert_eq!(timeout.param("WorkerActivityName"), Some("Available"));
    let moved = &received[4];
    assert_eq!(moved.param("ResourceType"), Some("worker"));
    assert_eq!(moved.param("ResourceSid"), Some(alice.as_str()));
    assert_eq!(moved.param("WorkerSid"), Some(alice.as_str()));
    assert_eq!(moved.param("WorkerActivitySid"), Some(offline.as_str()));
    assert_eq!(moved.param("WorkerActivityName"), Some("Offline"));
    assert_eq!(
        moved.param("WorkerPreviousActivitySid"),
        Some(available.as_str())
    );
    assert_eq!(moved.param("WorkerPreviousActivityName"), Some("Available"));
    assert!(moved.param("WorkerTimeInPreviousActivityMs").is_some());
    assert!(twilio.effects().contains(&Effect::WorkerActivityChanged {
        worker_sid: alice.clone(),
        from_activity_sid: available.clone(),
        to_activity_sid: offline.clone(),
    }));

    // The Workspace says so.
    let workspace = client.get(&ws).await;
    assert_eq!(workspace.status, 200, "{workspace:?}");
    assert_eq!(workspace.str("sid"), twilio.workspace_sid());
    assert_eq!(workspace.str("timeout_activity_sid"), offline);
    assert_eq!(workspace.str("timeout_activity_name"), "Offline");
    assert_eq!(workspace.str("default_activity_sid"), offline);
    assert_eq!(workspace.str("friendly_name"), "baton-standin");
    assert_eq!(workspace.str("event_callback_url"), receiver.url);
    let other = client
        .get("/v1/Workspaces/WS0123456789abcdef0123456789abcdef")
        .await;
    common::assert_error(&other, 404, 20404);

    // A REST timeout does the same; a worker already offline does not move.
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let carol = twilio.seed_worker(SeedWorker::new("carol").activity(&offline));
    let for_bob = twilio.offer(&task, &bob);
    let for_carol = twilio.offer(&task, &carol);
    for wr in [&for_bob, &for_carol] {
        let r = client
            .post(
                &format!("{ws}/Tasks/{task}/Reservations/{wr}"),
                &[("ReservationStatus", "timeout")],
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    twilio.settle().await;
    assert_eq!(
        receiver.types()[5..],
        [
            "reservation.created",
            "reservation.created",
            "reservation.timeout",
            "worker.activity.update",
            "reservation.timeout"
        ]
    );
    assert_eq!(
        receiver.received()[8].param("WorkerSid"),
        Some(bob.as_str())
    );
    assert_eq!(twilio.worker(&bob).unwrap().activity_sid, offline);

    // Off: the worker stays where it was.
    twilio.set_timeout_moves_worker_offline(false);
    let dave = twilio.seed_worker(SeedWorker::new("dave"));
    let for_dave = twilio.offer(&task, &dave);
    twilio.time_out_reservation(&for_dave);
    twilio.settle().await;
    assert_eq!(
        receiver.types().last().map(String::as_str),
        Some("reservation.timeout")
    );
    assert_eq!(twilio.worker(&dave).unwrap().activity_sid, available);
}

#[tokio::test]
async fn the_timeout_move_can_be_off_from_the_start() {
    let receiver = Receiver::start();
    let config = StandInConfig {
        timeout_moves_worker_offline: false,
        ..StandInConfig::default()
    };
    let (twilio, client) = standin(config, &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = create_task(&twilio, &client, "{}").await;
    let reservation = twilio.offer(&task, &alice);
    twilio.time_out_reservation(&reservation);
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.timeout"
        ]
    );
    assert_eq!(
        twilio.worker(&alice).unwrap().activity_sid,
        twilio.activity_sid("Available").unwrap()
    );
}

#[tokio::test]
async fn cancel_task_cancels_the_pending_reservations_then_the_task_with_the_reason() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let task = create_task(&twilio, &client, "{}").await;
    let first = twilio.offer(&task, &alice);
    let second = twilio.offer(&task, &bob);
    twilio.cancel_task(&task, "hangup");
    // A pending task without reservations: only task.canceled.
    let lonely = create_task(&twilio, &client, "{}").await;
    twilio.cancel_task(&lonely, "customer left");
    twilio.settle().await;

    assert_eq!(
        receiver.types(),
        [
            "task.created",
            "task-queue.entered",
            "reservation.created",
            "reservation.created",
            "reservation.canceled",
            "reservation.canceled",
            "task.canceled",
            "task.created",
            "task-queue.entered",
            "task.canceled"
        ]
    );
    let received = receiver.received();
    assert_eq!(received[4].param("ReservationSid"), Some(first.as_str()));
    assert_eq!(received[5].param("ReservationSid"), Some(second.as_str()));
    let canceled = &received[6];
    assert_eq!(canceled.param("TaskSid"), Some(task.as_str()));
    assert_eq!(canceled.param("TaskAssignmentStatus"), Some("canceled"));
    assert_eq!(canceled.param("TaskCanceledReason"), Some("hangup"));
    assert_eq!(canceled.param("EventDescription"), Some("hangup"));
    assert_eq!(
        received[9].param("TaskCanceledReason"),
        Some("customer left")
    );
    let state = twilio.task(&task).unwrap();
    assert_eq!(state.assignment_status, TaskStatus::Canceled);
    assert_eq!(state.reason.as_deref(), Some("hangup"));
    for wr in [&first, &second] {
        assert_eq!(
            twilio.reservation(wr).unwrap().status,
            twilio_standin::ReservationStatus::Canceled
        );
    }
    assert!(twilio.effects().contains(&Effect::TaskStatusChanged {
        task_sid: task.clone(),
        from: "reserved".into(),
        to: "canceled".into(),
        reason: Some("hangup".into()),
    }));
}

#[tokio::test]
#[should_panic(expected = "only pending or reserved tasks are canceled")]
async fn an_assigned_task_is_not_canceled() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(
        twilio_standin::SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&alice),
    );
    twilio.cancel_task(&task, "hangup");
}

#[tokio::test]
async fn set_worker_activity_by_name_or_sid_sends_worker_activity_update() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let available = twilio.activity_sid("Available").unwrap();
    let unavailable = twilio.activity_sid("Unavailable").unwrap();
    let offline = twilio.activity_sid("Offline").unwrap();
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    twilio.set_worker_activity(&alice, "Unavailable");
    assert_eq!(twilio.worker(&alice).unwrap().activity_sid, unavailable);
    twilio.set_worker_activity(&alice, &available);
    // The same activity again: nothing happens.
    twilio.set_worker_activity(&alice, "Available");
    // REST does the same.
    let r = client
        .post(
            &format!("{}/Workers/{alice}", client.ws(&twilio)),
            &[("ActivitySid", offline.as_str())],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.str("activity_name"), "Offline");
    twilio.settle().await;

    assert_eq!(
        receiver.types(),
        [
            "worker.activity.update",
            "worker.activity.update",
            "worker.activity.update"
        ]
    );
    let got: Vec<[String; 4]> = receiver
        .received()
        .iter()
        .map(|r| {
            [
                "WorkerActivitySid",
                "WorkerActivityName",
                "WorkerPreviousActivitySid",
                "WorkerPreviousActivityName",
            ]
            .map(|n| r.param(n).unwrap().to_owned())
        })
        .collect();
    let row = |a: &str, an: &str, p: &str, pn: &str| {
        [a.to_owned(), an.to_owned(), p.to_owned(), pn.to_owned()]
    };
    assert_eq!(
        got,
        [
            row(&unavailable, "Unavailable", &available, "Available"),
            row(&available, "Available", &unavailable, "Unavailable"),
            row(&offline, "Offline", &available, "Available"),
        ]
    );
    assert!(receiver
        .received()
        .iter()
        .all(|r| r.param("WorkerSid") == Some(alice.as_str())
            && r.param("WorkerTimeInPreviousActivity").is_some()));
}

#[tokio::test]
#[should_panic(expected = "activity Lunch does not exist")]
async fn set_worker_activity_refuses_an_unknown_activity() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    twilio.set_worker_activity(&alice, "Lunch");
}
