//! `GET /api/v1/overview`: the operations overview the console's first page shows (the ops
//! token, or a Flex admin/supervisor).

use super::api::authorize_history;
use super::error::{EdgeError, ErrorBody};
use super::AppState;
use crate::store;
use crate::store::overview::Overview;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::TimeDelta;
use utoipa::{IntoParams, ToSchema};

/// The window the overview counts over, ending now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, ToSchema)]
pub enum Window {
    #[default]
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl Window {
    fn length(self) -> TimeDelta {
        match self {
            Window::Hour => TimeDelta::hours(1),
            Window::Day => TimeDelta::hours(24),
            Window::Week => TimeDelta::days(7),
        }
    }
}

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// The window, ending now (default `1h`).
    #[param(inline)]
    window: Option<Window>,
}

/// Transfers by outcome and time to accept by queue over the window; what is in flight, parked
/// and queued now; and what needs attention (dead calls, stuck transfers, overdue parks).
#[utoipa::path(get, path = "/api/v1/overview", tag = "history", params(OverviewQuery),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 400, description = "`invalid_request`: an unknown window or parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a Flex user who is not admin/supervisor", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`: the Flex token could not be validated", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: the database could not be read", body = ErrorBody),
    ))]
pub async fn overview(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "the overview").await?;
    let query = web::Query::<OverviewQuery>::from_query(req.query_string())
        .map_err(|e| EdgeError::Invalid(format!("bad query: {e}")))?;
    let until = chrono::Utc::now();
    let since = until - query.window.unwrap_or_default().length();
    let overview = store::overview::overview(&state.pool, since, until)
        .await
        .map_err(EdgeError::not_read)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(overview))
}
