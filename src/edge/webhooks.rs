//! The webhook routes: signature check, body limits, parsing, then the durable inbox. A 2xx is
//! sent only after the event is committed.

use super::error::{EdgeError, ErrorBody};
use super::AppState;
use crate::ingest::form::parse_form;
use crate::ingest::inbox_row;
use crate::ingest::parse::{self, ParsedEvent};
use crate::store::inbox::NewInboxEvent;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// Form bodies with more parameters than this are refused (Twilio sends a few dozen).
const MAX_FORM_PARAMS: usize = 1_000;

const FORM: &str = "application/x-www-form-urlencoded";

/// A Twilio form body as the webhook routes read it: text parameters without NUL (refused as
/// `malformed_body`), at most [`MAX_FORM_PARAMS`] of them.
pub struct TwilioParams;

impl utoipa::PartialSchema for TwilioParams {
    fn schema() -> RefOr<Schema> {
        let text = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[^\\u0000]*$"))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(text()))
            .additional_properties(Some(text()))
            .max_properties(Some(MAX_FORM_PARAMS))
            .description(Some(
                "Twilio's parameters (`EventType`, `TaskSid`, …), signed",
            ))
            .into()
    }
}

impl utoipa::ToSchema for TwilioParams {}

/// The received Event Streams batch.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventsReceipt {
    pub received: usize,
    pub stored: usize,
    /// Events stored already (by any source).
    pub duplicates: usize,
}

/// TaskRouter's workspace `EventCallbackUrl`: one event, stored before the answer.
#[utoipa::path(post, path = "/webhooks/taskrouter", tag = "webhooks",
    request_body(content = TwilioParams, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters (`EventType`, `TaskSid`, …), signed"),
    security(("twilio_signature" = [])),
    responses(
        (status = 204, description = "Stored (or stored already); `Content-Type: application/json`"),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 403, description = "`signature_missing`, `signature_invalid`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: not stored; `Retry-After: 5`", body = ErrorBody),
    ))]
pub async fn taskrouter(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let pairs = signed_form(&req, payload, &state).await?;
    let event = parse::taskrouter_callback(&pairs, idempotency_token(&req));
    store(&state, vec![event]).await?;
    // TaskRouter asks for 204 with a JSON content type.
    Ok(HttpResponse::NoContent()
        .content_type("application/json")
        .finish())
}

/// Conversations post-action webhooks (and a park's `?park=` webhook).
#[utoipa::path(post, path = "/webhooks/conversations", tag = "webhooks",
    request_body(content = TwilioParams, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters (`EventType`, `TaskSid`, …), signed"),
    params(("park" = Option<String>, Query, description = "`PA…`: a parked conversation's own webhook")),
    security(("twilio_signature" = [])),
    responses(
        (status = 200, description = "Stored: `{}`", body = Object),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 403, description = "`signature_missing`, `signature_invalid`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: not stored; `Retry-After: 5`", body = ErrorBody),
    ))]
pub async fn conversations(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let pairs = signed_form(&req, payload, &state).await?;
    let event = parse::conversations_webhook(&pairs, idempotency_token(&req));
    store(&state, vec![event]).await?;
    // `{}` also means "publish unmodified" should someone point a pre-action hook here.
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

/// Event Streams webhook sink: a JSON array of CloudEvents (`batch_events: true`), signed with
/// `bodySHA256`.
#[utoipa::path(post, path = "/webhooks/events", tag = "webhooks",
    request_body(content = Vec<Object>, content_type = "application/json"),
    params(("bodySHA256" = String, Query, description = "Hex SHA-256 of the raw body")),
    security(("twilio_signature" = [])),
    responses(
        (status = 200, description = "Stored", body = EventsReceipt),
        (status = 400, description = "`malformed_body`", body = ErrorBody),
        (status = 403, description = "`signature_missing`, `signature_invalid`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: not stored; `Retry-After: 5`", body = ErrorBody),
    ))]
pub async fn event_streams(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    require_content_type(
        &req,
        &[
            "application/json",
            "application/cloudevents-batch+json",
            "application/cloudevents+json",
        ],
        "application/json",
    )?;
    let body = read_body(&req, payload, &state).await?;
    let url = public_url(&req, &state);
    let signature = signature(&req)?;
    if !state.validator.validate_json(&url, &body, signature) {
        return Err(signature_failure(&req));
    }
    let events =
        parse::event_streams_batch(&body).map_err(|e| EdgeError::Malformed(e.to_string()))?;
    let received = events.len();
    let report = store(&state, events).await?;
    Ok(HttpResponse::Ok().json(EventsReceipt {
        received,
        stored: report.stored,
        duplicates: report.duplicates,
    }))
}

/// Checks content type, size, form syntax and signature, in that order.
async fn signed_form(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Vec<(String, String)>, EdgeError> {
    require_content_type(req, &[FORM], FORM)?;
    let body = read_body(req, payload, state).await?;
    let pairs =
        parse_form(&body, MAX_FORM_PARAMS).map_err(|e| EdgeError::Malformed(e.to_string()))?;
    let url = public_url(req, state);
    let signature = signature(req)?;
    if !state.validator.validate_form(&url, &pairs, signature) {
        return Err(signature_failure(req));
    }
    Ok(pairs)
}

pub(crate) fn require_content_type(
    req: &HttpRequest,
    accepted: &[&str],
    expected: &'static str,
) -> Result<(), EdgeError> {
    let raw = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if accepted.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(EdgeError::UnsupportedMediaType {
            got: raw.chars().take(100).collect(),
            expected,
        })
    }
}

/// Reads the body, refusing it as soon as it passes the body limit (before reading it all when
/// the client announces its length), or when it has not all arrived within the body timeout (a
/// client trickling its body may not hold the connection).
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<web::BytesMut, EdgeError> {
    let limit = state.max_body_bytes;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(EdgeError::PayloadTooLarge { limit });
    }
    let deadline = tokio::time::Instant::now() + state.body_timeout;
    let mut body = web::BytesMut::with_capacity(announced.map_or(8 * 1024, |n| n as usize));
    let refused = loop {
        let next = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(next) => next,
            Err(_) => {
                break EdgeError::BodyTimeout {
                    after: state.body_timeout,
                }
            }
        };
        let Some(chunk) = next else { return Ok(body) };
        let chunk =
            chunk.map_err(|e| EdgeError::Malformed(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            break EdgeError::PayloadTooLarge { limit };
        }
        body.extend_from_slice(&chunk);
    };
    if announced.is_none() {
        // actix drains the rest of a refused chunked body to its end, however long the client
        // makes it; a body of announced length is cut after a short linger instead.
        super::stop_reading(req);
    }
    Err(refused)
}

/// The URL Twilio signed: the configured public base plus the raw path and query as received
/// (never the Host header, which a proxy rewrites).
fn public_url(req: &HttpRequest, state: &AppState) -> String {
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    format!("{}{}", state.public_base, path_and_query)
}

fn signature(req: &HttpRequest) -> Result<&str, EdgeError> {
    match req.headers().get("X-Twilio-Signature").map(|v| v.to_str()) {
        Some(Ok(sig)) if !sig.is_empty() => Ok(sig),
        _ => Err(signature_failure_missing(req)),
    }
}

fn signature_failure(req: &HttpRequest) -> EdgeError {
    metrics::counter!("baton_signature_failures_total", "route" => route_label(req), "reason" => "mismatch").increment(1);
    tracing::warn!(
        path = req.path(),
        "rejected a request whose X-Twilio-Signature does not match"
    );
    EdgeError::BadSignature
}

fn signature_failure_missing(req: &HttpRequest) -> EdgeError {
    metrics::counter!("baton_signature_failures_total", "route" => route_label(req), "reason" => "missing").increment(1);
    tracing::warn!(
        path = req.path(),
        "rejected a request without X-Twilio-Signature"
    );
    EdgeError::MissingSignature
}

fn route_label(req: &HttpRequest) -> String {
    req.match_pattern().unwrap_or_else(|| "unmatched".into())
}

fn idempotency_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("I-Twilio-Idempotency-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 200)
        .map(str::to_owned)
}

async fn store(
    state: &AppState,
    events: Vec<ParsedEvent>,
) -> Result<crate::store::inbox::InsertReport, EdgeError> {
    let rows: Vec<NewInboxEvent> = events.iter().map(inbox_row).collect();
    let report = state
        .inbox
        .insert(rows)
        .await
        .map_err(EdgeError::not_stored)?;
    for parsed in &events {
        if parsed.interpret_error.is_some() {
            metrics::counter!("baton_inbox_flagged_total", "source" => parsed.source.as_str())
                .increment(1);
        }
    }
    let source = events.first().map_or("none", |e| e.source.as_str());
    metrics::counter!("baton_inbox_events_total", "source" => source, "outcome" => "stored")
        .increment(report.stored as u64);
    metrics::counter!("baton_inbox_events_total", "source" => source, "outcome" => "duplicate")
        .increment(report.duplicates as u64);
    if report.stored > 0 {
        state.wake.notify_one();
    }
    Ok(report)
}
