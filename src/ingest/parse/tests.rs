//! Every wire format becomes the same typed event, with the same identity.

use super::*;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const WT: &str = "WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[test]
fn callback_becomes_a_typed_task_event() {
    let p = pairs(&[
        ("EventType", "task.created"),
        ("Sid", "EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("TaskSid", WT),
        ("TaskAttributes", r#"{"conversationSid":"CH1"}"#),
        ("TaskAssignmentStatus", "pending"),
        ("Timestamp", "1700000000"),
        ("TimestampMs", "1700000000123"),
        ("WorkflowSid", "WW1"),
    ]);
    let parsed = taskrouter_callback(&p, None);
    assert_eq!(parsed.interpret_error, None);
    let TwilioEvent::Taskrouter(e) = &parsed.event else {
        panic!("not a TaskRouter event: {:?}", parsed.event)
    };
    assert_eq!(e.event_type, TaskRouterEventType::TaskCreated);
    assert_eq!(
        e.time,
        Some(EventTime {
            ms: 1_700_000_000_123,
            millisecond_precision: true
        })
    );
    let task = e.task.as_ref().unwrap();
    assert_eq!(task.task_sid, WT);
    assert_eq!(
        task.attributes,
        Some(serde_json::json!({"conversationSid": "CH1"}))
    );
    let params: Value = serde_json::from_str(parsed.params.get()).unwrap();
    assert_eq!(params["TaskSid"], WT);
}

#[test]
fn a_transfer_event_carries_its_transfer() {
    let p = pairs(&[
        ("EventType", "task.transfer-failed"),
        ("Sid", "EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
        ("TaskSid", WT),
        ("TaskAssignmentStatus", "assigned"),
        ("TimestampMs", "1700000000123"),
        ("TransferSid", "TT1"),
        ("TransferMode", "COLD"),
        ("TransferTo", "WQ1"),
        ("TransferType", "QUEUE"),
        ("TransferStatus", "FAILED"),
        ("TransferFailedReason", "Transfer timed out"),
        ("TransferInitiatingWorkerSid", "WK1"),
        ("TransferInitiatingReservationSid", "WR1"),
    ]);
    let parsed = taskrouter_callback(&p, None);
    let TwilioEvent::Taskrouter(e) = &parsed.event else {
        panic!("not a TaskRouter event: {:?}", parsed.event)
    };
    assert_eq!(
        e.transfer,
        Some(TransferSnapshot {
            transfer_sid: "TT1".into(),
            mode: Some("COLD".into()),
            to: Some("WQ1".into()),
            transfer_type: Some("QUEUE".into()),
            status: Some("FAILED".into()),
            failed_reason: Some("Transfer timed out".into()),
            initiating_worker_sid: Some("WK1".into()),
            initiating_reservation_sid: Some("WR1".into()),
        })
    );
    let read = crate::domain::transfer::TransferSnapshotAt::read(
        &e.event_type,
        e.transfer.as_ref().unwrap(),
        5,
    )
    .unwrap();
    assert_eq!(read.status, crate::domain::transfer::TransferStatus::Failed);
    assert_eq!(read.mode, Some(crate::domain::transfer::Mode::Cold));
    assert_eq!(
        read.target_type,
        Some(crate::domain::transfer::TargetType::Queue)
    );
}

#[test]
fn timestamps_in_seconds_iso_and_ms_all_parse() {
    assert_eq!(
        parse_time("1700000000"),
        Some(EventTime {
            ms: 1_700_000_000_000,
            millisecond_precision: false
        })
    );
    assert_eq!(
        parse_time("2023-11-14T22:13:20.123Z"),
        Some(EventTime {
            ms: 1_700_000_000_123,
            millisecond_precision: true
        })
    );
    assert_eq!(
        parse_time("2023-11-14T22:13:20Z"),
        Some(EventTime {
            ms: 1_700_000_000_000,
            millisecond_precision: false
        })
    );
    assert_eq!(
        parse_time("1700000000123").map(|t| t.ms),
        Some(1_700_000_000_123)
    );
    assert_eq!(parse_time("yesterday"), None);
}

#[test]
fn unknown_type_and_bad_attributes_are_flagged_not_refused() {
    let p = pairs(&[
        ("EventType", "task.teleported"),
        ("TaskSid", WT),
        ("TaskAttributes", "{not json"),
        ("Timestamp", "1700000000"),
    ]);
    let parsed = taskrouter_callback(&p, None);
    let err = parsed.interpret_error.unwrap();
    assert!(
        err.starts_with("unknown event type \"task.teleported\""),
        "{err}"
    );
    assert!(err.contains("TaskAttributes is not valid JSON"), "{err}");
}

#[test]
fn escaped_nul_in_attributes_is_replaced_and_flagged() {
    let p = pairs(&[
        ("EventType", "task.created"),
        ("TaskSid", WT),
        ("TaskAttributes", r#"{"a\u0000":["x\u0000"]}"#),
        ("WorkerSid", "WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("WorkerAttributes", r#""\u0000""#),
        ("TimestampMs", "1700000000123"),
    ]);
    let parsed = taskrouter_callback(&p, None);
    assert_eq!(
        parsed.task_attributes(),
        Some(&serde_json::json!({"a\u{FFFD}": ["x\u{FFFD}"]}))
    );
    assert_eq!(
        parsed.interpret_error.as_deref(),
        Some("TaskAttributes: NUL characters were replaced with U+FFFD; WorkerAttributes: NUL characters were replaced with U+FFFD")
    );
    assert!(!to_raw(&parsed.event).get().contains("\\u0000"));
}

#[test]
fn repeated_form_keys_become_arrays() {
    let p = pairs(&[("A", "1"), ("B", "2"), ("A", "3")]);
    let params: Value = serde_json::from_str(params_object(&p).get()).unwrap();
    assert_eq!(params, serde_json::json!({"A": ["1", "3"], "B": "2"}));
}

#[test]
fn content_hash_ignores_order_but_not_content() {
    let a = pairs(&[("A", "1"), ("B", "2")]);
    let b = pairs(&[("B", "2"), ("A", "1")]);
    let c = pairs(&[("A", "12"), ("B", "")]);
    assert_eq!(form_content_hash(&a), form_content_hash(&b));
    assert_ne!(form_content_hash(&a), form_content_hash(&c));
}

#[test]
fn cloud_event_data_as_object_or_string_gives_the_same_event() {
    let payload = serde_json::json!({
        "sid": "EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "eventtype": "task.canceled",
        "timestamp": "2023-11-14T22:13:20.123Z", "task_sid": WT, "task_attributes": "{}",
        "task_assignment_status": "canceled", "workspace_sid": "WS1"
    });
    let as_object = serde_json::json!([{"specversion": "1.0", "type": "com.twilio.taskrouter.task.canceled",
        "id": "CE1", "data": {"payload": payload}}]);
    let as_string = serde_json::json!([{"specversion": "1.0", "type": "com.twilio.taskrouter.task.canceled",
        "id": "CE1", "data": serde_json::json!({"payload": payload}).to_string()}]);
    let a = event_streams_batch(as_object.to_string().as_bytes()).unwrap();
    let b = event_streams_batch(as_string.to_string().as_bytes()).unwrap();
    assert_eq!(a[0].event, b[0].event);
    assert_eq!(a[0].interpret_error, None);
    let id = a[0].event.identity(Source::EventStreams, &a[0].delivery);
    assert_eq!(id.key, "tr:sid:EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(
        id.natural_key.unwrap(),
        format!("tr:task.canceled:{WT}:1700000000123")
    );
}

#[test]
fn callback_and_cloud_event_of_one_task_event_share_an_identity() {
    let callback = taskrouter_callback(
        &pairs(&[
            ("EventType", "task.canceled"),
            ("TaskSid", WT),
            ("TimestampMs", "1700000000123"),
            ("Timestamp", "1700000000"),
        ]),
        None,
    );
    let streamed = event_streams_batch(
        serde_json::json!([{"type": "com.twilio.taskrouter.task.canceled", "id": "CE9",
            "data": {"payload": {"eventtype": "task.canceled", "task_sid": WT,
            "timestamp": "2023-11-14T22:13:20.123Z"}}}])
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let a = callback
        .event
        .identity(Source::TaskrouterCallback, &callback.delivery);
    let b = streamed[0]
        .event
        .identity(Source::EventStreams, &streamed[0].delivery);
    assert_eq!(a.key, b.key);
}

#[test]
fn unknown_cloud_events_are_kept_and_flagged() {
    let batch =
        event_streams_batch(br#"[{"id":"CE2","type":"com.example.thing","data":{}}, 7]"#).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(
        batch[0].interpret_error.as_deref(),
        Some("unknown CloudEvent type \"com.example.thing\"")
    );
    assert_eq!(
        batch[0]
            .event
            .identity(Source::EventStreams, &batch[0].delivery)
            .key,
        "ce:CE2"
    );
    assert!(batch[1]
        .interpret_error
        .as_deref()
        .unwrap()
        .contains("not a JSON object"));
}

#[test]
fn nul_characters_are_replaced_and_flagged() {
    let batch = event_streams_batch(
        br#"[{"id":"CE3","type":"com.example.x","data":{"a\u0000":"b\u0000"}}]"#,
    )
    .unwrap();
    let params: Value = serde_json::from_str(batch[0].params.get()).unwrap();
    assert_eq!(params["data"]["a\u{FFFD}"], "b\u{FFFD}");
    assert!(batch[0]
        .interpret_error
        .as_deref()
        .unwrap()
        .contains("NUL characters"));
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(matches!(
        event_streams_batch(b"{nope"),
        Err(BodyError::InvalidJson(_))
    ));
    assert!(matches!(
        event_streams_batch(b"42"),
        Err(BodyError::NotAnArray)
    ));
}

/// The Events API resource of a task event, shaped as Twilio's OpenAPI example and the
/// stand-in's Events list: the callback's parameters, snake_case, in `event_data`.
fn api_task_event(sid: Option<&str>) -> Value {
    let mut event = serde_json::json!({
        "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "actor_sid": null, "actor_type": null, "actor_url": null,
        "description": "Task created",
        "event_data": {
            "workspace_sid": "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "workspace_name": "Flex Task Assignment",
            "task_sid": WT,
            "task_attributes": "{\"conversationSid\":\"CH1\"}",
            "task_assignment_status": "pending",
            "task_age": "3",
            "task_priority": "0",
            "task_channel_unique_name": "chat",
            "workflow_sid": "WWaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        },
        "event_date": "2023-11-14T22:13:20Z",
        "event_date_ms": 1_700_000_000_123_i64,
        "event_type": "task.created",
        "resource_sid": WT,
        "resource_type": "task",
        "resource_url": format!("https://taskrouter.twilio.com/v1/Workspaces/WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Tasks/{WT}"),
        "source": "twilio",
        "source_ip_address": "1.2.3.4",
        "workspace_sid": "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "url": "https://taskrouter.twilio.com/v1/Workspaces/WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Events/EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    });
    if let Some(sid) = sid {
        event["sid"] = Value::String(sid.into());
    }
    event
}

/// The same event as a callback.
fn callback_task_event(sid: Option<&str>) -> Vec<(String, String)> {
    let mut p = pairs(&[
        ("AccountSid", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("WorkspaceSid", "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("WorkspaceName", "Flex Task Assignment"),
        ("EventType", "task.created"),
        ("EventDescription", "Task created"),
        ("ResourceType", "task"),
        ("ResourceSid", WT),
        ("Timestamp", "1700000000"),
        ("TimestampMs", "1700000000123"),
        ("TaskSid", WT),
        ("TaskAttributes", r#"{"conversationSid":"CH1"}"#),
        ("TaskAssignmentStatus", "pending"),
        ("TaskAge", "3"),
        ("TaskPriority", "0"),
        ("TaskChannelUniqueName", "chat"),
        ("WorkflowSid", "WWaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ]);
    if let Some(sid) = sid {
        p.push(("Sid".into(), sid.into()));
    }
    p
}

#[test]
fn an_events_api_resource_is_the_same_typed_event_as_its_callback() {
    const EV: &str = "EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let api = events_api_event(api_task_event(Some(EV)));
    let callback = taskrouter_callback(&callback_task_event(Some(EV)), Some("tok".into()));
    assert_eq!(api.interpret_error, None);
    assert_eq!(api.source, Source::EventsApi);
    assert_eq!(api.event, callback.event);
    assert_eq!(api.task_attributes(), callback.task_attributes());
    let a = api.event.identity(api.source, &api.delivery);
    let c = callback.event.identity(callback.source, &callback.delivery);
    assert_eq!(a, c);
    assert_eq!(a.key, format!("tr:sid:{EV}"));
    assert_eq!(
        a.natural_key.as_deref(),
        Some(format!("tr:task.created:{WT}:1700000000123").as_str())
    );
    let params: Value = serde_json::from_str(api.params.get()).unwrap();
    assert_eq!(params["event_data"]["task_sid"], WT);
}

#[test]
fn a_callback_without_sid_meets_the_events_api_resource_on_the_natural_key() {
    let api = events_api_event(api_task_event(Some("EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")));
    let callback = taskrouter_callback(&callback_task_event(None), None);
    let a = api.event.identity(api.source, &api.delivery);
    let c = callback.event.identity(callback.source, &callback.delivery);
    assert_eq!(c.key, format!("tr:task.created:{WT}:1700000000123"));
    assert_eq!(a.natural_key.as_deref(), Some(c.key.as_str()));
}

#[test]
fn the_openapi_example_resource_parses_into_a_worker_event() {
    // `taskrouter.v1.workspace.event` example (twilio_taskrouter_v1.json, ListEvent readFull).
    let item = serde_json::json!({
        "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "actor_sid": "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "actor_type": "workspace",
        "description": "Worker JustinWorker updated to Idle Activity",
        "event_data": {
            "worker_activity_name": "Offline",
            "worker_activity_sid": "WAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "worker_attributes": "{}",
            "worker_name": "JustinWorker",
            "worker_sid": "WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "worker_time_in_previous_activity": "26",
            "worker_time_in_previous_activity_ms": "26123",
            "workspace_name": "WorkspaceName",
            "workspace_sid": "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        },
        "event_date": "2015-02-07T00:32:41Z",
        "event_date_ms": 987_654_321_111_i64,
        "event_type": "worker.activity",
        "resource_sid": "WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "resource_type": "worker",
        "sid": "EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "source": "twilio",
        "workspace_sid": "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    });
    let parsed = events_api_event(item);
    // The example's type is not one TaskRouter documents: stored, flagged.
    assert_eq!(
        parsed.interpret_error.as_deref(),
        Some("unknown event type \"worker.activity\"")
    );
    let TwilioEvent::Taskrouter(e) = &parsed.event else {
        panic!("not a TaskRouter event: {:?}", parsed.event)
    };
    let worker = e.worker.as_ref().unwrap();
    assert_eq!(worker.worker_sid, "WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(worker.activity_name.as_deref(), Some("Offline"));
    assert_eq!(worker.attributes, Some(serde_json::json!({})));
    assert_eq!(
        e.time,
        Some(EventTime {
            ms: 987_654_321_111,
            millisecond_precision: true
        })
    );
    assert_eq!(
        parsed.event.identity(parsed.source, &parsed.delivery).key,
        "tr:sid:EVaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    );
}

#[test]
fn events_api_variants_parse_and_oddities_are_flagged() {
    // event_data as a JSON string, attributes as an object, a reservation event without
    // `reservation_sid` in its data, a second-precision date only.
    let item = serde_json::json!({
        "sid": "EVbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "event_type": "reservation.accepted",
        "event_date": "2023-11-14T22:13:20Z",
        "resource_type": "reservation",
        "resource_sid": "WRaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "event_data": serde_json::json!({
            "task_sid": WT,
            "task_attributes": {"conversationSid": "CH2"},
            "worker_sid": "WKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        }).to_string()
    });
    let parsed = events_api_event(item);
    assert_eq!(parsed.interpret_error, None);
    let TwilioEvent::Taskrouter(e) = &parsed.event else {
        panic!("not a TaskRouter event")
    };
    assert_eq!(
        e.reservation_sid.as_deref(),
        Some("WRaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert_eq!(
        parsed.task_attributes(),
        Some(&serde_json::json!({"conversationSid": "CH2"}))
    );
    assert_eq!(
        e.time,
        Some(EventTime {
            ms: 1_700_000_000_000,
            millisecond_precision: false
        })
    );
    let id = parsed.event.identity(parsed.source, &parsed.delivery);
    assert_eq!(id.key, "tr:sid:EVbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_eq!(id.natural_key, None);

    let no_type = events_api_event(serde_json::json!({"sid": "EVc", "event_data": 5}));
    assert_eq!(
        no_type.interpret_error.as_deref(),
        Some("event_data is not an object; the event has no event_type")
    );
    assert_eq!(
        no_type.event,
        TwilioEvent::Unrecognized { event_type: None }
    );
    let key = no_type
        .event
        .identity(no_type.source, &no_type.delivery)
        .key;
    assert!(key.starts_with("events_api:sha256:"), "{key}");

    let not_object = events_api_event(serde_json::json!("EVd"));
    assert_eq!(
        not_object.interpret_error.as_deref(),
        Some("an Events API item is not a JSON object")
    );
}
