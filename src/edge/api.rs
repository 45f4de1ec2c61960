//! The `/api/v1` routes for Flex plugins and operations staff. Authenticated by
//! `Authorization: Bearer <BATON_OPS_TOKEN>`, or by a Flex user's token (`Authorization: Bearer
//! <token>`, `X-Flex-Token`, or `Token` in a JSON body, as the transfer plugins' functions took
//! it), validated with Twilio and cached briefly.

use super::error::EdgeError;
use super::webhooks::{read_body, require_content_type};
use super::AppState;
use crate::app::parks::{ParkRequest, ParkService, ResumeRequest};
use crate::app::transfers::{Initiator, TransferError, TransferRequest, TransferService};
use crate::domain::sid::{Sid, SidKind};
use crate::store;
use crate::twilio::FlexUser;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

/// How long a Flex token's validation is trusted.
const VALID_TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long a refused token stays refused without asking Twilio again.
const INVALID_TOKEN_TTL: Duration = Duration::from_secs(10);
const MAX_CACHED_TOKENS: usize = 10_000;

/// A Flex token's validation: when, and what Twilio said (the user, or why not).
type TokenCache = HashMap<[u8; 32], (Instant, Result<FlexUser, String>)>;

/// What the API routes share.
pub struct ApiState {
    pub ops_token: SecretString,
    pub transfers: TransferService,
    pub parks: ParkService,
    /// Wakes the local outbox dispatcher (a re-driven call is due at once).
    pub outbox_wake: Arc<Notify>,
    /// sha256(token) → (when validated, what Twilio said).
    tokens: Mutex<TokenCache>,
}

impl ApiState {
    pub fn new(
        ops_token: SecretString,
        transfers: TransferService,
        parks: ParkService,
    ) -> ApiState {
        ApiState {
            ops_token,
            transfers,
            parks,
            outbox_wake: Arc::new(Notify::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Wakes this dispatcher when ops re-drive a call (without it, the dispatcher's poll finds it).
    pub fn with_outbox_wake(mut self, wake: Arc<Notify>) -> ApiState {
        self.outbox_wake = wake;
        self
    }

    async fn flex_user(&self, token: &str) -> Result<FlexUser, EdgeError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.tokens.lock().ok().and_then(|cache| {
            cache.get(&key).and_then(|(at, result)| {
                let ttl = if result.is_ok() {
                    VALID_TOKEN_TTL
                } else {
                    INVALID_TOKEN_TTL
                };
                (at.elapsed() < ttl).then(|| result.clone())
            })
        });
        let result = match cached {
            Some(result) => result,
            None => {
                let result = self
                    .transfers
                    .client
                    .validate_flex_token(token)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "Flex token validation failed");
                        EdgeError::Upstream(
                            "Twilio could not validate the Flex token; retry later".into(),
                        )
                    })?;
                if let Ok(mut cache) = self.tokens.lock() {
                    if cache.len() >= MAX_CACHED_TOKENS {
                        cache.retain(|_, (at, _)| at.elapsed() < VALID_TOKEN_TTL);
                    }
                    cache.insert(key, (Instant::now(), result.clone()));
                }
                result
            }
        };
        result.map_err(|message| EdgeError::Unauthorized(format!("Flex token refused: {message}")))
    }
}

/// Who is calling.
enum Caller {
    Ops,
    Flex(FlexUser),
}

impl Caller {
    fn initiator(&self) -> Initiator {
        match self {
            Caller::Ops => Initiator {
                label: "ops".into(),
                worker_sid: None,
            },
            Caller::Flex(user) => Initiator {
                label: user
                    .worker_sid
                    .clone()
                    .unwrap_or_else(|| user.identity.clone()),
                worker_sid: user.worker_sid.clone(),
            },
        }
    }

    /// Transfer history is for operations staff: the ops token, or a Flex supervisor/admin.
    fn may_read_history(&self) -> bool {
        match self {
            Caller::Ops => true,
            Caller::Flex(user) => user
                .roles
                .iter()
                .any(|r| matches!(r.as_str(), "admin" | "supervisor")),
        }
    }
}

pub(super) fn api(state: &AppState) -> Result<&ApiState, EdgeError> {
    state.api.as_deref().ok_or_else(|| {
        EdgeError::NotConfigured("the API needs Twilio credentials; see the README".into())
    })
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
}

fn is_ops_token(api: &ApiState, token: &str) -> bool {
    bool::from(
        token
            .as_bytes()
            .ct_eq(api.ops_token.expose_secret().as_bytes()),
    )
}

/// Routes for operations staff only (the outbox): the ops token, never a Flex token.
pub(super) fn require_ops<'a>(
    req: &HttpRequest,
    state: &'a AppState,
) -> Result<&'a ApiState, EdgeError> {
    let api = api(state)?;
    match bearer(req) {
        Some(token) if is_ops_token(api, token) => Ok(api),
        _ => Err(EdgeError::Unauthorized(
            "send Authorization: Bearer with the ops token".into(),
        )),
    }
}

async fn authenticate(
    req: &HttpRequest,
    api: &ApiState,
    body_token: Option<&str>,
) -> Result<Caller, EdgeError> {
    let bearer = bearer(req);
    if let Some(token) = bearer {
        if is_ops_token(api, token) {
            return Ok(Caller::Ops);
        }
    }
    let flex = req
        .headers()
        .get("X-Flex-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or(body_token)
        .or(bearer)
        .filter(|t| !t.is_empty());
    match flex {
        Some(token) => Ok(Caller::Flex(api.flex_user(token).await?)),
        None => Err(EdgeError::Unauthorized(
            "send Authorization: Bearer with the ops token or a Flex token".into(),
        )),
    }
}

/// An `/api` request's JSON body (`application/json`, within the body limit), parsed.
async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    what: &str,
) -> Result<T, EdgeError> {
    require_content_type(req, &["application/json"], "application/json")?;
    let body = read_body(req, payload, state).await?;
    serde_json::from_slice(&body)
        .map_err(|e| EdgeError::Invalid(format!("malformed {what} request: {e}")))
}

fn task_sid(raw: &str) -> Result<String, EdgeError> {
    Sid::parse_kind(raw, SidKind::Task)
        .map(|s| s.to_string())
        .map_err(|e| EdgeError::Invalid(format!("{raw:?} is not a task SID: {e}")))
}

/// History (chains, conversations, transfers and their stats) is for operations staff: the ops
/// token, or a Flex admin/supervisor. `what` names it in the refusal.
pub(crate) async fn authorize_history(
    req: &HttpRequest,
    state: &AppState,
    what: &str,
) -> Result<(), EdgeError> {
    let caller = authenticate(req, api(state)?, None).await?;
    if caller.may_read_history() {
        Ok(())
    } else {
        Err(EdgeError::Forbidden(format!(
            "{what} needs the ops token or a Flex admin/supervisor"
        )))
    }
}

/// `GET /api/v1/tasks/{task_sid}/chain`: the whole chain the task belongs to.
pub async fn task_chain(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "transfer history").await?;
    let task_sid = task_sid(&path)?;
    match store::chains::fetch_chain(&state.pool, &task_sid).await? {
        Some(chain) => Ok(HttpResponse::Ok().json(chain)),
        None => Err(EdgeError::NoSuch(format!(
            "baton has seen no event of task {task_sid}"
        ))),
    }
}

/// `GET /api/v1/conversations/{sid}`: a conversation's tasks, chains, pending orphan check and
/// close record.
pub async fn get_conversation(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "conversation history").await?;
    let sid = Sid::parse_kind(&path, SidKind::Conversation)
        .map_err(|e| EdgeError::Invalid(format!("{:?} is not a conversation SID: {e}", &*path)))?
        .to_string();
    match store::conversations::fetch_view(&state.pool, &sid).await? {
        Some(view) => {
            let parks = store::parks::of_conversation(&state.pool, &sid).await?;
            let mut body = serde_json::to_value(view).map_err(|_| EdgeError::Internal)?;
            body["parks"] = serde_json::to_value(parks).map_err(|_| EdgeError::Internal)?;
            Ok(HttpResponse::Ok().json(body))
        }
        None => Err(EdgeError::NoSuch(format!(
            "baton has seen no task of conversation {sid}"
        ))),
    }
}

/// `POST /api/v1/transfers`.
pub async fn create_transfer(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let request: TransferRequest = json_body(&req, payload, &state, "transfer").await?;
    let caller = authenticate(&req, api, request.token.as_deref()).await?;
    match api.transfers.request(request, &caller.initiator()).await {
        Ok(requested) => {
            let mut response = if requested.created {
                HttpResponse::Accepted()
            } else {
                HttpResponse::Ok()
            };
            Ok(response
                .insert_header((
                    header::LOCATION,
                    format!("/api/v1/transfers/{}", requested.transfer.transfer_id),
                ))
                .json(serde_json::json!({ "transfer": requested.transfer, "created": requested.created })))
        }
        Err(e) => Err(edge_error(e)),
    }
}

/// `POST /api/v1/parks`: park a Flex Conversations task.
pub async fn create_park(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let request: ParkRequest = json_body(&req, payload, &state, "park").await?;
    let caller = authenticate(&req, api, request.token.as_deref()).await?;
    let parked = api
        .parks
        .park(request, &caller.initiator().label)
        .await
        .map_err(edge_error)?;
    let mut response = if parked.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((
            header::LOCATION,
            format!("/api/v1/parks/{}", parked.park.park_id),
        ))
        .json(serde_json::json!({ "park": parked.park, "created": parked.created })))
}

/// `POST /api/v1/parks/{park_id}/resume` `{route: same_worker | queue}`.
pub async fn resume_park(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let body = read_body(&req, payload, &state).await?;
    let request: ResumeRequest = if body.is_empty() {
        ResumeRequest {
            route: None,
            token: None,
        }
    } else {
        require_content_type(&req, &["application/json"], "application/json")?;
        serde_json::from_slice(&body)
            .map_err(|e| EdgeError::Invalid(format!("malformed resume request: {e}")))?
    };
    authenticate(&req, api, request.token.as_deref()).await?;
    let park = api
        .parks
        .resume(&path, request.route.as_deref())
        .await
        .map_err(edge_error)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "park": park })))
}

/// `GET /api/v1/parks/{park_id}`.
pub async fn get_park(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    authenticate(&req, api, None).await?;
    match store::parks::get(&state.pool, &path).await? {
        Some(park) => Ok(HttpResponse::Ok().json(serde_json::json!({ "park": park }))),
        None => Err(EdgeError::NoSuch(format!("no park {}", path.as_str()))),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParkQuery {
    state: Option<String>,
    worker_sid: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/parks?state=parked|resumed|expired|ended&worker_sid=WK…&limit=`.
pub async fn list_parks(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    authenticate(&req, api, None).await?;
    let query = web::Query::<ParkQuery>::from_query(req.query_string())
        .map_err(|e| EdgeError::Invalid(format!("bad query: {e}")))?;
    if let Some(s) = query.state.as_deref() {
        if !matches!(s, "parked" | "resumed" | "expired" | "ended") {
            return Err(EdgeError::Invalid(format!(
                "state {s:?} must be parked, resumed, expired or ended"
            )));
        }
    }
    if let Some(w) = query.worker_sid.as_deref() {
        Sid::parse_kind(w, SidKind::Worker)
            .map_err(|e| EdgeError::Invalid(format!("worker_sid {w:?}: {e}")))?;
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(EdgeError::Invalid("limit must be between 1 and 500".into()));
    }
    let parks = store::parks::list(
        &state.pool,
        query.state.as_deref(),
        query.worker_sid.as_deref(),
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "parks": parks })))
}

/// How a transfer or park request's failure is answered.
fn edge_error(e: TransferError) -> EdgeError {
    match e {
        TransferError::Invalid(m) => EdgeError::Invalid(m),
        TransferError::TaskNotFound(_) | TransferError::NotFound(_) => {
            EdgeError::NoSuch(e.to_string())
        }
        TransferError::TaskNotLive { .. } => EdgeError::Conflict {
            code: "task_not_live",
            message: e.to_string(),
            detail: None,
        },
        TransferError::InFlight { ref existing, .. } => EdgeError::Conflict {
            code: "transfer_in_flight",
            message: e.to_string(),
            detail: serde_json::to_value(existing).ok(),
        },
        TransferError::Conflict {
            code,
            message,
            detail,
        } => EdgeError::Conflict {
            code,
            message,
            detail,
        },
        TransferError::NotConfigured(m) => EdgeError::NotConfigured(m),
        TransferError::Twilio(m) => {
            tracing::warn!(error = %m, "request check against Twilio failed");
            EdgeError::Upstream(format!("Twilio could not be reached: {m}"))
        }
        TransferError::Store(e) => EdgeError::from(e),
    }
}

/// `GET /api/v1/transfers/{transfer_id}`.
pub async fn get_transfer(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    authenticate(&req, api, None).await?;
    match api.transfers.find(&path).await? {
        Some(transfer) => Ok(HttpResponse::Ok().json(serde_json::json!({ "transfer": transfer }))),
        None => Err(EdgeError::NoSuch(format!("no transfer {}", path.as_str()))),
    }
}
