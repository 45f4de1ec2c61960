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

/// A request's notes: trimmed, none when blank, at most 4,000 characters.
pub fn notes(raw: Option<String>) -> Result<Option<String>, ServiceError> {
    let notes = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if notes.as_ref().is_some_and(|n| n.len() > 4000) {
        return Err(ServiceError::Invalid(
            "notes are longer than 4000 characters".into(),
        ));
    }
    Ok(notes)
}

/// A request's idempotency key: 1 to 200 characters.
pub fn check_idempotency_key(key: &str) -> Result<(), ServiceError> {
    if key.is_empty() || key.len() > 200 {
        return Err(ServiceError::Invalid(
            "idempotency_key must be 1 to 200 characters".into(),
        ));
    }
    Ok(())
}
