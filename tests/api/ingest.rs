//! Webhook ingest: signatures, body checks, and exactly one stored row per real event.

use crate::helpers::*;
use baton::ingest::signature::compute_signature;
use serde_json::Value;

#[derive(sqlx::FromRow)]
struct StoredRow {
    event_key: String,
    source: String,
    event_type: Option<String>,
    task_sid: Option<String>,
    event_time_ms: Option<i64>,
    task_attributes: Value,
    params: Value,
    interpret_error: Option<String>,
    conversation_sid: Option<String>,
}

#[tokio::test]
async fn taskrouter_callback_is_stored_once_after_three_deliveries() {
    let app = spawn_app().await;
    let task = sid("WT", 7);
    let mut params = task_callback("task.created", &task, "pending", 1_700_000_000_123);
    params.push(("Sid".into(), sid("EV", 7)));
    for _ in 0..3 {
        let res = app.post_signed_form("/webhooks/taskrouter", &params).await;
        assert_eq!(res.status(), 204);
        assert_eq!(res.headers()["content-type"], "application/json");
    }
    let row: StoredRow = sqlx::query_as(
        "SELECT event_key, source, event_type, task_sid, event_time_ms, task_attributes::jsonb AS task_attributes,
                    params::jsonb AS params,
                    interpret_error, conversation_sid
             FROM inbox_events",
    )
    .fetch_one(&app.pool)
    .await
    .expect("exactly one row");
    assert_eq!(app.inbox_count().await, 1);
    assert_eq!(row.event_key, format!("tr:sid:{}", sid("EV", 7)));
    assert_eq!(row.source, "taskrouter_callback");
    assert_eq!(row.event_type.as_deref(), Some("task.created"));
    assert_eq!(row.task_sid.as_deref(), Some(task.as_str()));
    assert_eq!(row.event_time_ms, Some(1_700_000_000_123));
    assert_eq!(row.task_attributes["channelType"], "sms");
    assert_eq!(row.params["EventType"], "task.created");
    assert_eq!(row.interpret_error, None);
    assert_eq!(
        row.conversation_sid.as_deref(),
        Some("CH00000000000000000000000000000001")
    );
}

#[tokio::test]
async fn conversations_webhook_is_stored_once_after_three_deliveries() {
    let app = spawn_app().await;
    let params = pairs(&[
        ("AccountSid", &sid("AC", 1)),
        ("EventType", "onConversationStateUpdated"),
        ("ChatServiceSid", &sid("IS", 1)),
        ("ConversationSid", &sid("CH", 3)),
        ("StateFrom", "active"),
        ("StateTo", "closed"),
        ("Reason", "API"),
        ("StateUpdated", "2026-11-20T10:00:00.000Z"),
        ("Source", "API"),
        ("ClientIdentity", ""),
    ]);
    for _ in 0..3 {
        let res = app
            .post_signed_form("/webhooks/conversations", &params)
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap(), serde_json::json!({}));
    }
    let (key, conversation, event): (String, Option<String>, Value) =
        sqlx::query_as("SELECT event_key, conversation_sid, event::jsonb FROM inbox_events")
            .fetch_one(&app.pool)
            .await
            .expect("exactly one row");
    assert_eq!(app.inbox_count().await, 1);
    assert!(key.starts_with("conversations_webhook:sha256:"), "{key}");
    assert_eq!(conversation, Some(sid("CH", 3)));
    assert_eq!(event["state_to"], "closed");
}

#[tokio::test]
async fn event_streams_batch_is_stored_once_after_three_deliveries() {
    let app = spawn_app().await;
    let task = sid("WT", 9);
    let body = serde_json::json!([
        {"specversion": "1.0", "type": "com.twilio.taskrouter.task.created", "id": "CE1",
         "source": "/v1/Workspaces", "data": {"payload": {"sid": sid("EV", 91), "eventtype": "task.created",
         "task_sid": task, "timestamp": "2026-11-20T10:00:00.100Z", "task_attributes": "{}",
         "task_assignment_status": "pending"}}},
        {"specversion": "1.0", "type": "com.twilio.conversations.conversation-state.updated", "id": "CE2",
         "data": serde_json::json!({"ConversationSid": sid("CH", 9), "StateFrom": "active",
         "StateTo": "inactive", "StateUpdated": "2026-11-20T10:00:01.000Z"}).to_string()}
    ])
    .to_string();
    let mut reports = Vec::new();
    for _ in 0..3 {
        let res = app.post_signed_events(&body).await;
        assert_eq!(res.status(), 200);
        reports.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(
        reports[0],
        serde_json::json!({"received": 2, "stored": 2, "duplicates": 0})
    );
    assert_eq!(
        reports[2],
        serde_json::json!({"received": 2, "stored": 0, "duplicates": 2})
    );
    let keys: Vec<String> = sqlx::query_scalar("SELECT event_key FROM inbox_events ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        keys,
        vec![format!("tr:sid:{}", sid("EV", 91)), "ce:CE2".to_owned()]
    );
}

#[tokio::test]
async fn one_taskrouter_event_by_callback_and_by_event_streams_lands_once() {
    let app = spawn_app().await;
    let task = sid("WT", 11);
    // The callback carries no Sid, only TimestampMs; the CloudEvent carries the event SID.
    let callback = task_callback("task.canceled", &task, "canceled", 1_763_632_800_250);
    assert_eq!(
        app.post_signed_form("/webhooks/taskrouter", &callback)
            .await
            .status(),
        204
    );
    let body = serde_json::json!([{"specversion": "1.0", "type": "com.twilio.taskrouter.task.canceled",
        "id": "CE-x", "data": {"payload": {"sid": sid("EV", 11), "eventtype": "task.canceled", "task_sid": task,
        "timestamp": "2025-11-20T10:00:00.250Z", "task_assignment_status": "canceled"}}}])
    .to_string();
    let res = app.post_signed_events(&body).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["duplicates"], 1);
    assert_eq!(app.inbox_count().await, 1);
}

#[tokio::test]
async fn bad_signatures_get_403_and_store_nothing() {
    let app = spawn_app().await;
    let params = task_callback("task.created", &sid("WT", 1), "pending", 1_700_000_000_000);
    let url = format!("{PUBLIC_BASE}/webhooks/taskrouter");

    let missing = app.post_form("/webhooks/taskrouter", &params, None).await;
    assert_eq!(missing.status(), 403);
    assert_eq!(error_code(missing).await, "signature_missing");

    let wrong_token = compute_signature("another-token", &url, &params);
    let res = app
        .post_form("/webhooks/taskrouter", &params, Some(&wrong_token))
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_code(res).await, "signature_invalid");

    // Signed correctly, then one parameter changed in flight.
    let signature = compute_signature(AUTH_TOKEN, &url, &params);
    let mut tampered = params.clone();
    tampered[3].1 = "task.completed".into();
    let res = app
        .post_form("/webhooks/taskrouter", &tampered, Some(&signature))
        .await;
    assert_eq!(res.status(), 403);

    // Signed over the address baton was reached at (the Host), not the public URL.
    let host_signed = compute_signature(
        AUTH_TOKEN,
        &format!("{}/webhooks/taskrouter", app.address),
        &params,
    );
    let res = app
        .post_form("/webhooks/taskrouter", &params, Some(&host_signed))
        .await;
    assert_eq!(res.status(), 403);

    // A JSON batch whose body changed after signing.
    let body = r#"[{"id":"CE1","type":"com.twilio.taskrouter.task.created","data":{}}]"#;
    let path = format!(
        "/webhooks/events?bodySHA256={}",
        baton::ingest::signature::body_sha256_hex(body.as_bytes())
    );
    let sig = compute_signature(AUTH_TOKEN, &format!("{PUBLIC_BASE}{path}"), &[]);
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/json")
        .header("X-Twilio-Signature", sig)
        .body(body.replace("CE1", "CE2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    assert_eq!(app.inbox_count().await, 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("baton_signature_failures_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_rotated_token_and_its_successor_both_validate() {
    let app = spawn_app_with(AppOptions {
        auth_tokens: vec!["old-token-aaaaaaaaaaaaaaaa".into(), AUTH_TOKEN.into()],
        ..AppOptions::default()
    })
    .await;
    let params = task_callback("task.created", &sid("WT", 2), "pending", 1_700_000_000_000);
    assert_eq!(
        app.post_signed_form("/webhooks/taskrouter", &params)
            .await
            .status(),
        204
    );
    let old = compute_signature(
        "old-token-aaaaaaaaaaaaaaaa",
        &format!("{PUBLIC_BASE}/webhooks/taskrouter"),
        &params,
    );
    assert_eq!(
        app.post_form("/webhooks/taskrouter", &params, Some(&old))
            .await
            .status(),
        204
    );
    assert_eq!(app.inbox_count().await, 1);
}

#[tokio::test]
async fn malformed_requests_get_their_status_and_store_nothing() {
    let app = spawn_app_with(AppOptions {
        max_body_bytes: 4096,
        ..AppOptions::default()
    })
    .await;
    let taskrouter = format!("{}/webhooks/taskrouter", app.address);

    // 413: over the configured limit.
    let mut params = task_callback("task.created", &sid("WT", 3), "pending", 1_700_000_000_000);
    params.push(("Padding".into(), "x".repeat(5000)));
    let res = app.post_signed_form("/webhooks/taskrouter", &params).await;
    assert_eq!(res.status(), 413);
    assert_eq!(error_code(res).await, "payload_too_large");

    // 415: JSON sent to a form endpoint, form sent to the JSON endpoint, no content type.
    let res = app
        .client
        .post(&taskrouter)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(error_code(res).await, "unsupported_media_type");
    let res = app
        .client
        .post(format!("{}/webhooks/events", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = app
        .client
        .post(&taskrouter)
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    // 400: a form body that is not UTF-8.
    let res = app
        .client
        .post(&taskrouter)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", "irrelevant")
        .body(b"EventType=task.created&TaskSid=%FF%FE".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_body");

    // 400: a correctly signed Event Streams body that is not JSON.
    let res = app.post_signed_events("[{not json").await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "malformed_body");

    // 404 is JSON too.
    let res = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(res).await, "not_found");

    assert_eq!(app.inbox_count().await, 0);
}

#[tokio::test]
async fn signed_events_baton_cannot_interpret_are_stored_flagged_and_acknowledged() {
    let app = spawn_app().await;
    let mut params = task_callback(
        "task.teleported",
        &sid("WT", 4),
        "pending",
        1_700_000_000_000,
    );
    for (k, v) in params.iter_mut() {
        if k == "TaskAttributes" {
            *v = "{not json".into();
        }
    }
    assert_eq!(
        app.post_signed_form("/webhooks/taskrouter", &params)
            .await
            .status(),
        204
    );
    let body = r#"[{"id":"CE-odd","type":"com.example.unknown","data":{"x":1}}]"#;
    assert_eq!(app.post_signed_events(body).await.status(), 200);
    let flagged: Vec<(String, String)> =
        sqlx::query_as("SELECT event_key, interpret_error FROM inbox_events WHERE interpret_error IS NOT NULL ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(flagged.len(), 2);
    assert!(
        flagged[0]
            .1
            .contains("unknown event type \"task.teleported\""),
        "{}",
        flagged[0].1
    );
    assert!(
        flagged[0].1.contains("TaskAttributes is not valid JSON"),
        "{}",
        flagged[0].1
    );
    assert_eq!(flagged[1].0, "ce:CE-odd");
    assert!(
        flagged[1].1.contains("unknown CloudEvent type"),
        "{}",
        flagged[1].1
    );
}

#[tokio::test]
async fn database_down_gives_503_never_2xx() {
    // A database nobody listens on: the app starts (lazy pool) but cannot store.
    let app = spawn_app_with(AppOptions {
        database_url: Some("postgres://postgres@127.0.0.1:1/nothing".into()),
        migrate: false,
        ..AppOptions::default()
    })
    .await;
    let params = task_callback("task.created", &sid("WT", 5), "pending", 1_700_000_000_000);
    let res = app.post_signed_form("/webhooks/taskrouter", &params).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    assert_eq!(error_code(res).await, "store_unavailable");
    let res = app
        .post_signed_events(r#"[{"id":"CE1","type":"com.x","data":{}}]"#)
        .await;
    assert_eq!(res.status(), 503);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A read that fails is said to be one: never "could not store".
    for path in [
        "/api/v1/transfers",
        "/api/v1/outbox?state=dead",
        &format!("/api/v1/tasks/{}/chain", sid("WT", 5)),
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth("ops-token-0123456789abcdef")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503, "{path}");
        assert_eq!(res.headers()["retry-after"], "5", "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "store_read_unavailable", "{path}");
        assert_eq!(
            body["error"]["message"], "the database could not be read; retry later",
            "{path}"
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-request-id"));
    let params = task_callback("task.created", &sid("WT", 6), "pending", 1_700_000_000_000);
    assert_eq!(
        app.post_signed_form("/webhooks/taskrouter", &params)
            .await
            .status(),
        204
    );
    let text = app.metrics().await;
    assert!(
        text.contains(r#"baton_http_requests_total{route="/webhooks/taskrouter",status="204"}"#),
        "{text}"
    );
    // Gauges are process-wide and other tests scrape concurrently: check presence, not value.
    assert!(text.contains("baton_inbox_depth "), "{text}");
    assert!(
        text.contains("baton_inbox_oldest_pending_seconds"),
        "{text}"
    );
}
