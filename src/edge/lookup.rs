//! `GET /api/v1/sids/{sid}`: what a SID names among what baton has seen, so a search box can
//! open the right page.

use super::api::authorize_history;
use super::error::{EdgeError, ErrorBody};
use super::AppState;
use crate::domain::sid::Sid;
use crate::store;
use crate::store::lookup::Found;
use actix_web::{web, HttpRequest, HttpResponse};

/// The task or conversation a task, reservation, worker, queue, conversation, interaction or
/// interaction channel SID leads to.
#[utoipa::path(get, path = "/api/v1/sids/{sid}", tag = "history",
    params(("sid" = String, Path, description = "`WT…`, `WR…`, `WK…`, `WQ…`, `CH…`, `KD…` or `UO…`",
        pattern = "^(WT|WR|WK|WQ|CH|KD|UO)[0-9a-fA-F]{32}$")),
    security(("ops_token" = []), ("flex_token" = []), ("flex_token_header" = [])),
    responses(
        (status = 200, description = "What it names", body = Found),
        (status = 400, description = "`invalid_request`: not a SID of these kinds", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a Flex user who is not admin/supervisor", body = ErrorBody),
        (status = 404, description = "`not_found`: baton has seen nothing of it", body = ErrorBody),
        (status = 502, description = "`twilio_unavailable`: the Flex token could not be validated", body = ErrorBody),
        (status = 503, description = "`store_unavailable`: the database could not be read", body = ErrorBody),
    ))]
pub async fn find_sid(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EdgeError> {
    authorize_history(&req, &state, "a SID search").await?;
    let sid = Sid::parse(path.trim())
        .map_err(|e| EdgeError::Invalid(format!("{:?} is not a SID: {e}", &*path)))?;
    if !matches!(
        &sid.to_string()[..2],
        "WT" | "WR" | "WK" | "WQ" | "CH" | "KD" | "UO"
    ) {
        return Err(EdgeError::Invalid(format!(
            "{sid} is not a task, reservation, worker, queue, conversation, interaction or interaction channel SID"
        )));
    }
    match store::lookup::find(&state.pool, &sid)
        .await
        .map_err(EdgeError::not_read)?
    {
        Some(found) => Ok(HttpResponse::Ok().json(found)),
        None => Err(EdgeError::NotFound(format!(
            "baton has seen nothing of {sid}"
        ))),
    }
}
