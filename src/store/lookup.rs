//! What a SID names, among what baton has seen: the page a search for it opens.

use super::StoreError;
use crate::domain::sid::{Sid, SidKind};
use sqlx::PgPool;

/// Where a SID leads: the task or conversation that holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Found {
    pub sid: String,
    /// `task`, `reservation`, `worker`, `queue`, `conversation`, `interaction` or
    /// `interaction_channel`.
    pub kind: String,
    /// The task to open (a task, or a reservation's task).
    pub task_sid: Option<String>,
    /// The conversation to open (a conversation, or an interaction's or channel's).
    pub conversation_sid: Option<String>,
}

/// What `sid` names, or `None` when baton has seen nothing of it.
pub async fn find(pool: &PgPool, sid: &Sid) -> Result<Option<Found>, StoreError> {
    let raw = sid.to_string();
    let found = |kind: &str, task_sid: Option<String>, conversation_sid: Option<String>| Found {
        sid: raw.clone(),
        kind: kind.to_owned(),
        task_sid,
        conversation_sid,
    };
    let Some(kind) = sid.kind() else {
        return Ok(None);
    };
    Ok(match kind {
        SidKind::Task => exists(pool, "SELECT 1 FROM tasks WHERE task_sid = $1", &raw)
            .await?
            .then(|| found("task", Some(raw.clone()), None)),
        SidKind::Reservation => {
            let task: Option<Option<String>> =
                sqlx::query_scalar("SELECT task_sid FROM reservations WHERE reservation_sid = $1")
                    .bind(&raw)
                    .fetch_optional(pool)
                    .await?;
            task.map(|task| found("reservation", task, None))
        }
        SidKind::Worker => exists(pool, "SELECT 1 FROM workers WHERE worker_sid = $1", &raw)
            .await?
            .then(|| found("worker", None, None)),
        SidKind::TaskQueue => exists(
            pool,
            "SELECT 1 FROM hops WHERE to_queue_sid = $1 UNION ALL
             SELECT 1 FROM hops WHERE from_queue_sid = $1",
            &raw,
        )
        .await?
        .then(|| found("queue", None, None)),
        SidKind::Conversation => exists(
            pool,
            "SELECT 1 FROM conversations WHERE conversation_sid = $1",
            &raw,
        )
        .await?
        .then(|| found("conversation", None, Some(raw.clone()))),
        SidKind::Interaction | SidKind::InteractionChannel => {
            let (kind, column) = if kind == SidKind::Interaction {
                ("interaction", "interaction_sid")
            } else {
                ("interaction_channel", "channel_sid")
            };
            let conversation: Option<String> = sqlx::query_scalar(&format!(
                "SELECT conversation_sid FROM conversations WHERE {column} = $1
                 ORDER BY first_seen_at DESC LIMIT 1"
            ))
            .bind(&raw)
            .fetch_optional(pool)
            .await?;
            conversation.map(|c| found(kind, None, Some(c)))
        }
        _ => None,
    })
}

async fn exists(pool: &PgPool, sql: &str, sid: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar::<_, i32>(&format!("SELECT 1 WHERE EXISTS ({sql})"))
            .bind(sid)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}
