//! Twilio's error body and the error codes the stand-in answers with.

use serde_json::{json, Value};

/// `20001`: a parameter is invalid or the resource is not in a state that allows the change.
pub const CODE_INVALID: u32 = 20001;
/// `20003`: authentication failed ("Authenticate").
pub const CODE_AUTHENTICATE: u32 = 20003;
/// `20004`: the path exists but not for this HTTP method.
pub const CODE_METHOD_NOT_ALLOWED: u32 = 20004;
/// `20404`: the requested resource was not found.
pub const CODE_NOT_FOUND: u32 = 20404;
/// `20412`: `If-Match` did not match the Task's `ETag` (HTTP 412).
pub const CODE_PRECONDITION_FAILED: u32 = 20412;
/// `20429`: too many requests (HTTP 429, with `Retry-After`).
pub const CODE_TOO_MANY_REQUESTS: u32 = 20429;
/// `20500`: internal server error.
pub const CODE_INTERNAL: u32 = 20500;
/// `20503`: service unavailable.
pub const CODE_UNAVAILABLE: u32 = 20503;
/// `80906`: "Interaction not open" (Flex).
pub const CODE_INTERACTION_NOT_OPEN: u32 = 80906;

/// A Twilio-shaped error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 / 20001 with a message naming what is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(400, CODE_INVALID, message)
    }

    /// 404 / 20404 for a path.
    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            404,
            CODE_NOT_FOUND,
            format!("The requested resource {path} was not found"),
        )
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(401, CODE_AUTHENTICATE, "Authenticate")
    }

    pub fn method_not_allowed(method: &str) -> Self {
        ApiError::new(
            405,
            CODE_METHOD_NOT_ALLOWED,
            format!("Method not allowed: {method}"),
        )
    }

    /// A defect of the stand-in itself (e.g. a handler returned a field its route does not
    /// declare). Surfaces as a 500 so a test fails loudly instead of drifting.
    pub fn bug(message: impl Into<String>) -> Self {
        ApiError::new(
            500,
            CODE_INTERNAL,
            format!("twilio-standin defect: {}", message.into()),
        )
    }

    /// The error for a status/code pair used by faults and scripted failures.
    pub fn for_code(status: u16, code: u32) -> Self {
        ApiError::new(status, code, default_message(status, code))
    }

    /// The exact body Twilio sends:
    /// `{"code", "message", "more_info": "https://www.twilio.com/docs/errors/<code>", "status"}`.
    pub fn body(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        })
    }
}

/// Message text for well-known codes (used by faults and `fail_next`).
pub fn default_message(status: u16, code: u32) -> String {
    match code {
        CODE_TOO_MANY_REQUESTS => "Too Many Requests".into(),
        CODE_INTERNAL => "Internal Server Error".into(),
        CODE_UNAVAILABLE => "Service Unavailable".into(),
        CODE_AUTHENTICATE => "Authenticate".into(),
        CODE_NOT_FOUND => "The requested resource was not found".into(),
        CODE_PRECONDITION_FAILED => "Precondition failed".into(),
        CODE_INTERACTION_NOT_OPEN => "Interaction not open".into(),
        CODE_INVALID => "Bad request".into(),
        _ => format!("Scripted failure (HTTP {status})"),
    }
}
