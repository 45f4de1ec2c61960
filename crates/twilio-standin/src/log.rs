//! The request log tests inspect. It never holds the `Authorization` header, and any occurrence
//! of the auth token elsewhere in a request is replaced by `[REDACTED]` before it is stored.

use crate::faults::FaultKind;
use serde::Serialize;
use serde_json::Value;

/// Request headers kept in the log (lower case). `Authorization` is never kept.
pub const LOGGED_HEADERS: &[&str] = &[
    "if-match",
    "x-twilio-webhook-enabled",
    "i-twilio-idempotency-token",
    "content-type",
];

/// One request the stand-in received, and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// 1, 2, 3… in arrival order.
    pub id: u64,
    pub method: String,
    /// The raw path, e.g. `/v1/Workspaces/WS…/Tasks/WT…`.
    pub path: String,
    /// Query parameters, repeated keys kept, in order.
    pub query: Vec<(String, String)>,
    /// Form parameters, repeated keys kept, in order.
    pub form: Vec<(String, String)>,
    /// The JSON body, if the request sent one.
    pub json: Option<Value>,
    /// Selected headers ([`LOGGED_HEADERS`]), names in lower case.
    pub headers: Vec<(String, String)>,
    /// The operation it was routed to (`UpdateTask`, …), if any.
    pub operation: Option<String>,
    /// The HTTP status answered; `None` when the connection was dropped without an answer
    /// (reset / timeout faults) or the answer is still being prepared. While a `Timeout` or
    /// `TimeoutAfterApply` holds the connection, `fault` and `processed_status` are already
    /// set: a test sees a request applied whose client still waits.
    pub status: Option<u16>,
    /// The Twilio error code of an error answer.
    pub error_code: Option<u32>,
    /// A Twilio warning the request produced without failing (e.g. 80906).
    pub warning: Option<u32>,
    /// The fault injected, if any.
    pub fault: Option<FaultKind>,
    /// The status processing produced (`None`: not processed). Differs from `status` when a
    /// fault replaced the answer after processing (`ErrorAfterApply`, `TimeoutAfterApply`).
    pub processed_status: Option<u16>,
}

impl LoggedRequest {
    /// A logged header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first form value for `key`.
    pub fn form_value(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every form value for `key` (repeated keys), in order.
    pub fn form_values(&self, key: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the request was processed successfully (its effect, if any, applied), whatever
    /// the client was answered.
    pub fn applied(&self) -> bool {
        self.processed_status
            .is_some_and(|s| (200..300).contains(&s))
    }
}

pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[REDACTED]")
    }
}

pub(crate) fn redact_pairs(pairs: &[(String, String)], secret: &str) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (redact(k, secret), redact(v, secret)))
        .collect()
}

pub(crate) fn redact_json(value: &Value, secret: &str) -> Value {
    match value {
        Value::String(s) => Value::String(redact(s, secret)),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_json(v, secret)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (redact(k, secret), redact_json(v, secret)))
                .collect(),
        ),
        other => other.clone(),
    }
}
