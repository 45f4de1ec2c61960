//! Bad requests get Twilio-shaped 4xx answers, never a panic, a 500 or a dropped connection.

mod common;

use common::{assert_error, start, Client};
use twilio_standin::{SeedConversation, SeedTask};

#[tokio::test]
async fn hostile_inputs_get_twilio_errors() {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let ws = client.ws(&twilio);
    let task = twilio.seed_task(SeedTask::new());
    let ch = twilio.seed_conversation(SeedConversation::new());
    let max = i64::MAX.to_string();

    let gets = [
        (format!("{ws}/Events?Minutes={max}"), 200),
        (format!("{ws}/Events?Minutes=-1"), 400),
        (format!("{ws}/Events?Page={max}&PageSize=1000"), 200),
        (format!("{ws}/Events?PageToken=garbage"), 400),
        (format!("{ws}/Events?PageToken=PT1_x"), 400),
        (format!("{ws}/Events?StartDate=yesterday"), 400),
        (format!("{ws}/Events?PageSize=0"), 400),
        (format!("{ws}/Activities?Page={max}&PageToken=PT0"), 200),
        (format!("{ws}/Activities?PageToken=PT{max}0"), 400),
        (format!("{ws}/Tasks/{task}%00"), 404),
        (format!("{ws}/Tasks/%FF%FE"), 404),
        (format!("{ws}/Tasks/{}", "A".repeat(5000)), 404),
        ("/v1/Conversations/%E2%82%AC/Participants".to_owned(), 404),
        ("/".to_owned(), 404),
        ("/v1".to_owned(), 404),
        (format!("{ws}//Tasks"), 404),
    ];
    for (path, status) in gets {
        let r = client
            .send(reqwest::Method::GET, &path, &[], &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path}: no answer: {e}"));
        assert_eq!(r.status, status, "GET {path}: {r:?}");
        if status != 200 {
            assert_error(&r, status, r.code().unwrap_or(0));
        }
    }

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/v1/Conversations/{ch}"),
            vec![("Timers.Closed", "PT99999999999999999S")],
        ),
        (
            format!("/v1/Conversations/{ch}"),
            vec![("Timers.Closed", "P99999999999999999999W")],
        ),
        (format!("/v1/Conversations/{ch}"), vec![("Attributes", "{")]),
        (
            format!("{ws}/Tasks"),
            vec![("Priority", "99999999999999999999999")],
        ),
        (format!("{ws}/Tasks"), vec![("Timeout", "0")]),
        (format!("{ws}/Tasks"), vec![("VirtualStartTime", "soon")]),
        (
            format!("{ws}/Tasks"),
            vec![("TaskChannel", "carrier-pigeon")],
        ),
        (format!("{ws}/Tasks"), vec![("Attributes", "[1,2]")]),
        // An empty value is not a valid enum value.
        (format!("{ws}/Tasks/{task}"), vec![("AssignmentStatus", "")]),
        (format!("{ws}/Tasks/{task}"), vec![("TaskChannel", "\u{0}")]),
    ];
    for (path, form) in posts {
        let r = client
            .send(reqwest::Method::POST, &path, &form, &[])
            .await
            .unwrap_or_else(|e| panic!("POST {path}: no answer: {e}"));
        assert_error(&r, 400, 20001);
    }

    // A body that is not form encoding, or not UTF-8: nothing declared is read, so nothing
    // changes and the update succeeds (Twilio ignores what it does not know).
    let raw = |body: Vec<u8>, content_type: &str| {
        client
            .http
            .post(format!("{}{ws}/Tasks/{task}", client.base))
            .basic_auth(&client.user, Some(&client.password))
            .header("content-type", content_type)
            .body(body)
    };
    for (body, content_type) in [
        (
            vec![0xff, 0xfe, b'=', 0x80],
            "application/x-www-form-urlencoded",
        ),
        (
            b"{\"AssignmentStatus\": \"completed\"}".to_vec(),
            "application/json",
        ),
        (
            b"%%%=%%%&&&==".to_vec(),
            "application/x-www-form-urlencoded",
        ),
    ] {
        let r = raw(body, content_type).send().await.expect("answer");
        assert!(r.status().is_success(), "{}", r.status());
    }
    let json_to_iam = client
        .http
        .post(format!(
            "{}/v1/Accounts/{}/Tokens/validate",
            client.base,
            twilio.account_sid()
        ))
        .basic_auth(&client.user, Some(&client.password))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(json_to_iam.status(), 400);

    // Still serving, and no request crashed the stand-in.
    assert_eq!(client.get(&format!("{ws}/Tasks/{task}")).await.status, 200);
    assert!(twilio
        .requests()
        .iter()
        .all(|r| r.status.is_some_and(|s| s < 500)));
}
