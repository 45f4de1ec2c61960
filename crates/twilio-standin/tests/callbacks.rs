//! Playing TaskRouter: the signed event callbacks the stand-in sends to a receiver standing in
//! for baton, and the control methods that drive routing.

mod common;

use common::receiver::{expected_signature, Received, Receiver};
use common::Client;
use serde_json::json;
use std::time::Duration;
use twilio_standin::{
    AttemptOutcome, CallbackRetry, DeliveredCallback, Effect, Release, SeedConversation,
    SeedInteraction, SeedInteractionParticipant, SeedWorker, StandIn, StandInConfig, TaskStatus,
    TASK_TTL_EXCEEDED,
};

// ---- helpers ----

async fn standin(config: StandInConfig, receiver: &Receiver) -> (StandIn, Client) {
    let twilio = StandIn::start(config).await;
    twilio.set_callback_url(Some(receiver.url.clone()));
    let client = Client::new(&twilio);
    (twilio, client)
}

async fn create_task(twilio: &StandIn, client: &Client, attributes: &str) -> String {
    let r = client
        .post(
            &format!("{}/Tasks", client.ws(twilio)),
            &[("Attributes", attributes)],
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.str("sid").to_owned()
}

fn types(callbacks: &[DeliveredCallback]) -> Vec<&str> {
    callbacks
        .iter()
        .map(DeliveredCallback::event_type)
        .collect()
}

// ---- tests ----

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
async fn callbacks_are_signed_and_carry_twilios_headers() {
    // The check itself first: Twilio's documented example (token 12345).
    let docs: Vec<(String, String)> = [
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+14158675310"),
        ("Caller", "+14158675310"),
        ("CallSid", "CA1234567890ABCDE"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(
        expected_signature("12345", "https://example.com/myapp.php?foo=1&bar=2", &docs),
        "L/OH5YylLD5NRKLltdqwSvS0BnU="
    );

    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    // A query string is signed as part of the URL; a fragment (connection overrides) is not.
    twilio.set_callback_url(Some(format!("{}?tenant=acme#rc=3&rp=5xx", receiver.url)));
    let client = Client::new(&twilio);
    create_task(&twilio, &client, r#"{"note":"héllo ✓ & = +"}"#).await;
    twilio.settle().await;

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let signed_url = format!("{}?tenant=acme", receiver.url);
    let mut tokens = Vec::new();
    for r in &received {
        assert_eq!(r.path, "/webhooks/taskrouter?tenant=acme");
        let signature = r.header("x-twilio-signature").expect("signed");
        assert_eq!(
            signature,
            expected_signature(twilio.auth_token(), &signed_url, &r.pairs)
        );
        assert_ne!(
            signature,
            expected_signature("another-token", &signed_url, &r.pairs)
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.header("user-agent"), Some("TwilioProxy/1.1"));
        tokens.push(r.header("i-twilio-idempotency-token").unwrap().to_owned());
    }
    assert_ne!(tokens[0], tokens[1], "one token per event");
    let callbacks = twilio.callbacks();
    assert_eq!(callbacks[0].callback.url, signed_url);
    assert_eq!(callbacks[0].callback.idempotency_token, tokens[0]);
    assert_eq!(
        received[0].param("TaskAttributes"),
        Some(r#"{"note":"héllo ✓ & = +"}"#)
    );
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_token_and_signature() {
    let receiver = Receiver::start();
    receiver.answer(&[500, 503]);
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    create_task(&twilio, &client, "{}").await;
    twilio.settle().await;

    let received = receiver.received();
    assert_eq!(
        received
            .iter()
            .map(Received::event_type)
            .collect::<Vec<_>>(),
        [
            "task.created",
            "task.created",
            "task.created",
            "task-queue.entered"
        ]
    );
    let same = |name: &str| {
        received[..3]
            .iter()
            .all(|r| r.header(name) == received[0].header(name))
    };
    assert!(same("x-twilio-signature") && same("i-twilio-idempotency-token"));
    let callbacks = twilio.callbacks();
    assert_eq!(callbacks.len(), 2);
    assert_eq!(
        callbacks[0].attempts,
        [
            AttemptOutcome::Status(500),
            AttemptOutcome::Status(503),
            AttemptOutcome::Status(204)
        ]
    );
    assert!(callbacks[0].succeeded());
    assert_eq!(callbacks[1].attempts, [AttemptOutcome::Status(204)]);
}

#[tokio::test]
async fn twilios_default_retry_gives_up_on_a_500_and_retries_a_refused_connection() {
    let receiver = Receiver::start();
    receiver.answer(&[500]);
    let config = StandInConfig {
        callback_retry: CallbackRetry::twilio_default(),
        ..StandInConfig::default()
    };
    let (twilio, client) = standin(config, &receiver).await;
    create_task(&twilio, &client, "{}").await;
    twilio.settle().await;
    let callbacks = twilio.callbacks();
    assert_eq!(callbacks[0].attempts, [AttemptOutcome::Status(500)]);
    assert_eq!(callbacks[0].status(), Some(500));
    assert!(!callbacks[0].succeeded());

    // Nobody listening: one retry, then the event is given up.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/webhooks/taskrouter",
        closed.local_addr().unwrap()
    );
    drop(closed);
    twilio.clear_callbacks();
    twilio.set_callback_url(Some(url));
    create_task(&twilio, &client, "{}").await;
    twilio.settle().await;
    let callbacks = twilio.callbacks();
    assert_eq!(callbacks.len(), 2);
    for callback in &callbacks {
        assert_eq!(callback.attempts.len(), 2, "{callback:?}");
        assert!(callback
            .attempts
            .iter()
            .all(|a| matches!(a, AttemptOutcome::ConnectFailed(_))));
    }
}

#[tokio::test]
async fn taken_callbacks_are_not_sent() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    twilio.hold_callbacks(true);
    let task = create_task(&twilio, &client, "{}").await;
    twilio.offer(&task, &alice);
    let taken = twilio.take_queued_callbacks();
    let taken_types: Vec<&str> = taken.iter().map(|c| c.event_type.as_str()).collect();
    assert_eq!(
        taken_types,
        ["task.created", "task-queue.entered", "reservation.created"]
    );
    assert_eq!(taken[0].param("TaskSid"), Some(task.as_str()));
    assert!(twilio.queued_callbacks().is_empty());
    twilio.hold_callbacks(false);
    twilio.settle().await;
    assert!(receiver.received().is_empty());
    assert!(twilio.callbacks().is_empty());
}

#[tokio::test]
async fn held_callbacks_are_released_reversed_shuffled_or_duplicated() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));

    twilio.hold_callbacks(true);
    let task = create_task(&twilio, &client, "{}").await;
    let reservation = twilio.offer(&task, &alice);
    twilio.settle().await; // held callbacks do not count
    assert!(receiver.received().is_empty());
    let queued: Vec<String> = twilio
        .queued_callbacks()
        .iter()
        .map(|c| c.event_type.clone())
        .collect();
    assert_eq!(
        queued,
        ["task.created", "task-queue.entered", "reservation.created"]
    );
    twilio.release_callbacks(Release::Reversed);
    twilio.settle().await;
    assert_eq!(
        receiver.types(),
        ["reservation.created", "task-queue.entered", "task.created"]
    );

    // Duplicated: each twice in a row, the second a redelivery with the same token.
    twilio.hold_callbacks(true);
    twilio.accept(&reservation);
    twilio.wrap_up(&task);
    twilio.release_callbacks(Release::Duplicated);
    twilio.settle().await;
    let received = receiver.received();
    assert_eq!(
        received[3..]
            .iter()
            .map(Received::event_type)
            .collect::<Vec<_>>(),
        [
            "reservation.accepted",
            "reservation.accepted",
            "reservation.wrapup",
            "reservation.wrapup",
            "task.wrapup",
            "task.wrapup"
        ]
    );
    for pair in received[3..].chunks(2) {
        assert_eq!(pair[0].pairs, pair[1].pairs);
        assert_eq!(
            pair[0].header("i-twilio-idempotency-token"),
            pair[1].header("i-twilio-idempotency-token")
        );
        assert_eq!(
            pair[0].header("x-twilio-signature"),
            pair[1].header("x-twilio-signature")
        );
    }
    let redeliveries: Vec<bool> = twilio.callbacks()[3..]
        .iter()
        .map(|c| c.redelivery)
        .collect();
    assert_eq!(redeliveries, [false, true, false, true, false, true]);

    // Shuffled: a permutation, the same for the same seed.
    let order = |seed: u64| async move {
        let receiver = Receiver::start();
        let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
        twilio.hold_callbacks(true);
        for i in 0..4 {
            create_task(&twilio, &client, &format!(r#"{{"i":{i}}}"#)).await;
        }
        twilio.release_callbacks(Release::Shuffled(seed));
        twilio.settle().await;
        receiver
            .received()
            .iter()
            .map(|r| {
                (
                    r.event_type().to_owned(),
                    r.param("TaskAttributes").unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let first = order(7).await;
    assert_eq!(first, order(7).await);
    assert_eq!(first.len(), 8);
    let mut sorted = first.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8);
    let produced: Vec<(String, String)> = (0..4)
        .flat_map(|i| {
            let attributes = format!(r#"{{"i":{i}}}"#);
            [
                ("task.created".to_owned(), attributes.clone()),
                ("task-queue.entered".to_owned(), attributes),
            ]
        })
        .collect();
    assert_ne!(
        first, produced,
        "seed 7 happens to keep the order; pick another"
    );
}

#[tokio::test]
async fn redeliver_repeats_a_callback_exactly() {
    let receiver = Receiver::start();
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    create_task(&twilio, &client, "{}").await;
    twilio.settle().await;
    let first = twilio.callbacks()[0].clone();
    twilio.redeliver(first.event_sid());
    twilio.settle().await;
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].pairs, received[0].pairs);
    for header in ["x-twilio-signature", "i-twilio-idempotency-token"] {
        assert_eq!(received[2].header(header), received[0].header(header));
    }
    let again = twilio.callbacks()[2].clone();
    assert!(again.redelivery);
    assert_eq!(again.callback, first.callback);
}

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
async fn without_a_url_nothing_is_sent_and_settle_returns_at_once() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    create_task(&twilio, &client, "{}").await;
    twilio.settle().await;
    assert!(twilio.callbacks().is_empty());
    assert!(twilio.queued_callbacks().is_empty());
    // Events produced before the URL was set are not sent later.
    let receiver = Receiver::start();
    twilio.set_callback_url(Some(receiver.url.clone()));
    twilio.settle().await;
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn settle_reports_a_receiver_that_does_not_answer() {
    let receiver = Receiver::start();
    *receiver.inbox.delay.lock().unwrap() = Duration::from_millis(1500);
    let (twilio, client) = standin(StandInConfig::default(), &receiver).await;
    create_task(&twilio, &client, "{}").await;
    let problem = twilio
        .settle_within(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(problem.contains("not delivered"), "{problem}");
    assert!(problem.contains("1 queued, 1 in flight"), "{problem}");
    *receiver.inbox.delay.lock().unwrap() = Duration::ZERO;
    twilio.settle().await;
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
