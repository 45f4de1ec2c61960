//! Hostile input against a real baton: oversized and lying bodies, deep and huge JSON, invalid
//! UTF-8, too many parameters, slow clients, replays. Each is refused (or stored flagged, for a
//! signed event baton cannot interpret) without storing anything it should not, and the service
//! keeps serving.

use crate::helpers::*;
use baton::ingest::form::form_body;
use baton::ingest::signature::compute_signature;
use serde_json::Value;
use std::time::{Duration, Instant};

const FORM: &str = "application/x-www-form-urlencoded";
const TASKROUTER: &str = "/webhooks/taskrouter";

fn with_attributes(n: u128, attributes: &str) -> Vec<(String, String)> {
    let mut params = task_created(n);
    for (k, v) in params.iter_mut() {
        if k == "TaskAttributes" {
            *v = attributes.to_owned();
        }
    }
    params
}

async fn assert_healthy(app: &TestApp) {
    let res = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), 200);
}

/// A signed callback on a connection of its own is stored while something hostile goes on.
async fn assert_served_meanwhile(app: &TestApp, n: u128) {
    let res = app.post_signed_form(TASKROUTER, &task_created(n)).await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_it_is_read() {
    let app = spawn_app_with(AppOptions {
        max_body_bytes: 64 * 1024,
        ..AppOptions::default()
    })
    .await;
    for (path, content_type) in [
        (TASKROUTER, FORM),
        ("/webhooks/conversations", FORM),
        ("/webhooks/events?bodySHA256=00", "application/json"),
        ("/api/v1/transfers", "application/json"),
    ] {
        let mut conn = RawConnection::open(&app.address).await;
        let length = format!("Content-Length: {}\r\n", 64 * 1024 + 1);
        assert!(
            conn.send(post_head(path, content_type, &length).as_bytes())
                .await
        );
        // Not a byte of the body is sent: the answer comes from the header alone.
        let res = conn.response().await.expect("a response");
        assert_eq!(res.status, 413, "{path}");
        assert_eq!(res.error_code(), "payload_too_large", "{path}");
        assert_eq!(res.header("connection"), Some("close"), "{path}");
        assert!(conn.closed_within(Duration::from_secs(2)).await, "{path}");
    }
    assert_eq!(app.inbox_count().await, 0);
    assert_healthy(&app).await;
}

/// Posts a signed callback followed by chunked padding, up to `up_to` bytes, reading the answer
/// meanwhile: the answer, whether the server then closed the connection, how much was sent
/// before it did, and for how long.
async fn chunked_until_refused(
    address: &str,
    up_to: usize,
) -> (RawResponse, bool, usize, Duration) {
    let (body, signature) = signed_taskrouter_callback(&task_created(1));
    let RawConnection {
        mut reader,
        mut writer,
    } = RawConnection::open(address).await;
    let head = post_head(
        TASKROUTER,
        FORM,
        &format!("{signature}Transfer-Encoding: chunked\r\n"),
    );
    let padding = format!("&Pad={}", "x".repeat(16 * 1024));
    let started = Instant::now();
    let write = async move {
        use tokio::io::AsyncWriteExt;
        let mut sent = 0usize;
        let mut chunk = body;
        let mut open = writer.write_all(head.as_bytes()).await.is_ok();
        while open && sent < up_to {
            let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
            open = writer.write_all(framed.as_bytes()).await.is_ok();
            sent += chunk.len();
            chunk = padding.clone();
        }
        (sent, started.elapsed())
    };
    let read = async {
        let res = reader.response().await.expect("a response");
        let closed = reader.closed_within(Duration::from_secs(5)).await;
        (res, closed)
    };
    let ((sent, writing), (res, closed)) = tokio::join!(write, read);
    (res, closed, sent, writing)
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    let app = spawn_app_with(AppOptions {
        max_body_bytes: 64 * 1024,
        ..AppOptions::default()
    })
    .await;
    let (res, closed, sent, writing) = chunked_until_refused(&app.address, 1 << 30).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.error_code(), "payload_too_large");
    assert_eq!(res.header("connection"), Some("close"));
    assert!(closed, "the connection stayed open");
    assert!(sent < 1 << 30, "the server read all {sent} bytes");
    assert!(writing < Duration::from_secs(8), "{writing:?}");
    assert_eq!(app.inbox_count().await, 0);
    assert_served_meanwhile(&app, 2).await;
    assert_eq!(app.inbox_count().await, 1);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_content_length_shorter_than_the_body_is_not_signed_and_the_rest_is_refused() {
    let app = spawn_app().await;
    let (body, signature) = signed_taskrouter_callback(&task_created(1));
    let mut conn = RawConnection::open(&app.address).await;
    // Says 100 bytes, sends the whole signed body and 1 MiB more behind it.
    let head = post_head(
        TASKROUTER,
        FORM,
        &format!("{signature}Content-Length: 100\r\n"),
    );
    let tail = "y".repeat(1024 * 1024);
    assert!(conn.send(format!("{head}{body}{tail}").as_bytes()).await);
    // The first 100 bytes are all baton reads as the body: not what Twilio signed.
    let res = conn.response().await.expect("a response");
    assert_eq!(res.status, 403);
    assert_eq!(res.error_code(), "signature_invalid");
    // What follows is no request: a 400 and the connection is closed.
    if let Some(res) = conn.response().await {
        assert_eq!(res.status, 400);
    }
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    assert_eq!(app.inbox_count().await, 0);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn deeply_nested_json_is_flagged_in_a_signed_callback_and_refused_as_a_batch() {
    let app = spawn_app_with(AppOptions {
        processors: 1,
        ..AppOptions::default()
    })
    .await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    // Signed TaskRouter callback: stored, flagged, acknowledged (Twilio would not send it
    // again), and the processor gets past it.
    let res = app
        .post_signed_form(TASKROUTER, &with_attributes(1, &deep))
        .await;
    assert_eq!(res.status(), 204);
    let (error, attributes, raw_len): (Option<String>, Option<Value>, Option<i32>) =
        sqlx::query_as(
            "SELECT interpret_error, task_attributes::jsonb, length(params::jsonb->>'TaskAttributes')
             FROM inbox_events",
        )
        .fetch_one(&app.pool)
        .await
        .expect("one row");
    let error = error.expect("flagged");
    assert!(
        error.contains("TaskAttributes is not valid JSON (recursion limit exceeded"),
        "{error}"
    );
    assert_eq!(attributes, None);
    assert_eq!(
        raw_len,
        Some(200_000),
        "the raw value is kept for inspection"
    );

    // Event Streams: a body that deep is not JSON baton can read: 400, nothing stored.
    let res = app.post_signed_events(&deep).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_body");

    // A CloudEvent whose `data` string is that deep: stored, flagged.
    let batch = serde_json::json!([{"specversion": "1.0", "id": "CE-deep",
        "type": "com.twilio.taskrouter.task.created", "data": deep}])
    .to_string();
    let res = app.post_signed_events(&batch).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"received": 1, "stored": 1, "duplicates": 0})
    );
    let error: Option<String> = sqlx::query_scalar(
        "SELECT interpret_error FROM inbox_events WHERE event_key = 'ce:CE-deep'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the CloudEvent");
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("data string is not a JSON object")),
        "{error:?}"
    );
    assert_eq!(app.inbox_count().await, 2);
    drained(&app.pool).await;
    assert_healthy(&app).await;
}

#[tokio::test]
async fn huge_task_attributes_are_stored_and_processed() {
    let app = spawn_app_with(AppOptions {
        processors: 1,
        ..AppOptions::default()
    })
    .await;
    // 20,000 keys, ~600 KB once form-encoded: inside the 1 MiB limit.
    let mut attributes = serde_json::Map::new();
    attributes.insert(
        "conversationSid".into(),
        Value::String(sid("CH", 1).to_string()),
    );
    for i in 0..20_000 {
        attributes.insert(format!("k{i}"), Value::String(format!("v{i}")));
    }
    let attributes = Value::Object(attributes).to_string();
    let params = with_attributes(1, &attributes);
    assert!(form_body(&params).len() > 500_000);
    let res = app.post_signed_form(TASKROUTER, &params).await;
    assert_eq!(res.status(), 204);
    let (error, keys): (Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT interpret_error, (SELECT count(*) FROM jsonb_object_keys(task_attributes::jsonb))
         FROM inbox_events",
    )
    .fetch_one(&app.pool)
    .await
    .expect("one row");
    assert_eq!(error, None);
    assert_eq!(keys, Some(20_001));
    assert_eq!(app.inbox_count().await, 1);
    drained(&app.pool).await;
    let status: String = sqlx::query_scalar("SELECT assignment_status FROM tasks")
        .fetch_one(&app.pool)
        .await
        .expect("the task");
    assert_eq!(status, "pending");
    assert_healthy(&app).await;
}

#[tokio::test]
async fn invalid_utf8_is_refused() {
    let app = spawn_app().await;
    for body in [
        &b"EventType=task.created&TaskSid=%FF%FE"[..],
        b"EventType=task\xC3.created",
    ] {
        for path in [TASKROUTER, "/webhooks/conversations"] {
            let res = app
                .client
                .post(format!("{}{path}", app.address))
                .header("Content-Type", FORM)
                .header("X-Twilio-Signature", "irrelevant")
                .body(body.to_vec())
                .send()
                .await
                .expect("sent");
            assert_eq!(res.status(), 400, "{path}");
            assert_eq!(error_code(res).await, "malformed_body");
        }
    }
    // JSON that is not UTF-8, signed over its bytes.
    let body = b"[{\"id\":\"CE\xFF\"}]".to_vec();
    let path = format!(
        "/webhooks/events?bodySHA256={}",
        baton::ingest::signature::body_sha256_hex(&body)
    );
    let signature = compute_signature(AUTH_TOKEN, &format!("{PUBLIC_BASE}{path}"), &[]);
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/json")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_body");
    assert_eq!(app.inbox_count().await, 0);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn more_than_a_thousand_params_are_refused() {
    let app = spawn_app().await;
    let mut params = task_created(1);
    let filler = 1_000 - params.len();
    params.extend((0..filler).map(|i| (format!("X{i}"), "1".to_owned())));
    assert_eq!(params.len(), 1_000);
    let res = app.post_signed_form(TASKROUTER, &params).await;
    assert_eq!(res.status(), 204, "1,000 parameters are still a callback");
    assert_eq!(app.inbox_count().await, 1);

    let mut params = task_created(2);
    params.extend((0..5_000).map(|i| (format!("X{i}"), "1".to_owned())));
    let res = app.post_signed_form(TASKROUTER, &params).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_body");
    let res = app
        .post_signed_form("/webhooks/conversations", &params)
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_body");
    assert_eq!(app.inbox_count().await, 1);
    assert_healthy(&app).await;
}

/// Sends `bytes` one every `every_ms` while another client's callback is stored, until the
/// server answers and hangs up; that must happen 1–8 s after `opened` (the tests' 1 s timeouts;
/// the upper bound leaves room for a loaded machine). `opened` is taken before connecting: the
/// server's clock starts when it accepts, and a later start here could see the cut under 1 s.
async fn trickled_while_others_are_served(
    app: &TestApp,
    conn: &mut RawConnection,
    opened: Instant,
    bytes: &[u8],
    every_ms: u64,
) -> RawResponse {
    let started = opened;
    let RawConnection { reader, writer } = conn;
    let trickle = async {
        use tokio::io::AsyncWriteExt;
        for byte in bytes {
            if writer.write_all(&[*byte]).await.is_err() || started.elapsed().as_secs() > 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(every_ms)).await;
        }
    };
    let read = async {
        let res = tokio::time::timeout(Duration::from_secs(10), reader.response())
            .await
            .expect("cut within 10 s")
            .expect("a response");
        let cut_after = started.elapsed();
        assert!(reader.closed_within(Duration::from_secs(1)).await);
        (res, cut_after)
    };
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_served_meanwhile(app, 2).await;
    };
    let ((), (res, cut_after), ()) = tokio::join!(trickle, read, meanwhile);
    assert!(
        cut_after >= Duration::from_secs(1) && cut_after < Duration::from_secs(8),
        "{cut_after:?}"
    );
    res
}

#[tokio::test]
async fn headers_trickled_byte_by_byte_are_cut_while_others_are_served() {
    let app = spawn_app_with(AppOptions {
        header_timeout: Duration::from_secs(1),
        ..AppOptions::default()
    })
    .await;
    let (body, signature) = signed_taskrouter_callback(&task_created(1));
    let request = format!(
        "{}{body}",
        post_head(
            TASKROUTER,
            FORM,
            &format!("{signature}Content-Length: {}\r\n", body.len())
        )
    );
    let opened = Instant::now();
    let mut conn = RawConnection::open(&app.address).await;
    let res =
        trickled_while_others_are_served(&app, &mut conn, opened, request.as_bytes(), 50).await;
    assert_eq!(res.status, 408);
    // Only the other client's callback is stored.
    assert_eq!(app.inbox_count().await, 1);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn a_body_trickled_or_stalled_is_cut_while_others_are_served() {
    let app = spawn_app_with(AppOptions {
        body_timeout: Duration::from_secs(1),
        ..AppOptions::default()
    })
    .await;
    let (body, signature) = signed_taskrouter_callback(&task_created(1));
    let head = post_head(
        TASKROUTER,
        FORM,
        &format!("{signature}Content-Length: {}\r\n", body.len()),
    );

    // One byte of the body every 100 ms: a whole callback would take over a minute.
    let opened = Instant::now();
    let mut conn = RawConnection::open(&app.address).await;
    assert!(conn.send(head.as_bytes()).await);
    let res = trickled_while_others_are_served(&app, &mut conn, opened, body.as_bytes(), 100).await;
    assert_eq!(res.status, 408);
    assert_eq!(res.error_code(), "request_timeout");

    // A Content-Length longer than what is sent: the body never completes.
    let mut conn = RawConnection::open(&app.address).await;
    let started = Instant::now();
    assert!(conn.send(head.as_bytes()).await);
    assert!(conn.send(&body.as_bytes()[..10]).await);
    let res = conn.response().await.expect("a response");
    assert_eq!(res.status, 408);
    assert_eq!(res.error_code(), "request_timeout");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(conn.closed_within(Duration::from_secs(1)).await);

    // A chunked body trickled for up to 10 s: cut at the timeout, not drained to its end.
    let RawConnection {
        mut reader,
        mut writer,
    } = RawConnection::open(&app.address).await;
    let head = post_head(
        TASKROUTER,
        FORM,
        &format!("{signature}Transfer-Encoding: chunked\r\n"),
    );
    let started = Instant::now();
    let trickle = async move {
        use tokio::io::AsyncWriteExt;
        let mut open = writer.write_all(head.as_bytes()).await.is_ok();
        while open && started.elapsed() < Duration::from_secs(10) {
            open = writer.write_all(b"1\r\nx\r\n").await.is_ok();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    };
    let read = async {
        let res = reader.response().await.expect("a response");
        (res, reader.closed_within(Duration::from_secs(5)).await)
    };
    let (writing, (res, closed)) = tokio::join!(trickle, read);
    assert_eq!(res.status, 408);
    assert_eq!(res.error_code(), "request_timeout");
    assert!(closed);
    assert!(writing < Duration::from_secs(8), "{writing:?}");

    assert_eq!(app.inbox_count().await, 1);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn replayed_signed_requests_are_stored_once_and_all_acknowledged() {
    let app = spawn_app().await;
    // 25 concurrent deliveries each of: a callback with an event SID, one without (natural
    // key), and an Event Streams batch.
    let with_sid = task_created(1);
    let without_sid = task_callback(
        "task.canceled",
        &sid("WT", 1),
        "canceled",
        1_700_000_000_500,
    );
    let batch = serde_json::json!([{"specversion": "1.0", "id": "CE-replay",
        "type": "com.twilio.conversations.conversation-state.updated",
        "data": {"ConversationSid": sid("CH", 1), "StateFrom": "active", "StateTo": "closed",
                 "StateUpdated": "2026-11-20T10:00:00.000Z"}}])
    .to_string();
    let deliveries = (0..25).map(|_| async {
        let a = app.post_signed_form(TASKROUTER, &with_sid).await.status();
        let b = app
            .post_signed_form(TASKROUTER, &without_sid)
            .await
            .status();
        let c = app.post_signed_events(&batch).await;
        let status = c.status();
        let report: Value = c.json().await.expect("report");
        (a, b, status, report["stored"].as_i64().expect("stored"))
    });
    let results = futures_util::future::join_all(deliveries).await;
    for (a, b, c, _) in &results {
        assert_eq!((a.as_u16(), b.as_u16(), c.as_u16()), (204, 204, 200));
    }
    let stored: i64 = results.iter().map(|r| r.3).sum();
    assert_eq!(stored, 1, "the batch was stored by exactly one delivery");
    assert_eq!(app.inbox_count().await, 3);
    assert_healthy(&app).await;
}

#[tokio::test]
async fn memory_stays_flat_over_many_refused_large_bodies() {
    // The real binary, alone in its process, so its resident memory is what is measured.
    let twilio = twilio_standin::StandIn::start(Default::default()).await;
    let baton = ServeProcess::start(&twilio.base_url(), &[("BATON_PROCESSORS", "0")]).await;
    let refuse = |n: usize| {
        let address = baton.address.clone();
        async move {
            for _ in 0..n {
                // Each is read up to the 1 MiB limit, then refused.
                let (res, closed, _, _) = chunked_until_refused(&address, 2 << 20).await;
                assert_eq!(res.status, 413);
                assert_eq!(res.error_code(), "payload_too_large");
                assert!(closed);
            }
        }
    };
    // Warm up with the same load as the measured round: buffers, connection state and
    // allocator arenas reach their working size (a warm-up of 40 left them still growing when
    // the machine was busy with other tests: 54 -> 101 MiB, with no leak).
    futures_util::future::join_all((0..4).map(|_| refuse(100))).await;
    let before = baton.rss_kib();
    // 400 more over 4 connections at once: 400 MiB read and dropped.
    futures_util::future::join_all((0..4).map(|_| refuse(100))).await;
    let after = baton.rss_kib();
    println!("baton serve RSS: {before} KiB after warm-up, {after} KiB after 400 more refused 1 MiB bodies");
    assert!(
        after < before + 32 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox_events")
            .fetch_one(&baton.pool)
            .await
            .expect("count"),
        0
    );
    let res = reqwest::get(format!("{}/healthz", baton.address))
        .await
        .expect("healthz");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_escaped_nul_in_signed_task_attributes_is_stored() {
    let app = spawn_app_with(AppOptions {
        processors: 1,
        ..AppOptions::default()
    })
    .await;
    // No NUL byte in the form (that is refused), but a JSON escape for one, which Postgres'
    // JSONB cannot hold.
    let attributes =
        r#"{"conversationSid":"CH00000000000000000000000000000001","note":"a\u0000b"}"#;
    let res = app
        .post_signed_form(TASKROUTER, &with_attributes(1, attributes))
        .await;
    assert_eq!(res.status(), 204);
    let (error, note): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT interpret_error, task_attributes::jsonb->>'note' FROM inbox_events")
            .fetch_one(&app.pool)
            .await
            .expect("one row");
    assert_eq!(note.as_deref(), Some("a\u{FFFD}b"));
    assert_eq!(
        error.as_deref(),
        Some("TaskAttributes: NUL characters were replaced with U+FFFD")
    );
    drained(&app.pool).await;
    assert_eq!(app.inbox_count().await, 1);
}
