//! The rules of each API action, below the HTTP edge: transfers and parks. The `/api/v1`
//! handlers, the processor and the timers call them; they reach Postgres through `store`,
//! Twilio through `twilio`, and decide with `domain`.

pub mod parks;
pub mod transfers;

use crate::domain::sid::{Sid, SidKind};
use crate::store::transfers::TransferView;
use crate::store::StoreError;
use crate::twilio::TransportError;
use serde_json::Value;

/// Why a service refused or failed an action; `edge::error` maps each to its status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error("task {0} was not found in the workspace")]
    TaskNotFound(String),
    #[error("task {task_sid} is {status}; only an assigned task can be transferred or parked")]
    TaskNotLive { task_sid: String, status: String },
    #[error("task {task_sid} already has a transfer in flight ({transfer_id})")]
    InFlight {
        task_sid: String,
        transfer_id: String,
        existing: Box<TransferView>,
    },
    #[error("{0}")]
    NotConfigured(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        detail: Option<Value>,
    },
    #[error("Twilio could not be reached to check the request: {0}")]
    Twilio(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TransportError> for ServiceError {
    fn from(e: TransportError) -> Self {
        ServiceError::Twilio(e.0)
    }
}

/// A SID field of a request, of one of `kinds`.
pub fn parse_sid(raw: &str, field: &str, kinds: &[SidKind]) -> Result<Sid, ServiceError> {
    let sid = Sid::parse(raw.trim())
        .map_err(|e| ServiceError::Invalid(format!("{field} {raw:?} is not a Twilio SID: {e}")))?;
    if !sid.kind().is_some_and(|k| kinds.contains(&k)) {
        return Err(ServiceError::Invalid(format!(
            "{field} {raw:?} must be a {}",
            kinds
                .iter()
                .map(|k| k.prefix())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(sid)
}

/// Longest notes, in characters (as the OpenAPI document's `maxLength` counts them).
pub const MAX_NOTES_CHARS: usize = 4000;
/// Longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// A request's notes: trimmed, none when blank, at most 4,000 characters, no NUL (Postgres
/// text cannot hold one).
pub fn notes(raw: Option<String>) -> Result<Option<String>, ServiceError> {
    let notes = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if let Some(n) = &notes {
        if n.chars().count() > MAX_NOTES_CHARS {
            return Err(ServiceError::Invalid(format!(
                "notes are longer than {MAX_NOTES_CHARS} characters"
            )));
        }
        if n.contains('\0') {
            return Err(ServiceError::Invalid(
                "notes contain a NUL character".into(),
            ));
        }
    }
    Ok(notes)
}

/// A request's idempotency key: 1 to 200 characters, no NUL.
pub fn check_idempotency_key(key: &str) -> Result<(), ServiceError> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS || key.contains('\0') {
        return Err(ServiceError::Invalid(format!(
            "idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, none of them NUL"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_keys_are_counted_in_characters_and_hold_no_nul() {
        let wide = "é".repeat(MAX_NOTES_CHARS);
        assert_eq!(notes(Some(wide.clone())).unwrap(), Some(wide));
        assert!(notes(Some("é".repeat(MAX_NOTES_CHARS + 1))).is_err());
        assert!(notes(Some("a\0b".into())).is_err());
        assert_eq!(notes(Some("  ".into())).unwrap(), None);

        assert!(check_idempotency_key(&"é".repeat(MAX_IDEMPOTENCY_KEY_CHARS)).is_ok());
        assert!(check_idempotency_key(&"é".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)).is_err());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key("key\0").is_err());
    }

    #[test]
    fn a_park_ttl_is_a_whole_number_however_json_writes_it() {
        let ttl = |body: &str| {
            serde_json::from_str::<parks::ParkRequest>(body).map(|request| request.ttl_seconds)
        };
        let task = r#""task_sid": "WT00000000000000000000000000000001""#;
        assert_eq!(
            ttl(&format!("{{{task}, \"ttl_seconds\": 60}}")).unwrap(),
            Some(60)
        );
        assert_eq!(
            ttl(&format!("{{{task}, \"ttl_seconds\": 60.0}}")).unwrap(),
            Some(60)
        );
        assert_eq!(
            ttl(&format!("{{{task}, \"ttl_seconds\": null}}")).unwrap(),
            None
        );
        assert_eq!(ttl(&format!("{{{task}}}")).unwrap(), None);
        assert!(ttl(&format!("{{{task}, \"ttl_seconds\": 60.5}}")).is_err());
        assert!(ttl(&format!("{{{task}, \"ttl_seconds\": -1}}")).is_err());
    }
}
