//! `/api/v1/outbox`: the outbound Twilio calls for operations staff (ops token only) — what is
//! pending, in flight, done or dead, each call's attempts, and re-driving a dead call.

use super::api::require_ops;
use super::error::EdgeError;
use super::error::ErrorBody;
use super::AppState;
use crate::store::outbox::{self, AttemptView, CallDetail, CallState, CallView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// Calls per page when no limit is given.
const DEFAULT_LIMIT: i64 = 100;

/// `GET /api/v1/outbox` query parameters, as received (each is checked by name below).
#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// Only calls in this state; every call when absent.
    #[param(value_type = Option<CallState>)]
    state: Option<String>,
    /// Page size.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, default = 100)]
    limit: Option<String>,
    /// The `next` of the previous page.
    #[param(value_type = Option<i64>, minimum = 1)]
    cursor: Option<String>,
}

/// A page of calls, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    pub calls: Vec<CallView>,
    /// The `cursor` of the next page; absent (`null`) on the last page.
    pub next: Option<String>,
}

/// One call and its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallWithAttempts {
    pub call: CallDetail,
    pub attempts: Vec<AttemptView>,
}

/// A call re-driven.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallBody {
    pub call: CallView,
}

/// A listing request, parsed.
#[derive(Debug, PartialEq, Eq)]
struct Listing {
    state: Option<CallState>,
    limit: i64,
    before: Option<i64>,
}

fn parse_listing(query: &str) -> Result<Listing, EdgeError> {
    let raw = web::Query::<OutboxQuery>::from_query(query)
        .map_err(|e| EdgeError::Invalid(format!("bad query: {e}")))?
        .into_inner();
    let state = raw
        .state
        .as_deref()
        .map(|s| {
            CallState::parse(s).ok_or_else(|| {
                EdgeError::Invalid(format!(
                    "state {s:?} must be pending, in_flight, done or dead"
                ))
            })
        })
        .transpose()?;
    let limit = super::limit_param(raw.limit.as_deref(), DEFAULT_LIMIT)?;
    let before = raw
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                EdgeError::Invalid(format!(
                    "cursor {c:?} is not a `next` this endpoint returned"
                ))
            })
        })
        .transpose()?;
    Ok(Listing {
        state,
        limit,
        before,
    })
}

fn call_id(raw: &str) -> Result<i64, EdgeError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| EdgeError::Invalid(format!("id {raw:?} is not an outbox call id")))
}

async fn call_view(state: &AppState, id: i64) -> Result<CallView, EdgeError> {
    match outbox::get(&state.pool, id)
        .await
        .map_err(EdgeError::not_read)?
    {
        Some(detail) => Ok(detail.call),
        None => Err(EdgeError::NotFound(format!("no outbox call {id}"))),
    }
}

/// Outbound Twilio calls, newest first.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "outbox", params(OutboxQuery),
    security(("ops_token" = [])),
    responses(
        (status = 200, description = "A page of calls", body = CallPage),
        (status = 400, description = "`invalid_request`: a bad parameter, named", body = ErrorBody),
        (status = 401, description = "`unauthorized`: not the ops token", body = ErrorBody),
    ))]
pub async fn list_calls(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    require_ops(&req, &state)?;
    let listing = parse_listing(req.query_string())?;
    let calls = outbox::list(&state.pool, listing.state, listing.before, listing.limit)
        .await
        .map_err(EdgeError::not_read)?;
    // A full page may have more behind it; the cursor is the last id shown.
    let next = (calls.len() as i64 == listing.limit)
        .then(|| calls.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(CallPage { calls, next }))
}

/// One call: its form parameters, Twilio's last answer, every attempt.
#[utoipa::path(get, path = "/api/v1/outbox/{id}", tag = "outbox",
    params(("id" = i64, Path, minimum = 1, description = "The call's `id`")),
    security(("ops_token" = [])),
    responses(
        (status = 200, description = "The call and its attempts", body = CallWithAttempts),
        (status = 400, description = "`invalid_request`: not a call id", body = ErrorBody),
        (status = 401, description = "`unauthorized`: not the ops token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such call", body = ErrorBody),
    ))]
pub async fn get_call(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    require_ops(&req, &state)?;
    let id = call_id(&path)?;
    let Some(call) = outbox::get(&state.pool, id)
        .await
        .map_err(EdgeError::not_read)?
    else {
        return Err(EdgeError::NotFound(format!("no outbox call {id}")));
    };
    let attempts = outbox::attempts(&state.pool, id)
        .await
        .map_err(EdgeError::not_read)?;
    Ok(HttpResponse::Ok().json(CallWithAttempts { call, attempts }))
}

/// Re-drive a dead call: its retry budget starts again and the dispatcher is woken.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "outbox",
    params(("id" = i64, Path, minimum = 1, description = "The call's `id`")),
    security(("ops_token" = [])),
    responses(
        (status = 202, description = "Re-driven: pending again", body = CallBody),
        (status = 400, description = "`invalid_request`: not a call id", body = ErrorBody),
        (status = 401, description = "`unauthorized`: not the ops token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such call", body = ErrorBody),
        (status = 409, description = "`not_dead`: the call is not dead (`error.detail` is the call)", body = ErrorBody),
    ))]
pub async fn retry_call(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    let api = require_ops(&req, &state)?;
    let id = call_id(&path)?;
    if !outbox::retry_dead(&state.pool, id)
        .await
        .map_err(EdgeError::not_stored)?
    {
        let call = call_view(&state, id).await?;
        return Err(EdgeError::Conflict {
            code: "not_dead",
            message: format!(
                "outbox call {id} is {}; only a dead call can be re-driven",
                call.state.as_str()
            ),
            detail: serde_json::to_value(&call).ok(),
        });
    }
    metrics::counter!("baton_outbox_redrives_total").increment(1);
    tracing::info!(outbox_id = id, "dead outbox call re-driven by ops");
    api.outbox_wake.notify_one();
    let call = call_view(&state, id).await?;
    Ok(HttpResponse::Accepted().json(CallBody { call }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(query: &str) -> String {
        match parse_listing(query) {
            Err(EdgeError::Invalid(m)) => m,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn a_listing_defaults_to_everything_newest_first() {
        assert_eq!(
            parse_listing("").unwrap(),
            Listing {
                state: None,
                limit: 100,
                before: None
            }
        );
        assert_eq!(
            parse_listing("state=in_flight&limit=500&cursor=42").unwrap(),
            Listing {
                state: Some(CallState::InFlight),
                limit: 500,
                before: Some(42)
            }
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(invalid("state=failed").starts_with("state \"failed\""));
        assert_eq!(
            invalid("limit=0"),
            "limit \"0\" must be a whole number from 1 to 500"
        );
        assert!(invalid("limit=501").starts_with("limit \"501\""));
        assert!(invalid("limit=ten").starts_with("limit \"ten\""));
        assert!(invalid("cursor=-3").starts_with("cursor \"-3\""));
        assert!(invalid("colour=red").contains("unknown field `colour`"));
    }
}
