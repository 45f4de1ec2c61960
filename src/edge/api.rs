//! The `/api/v1` routes for Flex plugins and operations staff. Authenticated by
//! `Authorization: Bearer <BATON_OPS_TOKEN>`, or by a Flex user's token (`Authorization: Bearer
//! <token>`, `X-Flex-Token`, or `Token` in a JSON body, as the transfer plugins' functions took
//! it), validated with Twilio and cached briefly.

use super::error::EdgeError;
use super::webhooks::{read_body, require_content_type};
use super::AppState;
use crate::app::transfers::{Initiator, TransferError, TransferRequest, TransferService};
use crate::domain::sid::{Sid, SidKind};
use crate::store;
use crate::twilio::FlexUser;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

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
    /// sha256(token) → (when validated, what Twilio said).
    tokens: Mutex<TokenCache>,
}

impl ApiState {
    pub fn new(ops_token: SecretString, transfers: TransferService) -> ApiState {
        ApiState {
            ops_token,
            transfers,
            tokens: Mutex::new(HashMap::new()),
        }
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

fn api(state: &AppState) -> Result<&ApiState, EdgeError> {
    state.api.as_deref().ok_or_else(|| {
        EdgeError::NotConfigured("the API needs Twilio credentials; see the README".into())
    })
}

async fn authenticate(
    req: &HttpRequest,
    api: &ApiState,
    body_token: Option<&str>,
) -> Result<Caller, EdgeError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim));
    if let Some(token) = bearer {
        let ops = api.ops_token.expose_secret().as_bytes();
        if bool::from(token.as_bytes().ct_eq(ops)) {
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

fn task_sid(raw: &str) -> Result<String, EdgeError> {
    Sid::parse_kind(raw, SidKind::Task)
        .map(|s| s.to_string())
        .map_err(|e| EdgeError::Invalid(format!("{raw:?} is not a task SID: {e}")))
}

/// `GET /api/v1/tasks/{task_sid}/chain`: the whole chain the task belongs to.
pub async fn task_chain(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = api(&state)?;
    let caller = authenticate(&req, api, None).await?;
    if !caller.may_read_history() {
        return Err(EdgeError::Forbidden(
            "transfer history needs the ops token or a Flex admin/supervisor".into(),
        ));
    }
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
    let api = api(&state)?;
    let caller = authenticate(&req, api, None).await?;
    if !caller.may_read_history() {
        return Err(EdgeError::Forbidden(
            "conversation history needs the ops token or a Flex admin/supervisor".into(),
        ));
    }
    let sid = Sid::parse_kind(&path, SidKind::Conversation)
        .map_err(|e| EdgeError::Invalid(format!("{:?} is not a conversation SID: {e}", &*path)))?
        .to_string();
    match store::conversations::fetch_view(&state.pool, &sid).await? {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
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
    require_content_type(&req, &["application/json"], "application/json")?;
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    let request: TransferRequest = serde_json::from_slice(&body)
        .map_err(|e| EdgeError::Invalid(format!("malformed transfer request: {e}")))?;
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
        Err(e) => Err(match e {
            TransferError::Invalid(m) => EdgeError::Invalid(m),
            TransferError::TaskNotFound(_) => EdgeError::NoSuch(e.to_string()),
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
            TransferError::NotConfigured(m) => EdgeError::NotConfigured(m),
            TransferError::Twilio(m) => {
                tracing::warn!(error = %m, "transfer check against Twilio failed");
                EdgeError::Upstream(format!("Twilio could not be reached: {m}"))
            }
            TransferError::Store(e) => EdgeError::from(e),
        }),
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
