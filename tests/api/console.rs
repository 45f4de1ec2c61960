//! The ops console: sign-in, the session cookie, CSRF, the page headers, and the API routes it
//! reads (overview, SID search, CSV); then the pages themselves in real headless Chromium.

use crate::flex::{flex_with, wait_until, Flex, OPS_TOKEN};
use crate::helpers::*;
use baton::domain::chain::CompleteOn;
use baton::edge::console::session::{SessionKey, Who};
use reqwest::header;
use serde_json::json;
use std::time::Duration;
use twilio_standin::FaultKind;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// baton with the stand-in answering whether a token that is not the ops token is a Flex token.
async fn app_asking(twilio: &twilio_standin::StandIn) -> TestApp {
    spawn_app_with(AppOptions {
        twilio_api_base_url: Some(url::Url::parse(&twilio.base_url()).expect("url")),
        auth_tokens: vec![twilio.auth_token().to_owned()],
        ..AppOptions::default()
    })
    .await
}

/// A client that shows redirects instead of following them, and keeps no cookies of its own.
fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn sign_in(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .post(format!("{}/console/sign-in", app.address))
        .form(&[("token", token), ("next", "/console/outbox?state=dead")])
        .send()
        .await
        .expect("baton reachable")
}

/// The session cookie a sign-in set (`name=value`).
fn session_cookie(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie");
    set.split(';').next().expect("cookie").to_owned()
}

/// The CSRF token the page shell carries.
async fn csrf_of(app: &TestApp, client: &reqwest::Client, cookie: &str) -> String {
    let page = client
        .get(format!("{}/console", app.address))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let start = page
        .find("name=\"csrf-token\" content=\"")
        .expect("csrf meta")
        + "name=\"csrf-token\" content=\"".len();
    page[start..start + page[start..].find('"').expect("end")].to_owned()
}

#[tokio::test]
async fn signing_in_sets_a_strict_session_that_pages_and_the_api_accept() {
    let twilio = twilio_standin::StandIn::start(twilio_standin::StandInConfig::default()).await;
    let app = app_asking(&twilio).await;
    let client = browserless();

    // No session: every page sends its user to sign in, and comes back after.
    let response = client
        .get(format!("{}/console/tasks/{}", app.address, sid("WT", 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!(
            "/console/sign-in?next=%2Fconsole%2Ftasks%2F{}",
            sid("WT", 1)
        )
        .as_str()
    );
    let root = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (root.status().as_u16(), &root.headers()[header::LOCATION]),
        (303, &header::HeaderValue::from_static("/console"))
    );

    // The form: a password field, under the same strict headers as every page.
    let form = client
        .get(format!("{}/console/sign-in", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(form.headers()[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(form.headers()[header::CACHE_CONTROL], "no-store");
    let html = form.text().await.unwrap();
    assert!(html.contains("type=\"password\""), "{html}");
    assert!(!html.contains("<script"), "no script on the sign-in page");

    // A wrong token: refused, no cookie.
    let refused = sign_in(&app, &client, "not-the-ops-token").await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get(header::SET_COOKIE).is_none());

    // The ops token: a session cookie, back where the user was going.
    let signed_in = sign_in(&app, &client, OPS_TOKEN).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(
        signed_in.headers()[header::LOCATION],
        "/console/outbox?state=dead"
    );
    let set = signed_in.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("baton_session="), "{set}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=28800"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(
        set.ends_with("; Secure"),
        "the public URL is https, so the cookie is Secure: {set}"
    );
    assert!(!set.contains(OPS_TOKEN), "the token is never in the cookie");
    let cookie = session_cookie(&signed_in);

    let page = client
        .get(format!("{}/console", app.address))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/console/assets/console.js\"></script>"));
    assert!(!html.contains(OPS_TOKEN));
    assert!(
        !html.contains("<script>") && !html.contains(" on"),
        "no inline script or handler"
    );

    // The API takes the session for reads…
    let outbox = client
        .get(format!("{}/api/v1/outbox", app.address))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(outbox.status(), 200);
    // …and for actions only with the session's CSRF token.
    let retry = |csrf: Option<String>| {
        let mut request = client
            .post(format!("{}/api/v1/outbox/999/retry", app.address))
            .header(header::COOKIE, &cookie);
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request.send()
    };
    let without = retry(None).await.unwrap();
    assert_eq!(without.status(), 403);
    assert_eq!(error_code(without).await, "forbidden");
    let wrong = retry(Some("bm90LXRoZS10b2tlbg".into())).await.unwrap();
    assert_eq!(wrong.status(), 403);
    let csrf = csrf_of(&app, &client, &cookie).await;
    let with = retry(Some(csrf.clone())).await.unwrap();
    assert_eq!(with.status(), 404, "past the CSRF check: no call 999");

    // Signing out clears the cookie; without the CSRF field it is refused.
    let out = client
        .post(format!("{}/console/sign-out", app.address))
        .header(header::COOKIE, &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 403);
    let out = client
        .post(format!("{}/console/sign-out", app.address))
        .header(header::COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()[header::LOCATION], "/console/sign-in");
    let cleared = out.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("baton_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn a_flex_user_signs_in_with_their_token_and_sees_what_their_role_allows() {
    let twilio = twilio_standin::StandIn::start(twilio_standin::StandInConfig::default()).await;
    twilio.seed_flex_token("lead-token", "lee@example.com", None, &["supervisor"]);
    twilio.seed_flex_token("agent-token", "ann@example.com", None, &["agent"]);
    twilio.seed_flex_token_until(
        "short-token",
        "sam@example.com",
        None,
        &["admin"],
        chrono::Utc::now() + chrono::TimeDelta::minutes(10),
    );
    let app = app_asking(&twilio).await;
    let client = browserless();
    let get = |cookie: String, path: &'static str| {
        client
            .get(format!("{}{path}", app.address))
            .header(header::COOKIE, cookie)
            .send()
    };

    let lead = sign_in(&app, &client, "lead-token").await;
    assert_eq!(lead.status(), 303);
    let lead = session_cookie(&lead);
    assert!(
        !lead.contains("lead-token"),
        "the token is never in the cookie"
    );
    let page = get(lead.clone(), "/console").await.unwrap();
    assert!(page.text().await.unwrap().contains("lee@example.com"));
    assert_eq!(
        get(lead.clone(), "/api/v1/overview")
            .await
            .unwrap()
            .status(),
        200
    );
    let outbox = get(lead, "/api/v1/outbox").await.unwrap();
    assert_eq!(outbox.status(), 403, "the outbox is for the ops token");

    // A session never outlives the Flex token it was signed in with.
    let short = sign_in(&app, &client, "short-token").await;
    let set = short.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let max_age: u64 = set
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .and_then(|a| a.parse().ok())
        .expect("Max-Age");
    assert!((590..=600).contains(&max_age), "{set}");

    let agent = session_cookie(&sign_in(&app, &client, "agent-token").await);
    let history = get(agent.clone(), "/api/v1/overview").await.unwrap();
    assert_eq!(
        history.status(),
        403,
        "history is for admins and supervisors"
    );
    assert_eq!(get(agent, "/api/v1/parks").await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_forged_or_expired_session_is_refused() {
    let app = spawn_app().await;
    let client = browserless();
    let key = SessionKey::new(&secrecy::SecretString::from(OPS_TOKEN.to_owned()));
    let now = chrono::Utc::now().timestamp();
    let expired = key.start(Who::Ops, now - 7200, Duration::from_secs(3600));
    let other = SessionKey::new(&secrecy::SecretString::from(
        "another-ops-token-0000".to_owned(),
    ));
    let valid = key.seal(&key.start(Who::Ops, now, Duration::from_secs(3600)));
    let (body, _) = valid.split_once('.').unwrap();
    for (what, cookie) in [
        ("expired", key.seal(&expired)),
        (
            "signed with another ops token",
            other.seal(&other.start(Who::Ops, now, Duration::from_secs(3600))),
        ),
        ("unsigned", body.to_owned()),
        ("garbage", "bm9wZQ.bm9wZQ".to_owned()),
    ] {
        let api = client
            .get(format!("{}/api/v1/outbox", app.address))
            .header(header::COOKIE, format!("baton_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 401, "{what}");
        assert_eq!(error_code(api).await, "unauthorized", "{what}");
        let page = client
            .get(format!("{}/console/parks", app.address))
            .header(header::COOKIE, format!("baton_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 303, "{what}");
        assert_eq!(
            page.headers()[header::LOCATION],
            "/console/sign-in?expired=1&next=%2Fconsole%2Fparks",
            "{what}"
        );
    }
    // The valid one passes (so the refusals above are about the cookie).
    let api = client
        .get(format!("{}/api/v1/outbox", app.address))
        .header(header::COOKIE, format!("baton_session={valid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);

    // A sign-in posted from another site is refused.
    let cross = client
        .post(format!("{}/console/sign-in", app.address))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("token", OPS_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get(header::SET_COOKIE).is_none());

    // Assets need no session and hold no data; an unknown one is a JSON 404.
    let js = client
        .get(format!("{}/console/assets/console.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let missing = client
        .get(format!("{}/console/assets/nope.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(error_code(missing).await, "not_found");
}

/// A chain (Alice → Bob), a park, and a dead call, for the pages to show.
struct World {
    flex: Flex,
    first_task: String,
    second_task: String,
    reservation: String,
    conversation: String,
    dead_call: i64,
    park_id: String,
}

async fn world() -> World {
    // Three attempts, so the call Twilio refuses dies quickly.
    let flex = flex_with(CompleteOn::Accepted, 3).await;
    let customer = flex.customer_writes_in().await;
    let a = customer.task.clone();
    flex.accept(&a, &flex.alice).await;
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob, "notes": "billing question"}))
        .await;
    assert_eq!(status, 202, "{body}");
    flex.quiesce().await;
    let b = flex.task_after(&a);
    let reservation = flex.twilio.offer(&b, &flex.bob);
    flex.twilio.accept(&reservation);
    flex.quiesce().await;

    // Bob parks the customer.
    let (status, parked) = flex.api_post("/api/v1/parks", json!({"task_sid": b})).await;
    assert_eq!(status, 201, "{parked}");
    flex.quiesce().await;
    let park_id = parked["park"]["park_id"].as_str().expect("park").to_owned();

    // A call Twilio keeps refusing with 500: dead after its attempts.
    let other = flex.customer_writes_in().await;
    flex.accept(&other.task, &flex.carol).await;
    let call = complete_task(&flex.twilio, &other.task);
    flex.twilio
        .fault_next("POST", &call.request.path, 3, FaultKind::ServerError);
    let mut tx = flex.app.pool.begin().await.unwrap();
    baton::store::outbox::enqueue(&mut tx, &call).await.unwrap();
    tx.commit().await.unwrap();
    let dead_call = baton::store::outbox::id_of(
        &mut flex.app.pool.acquire().await.unwrap(),
        &call.idempotency_key,
    )
    .await
    .unwrap()
    .expect("enqueued");
    wait_until("the call to die", Duration::from_secs(20), || async {
        let (_, body) = flex
            .app
            .api_get(&format!("/api/v1/outbox/{dead_call}"))
            .await;
        body["call"]["state"] == "dead"
    })
    .await;
    World {
        first_task: a,
        second_task: b,
        reservation,
        conversation: customer.conversation,
        dead_call,
        park_id,
        flex,
    }
}

#[tokio::test]
async fn the_overview_search_and_csv_routes_answer_what_the_console_shows() {
    let w = world().await;
    let app = &w.flex.app;

    let (status, overview) = app.api_get("/api/v1/overview?window=24h").await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview["transfers"]["total"], 1);
    assert_eq!(overview["transfers"]["completed"], 1);
    assert_eq!(overview["parked_count"], 1);
    assert_eq!(overview["parked_now"][0]["park_id"], w.park_id.as_str());
    assert_eq!(overview["health"]["outbox_dead"], 1);
    let attention = overview["attention"].as_array().expect("attention");
    assert_eq!(attention.len(), 1, "{attention:?}");
    assert_eq!(attention[0]["kind"], "dead_call");
    assert_eq!(attention[0]["outbox_id"], w.dead_call);
    let (status, refused) = app.api_get("/api/v1/overview?window=2h").await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("invalid_request"))
    );

    // A reservation leads to its task; an interaction channel to its conversation.
    let (status, found) = app
        .api_get(&format!("/api/v1/sids/{}", w.reservation))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["kind"], "reservation");
    assert_eq!(found["task_sid"], w.second_task.as_str());
    let (status, found) = app
        .api_get(&format!("/api/v1/sids/{}", w.conversation))
        .await;
    assert_eq!(
        (status, &found["conversation_sid"]),
        (200, &json!(w.conversation))
    );
    let (status, _) = app
        .api_get(&format!("/api/v1/sids/{}", sid("WT", 77)))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api_get(&format!("/api/v1/sids/{}", sid("AC", 77)))
        .await;
    assert_eq!(status, 400);

    // The chain carries its tasks' reservations and the calls baton made for it.
    let (_, chain) = app
        .api_get(&format!("/api/v1/tasks/{}/chain", w.first_task))
        .await;
    let tasks = chain["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        tasks[1]["reservations"][0]["reservation_sid"],
        w.reservation.as_str()
    );
    assert_eq!(
        tasks[1]["reservations"][0]["worker_sid"],
        w.flex.bob.as_str()
    );
    let kinds: Vec<&str> = chain["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"close_interaction_participant"),
        "Alice's side, finished once Bob accepted: {kinds:?}"
    );

    // CSV: the columns of `baton history transfers --csv`, one row per hop.
    let csv = app
        .client
        .get(format!("{}/api/v1/transfers?format=csv", app.address))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], baton::domain::csv::HOP_COLUMNS.join(","));
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].contains(&w.second_task));
    let (status, _) = app.api_get("/api/v1/transfers?format=xml").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_console_in_chromium_finds_a_transfer_redrives_a_dead_call_and_resumes_a_park() {
    let w = world().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console/console_test.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .env("BATON_URL", &w.flex.app.address)
        .env("BATON_CONSOLE_TOKEN", OPS_TOKEN)
        .env("WORKER_SID", &w.flex.bob)
        .env("FIRST_TASK", &w.first_task)
        .env("SECOND_TASK", &w.second_task)
        .env("CONVERSATION", &w.conversation)
        .env("DEAD_CALL", w.dead_call.to_string())
        .env("PARK_ID", &w.park_id)
        .kill_on_drop(true)
        .output()
        .await
        .expect(
            "python3 runs (see docs/testing.md: the console tests need Playwright and Chromium)",
        );
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(!out.contains(OPS_TOKEN) && !err.contains(OPS_TOKEN));

    // What the clicks did, as baton stored it.
    let (_, call) = w
        .flex
        .app
        .api_get(&format!("/api/v1/outbox/{}", w.dead_call))
        .await;
    assert_eq!(call["call"]["state"], "done", "{call}");
    assert_eq!(call["call"]["redrives"], 1);
    let (_, park) = w
        .flex
        .app
        .api_get(&format!("/api/v1/parks/{}", w.park_id))
        .await;
    assert_eq!(park["park"]["state"], "resumed", "{park}");
}
