//! A decision as the Twilio call that carries it out, what Twilio must confirm first, and the
//! call it waits for: what the outbox stores.

use super::guard::Guard;
use super::outbound::{OperationKind, Procedure, TwilioRequest};

/// An action as an outbound Twilio call (see `store::outbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCall {
    pub idempotency_key: String,
    pub kind: OperationKind,
    pub request: TwilioRequest,
    pub procedure: Option<Procedure>,
    /// The conversation the call is about (an invite keeps it open until its task is seen).
    pub conversation_sid: Option<String>,
    /// What Twilio must confirm when the call is about to be sent (else it is withdrawn).
    pub guard: Option<Guard>,
    /// The idempotency key of a call that must have succeeded first (an ordered step).
    pub after: Option<String>,
}

impl PlannedCall {
    pub fn after(mut self, key: &str) -> PlannedCall {
        self.after = Some(key.to_owned());
        self
    }
}
