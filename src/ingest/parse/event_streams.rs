//! Event Streams webhook sinks: CloudEvents, one or a batch, TaskRouter and Conversations.

use super::conversations::conversations_event;
use super::*;

/// Event Streams `TaskRouter.WDSEvent` payload fields (snake_case) and the Events API resource.
pub(super) const STREAM_NAMES: TaskRouterNames = TaskRouterNames {
    event_sid: "sid",
    event_type: "eventtype",
    account_sid: "account_sid",
    workspace_sid: "workspace_sid",
    resource_type: "resource_type",
    resource_sid: "resource_sid",
    timestamp_ms: "timestamp_ms",
    timestamp: "timestamp",
    task_sid: "task_sid",
    task_attributes: "task_attributes",
    task_age: "task_age",
    task_priority: "task_priority",
    task_assignment_status: "task_assignment_status",
    task_canceled_reason: "task_canceled_reason",
    task_completed_reason: "task_completed_reason",
    task_channel_unique_name: "task_channel_unique_name",
    reservation_sid: "reservation_sid",
    worker_sid: "worker_sid",
    worker_name: "worker_name",
    worker_attributes: "worker_attributes",
    worker_activity_sid: "worker_activity_sid",
    worker_activity_name: "worker_activity_name",
    worker_previous_activity_sid: "worker_previous_activity_sid",
    task_queue_sid: "task_queue_sid",
    task_queue_name: "task_queue_name",
    workflow_sid: "workflow_sid",
    reason: "reason",
    transfer_sid: "transfer_sid",
    transfer_mode: "transfer_mode",
    transfer_to: "transfer_to",
    transfer_type: "transfer_type",
    transfer_status: "transfer_status",
    transfer_failed_reason: "transfer_failed_reason",
    transfer_initiating_worker_sid: "transfer_initiating_worker_sid",
    transfer_initiating_reservation_sid: "transfer_initiating_reservation_sid",
};

/// Conversations CloudEvent types (`com.twilio.conversations.<x>`) and their webhook names.
pub(super) fn conversations_type_from_cloud_event(suffix: &str) -> Option<ConversationsEventType> {
    use ConversationsEventType as C;
    Some(match suffix {
        "conversation-state.updated" => C::ConversationStateUpdated,
        "conversation.added" => C::ConversationAdded,
        "conversation.updated" => C::ConversationUpdated,
        "conversation.removed" => C::ConversationRemoved,
        "message.added" => C::MessageAdded,
        "message.updated" => C::MessageUpdated,
        "message.removed" => C::MessageRemoved,
        "participant.added" => C::ParticipantAdded,
        "participant.updated" => C::ParticipantUpdated,
        "participant.removed" => C::ParticipantRemoved,
        "user.added" => C::UserAdded,
        "user.updated" => C::UserUpdated,
        _ => return None,
    })
}

/// The most CloudEvents one Event Streams delivery may carry.
pub const MAX_CLOUD_EVENTS_PER_BATCH: usize = 10_000;

/// An Event Streams webhook body: a JSON array of CloudEvents (`batch_events`), or one
/// CloudEvent. `data` may be an object or a JSON string.
pub fn event_streams_batch(body: &[u8]) -> Result<Vec<ParsedEvent>, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(BodyError::NotAnArray),
    };
    if items.len() > MAX_CLOUD_EVENTS_PER_BATCH {
        return Err(BodyError::TooManyEvents(
            items.len(),
            MAX_CLOUD_EVENTS_PER_BATCH,
        ));
    }
    Ok(items.into_iter().map(cloud_event).collect())
}

pub(super) fn cloud_event(mut item: Value) -> ParsedEvent {
    let mut errors = Vec::new();
    if replace_nul(&mut item) {
        errors.push("NUL characters were replaced with U+FFFD".into());
    }
    let content_hash = Some(hex::encode(Sha256::digest(item.to_string().as_bytes())));
    let Value::Object(envelope) = &item else {
        errors.push("a batch element is not a JSON object".into());
        let delivery = DeliveryIdentity {
            cloud_event_id: None,
            idempotency_token: None,
            content_hash,
        };
        return finish(
            Source::EventStreams,
            TwilioEvent::Unrecognized { event_type: None },
            to_raw(&item),
            delivery,
            errors,
        );
    };
    let cloud_event_id = envelope
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if cloud_event_id.is_none() {
        errors.push("the CloudEvent has no id".into());
    }
    let ce_type = envelope
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    // `data` is an object in current deliveries and a JSON string in older ones.
    let data = match envelope.get("data") {
        Some(Value::Object(map)) => Some(map.clone()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => Some(map),
            _ => {
                errors.push("the CloudEvent data string is not a JSON object".into());
                None
            }
        },
        _ => None,
    };
    let event = if let Some(suffix) = ce_type.strip_prefix("com.twilio.taskrouter.") {
        // The TaskRouter fields are in data.payload (WDSEvent); fall back to data itself.
        let payload = data.as_ref().and_then(|d| match d.get("payload") {
            Some(Value::Object(p)) => Some(p.clone()),
            Some(Value::String(s)) => serde_json::from_str::<Map<String, Value>>(s).ok(),
            _ => None,
        });
        match payload.or(data) {
            Some(payload) => {
                let f = JsonFields(&payload);
                let event_type = f
                    .text(STREAM_NAMES.event_type)
                    .unwrap_or_else(|| suffix.to_owned());
                TwilioEvent::Taskrouter(Box::new(taskrouter_event(
                    &f,
                    &STREAM_NAMES,
                    TaskRouterEventType::parse(&event_type),
                    &mut errors,
                )))
            }
            None => {
                errors.push("the TaskRouter CloudEvent has no data".into());
                TwilioEvent::Unrecognized {
                    event_type: Some(ce_type.clone()),
                }
            }
        }
    } else if let Some(suffix) = ce_type.strip_prefix("com.twilio.conversations.") {
        match (conversations_type_from_cloud_event(suffix), data) {
            (Some(t), Some(data)) => TwilioEvent::Conversations(Box::new(conversations_event(
                &JsonFields(&data),
                t,
                &mut errors,
            ))),
            (_, data) => {
                if data.is_none() {
                    errors.push("the Conversations CloudEvent has no data".into());
                }
                TwilioEvent::Unrecognized {
                    event_type: Some(ce_type.clone()),
                }
            }
        }
    } else {
        TwilioEvent::Unrecognized {
            event_type: (!ce_type.is_empty()).then(|| ce_type.clone()),
        }
    };
    if let TwilioEvent::Unrecognized { event_type } = &event {
        errors.insert(
            0,
            match event_type {
                Some(t) => format!("unknown CloudEvent type {t:?}"),
                None => "the CloudEvent has no type".into(),
            },
        );
    }
    let delivery = DeliveryIdentity {
        cloud_event_id,
        idempotency_token: None,
        content_hash,
    };
    finish(Source::EventStreams, event, to_raw(&item), delivery, errors)
}
