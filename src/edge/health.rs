//! Liveness, readiness and Prometheus metrics.

use super::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match crate::store::is_ready(&state.pool).await {
        Ok(true) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(false) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "not_ready", "reason": "database migrations are not applied"})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "not_ready", "reason": "database unreachable"}))
        }
    }
}

/// Prometheus text. Inbox depth and the age of its oldest event are read at scrape time.
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
