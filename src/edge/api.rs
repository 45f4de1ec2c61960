//! The `/api/v1` routes for Flex plugins and operations staff. Authenticated by
//! `Authorization: Bearer <BATON_OPS_TOKEN>`, by a Flex user's token (`Authorization: Bearer
//! <token>`, `X-Flex-Token`, or `Token` in a JSON body, as the transfer plugins' functions took
//! it), validated with Twilio and cached briefly, or by the ops console's session cookie (with
//! its CSRF token for actions).

use super::console::session::{self, Refused, Session, SessionKey, Who};
use super::error::{EdgeError, ErrorBody};
use super::webhooks::{read_body, require_content_type};
use super::AppState;
use crate::domain::park::ParkState;
use crate::domain::sid::{Sid, SidKind};
use crate::services::parks::{ParkRequest, ParkService, ResumeRequest};
use crate::services::transfers::{Initiator, TransferRequest, TransferService};
use crate::store;
use crate::store::chains::ChainView;
use crate::store::conversations::ConversationView;
use crate::store::parks::ParkView;
use crate::store::transfers::TransferView;
use crate::twilio::{FlexUser, TwilioClient};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use utoipa::{IntoParams, ToSchema};

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
    /// Signs and checks console sessions (derived from the ops token).
    pub sessions: SessionKey,
    /// How long a console sign-in lasts (`BATON_CONSOLE_SESSION`).
    pub session_ttl: Duration,
    /// Validates Flex users' tokens with Twilio.
    flex_tokens: TwilioClient,
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
        flex_tokens: TwilioClient,
        transfers: TransferService,
        parks: ParkService,
    ) -> ApiState {
        ApiState {
            sessions: SessionKey::new(&ops_token),
            session_ttl: Duration::from_secs(8 * 3600),
            ops_token,
            flex_tokens,
            transfers,
            parks,
            outbox_wake: Arc::new(Notify::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// How long a console sign-in lasts.
    pub fn with_session_ttl(mut self, ttl: Duration) -> ApiState {
        self.session_ttl = ttl;
        self
    }

    /// Who `token` is, as [`authenticate`] would take it from a header — the ops token, or a
    /// Flex user's token validated with Twilio (console sign-in) — and when a session of theirs
    /// must end at the latest: a Flex user's session never outlives their token.
    pub async fn who_is(
        &self,
        token: &str,
    ) -> Result<(Who, Option<chrono::DateTime<chrono::Utc>>), EdgeError> {
        if is_ops_token(self, token) {
            return Ok((Who::Ops, None));
        }
        let user = self.flex_user(token).await?;
        Ok((
            Who::Flex {
                identity: user.identity,
                worker_sid: user.worker_sid,
                roles: user.roles,
            },
            user.expires_at,
        ))
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
                    .flex_tokens
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
        Some(_) => Err(EdgeError::Unauthorized(
            "send Authorization: Bearer with the ops token".into(),
        )),
        None => match console_session(req, api)? {
            Some(Session { who: Who::Ops, .. }) => Ok(api),
            Some(_) => Err(EdgeError::Forbidden(
                "the outbox is for operations staff: sign in with the ops token".into(),
            )),
            None => Err(EdgeError::Unauthorized(
                "send Authorization: Bearer with the ops token".into(),
            )),
        },
    }
}

/// The value of the request's `name` cookie.
pub(super) fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The console session the request's cookie carries, if it has one. A cookie that is forged or
/// expired is refused (the console sends its user to sign in again); an action (anything but
/// GET/HEAD) must also carry the session's CSRF token.
pub(super) fn console_session(
    req: &HttpRequest,
    api: &ApiState,
) -> Result<Option<Session>, EdgeError> {
    let Some(cookie) = cookie(req, session::COOKIE) else {
        return Ok(None);
    };
    let session = api
        .sessions
        .open(cookie, chrono::Utc::now().timestamp())
        .map_err(|refused| {
            EdgeError::Unauthorized(
                match refused {
                    Refused::Expired => "the console session has expired; sign in again",
                    Refused::Forged => "the console session is not valid; sign in again",
                }
                .into(),
            )
        })?;
    if !matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) {
        let token = req
            .headers()
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !api.sessions.csrf_matches(&session, token) {
            return Err(EdgeError::Forbidden(format!(
                "a console action must carry the session's {} header",
                session::CSRF_HEADER
            )));
        }
    }
    Ok(Some(session))
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
        None => match console_session(req, api)? {
            Some(Session { who: Who::Ops, .. }) => Ok(Caller::Ops),
            Some(Session {
                who:
                    Who::Flex {
                        identity,
                        worker_sid,
                        roles,
                    },
                ..
            }) => Ok(Caller::Flex(FlexUser {
                identity,
                worker_sid,
                roles,
                expires_at: None,
            })),
            None => Err(EdgeError::Unauthorized(
                "send Authorization: Bearer with the ops token or a Flex token".into(),
            )),
        },
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

/// One of baton's own ids: `prefix` (`PA`, `TR`) and 32 lowercase hex digits, as baton makes
/// them. Anything else is refused before it reaches a query.
fn baton_id<'a>(raw: &'a str, prefix: &str, what: &str) -> Result<&'a str, EdgeError> {
    let well_formed = raw.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if well_formed {
        Ok(raw)
    } else {
        Err(EdgeError::Invalid(format!(
            "{raw:?} is not a {what} id ({prefix} and 32 lowercase hex digits)"
        )))
    }
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

/// The whole chain the task belongs to: root, tasks in order, hops in order.
#[utoipa::path(get, path = "/api/v1/tasks/{task_sid}/chain", tag = "history",
    params(("task_sid" = String, Path, pattern = "^WT[0-9a-fA-F]{32}$", description = "`WT…`")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "The chain", body = ChainView),
        (status = 400, description = "`invalid_request`: not a task SID", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a Flex user who is not admin/supervisor", body = ErrorBody),
        (status = 404, description = "`not_found`: baton has seen no event of the task", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`: the Flex token could not be validated", body = ErrorBody),
    ))]
pub async fn task_chain(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "transfer history").await?;
    let task_sid = task_sid(&path)?;
    match store::chains::fetch_chain(&state.pool, &task_sid)
        .await
        .map_err(EdgeError::not_read)?
    {
        Some(chain) => Ok(HttpResponse::Ok().json(chain)),
        None => Err(EdgeError::NotFound(format!(
            "baton has seen no event of task {task_sid}"
        ))),
    }
}

/// A conversation with its parks.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ConversationBody {
    #[serde(flatten)]
    pub conversation: ConversationView,
    pub parks: Vec<ParkView>,
}

/// A conversation's state, tasks, chains, parks, pending orphan check and close record.
#[utoipa::path(get, path = "/api/v1/conversations/{sid}", tag = "history",
    params(("sid" = String, Path, pattern = "^CH[0-9a-fA-F]{32}$", description = "`CH…`")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "The conversation", body = ConversationBody),
        (status = 400, description = "`invalid_request`: not a conversation SID", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a Flex user who is not admin/supervisor", body = ErrorBody),
        (status = 404, description = "`not_found`: baton has seen no task of it", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`: the Flex token could not be validated", body = ErrorBody),
    ))]
pub async fn get_conversation(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "conversation history").await?;
    let sid = Sid::parse_kind(&path, SidKind::Conversation)
        .map_err(|e| EdgeError::Invalid(format!("{:?} is not a conversation SID: {e}", &*path)))?
        .to_string();
    match store::conversations::fetch_view(&state.pool, &sid)
        .await
        .map_err(EdgeError::not_read)?
    {
        Some(conversation) => {
            let parks = store::parks::of_conversation(&state.pool, &sid)
                .await
                .map_err(EdgeError::not_read)?;
            Ok(HttpResponse::Ok().json(ConversationBody {
                conversation,
                parks,
            }))
        }
        None => Err(EdgeError::NotFound(format!(
            "baton has seen no task of conversation {sid}"
        ))),
    }
}

/// A transfer asked for: new (`created`) or the one its idempotency key named.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct TransferCreated {
    pub transfer: TransferView,
    pub created: bool,
}

/// A transfer.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct TransferBody {
    pub transfer: TransferView,
}

/// Start a transfer of an assigned task to a worker, queue or workflow.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "transfers",
    request_body = TransferRequest,
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 202, description = "Transfer started", body = TransferCreated,
            headers(("Location" = String, description = "`/api/v1/transfers/{transfer_id}`")),
            links(("GetTransfer" = (operation_id = "get_transfer",
                parameters(("transfer_id" = "$response.body#/transfer/transfer_id")))))),
        (status = 200, description = "A repeated idempotency key: the existing transfer", body = TransferCreated,
            headers(("Location" = String, description = "`/api/v1/transfers/{transfer_id}`")),
            links(("GetTransfer" = (operation_id = "get_transfer",
                parameters(("transfer_id" = "$response.body#/transfer/transfer_id")))))),
        (status = 400, description = "`invalid_request` (bad SID, unknown target) or `malformed_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 409, description = "`task_not_live`, `transfer_in_flight` (`error.detail` is that transfer)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not JSON", body = ErrorBody),
        (status = 422, description = "`not_configured`: needs `BATON_TRANSFER_WORKFLOW_SID`", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`", body = ErrorBody),
    ))]
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
                .json(TransferCreated {
                    transfer: requested.transfer,
                    created: requested.created,
                }))
        }
        Err(e) => Err(EdgeError::from(e)),
    }
}

/// A park asked for: new (`created`) or the one its idempotency key named.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ParkCreated {
    pub park: ParkView,
    pub created: bool,
}

/// A park.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ParkBody {
    pub park: ParkView,
}

/// Parks, newest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ParkList {
    pub parks: Vec<ParkView>,
}

/// Park an assigned Flex Conversations task.
#[utoipa::path(post, path = "/api/v1/parks", tag = "parks",
    request_body = ParkRequest,
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 201, description = "Parked", body = ParkCreated,
            headers(("Location" = String, description = "`/api/v1/parks/{park_id}`")),
            links(("GetPark" = (operation_id = "get_park",
                    parameters(("park_id" = "$response.body#/park/park_id")))),
                ("ResumePark" = (operation_id = "resume_park",
                    parameters(("park_id" = "$response.body#/park/park_id")))))),
        (status = 200, description = "A repeated idempotency key: the existing park", body = ParkCreated,
            headers(("Location" = String, description = "`/api/v1/parks/{park_id}`")),
            links(("GetPark" = (operation_id = "get_park",
                    parameters(("park_id" = "$response.body#/park/park_id")))),
                ("ResumePark" = (operation_id = "resume_park",
                    parameters(("park_id" = "$response.body#/park/park_id")))))),
        (status = 400, description = "`invalid_request` or `malformed_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such task", body = ErrorBody),
        (status = 409, description = "`task_not_live`, `already_parked` (`error.detail` is the park)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not JSON", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`", body = ErrorBody),
    ))]
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
        .map_err(EdgeError::from)?;
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
        .json(ParkCreated {
            park: parked.park,
            created: parked.created,
        }))
}

/// Resume a park now (`same_worker` by default, or `queue`); the body may be empty.
#[utoipa::path(post, path = "/api/v1/parks/{park_id}/resume", tag = "parks",
    params(("park_id" = String, Path, pattern = "^PA[0-9a-f]{32}$", description = "`PA…`")),
    request_body(content = ResumeRequest,
        description = "Optional: no body at all resumes to the same worker"),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "Resumed", body = ParkBody),
        (status = 400, description = "`invalid_request`: not a park id, or a malformed body", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such park", body = ErrorBody),
        (status = 409, description = "`not_parked`: resumed or ended already (`error.detail` is the park)", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`", body = ErrorBody),
    ))]
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
        .resume(baton_id(&path, "PA", "park")?, request.route.as_deref())
        .await
        .map_err(EdgeError::from)?;
    Ok(HttpResponse::Ok().json(ParkBody { park }))
}

/// One park.
#[utoipa::path(get, path = "/api/v1/parks/{park_id}", tag = "parks",
    params(("park_id" = String, Path, pattern = "^PA[0-9a-f]{32}$", description = "`PA…`")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "The park", body = ParkBody),
        (status = 400, description = "`invalid_request`: not a park id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such park", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`", body = ErrorBody),
    ))]
pub async fn get_park(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    authenticate(&req, api, None).await?;
    baton_id(&path, "PA", "park")?;
    match store::parks::get(&state.pool, &path)
        .await
        .map_err(EdgeError::not_read)?
    {
        Some(park) => Ok(HttpResponse::Ok().json(ParkBody { park })),
        None => Err(EdgeError::NotFound(format!("no park {}", path.as_str()))),
    }
}

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ParkQuery {
    /// Only parks in this state.
    #[param(value_type = Option<ParkState>)]
    state: Option<String>,
    /// `WK…`: only this worker's parks.
    #[param(pattern = "^WK[0-9a-fA-F]{32}$")]
    worker_sid: Option<String>,
    /// Page size.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, default = 100)]
    limit: Option<String>,
}

/// Parks, newest first, with their timings (`hold_seconds`).
#[utoipa::path(get, path = "/api/v1/parks", tag = "parks", params(ParkQuery),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "Parks", body = ParkList),
        (status = 400, description = "`invalid_request`: a bad parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`", body = ErrorBody),
    ))]
pub async fn list_parks(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    authenticate(&req, api, None).await?;
    let query = web::Query::<ParkQuery>::from_query(req.query_string())
        .map_err(|e| EdgeError::Invalid(format!("bad query: {e}")))?;
    let park_state = match query.state.as_deref() {
        None => None,
        Some(s) => Some(ParkState::parse(s).ok_or_else(|| {
            EdgeError::Invalid(format!(
                "state {s:?} must be parked, resumed, expired or ended"
            ))
        })?),
    };
    if let Some(w) = query.worker_sid.as_deref() {
        Sid::parse_kind(w, SidKind::Worker)
            .map_err(|e| EdgeError::Invalid(format!("worker_sid {w:?}: {e}")))?;
    }
    let limit = super::limit_param(query.limit.as_deref(), 100)?;
    let parks = store::parks::list(&state.pool, park_state, query.worker_sid.as_deref(), limit)
        .await
        .map_err(EdgeError::not_read)?;
    Ok(HttpResponse::Ok().json(ParkList { parks }))
}

/// A transfer and its state.
#[utoipa::path(get, path = "/api/v1/transfers/{transfer_id}", tag = "transfers",
    params(("transfer_id" = String, Path, pattern = "^TR[0-9a-f]{32}$", description = "`TR…`: the transfer's id")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "The transfer", body = TransferBody),
        (status = 400, description = "`invalid_request`: not a transfer id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such transfer", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`", body = ErrorBody),
    ))]
pub async fn get_transfer(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    authenticate(&req, api, None).await?;
    baton_id(&path, "TR", "transfer")?;
    match api
        .transfers
        .find(&path)
        .await
        .map_err(EdgeError::not_read)?
    {
        Some(transfer) => Ok(HttpResponse::Ok().json(TransferBody { transfer })),
        None => Err(EdgeError::NotFound(format!(
            "no transfer {}",
            path.as_str()
        ))),
    }
}
