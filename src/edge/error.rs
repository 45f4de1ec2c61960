//! Every error the HTTP edge returns, mapped to its status in one place, with a JSON body:
//! `{"error": {"code": "...", "message": "..."}}`. Messages never echo secrets or signatures.

use crate::services::ServiceError;
use crate::store::StoreError;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    #[error("X-Twilio-Signature does not match this request")]
    BadSignature,
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body did not arrive within {after:?}")]
    BodyTimeout { after: std::time::Duration },
    #[error("unsupported content type {got:?}; this endpoint accepts {expected}")]
    UnsupportedMediaType { got: String, expected: &'static str },
    #[error("malformed body: {0}")]
    Malformed(String),
    /// A write to the database failed: nothing was stored (a callback is not acknowledged).
    #[error("the database is unavailable; nothing was stored; retry later")]
    StoreUnavailable,
    /// A read of the database failed.
    #[error("the database could not be read; retry later")]
    ReadUnavailable,
    /// No route, or no such resource.
    #[error("{0}")]
    NotFound(String),
    /// A routed path asked with a method it does not answer; `allow` is what it answers.
    #[error("{method} is not allowed here; this path answers {}", allow_list(.allow))]
    MethodNotAllowed { method: Method, allow: Vec<Method> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        /// What the conflict is with (e.g. the transfer already in flight).
        detail: Option<serde_json::Value>,
    },
    #[error("{0}")]
    NotConfigured(String),
    #[error("{0}")]
    Upstream(String),
    #[error("internal error")]
    Internal,
}

impl EdgeError {
    pub fn code(&self) -> &'static str {
        match self {
            EdgeError::MissingSignature => "signature_missing",
            EdgeError::BadSignature => "signature_invalid",
            EdgeError::PayloadTooLarge { .. } => "payload_too_large",
            EdgeError::BodyTimeout { .. } => "request_timeout",
            EdgeError::UnsupportedMediaType { .. } => "unsupported_media_type",
            EdgeError::Malformed(_) => "malformed_body",
            EdgeError::StoreUnavailable => "store_unavailable",
            EdgeError::ReadUnavailable => "store_read_unavailable",
            EdgeError::NotFound(_) => "not_found",
            EdgeError::MethodNotAllowed { .. } => "method_not_allowed",
            EdgeError::Unauthorized(_) => "unauthorized",
            EdgeError::Forbidden(_) => "forbidden",
            EdgeError::Invalid(_) => "invalid_request",
            EdgeError::Conflict { code, .. } => code,
            EdgeError::NotConfigured(_) => "not_configured",
            EdgeError::Upstream(_) => "twilio_unavailable",
            EdgeError::Internal => "internal",
        }
    }
}

impl ResponseError for EdgeError {
    fn status_code(&self) -> StatusCode {
        match self {
            EdgeError::MissingSignature | EdgeError::BadSignature => StatusCode::FORBIDDEN,
            EdgeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            EdgeError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EdgeError::Malformed(_) => StatusCode::BAD_REQUEST,
            EdgeError::StoreUnavailable | EdgeError::ReadUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            EdgeError::NotFound(_) => StatusCode::NOT_FOUND,
            EdgeError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            EdgeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            EdgeError::Forbidden(_) => StatusCode::FORBIDDEN,
            EdgeError::Invalid(_) => StatusCode::BAD_REQUEST,
            EdgeError::Conflict { .. } => StatusCode::CONFLICT,
            EdgeError::NotConfigured(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EdgeError::Upstream(_) => StatusCode::BAD_GATEWAY,
            EdgeError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            EdgeError::StoreUnavailable | EdgeError::ReadUnavailable | EdgeError::Upstream(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            EdgeError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"baton\""));
            }
            // RFC 9110: a 405 names the methods the target answers.
            EdgeError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow_list(allow)));
            }
            // The rest of the body is not wanted: close rather than drain it.
            EdgeError::PayloadTooLarge { .. } | EdgeError::BodyTimeout { .. } => {
                response.force_close();
            }
            _ => {}
        }
        let detail = match self {
            EdgeError::Conflict { detail, .. } => detail.clone(),
            _ => None,
        };
        response.json(ErrorBody {
            error: ErrorObject {
                code: self.code().to_owned(),
                message: self.to_string(),
                detail,
            },
        })
    }
}

/// Every error answer's body.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable, machine-readable: `not_found`, `invalid_request`, `unauthorized`, …
    #[schema(example = "invalid_request")]
    pub code: String,
    /// For people; never echoes a secret or a signature.
    pub message: String,
    /// What a `409` conflicts with (the transfer in flight, the park, the outbox call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// `GET, POST`: an `Allow` header's value.
fn allow_list(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl EdgeError {
    /// No route answers this method and path.
    pub fn unrouted() -> EdgeError {
        EdgeError::NotFound("no route for this method and path".into())
    }

    /// A write failed: whatever went wrong, nothing is stored, so never answer 2xx (Twilio
    /// retries what is not acknowledged).
    pub fn not_stored(e: StoreError) -> EdgeError {
        tracing::error!(error = %e, "could not store");
        EdgeError::StoreUnavailable
    }

    /// A read failed.
    pub fn not_read(e: StoreError) -> EdgeError {
        tracing::error!(error = %e, "could not read the database");
        EdgeError::ReadUnavailable
    }
}

/// What the services refused or failed, as the API answers it.
impl From<ServiceError> for EdgeError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => EdgeError::Invalid(m),
            ServiceError::TaskNotFound(_) | ServiceError::NotFound(_) => {
                EdgeError::NotFound(e.to_string())
            }
            ServiceError::TaskNotLive { .. } => EdgeError::Conflict {
                code: "task_not_live",
                message: e.to_string(),
                detail: None,
            },
            ServiceError::InFlight { ref existing, .. } => EdgeError::Conflict {
                code: "transfer_in_flight",
                message: e.to_string(),
                detail: serde_json::to_value(existing).ok(),
            },
            ServiceError::Conflict {
                code,
                message,
                detail,
            } => EdgeError::Conflict {
                code,
                message,
                detail,
            },
            ServiceError::NotConfigured(m) => EdgeError::NotConfigured(m),
            ServiceError::Twilio(m) => {
                tracing::warn!(error = %m, "request check against Twilio failed");
                EdgeError::Upstream(format!("Twilio could not be reached: {m}"))
            }
            ServiceError::Store(e) => EdgeError::not_stored(e),
        }
    }
}
