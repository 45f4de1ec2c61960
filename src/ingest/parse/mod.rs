//! Raw Twilio payloads become typed events here, once. Everything after the edge works with
//! [`TwilioEvent`]; the raw parameters are kept beside it for inspection.

mod conversations;
mod event_streams;
mod events_api;
mod taskrouter;
#[cfg(test)]
mod tests;

pub use conversations::conversations_webhook;
pub use event_streams::{event_streams_batch, MAX_CLOUD_EVENTS_PER_BATCH};
pub use events_api::events_api_event;
pub use taskrouter::taskrouter_callback;

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
pub(super) trait Fields {
    fn text(&self, name: &str) -> Option<String>;
}

pub(super) struct FormFields<'a>(&'a [(String, String)]);

impl Fields for FormFields<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    }
}

pub(super) struct JsonFields<'a>(&'a Map<String, Value>);

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

pub(super) fn parse_json_attributes(
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

pub(super) fn parse_i64(raw: Option<String>) -> Option<i64> {
    raw?.trim().parse().ok()
}

/// The TaskRouter field names of one delivery format.
pub(super) struct TaskRouterNames {
    pub(super) event_sid: &'static str,
    pub(super) event_type: &'static str,
    pub(super) account_sid: &'static str,
    pub(super) workspace_sid: &'static str,
    pub(super) resource_type: &'static str,
    pub(super) resource_sid: &'static str,
    pub(super) timestamp_ms: &'static str,
    pub(super) timestamp: &'static str,
    pub(super) task_sid: &'static str,
    pub(super) task_attributes: &'static str,
    pub(super) task_age: &'static str,
    pub(super) task_priority: &'static str,
    pub(super) task_assignment_status: &'static str,
    pub(super) task_canceled_reason: &'static str,
    pub(super) task_completed_reason: &'static str,
    pub(super) task_channel_unique_name: &'static str,
    pub(super) reservation_sid: &'static str,
    pub(super) worker_sid: &'static str,
    pub(super) worker_name: &'static str,
    pub(super) worker_attributes: &'static str,
    pub(super) worker_activity_sid: &'static str,
    pub(super) worker_activity_name: &'static str,
    pub(super) worker_previous_activity_sid: &'static str,
    pub(super) task_queue_sid: &'static str,
    pub(super) task_queue_name: &'static str,
    pub(super) workflow_sid: &'static str,
    pub(super) reason: &'static str,
    pub(super) transfer_sid: &'static str,
    pub(super) transfer_mode: &'static str,
    pub(super) transfer_to: &'static str,
    pub(super) transfer_type: &'static str,
    pub(super) transfer_status: &'static str,
    pub(super) transfer_failed_reason: &'static str,
    pub(super) transfer_initiating_worker_sid: &'static str,
    pub(super) transfer_initiating_reservation_sid: &'static str,
}

pub(super) fn taskrouter_event(
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

pub(super) fn finish(
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

/// Replaces NUL characters, which Postgres cannot store in text or JSONB, in every string and
/// key. Returns whether anything was replaced.
pub(super) fn replace_nul(value: &mut Value) -> bool {
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
