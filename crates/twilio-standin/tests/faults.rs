mod common;

use common::{assert_error, start, Client};
use std::time::Duration;
use twilio_standin::{
    Effect, FaultKind, Faults, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus,
};

/// What a client observed for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Ok,
    Status(u16),
    NoAnswer,
}

#[tokio::test]
async fn thirty_percent_faults_with_a_seed_give_the_predicted_mix() {
    let config = StandInConfig {
        seed: 7,
        ..StandInConfig::default()
    };
    let twilio = StandIn::start(config).await;
    let client = Client::new(&twilio);
    let faults = Faults {
        rate_limit: 0.1,
        retry_after_secs: 3,
        server_error: 0.05,
        unavailable: 0.05,
        reset: 0.1,
        ..Faults::default()
    };
    twilio.set_faults(faults.clone());
    let n = 300;
    let path = format!("{}/Activities", client.ws(&twilio));
    let mut seen = Vec::new();
    for _ in 0..n {
        match client.send(reqwest::Method::GET, &path, &[], &[]).await {
            Ok(r) if r.status == 200 => seen.push(Seen::Ok),
            Ok(r) => {
                if r.status == 429 {
                    assert_eq!(r.header("retry-after"), Some("3"));
                    assert_error(&r, 429, 20429);
                    assert_eq!(r.str("message"), "Too Many Requests");
                } else if r.status == 500 {
                    assert_error(&r, 500, 20500);
                } else {
                    assert_error(&r, 503, 20503);
                }
                seen.push(Seen::Status(r.status));
            }
            Err(e) => {
                assert!(e.status().is_none(), "{e}");
                seen.push(Seen::NoAnswer);
            }
        }
    }
    // Exactly what the seeded draws predict …
    let expected: Vec<Seen> = faults
        .sequence(7, n)
        .into_iter()
        .map(|f| match f {
            None => Seen::Ok,
            Some(FaultKind::RateLimited) => Seen::Status(429),
            Some(FaultKind::ServerError) => Seen::Status(500),
            Some(FaultKind::ServiceUnavailable) => Seen::Status(503),
            Some(FaultKind::ConnectionReset) => Seen::NoAnswer,
            Some(other) => panic!("not configured: {other:?}"),
        })
        .collect();
    assert_eq!(seen, expected);
    // … which is a plausible 30 % mix with every kind present.
    let count = |s: Seen| seen.iter().filter(|x| **x == s).count();
    let faulted = n - count(Seen::Ok);
    assert!((60..=120).contains(&faulted), "{faulted} faulted of {n}");
    for kind in [
        Seen::Status(429),
        Seen::Status(500),
        Seen::Status(503),
        Seen::NoAnswer,
    ] {
        assert!(count(kind) > 0, "{kind:?} never happened");
    }
    // The log agrees.
    let logged: Vec<Option<FaultKind>> = twilio.requests().iter().map(|r| r.fault).collect();
    assert_eq!(logged, faults.sequence(7, n));
    assert!(twilio
        .requests()
        .iter()
        .filter(|r| r.fault == Some(FaultKind::ConnectionReset))
        .all(|r| r.status.is_none()));

    // set_faults restarts the same draws; a different seed gives different ones.
    twilio.set_faults(faults.clone());
    twilio.clear_requests();
    for _ in 0..20 {
        let _ = client.send(reqwest::Method::GET, &path, &[], &[]).await;
    }
    let again: Vec<Option<FaultKind>> = twilio.requests().iter().map(|r| r.fault).collect();
    assert_eq!(again, faults.sequence(7, 20));
    assert_ne!(faults.sequence(7, 100), faults.sequence(8, 100));
}

#[tokio::test]
async fn faulted_requests_apply_nothing_except_error_after_apply() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    let path = format!("{}/Tasks/{task}", client.ws(&twilio));
    let complete = [("AssignmentStatus", "completed"), ("Reason", "done")];

    // Before-processing faults: nothing applied.
    twilio.fail_next("POST", &path, 1, 429, 20429);
    let r = client.post(&path, &complete).await;
    assert_error(&r, 429, 20429);
    assert_eq!(r.header("retry-after"), Some("1"));
    twilio.fault_next("POST", &path, 1, FaultKind::ServerError);
    assert_error(&client.post(&path, &complete).await, 500, 20500);
    twilio.fault_next("*", &path, 1, FaultKind::ConnectionReset);
    let reset = client
        .send(reqwest::Method::POST, &path, &complete, &[])
        .await;
    assert!(reset.is_err(), "{reset:?}");
    assert!(twilio.effects().is_empty());
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Assigned
    );

    // 500 after applying: the effect happens once; the retry sees "already done" (20001).
    twilio.fault_next("POST", &path, 1, FaultKind::ErrorAfterApply);
    let r = client.post(&path, &complete).await;
    assert_error(&r, 500, 20500);
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Completed
    );
    let retry = client.post(&path, &complete).await;
    assert_error(&retry, 400, 20001);
    let completions = twilio
        .effects()
        .iter()
        .filter(|e| e.completes_task(&task))
        .count();
    assert_eq!(completions, 1);

    let log = twilio.requests();
    let faults: Vec<Option<FaultKind>> = log.iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some(FaultKind::Scripted {
                status: 429,
                code: 20429
            }),
            Some(FaultKind::ServerError),
            Some(FaultKind::ConnectionReset),
            Some(FaultKind::ErrorAfterApply),
            None
        ]
    );
    let applied: Vec<bool> = log.iter().map(|r| r.applied()).collect();
    assert_eq!(applied, [false, false, false, true, false]);
    assert_eq!(log[3].status, Some(500));
    assert_eq!(log[3].processed_status, Some(200));
}

#[tokio::test]
async fn timeouts_hold_then_drop_and_apply_only_after_apply() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    twilio.set_faults(Faults {
        timeout_delay: Duration::from_millis(400),
        ..Faults::default()
    });
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
    let path = format!("{}/Tasks/{task}", client.ws(&twilio));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let send = || {
        impatient
            .post(format!("{}{path}", twilio.base_url()))
            .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
            .form(&[("AssignmentStatus", "wrapping")])
            .send()
    };

    twilio.fault_next("POST", &path, 1, FaultKind::Timeout);
    let err = send().await.expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Assigned
    );
    assert!(twilio.effects().is_empty());

    twilio.fault_next("POST", &path, 1, FaultKind::TimeoutAfterApply);
    let err = send().await.expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        twilio.task(&task).unwrap().assignment_status,
        TaskStatus::Wrapping
    );
    assert_eq!(twilio.effects().len(), 2); // task and reservation wrapped
    assert!(matches!(
        twilio.effects()[0],
        Effect::TaskStatusChanged { .. }
    ));
}

#[tokio::test]
async fn the_request_log_never_holds_the_auth_token() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let token = twilio.auth_token().to_owned();
    let ws = client.ws(&twilio);
    let task = twilio.seed_task(SeedTask::new());
    // Ordinary traffic, an error, a 401, and the token carelessly sent as a value.
    client.get(&format!("{ws}/Tasks/{task}")).await;
    client
        .post_with(
            &format!("{ws}/Tasks/{task}"),
            &[("Attributes", &format!(r#"{{"leak":"{token}"}}"#))],
            &[("If-Match", "0")],
        )
        .await;
    client.get(&format!("{ws}/Tasks/{task}?x={token}")).await;
    let wrong = Client {
        password: format!("{token}x"),
        ..Client::new(&twilio)
    };
    wrong.get(&format!("{ws}/Activities")).await;
    client
        .post_json(
            &format!("/v1/Accounts/{}/Tokens/validate", twilio.account_sid()),
            &serde_json::json!({"token": token}),
        )
        .await;

    let log = twilio.requests();
    assert_eq!(log.len(), 5);
    let dumped = format!("{log:?}{}", serde_json::to_string(&log).unwrap());
    assert!(!dumped.contains(&token), "auth token in the log");
    assert!(!dumped.to_ascii_lowercase().contains("authorization"));
    assert!(dumped.contains("[REDACTED]"));
    assert!(log.iter().all(|r| r.header("authorization").is_none()));
    // The selected headers are kept.
    assert_eq!(log[1].header("if-match"), Some("0"));
    assert_eq!(
        log[1].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // But the stored state got the real value.
    assert!(twilio.task(&task).unwrap().attributes.contains(&token));
}

#[tokio::test]
async fn latency_delays_every_answer_without_changing_it() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&twilio);
    let path = format!("{}/Activities", client.ws(&twilio));
    twilio.set_faults(Faults {
        latency: Duration::from_millis(120),
        latency_jitter: Duration::from_millis(30),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let response = client
        .send(reqwest::Method::GET, &path, &[], &[])
        .await
        .expect("answered");
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_most_requests_handled_at_once_is_measured() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    twilio.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Faults::default()
    });
    let path = format!("{}/Activities", client.ws(&twilio));
    assert_eq!(twilio.max_concurrent_requests(), 0);
    // Three at once, then two more one after the other: the peak is three.
    let three = (0..3).map(|_| client.send(reqwest::Method::GET, &path, &[], &[]));
    for result in futures_util::future::join_all(three).await {
        assert_eq!(result.unwrap().status, 200);
    }
    for _ in 0..2 {
        client
            .send(reqwest::Method::GET, &path, &[], &[])
            .await
            .unwrap();
    }
    assert_eq!(twilio.max_concurrent_requests(), 3);
    twilio.reset_max_concurrent_requests();
    client
        .send(reqwest::Method::GET, &path, &[], &[])
        .await
        .unwrap();
    assert_eq!(twilio.max_concurrent_requests(), 1);
}
