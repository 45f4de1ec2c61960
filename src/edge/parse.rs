//! Raw Twilio payloads become typed events here, once. Everything after the edge works with
//! [`TwilioEvent`]; the raw parameters are kept beside it for inspection.

use crate::domain::event::{
    ConversationsEvent, ConversationsEventType, DeliveryIdentity, EventTime, Source,
    TaskRouterEvent, TaskRouterEventType, TaskSnapshot, TransferSnapshot, TwilioEvent,
    WorkerSnapshot,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A typed event with everything the inbox stores about it.
#[derive(Debug, Clone)]
pub struct ParsedEvent {
    pub source: Source,
    pub event: TwilioEvent,
    /// The raw parameters, serialized: form pairs as an object (repeated keys become arrays),
    /// or the CloudEvent object.
    pub params: Box<RawValue>,
    pub delivery: DeliveryIdentity,
    /// Why baton could not fully interpret this signed event (stored and flagged, not refused).
    pub interpret_error: Option<String>,
}

impl ParsedEvent {
    pub fn task_attributes(&self) -> Option<&Value> {
        match &self.event {
            TwilioEvent::Taskrouter(e) => e.task.as_ref().and_then(|t| t.attributes.as_ref()),
            _ => None,
        }
    }
}

/// A request body that is not what its content type says (not JSON, not an array of objects).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body must be a JSON array of CloudEvents (or one CloudEvent object)")]
    NotAnArray,
    #[error("the batch holds {0} CloudEvents, more than the limit of {1}")]
    TooManyEvents(usize, usize),
}

/// Serializes a value that cannot fail to serialize (maps with string keys, our own types).
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| {
        // Unreachable for the types baton serializes; keep a valid JSON value regardless.
        RawValue::from_string("null".to_owned()).unwrap_or_default()
    })
}

#[derive(Serialize)]
#[serde(untagged)]
enum OneOrMany<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

/// Form pairs as one lookup object; repeated keys become arrays (in arrival order).
pub fn params_object(pairs: &[(String, String)]) -> Box<RawValue> {
    let mut map: BTreeMap<&str, OneOrMany<'_>> = BTreeMap::new();
    for (k, v) in pairs {
        match map.get_mut(k.as_str()) {
            None => {
                map.insert(k, OneOrMany::One(v));
            }
            Some(OneOrMany::Many(values)) => values.push(v),
            Some(slot @ OneOrMany::One(_)) => {
                if let OneOrMany::One(first) = slot {
                    *slot = OneOrMany::Many(vec![first, v]);
                }
            }
        }
    }
    to_raw(&map)
}

/// Hex SHA-256 over the canonical form content: pairs sorted by key then value, each written as
/// `len:key len:value` so no two different payloads share a canonical string.
pub fn form_content_hash(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (k, v) in sorted {
        hasher.update((k.len() as u64).to_be_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.len() as u64).to_be_bytes());
        hasher.update(v.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Reads fields from form pairs (first value wins) or a JSON object, by name.
trait Fields {
    fn text(&self, name: &str) -> Option<String>;
}

struct FormFields<'a>(&'a [(String, String)]);

impl Fields for FormFields<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    }
}

struct JsonFields<'a>(&'a Map<String, Value>);

impl Fields for JsonFields<'_> {
    fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Milliseconds since the epoch from a TaskRouter time: epoch seconds, epoch milliseconds or
/// ISO-8601. Returns whether the value really has millisecond precision.
pub fn parse_time(raw: &str) -> Option<EventTime> {
    let raw = raw.trim();
    if let Ok(n) = raw.parse::<i64>() {
        // Epoch seconds stay below 10^11 until the year 5138; anything larger is milliseconds.
        return Some(if n.abs() < 100_000_000_000 {
            EventTime {
                ms: n.checked_mul(1000)?,
                millisecond_precision: false,
            }
        } else {
            EventTime {
                ms: n,
                millisecond_precision: true,
            }
        });
    }
    if let Ok(f) = raw.parse::<f64>() {
        if f.is_finite() && f.abs() < 1e11 {
            return Some(EventTime {
                ms: (f * 1000.0).round() as i64,
                millisecond_precision: true,
            });
        }
        return None;
    }
    let dt = chrono::DateTime::parse_from_rfc3339(raw).ok()?;
    let has_fraction = raw.contains('.');
    Some(EventTime {
        ms: dt.timestamp_millis(),
        millisecond_precision: has_fraction,
    })
}

fn parse_json_attributes(
    raw: Option<String>,
    what: &str,
    errors: &mut Vec<String>,
) -> Option<Value> {
    let raw = raw?;
    match serde_json::from_str::<Value>(&raw) {
        Ok(mut v) => {
            // `\u0000` in the JSON text: Postgres' JSONB cannot hold it, and the attributes
            // become the task's JSONB state (`task_attributes`); the inbox's text would take it,
            // but the event could never be processed, nor its row read as JSONB.
            if replace_nul(&mut v) {
                errors.push(format!("{what}: NUL characters were replaced with U+FFFD"));
            }
            Some(v)
        }
        Err(e) => {
            errors.push(format!("{what} is not valid JSON ({e})"));
            None
        }
    }
}

fn parse_i64(raw: Option<String>) -> Option<i64> {
    raw?.trim().parse().ok()
}

/// The TaskRouter field names of one delivery format.
struct TaskRouterNames {
    event_sid: &'static str,
    event_type: &'static str,
    account_sid: &'static str,
    workspace_sid: &'static str,
    resource_type: &'static str,
    resource_sid: &'static str,
    timestamp_ms: &'static str,
    timestamp: &'static str,
    task_sid: &'static str,
    task_attributes: &'static str,
    task_age: &'static str,
    task_priority: &'static str,
    task_assignment_status: &'static str,
    task_canceled_reason: &'static str,
    task_completed_reason: &'static str,
    task_channel_unique_name: &'static str,
    reservation_sid: &'static str,
    worker_sid: &'static str,
    worker_name: &'static str,
    worker_attributes: &'static str,
    worker_activity_sid: &'static str,
    worker_activity_name: &'static str,
    worker_previous_activity_sid: &'static str,
    task_queue_sid: &'static str,
    task_queue_name: &'static str,
    workflow_sid: &'static str,
    reason: &'static str,
    transfer_sid: &'static str,
    transfer_mode: &'static str,
    transfer_to: &'static str,
    transfer_type: &'static str,
    transfer_status: &'static str,
    transfer_failed_reason: &'static str,
    transfer_initiating_worker_sid: &'static str,
    transfer_initiating_reservation_sid: &'static str,
}

/// Callback form parameters (PascalCase).
const CALLBACK_NAMES: TaskRouterNames = TaskRouterNames {
    event_sid: "Sid",
    event_type: "EventType",
    account_sid: "AccountSid",
    workspace_sid: "WorkspaceSid",
    resource_type: "ResourceType",
    resource_sid: "ResourceSid",
    timestamp_ms: "TimestampMs",
    timestamp: "Timestamp",
    task_sid: "TaskSid",
    task_attributes: "TaskAttributes",
    task_age: "TaskAge",
    task_priority: "TaskPriority",
    task_assignment_status: "TaskAssignmentStatus",
    task_canceled_reason: "TaskCanceledReason",
    task_completed_reason: "TaskCompletedReason",
    task_channel_unique_name: "TaskChannelUniqueName",
    reservation_sid: "ReservationSid",
    worker_sid: "WorkerSid",
    worker_name: "WorkerName",
    worker_attributes: "WorkerAttributes",
    worker_activity_sid: "WorkerActivitySid",
    worker_activity_name: "WorkerActivityName",
    worker_previous_activity_sid: "WorkerPreviousActivitySid",
    task_queue_sid: "TaskQueueSid",
    task_queue_name: "TaskQueueName",
    workflow_sid: "WorkflowSid",
    reason: "Reason",
    transfer_sid: "TransferSid",
    transfer_mode: "TransferMode",
    transfer_to: "TransferTo",
    transfer_type: "TransferType",
    transfer_status: "TransferStatus",
    transfer_failed_reason: "TransferFailedReason",
    transfer_initiating_worker_sid: "TransferInitiatingWorkerSid",
    transfer_initiating_reservation_sid: "TransferInitiatingReservationSid",
};

/// Event Streams `TaskRouter.WDSEvent` payload fields (snake_case) and the Events API resource.
const STREAM_NAMES: TaskRouterNames = TaskRouterNames {
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

fn taskrouter_event(
    f: &dyn Fields,
    names: &TaskRouterNames,
    event_type: TaskRouterEventType,
    errors: &mut Vec<String>,
) -> TaskRouterEvent {
    let time = f
        .text(names.timestamp_ms)
        .and_then(|raw| raw.trim().parse::<i64>().ok())
        .map(|ms| EventTime {
            ms,
            millisecond_precision: true,
        })
        .or_else(|| f.text(names.timestamp).and_then(|raw| parse_time(&raw)));
    if time.is_none() {
        errors.push("the event has no readable timestamp".into());
    }
    let task = f.text(names.task_sid).map(|task_sid| TaskSnapshot {
        task_sid,
        assignment_status: f.text(names.task_assignment_status),
        attributes: parse_json_attributes(f.text(names.task_attributes), "TaskAttributes", errors),
        age: parse_i64(f.text(names.task_age)),
        priority: parse_i64(f.text(names.task_priority)),
        task_channel_unique_name: f.text(names.task_channel_unique_name),
        canceled_reason: f.text(names.task_canceled_reason),
        completed_reason: f.text(names.task_completed_reason),
    });
    let worker = f.text(names.worker_sid).map(|worker_sid| WorkerSnapshot {
        worker_sid,
        friendly_name: f.text(names.worker_name),
        activity_sid: f.text(names.worker_activity_sid),
        activity_name: f.text(names.worker_activity_name),
        previous_activity_sid: f.text(names.worker_previous_activity_sid),
        attributes: parse_json_attributes(
            f.text(names.worker_attributes),
            "WorkerAttributes",
            errors,
        ),
    });
    TaskRouterEvent {
        event_type,
        event_sid: f.text(names.event_sid),
        account_sid: f.text(names.account_sid),
        workspace_sid: f.text(names.workspace_sid),
        resource_type: f.text(names.resource_type),
        resource_sid: f.text(names.resource_sid),
        time,
        task,
        reservation_sid: f.text(names.reservation_sid),
        worker,
        task_queue_sid: f.text(names.task_queue_sid),
        task_queue_name: f.text(names.task_queue_name),
        workflow_sid: f.text(names.workflow_sid),
        reason: f.text(names.reason),
        transfer: f
            .text(names.transfer_sid)
            .map(|transfer_sid| TransferSnapshot {
                transfer_sid,
                mode: f.text(names.transfer_mode),
                to: f.text(names.transfer_to),
                transfer_type: f.text(names.transfer_type),
                status: f.text(names.transfer_status),
                failed_reason: f.text(names.transfer_failed_reason),
                initiating_worker_sid: f.text(names.transfer_initiating_worker_sid),
                initiating_reservation_sid: f.text(names.transfer_initiating_reservation_sid),
            }),
    }
}

fn finish(
    source: Source,
    event: TwilioEvent,
    params: Box<RawValue>,
    delivery: DeliveryIdentity,
    errors: Vec<String>,
) -> ParsedEvent {
    let mut errors = errors;
    // An Unrecognized event already says why; a known envelope with an unknown type says so here.
    let unknown_type = match &event {
        TwilioEvent::Taskrouter(e) => (!e.event_type.is_known()).then(|| e.event_type.as_str()),
        TwilioEvent::Conversations(e) => (!e.event_type.is_known()).then(|| e.event_type.as_str()),
        TwilioEvent::Unrecognized { .. } => None,
    };
    if let Some(t) = unknown_type {
        errors.insert(0, format!("unknown event type {t:?}"));
    }
    ParsedEvent {
        source,
        event,
        params,
        delivery,
        interpret_error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// A TaskRouter workspace event callback (form parameters).
pub fn taskrouter_callback(
    pairs: &[(String, String)],
    idempotency_token: Option<String>,
) -> ParsedEvent {
    let f = FormFields(pairs);
    let mut errors = Vec::new();
    let event = match f.text(CALLBACK_NAMES.event_type) {
        Some(t) => TwilioEvent::Taskrouter(Box::new(taskrouter_event(
            &f,
            &CALLBACK_NAMES,
            TaskRouterEventType::parse(&t),
            &mut errors,
        ))),
        None => {
            errors.push("the callback has no EventType".into());
            TwilioEvent::Unrecognized { event_type: None }
        }
    };
    let delivery = DeliveryIdentity {
        cloud_event_id: None,
        content_hash: (!event.has_own_identity() && idempotency_token.is_none())
            .then(|| form_content_hash(pairs)),
        idempotency_token,
    };
    finish(
        Source::TaskrouterCallback,
        event,
        params_object(pairs),
        delivery,
        errors,
    )
}

fn conversations_event(
    f: &dyn Fields,
    event_type: ConversationsEventType,
    errors: &mut Vec<String>,
) -> ConversationsEvent {
    // The most specific time the event carries.
    let time = ["DateRemoved", "StateUpdated", "DateUpdated", "DateCreated"]
        .iter()
        .find_map(|name| f.text(name).and_then(|raw| parse_time(&raw)));
    if time.is_none() && event_type.is_known() {
        errors.push("the event has no readable timestamp".into());
    }
    ConversationsEvent {
        event_type,
        account_sid: f.text("AccountSid"),
        conversation_sid: f.text("ConversationSid"),
        chat_service_sid: f.text("ChatServiceSid"),
        participant_sid: f.text("ParticipantSid"),
        message_sid: f.text("MessageSid"),
        author: f.text("Author"),
        identity: f.text("Identity"),
        state_from: f.text("StateFrom"),
        state_to: f.text("StateTo"),
        reason: f.text("Reason"),
        origin: f.text("Source"),
        time,
    }
}

/// A Conversations webhook (form parameters).
pub fn conversations_webhook(
    pairs: &[(String, String)],
    idempotency_token: Option<String>,
) -> ParsedEvent {
    let f = FormFields(pairs);
    let mut errors = Vec::new();
    let event = match f.text("EventType") {
        Some(t) => TwilioEvent::Conversations(Box::new(conversations_event(
            &f,
            ConversationsEventType::parse(&t),
            &mut errors,
        ))),
        None => {
            errors.push("the webhook has no EventType".into());
            TwilioEvent::Unrecognized { event_type: None }
        }
    };
    let delivery = DeliveryIdentity {
        cloud_event_id: None,
        content_hash: idempotency_token
            .is_none()
            .then(|| form_content_hash(pairs)),
        idempotency_token,
    };
    finish(
        Source::ConversationsWebhook,
        event,
        params_object(pairs),
        delivery,
        errors,
    )
}

/// Conversations CloudEvent types (`com.twilio.conversations.<x>`) and their webhook names.
fn conversations_type_from_cloud_event(suffix: &str) -> Option<ConversationsEventType> {
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

/// Replaces NUL characters, which Postgres cannot store in text or JSONB, in every string and
/// key. Returns whether anything was replaced.
fn replace_nul(value: &mut Value) -> bool {
    match value {
        Value::String(s) if s.contains('\0') => {
            *s = s.replace('\0', "\u{FFFD}");
            true
        }
        Value::Array(items) => {
            // Every element must be visited, so no short-circuiting `any`.
            let mut replaced = false;
            for v in items {
                replaced |= replace_nul(v);
            }
            replaced
        }
        Value::Object(map) => {
            let mut replaced = false;
            if map.keys().any(|k| k.contains('\0')) {
                let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                for (k, v) in entries {
                    map.insert(k.replace('\0', "\u{FFFD}"), v);
                }
                replaced = true;
            }
            map.values_mut()
                .fold(replaced, |acc, v| replace_nul(v) || acc)
        }
        _ => false,
    }
}

fn cloud_event(mut item: Value) -> ParsedEvent {
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

/// Events API resource names: the envelope is the resource's own fields (`sid`, `event_type`,
/// `event_date_ms`, `event_date`, `resource_*`, `account_sid`, `workspace_sid`); everything else
/// is an `event_data` key — the callback's parameters in snake_case, as in Event Streams payloads.
const EVENTS_API_NAMES: TaskRouterNames = TaskRouterNames {
    event_type: "event_type",
    timestamp_ms: "event_date_ms",
    timestamp: "event_date",
    ..STREAM_NAMES
};

/// An Events API resource's fields: its own first, then `event_data`'s.
struct EventResourceFields<'a> {
    resource: JsonFields<'a>,
    data: Option<JsonFields<'a>>,
}

impl Fields for EventResourceFields<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.resource
            .text(name)
            .or_else(|| self.data.as_ref().and_then(|d| d.text(name)))
    }
}

/// `event_data` as an object: Twilio documents no type for it (an object in its examples; a
/// JSON string is read too). `*_attributes` given as objects become JSON text, as callbacks
/// carry them.
fn event_data(
    resource: &Map<String, Value>,
    errors: &mut Vec<String>,
) -> Option<Map<String, Value>> {
    let mut data = match resource.get("event_data") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => {
                errors.push("event_data is a string that is not a JSON object".into());
                return None;
            }
        },
        Some(_) => {
            errors.push("event_data is not an object".into());
            return None;
        }
    };
    for (key, value) in data.iter_mut() {
        if key.ends_with("_attributes") && matches!(value, Value::Object(_) | Value::Array(_)) {
            *value = Value::String(value.to_string());
        }
    }
    Some(data)
}

/// One resource of `GET /v1/Workspaces/{WS}/Events` (backfill and reconciliation). It becomes
/// the same typed event, with the same identity, as the event's callback: `sid` is the
/// callback's `Sid`, `event_date_ms` its `TimestampMs`, and `event_data` holds its other
/// parameters. A resource baton cannot interpret is kept and flagged, as the edge does.
pub fn events_api_event(mut item: Value) -> ParsedEvent {
    let mut errors = Vec::new();
    if replace_nul(&mut item) {
        errors.push("NUL characters were replaced with U+FFFD".into());
    }
    let Value::Object(resource) = &item else {
        errors.push("an Events API item is not a JSON object".into());
        let delivery = DeliveryIdentity {
            cloud_event_id: None,
            idempotency_token: None,
            content_hash: Some(hex::encode(Sha256::digest(item.to_string().as_bytes()))),
        };
        return finish(
            Source::EventsApi,
            TwilioEvent::Unrecognized { event_type: None },
            to_raw(&item),
            delivery,
            errors,
        );
    };
    let data = event_data(resource, &mut errors);
    let f = EventResourceFields {
        resource: JsonFields(resource),
        data: data.as_ref().map(JsonFields),
    };
    let event = match f.text(EVENTS_API_NAMES.event_type) {
        Some(t) => {
            let mut event = taskrouter_event(
                &f,
                &EVENTS_API_NAMES,
                TaskRouterEventType::parse(&t),
                &mut errors,
            );
            // A reservation event is about its reservation even when `event_data` leaves the
            // SID out (a callback always carries `ReservationSid`).
            if event.reservation_sid.is_none()
                && event
                    .resource_type
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("reservation"))
            {
                event.reservation_sid.clone_from(&event.resource_sid);
            }
            TwilioEvent::Taskrouter(Box::new(event))
        }
        None => {
            errors.push("the event has no event_type".into());
            TwilioEvent::Unrecognized { event_type: None }
        }
    };
    let delivery = DeliveryIdentity {
        cloud_event_id: None,
        idempotency_token: None,
        content_hash: (!event.has_own_identity())
            .then(|| hex::encode(Sha256::digest(item.to_string().as_bytes()))),
    };
    finish(Source::EventsApi, event, to_raw(&item), delivery, errors)
}

#[cfg(test)]
mod tests {
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
            event_streams_batch(br#"[{"id":"CE2","type":"com.example.thing","data":{}}, 7]"#)
                .unwrap();
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
}
