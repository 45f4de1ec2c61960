//! `GET /api/v1/transfers` and `GET /api/v1/stats/transfers`: transfer history for supervisors
//! and analysts (the ops token or a Flex admin/supervisor). The query string is parsed into
//! `domain::history` values; the queries are `store::history`'s, shared with `baton history`.

use super::api::authorize_history;
use super::error::{EdgeError, ErrorBody};
use super::AppState;
use crate::domain::history::{GroupBy, StatsQuery, TransferQuery};
use crate::store;
use crate::store::history::{TransferPage, TransferStats};
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};

/// The filters both routes take (documentation: the query string is parsed by
/// `domain::history`). All optional, combined with AND.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferFilters {
    /// Inclusive: an RFC 3339 time, a date (midnight UTC) or a duration ago (`6h`, `2d`); also
    /// a time without zone (UTC) or seconds. Must be before `until`.
    #[param(schema_with = time_param)]
    pub since: Option<String>,
    /// Exclusive; the same forms as `since`.
    #[param(schema_with = time_param)]
    pub until: Option<String>,
    /// `WK…`: the worker on either side (who transferred, or who the hop went to).
    #[param(pattern = "^WK[0-9a-fA-F]{32}$")]
    pub worker_sid: Option<String>,
    /// `WQ…`: the queue on either side (came from, or went to).
    #[param(pattern = "^WQ[0-9a-fA-F]{32}$")]
    pub queue_sid: Option<String>,
    #[param(schema_with = target_type_param)]
    pub target_type: Option<String>,
    /// `in_flight`: no outcome yet.
    #[param(schema_with = outcome_param)]
    pub outcome: Option<String>,
    /// `CH…`: the hops of the chains whose tasks carried the conversation.
    #[param(pattern = "^CH[0-9a-fA-F]{32}$")]
    pub conversation_sid: Option<String>,
}

/// `since` and `until`: the forms `domain::history::parse_time` reads (a duration of up to five
/// digits, so that it stays within the calendar).
fn time_param() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    AnyOfBuilder::new()
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
        .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))))
        .item(string().pattern(Some("^(0|[0-9]{1,5}[smhdw])$")))
        .build()
        .into()
}

fn target_type_param() -> Schema {
    enum_param(&["worker", "queue", "workflow"])
}

fn outcome_param() -> Schema {
    enum_param(&["completed", "failed", "canceled", "returned", "in_flight"])
}

fn enum_param(values: &[&str]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
        .into()
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Every hop (whoever made the transfer), newest first, with its timings; `next` is the
/// cursor of the following page.
#[utoipa::path(get, path = "/api/v1/transfers", tag = "history",
    params(TransferFilters,
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size (default 50)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]+$",
            description = "The previous page's `next` (opaque; any other value is `400`)")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "A page of hops", body = TransferPage),
        (status = 400, description = "`invalid_request`: a parameter unknown, repeated or malformed, named", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a Flex user who is not admin/supervisor", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`: the Flex token could not be validated", body = ErrorBody),
    ))]
pub async fn list_transfers(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "transfer history").await?;
    let query = TransferQuery::from_pairs(&query_pairs(&req), chrono::Utc::now())
        .map_err(|e| EdgeError::Invalid(e.to_string()))?;
    let page = store::history::list_transfers(&state.pool, &query)
        .await
        .map_err(EdgeError::not_read)?;
    Ok(HttpResponse::Ok().json(page))
}

/// Per group: counts by outcome, median and p90 seconds to accept (the window defaults to the
/// 30 days before `until`).
#[utoipa::path(get, path = "/api/v1/stats/transfers", tag = "history",
    params(("group_by" = GroupBy, Query, description = "What the groups are"), TransferFilters),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "The groups, largest first", body = TransferStats),
        (status = 400, description = "`invalid_request`: a parameter unknown, repeated or malformed, named", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a Flex user who is not admin/supervisor", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`: the Flex token could not be validated", body = ErrorBody),
    ))]
pub async fn transfer_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "transfer history").await?;
    let query = StatsQuery::from_pairs(&query_pairs(&req), chrono::Utc::now())
        .map_err(|e| EdgeError::Invalid(e.to_string()))?;
    let stats = store::history::transfer_stats(&state.pool, &query)
        .await
        .map_err(EdgeError::not_read)?;
    Ok(HttpResponse::Ok().json(stats))
}
