//! Liveness, readiness and Prometheus metrics.

use super::AppState;
use actix_web::{web, HttpResponse};

/// `{"status": …}`, and why not ready.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready`, `not_ready`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        reason: None,
    })
}

/// The database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = Health),
        (status = 503, description = "`not_ready`, with the reason", body = Health),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match crate::store::is_ready(&state.pool).await {
        Ok(true) => HttpResponse::Ok().json(Health {
            status: "ready",
            reason: None,
        }),
        Ok(false) => HttpResponse::ServiceUnavailable().json(Health {
            status: "not_ready",
            reason: Some("database migrations are not applied"),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "not_ready",
                reason: Some("database unreachable"),
            })
        }
    }
}

/// Prometheus text. Inbox depth and the age of its oldest event are read at scrape time.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4",
        content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match crate::store::inbox::backlog(&state.pool).await {
        Ok(b) => {
            metrics::gauge!("baton_inbox_depth").set(b.pending as f64);
            metrics::gauge!("baton_inbox_dead").set(b.dead as f64);
            metrics::gauge!("baton_inbox_oldest_pending_seconds")
                .set(b.oldest_pending_seconds.unwrap_or(0.0));
            metrics::gauge!("baton_database_up").set(1.0);
        }
        Err(_) => metrics::gauge!("baton_database_up").set(0.0),
    }
    if let Ok((pending, dead)) = crate::store::outbox::counts(&state.pool).await {
        metrics::gauge!("baton_outbox_pending").set(pending as f64);
        metrics::gauge!("baton_outbox_dead").set(dead as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
