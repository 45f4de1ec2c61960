//! Playing TaskRouter: how the event callbacks reach a receiver standing in for baton: signed,
//! with Twilio's headers, retried, held and released in another order, taken, redelivered, and
//! when `settle` returns.

mod common;

use common::callbacks::{create_task, standin};
use common::receiver::{expected_signature, Received, Receiver};
use common::Client;
use std::time::Duration;
use twilio_standin::{AttemptOutcome, CallbackRetry, Release, SeedWorker, StandIn, StandInConfig};

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
