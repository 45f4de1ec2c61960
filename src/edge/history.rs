//! `GET /api/v1/transfers` and `GET /api/v1/stats/transfers`: transfer history for supervisors
//! and analysts (the ops token or a Flex admin/supervisor). The query string is parsed into
//! `domain::history` values; the queries are `store::history`'s, shared with `baton history`.

use super::api::authorize_history;
use super::error::{EdgeError, ErrorBody};
use super::AppState;
use crate::domain::csv::{csv_of, rows_of, to_values, HOP_COLUMNS};
use crate::domain::history::{Cursor, GroupBy, StatsQuery, TransferQuery};
use crate::store;
use crate::store::history::{TransferPage, TransferStats};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
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

/// Rows a whole-filter CSV download holds at most (a narrower filter gets the rest).
pub const CSV_MAX_ROWS: usize = 100_000;
const CSV_PAGE: i64 = 500;

fn csv_response() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"transfers.csv\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// Every hop the filter matches (up to [`CSV_MAX_ROWS`]) as CSV, streamed a page at a time so a
/// large export holds one page in memory. A read that fails midway ends the body early (the
/// download is then visibly cut short rather than silently complete).
fn csv_download(pool: &sqlx::PgPool, mut query: TransferQuery) -> HttpResponse {
    query.limit = CSV_PAGE;
    let header = csv_of(&HOP_COLUMNS, &[]);
    let pages = futures_util::stream::unfold(
        (Some(query), pool.clone(), 0usize),
        |(query, pool, written)| async move {
            let mut query = query?;
            let page = match store::history::list_transfers(&pool, &query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "transfer CSV: a page could not be read");
                    let cut = std::io::Error::other("the database could not be read");
                    return Some((Err(cut), (None, pool, written)));
                }
            };
            let written = written + page.transfers.len();
            let rows = rows_of(&HOP_COLUMNS, &to_values(&page.transfers));
            query.cursor = page
                .next
                .as_deref()
                .filter(|_| written < CSV_MAX_ROWS)
                .and_then(|next| Cursor::decode(next).ok());
            let next = query.cursor.is_some().then_some(query);
            Some((Ok(web::Bytes::from(rows)), (next, pool, written)))
        },
    );
    let body = futures_util::stream::once(async move { Ok(web::Bytes::from(header)) }).chain(pages);
    csv_response().streaming(body)
}

/// How a page of transfers is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A [`TransferPage`].
    Json,
    /// CSV with the columns of `baton history transfers --csv`: every hop the filter matches
    /// (up to 100,000), or with `limit` or `cursor` that page, its next cursor in
    /// `X-Next-Cursor`.
    Csv,
}

/// Takes the `format` parameter out of the query (the history filters don't know it).
fn take_format(pairs: &mut Vec<(String, String)>) -> Result<Format, EdgeError> {
    let mut format = None;
    let mut refused = None;
    pairs.retain(|(name, value)| {
        if name != "format" {
            return true;
        }
        match (format, value.as_str()) {
            (None, "json") => format = Some(Format::Json),
            (None, "csv") => format = Some(Format::Csv),
            (Some(_), _) => refused = Some("format is repeated".to_owned()),
            (None, other) => refused = Some(format!("format {other:?} must be json or csv")),
        }
        false
    });
    match refused {
        Some(reason) => Err(EdgeError::Invalid(reason)),
        None => Ok(format.unwrap_or(Format::Json)),
    }
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
            description = "The previous page's `next` (opaque; any other value is `400`)"),
        ("format" = Option<Format>, Query, description = "`json` (default) or `csv`")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "A page of hops", content(
            (TransferPage = "application/json"),
            (String = "text/csv", example = "chain_id,seq,initiated_at,...")),
            headers(("X-Next-Cursor" = String, description = "CSV only: the next page's cursor, when there is one"))),
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
    let mut pairs = query_pairs(&req);
    let format = take_format(&mut pairs)?;
    let paged = pairs
        .iter()
        .any(|(name, _)| name == "limit" || name == "cursor");
    let query = TransferQuery::from_pairs(&pairs, chrono::Utc::now())
        .map_err(|e| EdgeError::Invalid(e.to_string()))?;
    if format == Format::Csv && !paged {
        return Ok(csv_download(&state.pool, query));
    }
    let page = store::history::list_transfers(&state.pool, &query)
        .await
        .map_err(EdgeError::not_read)?;
    Ok(match format {
        Format::Json => HttpResponse::Ok().json(page),
        Format::Csv => {
            let mut response = csv_response();
            if let Some(next) = &page.next {
                response.insert_header(("X-Next-Cursor", next.as_str()));
            }
            response.body(csv_of(&HOP_COLUMNS, &to_values(&page.transfers)))
        }
    })
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
