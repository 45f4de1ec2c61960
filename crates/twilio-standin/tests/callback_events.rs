//! Playing TaskRouter: which events the stand-in's state changes send to a receiver standing in
//! for baton (the task lifecycle, REST changes, closing Flex participants and channels), with
//! exactly TaskRouter's parameters, and the same events in the Events list.

mod common;

use common::callbacks::{create_task, standin, types};
use common::receiver::Receiver;
use serde_json::json;
use twilio_standin::{
    AttemptOutcome, DeliveredCallback, SeedConversation, SeedInteraction,
    SeedInteractionParticipant, SeedWorker, StandInConfig, TaskStatus,
};

#[tokio::test]
async fn a_task_lifecycle_sends_twilios_callbacks_in_order() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = create_task(&twilio, &client, r#"{"type":"support"}"#).await;
    let reservation = twilio.offer(&task, &alice);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Reserved
    );
    twilio.accept(&reservation);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Assigned
    );
    twilio.wrap_up(&task);
    twilio.complete(&task);
    twilio.settle().await;

    let expected = [
        "task.created",
        "task-queue.entered",
        "reservation.created",
        "reservation.accepted",
        "reservation.wrapup",
        "task.wrapup",
        "reservation.completed",
        "task.completed",
    ];
    assert_eq!(receiver.types(), expected);
    let callbacks = twilio.callbacks();
    assert_eq!(types(&callbacks), expected);
    assert!(callbacks
        .iter()
        .all(|c| c.attempts == [AttemptOutcome::Status(204)] && !c.redelivery));
    // The receiver got exactly what the stand-in recorded, in that order.
    for (got, sent) in receiver.received().iter().zip(&callbacks) {
        assert_eq!(got.pairs, sent.callback.params);
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/webhooks/taskrouter");
    }
    // Each event has its own, later millisecond and its own SID.
    let ms: Vec<i64> = callbacks
        .iter()
        .map(|c| c.param("TimestampMs").unwrap().parse().unwrap())
        .collect();
    assert!(ms.windows(2).all(|w| w[0] < w[1]), "{ms:?}");
    let mut sids: Vec<&str> = callbacks.iter().map(DeliveredCallback::event_sid).collect();
    sids.sort_unstable();
    sids.dedup();
    assert_eq!(sids.len(), expected.len());
    // The reservation events say where the task was by then.
    let status_of = |event: &str| {
        callbacks
            .iter()
            .find(|c| c.event_type() == event)
            .and_then(|c| c.param("TaskAssignmentStatus"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(status_of("reservation.created"), "reserved");
    assert_eq!(status_of("reservation.accepted"), "assigned");
    assert_eq!(status_of("task.wrapup"), "wrapping");
    assert_eq!(status_of("task.completed"), "completed");
}

#[tokio::test]
async fn a_reservation_callback_has_exactly_taskrouters_parameters() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio
        .seed_worker(SeedWorker::new("alice").attributes(json!({"contact_uri": "client:alice"})));
    let attributes = r#"{"type":"support","conversationSid":"CH00000000000000000000000000000009"}"#;
    let task = create_task(&twilio, &client, attributes).await;
    let reservation = twilio.offer(&task, &alice);
    twilio.settle().await;

    let received = receiver.received();
    let created = received
        .iter()
        .find(|r| r.event_type() == "reservation.created")
        .expect("reservation.created delivered");
    let mut names: Vec<&str> = created.pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "AccountSid",
            "EventDescription",
            "EventType",
            "ReservationSid",
            "ResourceSid",
            "ResourceType",
            "Sid",
            "TaskAge",
            "TaskAssignmentStatus",
            "TaskAttributes",
            "TaskChannelSid",
            "TaskChannelUniqueName",
            "TaskDateCreated",
            "TaskPriority",
            "TaskQueueEnteredDate",
            "TaskQueueName",
            "TaskQueueSid",
            "TaskQueueTargetExpression",
            "TaskSid",
            "Timestamp",
            "TimestampMs",
            "WorkerActivityName",
            "WorkerActivitySid",
            "WorkerAttributes",
            "WorkerName",
            "WorkerSid",
            "WorkflowName",
            "WorkflowSid",
            "WorkspaceName",
            "WorkspaceSid",
        ]
    );
    let p = |name: &str| created.param(name).unwrap();
    let state = twilio.task(&task).unwrap();
    assert_eq!(p("AccountSid"), twilio.account_sid());
    assert_eq!(p("WorkspaceSid"), twilio.workspace_sid());
    assert_eq!(p("WorkspaceName"), "baton-standin");
    assert!(p("Sid").starts_with("EV") && p("Sid").len() == 34);
    assert_eq!(p("EventType"), "reservation.created");
    assert_eq!(
        p("EventDescription"),
        format!("Reservation {reservation} created for Worker {alice}")
    );
    assert_eq!(p("ResourceType"), "reservation");
    assert_eq!(p("ResourceSid"), reservation);
    let ms: i64 = p("TimestampMs").parse().unwrap();
    assert_eq!(p("Timestamp"), (ms / 1000).to_string());
    assert_eq!(p("TaskSid"), task);
    assert_eq!(p("TaskAttributes"), attributes);
    assert_eq!(p("TaskAssignmentStatus"), "reserved");
    assert!(p("TaskAge").parse::<i64>().unwrap() < 5);
    assert_eq!(p("TaskPriority"), "0");
    assert_eq!(
        p("TaskDateCreated"),
        state.date_created.timestamp().to_string()
    );
    assert_eq!(p("TaskChannelSid"), state.task_channel_sid);
    assert_eq!(p("TaskChannelUniqueName"), "default");
    assert_eq!(p("TaskQueueSid"), twilio.default_task_queue_sid());
    assert_eq!(p("TaskQueueName"), "Everyone");
    assert_eq!(p("TaskQueueTargetExpression"), "1==1");
    assert_eq!(p("WorkflowSid"), twilio.default_workflow_sid());
    assert_eq!(p("WorkflowName"), "Assign to Anyone");
    assert_eq!(p("WorkerSid"), alice);
    assert_eq!(p("WorkerName"), "alice");
    assert_eq!(p("WorkerAttributes"), r#"{"contact_uri":"client:alice"}"#);
    assert_eq!(
        p("WorkerActivitySid"),
        twilio.activity_sid("Available").unwrap()
    );
    assert_eq!(p("WorkerActivityName"), "Available");
    assert_eq!(p("ReservationSid"), reservation);

    // task.created precedes routing: no queue fields; task-queue.entered has them.
    let of_type = |t: &str| received.iter().find(|r| r.event_type() == t).unwrap();
    let task_created = of_type("task.created");
    assert_eq!(task_created.param("TaskQueueSid"), None);
    assert_eq!(task_created.param("TaskAssignmentStatus"), Some("pending"));
    assert_eq!(task_created.param("ResourceType"), Some("task"));
    assert_eq!(task_created.param("WorkerSid"), None);
    let entered = of_type("task-queue.entered");
    assert_eq!(
        entered.param("TaskQueueSid"),
        Some(twilio.default_task_queue_sid().as_str())
    );
}

#[tokio::test]
async fn rest_changes_send_their_callbacks() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let ws = client.ws(&twilio);
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = create_task(&twilio, &client, "{}").await;
    let r = client
        .post(
            &format!("{ws}/Tasks/{task}"),
            &[("Attributes", r#"{"x":1}"#)],
        )
        .await;
    assert_eq!(r.status, 200);
    let reservation = twilio.offer(&task, &alice);
    let r = client
        .post(
            &format!("{ws}/Tasks/{task}/Reservations/{reservation}"),
            &[("ReservationStatus", "accepted")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .post(
            &format!("{ws}/Tasks/{task}"),
            &[("AssignmentStatus", "completed"), ("Reason", "resolved")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let unavailable = twilio.activity_sid("Unavailable").unwrap();
    let r = client
        .post(
            &format!("{ws}/Workers/{alice}"),
            &[
                ("ActivitySid", unavailable.as_str()),
                ("Attributes", r#"{"skills":["en"]}"#),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let other = create_task(&twilio, &client, "{}").await;
    let r = client
        .post(
            &format!("{ws}/Tasks/{other}"),
            &[("AssignmentStatus", "canceled"), ("Reason", "hangup")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        [
            "task.created",
            "task-queue.entered",
            "task.updated",
            "reservation.created",
            "reservation.accepted",
            "reservation.completed",
            "task.completed",
            "worker.attributes.update",
            "worker.activity.update",
            "task.created",
            "task-queue.entered",
            "task.canceled"
        ]
    );
    let received = receiver.received();
    assert_eq!(received[2].param("TaskAttributes"), Some(r#"{"x":1}"#));
    assert_eq!(received[6].param("TaskCompletedReason"), Some("resolved"));
    let activity = &received[8];
    assert_eq!(activity.param("ResourceType"), Some("worker"));
    assert_eq!(activity.param("WorkerActivityName"), Some("Unavailable"));
    assert_eq!(
        activity.param("WorkerPreviousActivityName"),
        Some("Available")
    );
    assert_eq!(
        activity.param("WorkerPreviousActivitySid"),
        twilio.activity_sid("Available").as_deref()
    );
    assert!(activity.param("WorkerTimeInPreviousActivityMs").is_some());
    assert_eq!(
        activity.param("WorkerAttributes"),
        Some(r#"{"skills":["en"]}"#)
    );
    assert_eq!(received[11].param("TaskCanceledReason"), Some("hangup"));
    assert_eq!(received[11].param("EventDescription"), Some("hangup"));
}

#[tokio::test]
async fn the_events_list_and_the_callbacks_are_the_same_events() {
    let receiver = Receiver::start();
    let config = StandInConfig {
        generate_events: true,
        ..StandInConfig::default()
    };
    let (twilio, client) = standin(config, &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = create_task(&twilio, &client, r#"{"a":"b"}"#).await;
    twilio.offer(&task, &alice);
    twilio.settle().await;
    let events = twilio.events();
    let callbacks = twilio.callbacks();
    assert_eq!(events.len(), callbacks.len());
    for (event, callback) in events.iter().zip(&callbacks) {
        assert_eq!(event["sid"], callback.event_sid());
        assert_eq!(event["event_type"], callback.event_type());
        assert_eq!(
            event["description"],
            callback.param("EventDescription").unwrap()
        );
        assert_eq!(
            event["event_date_ms"].to_string(),
            callback.param("TimestampMs").unwrap()
        );
        assert_eq!(
            event["event_data"]["task_attributes"],
            callback.param("TaskAttributes").unwrap()
        );
        assert_eq!(
            event["event_data"]["task_assignment_status"],
            callback.param("TaskAssignmentStatus").unwrap()
        );
    }
    assert_eq!(events[2]["event_data"]["worker_name"], "alice");

    // Without generate_events the list stays empty; callbacks still go.
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    create_task(&twilio, &client, "{}").await;
    twilio.settle().await;
    assert!(twilio.events().is_empty());
    assert_eq!(receiver.types(), ["task.created", "task-queue.entered"]);
}

#[tokio::test]
async fn closing_flex_participants_and_channels_sends_the_task_callbacks() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let first = twilio.seed_task(
        twilio_standin::SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&alice),
    );
    let second = twilio.seed_task(
        twilio_standin::SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&bob),
    );
    let conversation = twilio.seed_conversation(SeedConversation::new());
    let seeded = twilio.seed_interaction(
        SeedInteraction::new()
            .conversation(&conversation)
            .participant(SeedInteractionParticipant::agent(&first).worker(&alice))
            .participant(SeedInteractionParticipant::agent(&second).worker(&bob)),
    );
    let channel = format!(
        "/v1/Interactions/{}/Channels/{}",
        seeded.interaction_sid, seeded.channel_sid
    );
    // Alice leaves: her task completes.
    let r = client
        .post(
            &format!("{channel}/Participants/{}", seeded.participant_sids[0]),
            &[("Status", "closed")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // The channel closes: bob's task wraps up.
    let r = client.post(&channel, &[("Status", "closed")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    twilio.settle().await;
    let got: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            (
                r.event_type().to_owned(),
                r.param("TaskSid").unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("reservation.completed", &first),
        ("task.completed", &first),
        ("reservation.wrapup", &second),
        ("task.wrapup", &second),
    ]
    .iter()
    .map(|(t, s)| ((*t).to_owned(), (*s).clone()))
    .collect();
    assert_eq!(got, expected);
}
