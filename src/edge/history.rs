//! `GET /api/v1/transfers` and `GET /api/v1/stats/transfers`: transfer history for supervisors
//! and analysts (the ops token or a Flex admin/supervisor). The query string is parsed into
//! `domain::history` values; the queries are `store::history`'s, shared with `baton history`.

use super::api::authorize_history;
use super::error::EdgeError;
use super::AppState;
use crate::domain::history::{StatsQuery, TransferQuery};
use crate::store;
use actix_web::{web, HttpRequest, HttpResponse};

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /api/v1/transfers?since=&until=&worker_sid=&queue_sid=&target_type=&outcome=&conversation_sid=&limit=&cursor=`:
/// hops newest first with their timings; `next` is the cursor of the following page.
pub async fn list_transfers(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "transfer history").await?;
    let query = TransferQuery::from_pairs(&query_pairs(&req), chrono::Utc::now())
        .map_err(|e| EdgeError::Invalid(e.to_string()))?;
    let page = store::history::list_transfers(&state.pool, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/stats/transfers?group_by=queue|worker|target_type|from_queue|from_worker&since=&until=`
/// (and the list's filters): counts by outcome, median and p90 time to accept, per group.
pub async fn transfer_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "transfer history").await?;
    let query = StatsQuery::from_pairs(&query_pairs(&req), chrono::Utc::now())
        .map_err(|e| EdgeError::Invalid(e.to_string()))?;
    let stats = store::history::transfer_stats(&state.pool, &query).await?;
    Ok(HttpResponse::Ok().json(stats))
}
