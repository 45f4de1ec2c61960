//! Transfers asked of baton (`POST /api/v1/transfers`): the request, and its state as the
//! outbox call and the chain's hop tell it.

use super::StoreError;
use crate::domain::transfer::{Mode, RequestedTransferState, TargetType};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// A transfer as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TransferView {
    pub transfer_id: String,
    pub task_sid: String,
    pub target_type: String,
    pub target_sid: String,
    pub mode: String,
    pub notes: Option<String>,
    pub initiated_by: Option<String>,
    /// `invite` (Flex Conversations task) or `task` (legacy task).
    pub method: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `requested` (call not yet made), `offered` (the new task exists), then the hop's
    /// outcome (`completed`, `failed`, `canceled`, `returned`), or `dead` (Twilio refused the
    /// call; see the outbox).
    #[sqlx(try_from = "String")]
    pub state: RequestedTransferState,
    /// The task the transfer created, once baton has seen it.
    pub new_task_sid: Option<String>,
    pub chain_id: Option<String>,
}

/// A transfer to record.
pub struct NewTransfer<'a> {
    pub transfer_id: &'a str,
    pub idempotency_key: &'a str,
    pub task_sid: &'a str,
    pub target_type: TargetType,
    pub target_sid: &'a str,
    pub mode: Mode,
    pub notes: Option<&'a str>,
    pub initiated_by: &'a str,
    /// `invite` or `task`.
    pub method: &'a str,
}

/// Records a transfer in the caller's transaction. False when its idempotency key is taken.
pub async fn insert(conn: &mut PgConnection, t: &NewTransfer<'_>) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO transfers (transfer_id, idempotency_key, task_sid, target_type, target_sid,
                                mode, notes, initiated_by, method)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(t.transfer_id)
    .bind(t.idempotency_key)
    .bind(t.task_sid)
    .bind(t.target_type.as_str())
    .bind(t.target_sid)
    .bind(t.mode.as_str())
    .bind(t.notes)
    .bind(t.initiated_by)
    .bind(t.method)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub async fn by_idempotency_key(
    pool: &PgPool,
    key: &str,
) -> Result<Option<TransferView>, StoreError> {
    select(pool, "t.idempotency_key = $1", key).await
}

pub async fn find(pool: &PgPool, transfer_id: &str) -> Result<Option<TransferView>, StoreError> {
    select(pool, "t.transfer_id = $1", transfer_id).await
}

/// The task's latest transfer.
pub async fn latest_of_task(
    pool: &PgPool,
    task_sid: &str,
) -> Result<Option<TransferView>, StoreError> {
    select(pool, "t.task_sid = $1", task_sid).await
}

async fn select(
    pool: &PgPool,
    filter: &str,
    value: &str,
) -> Result<Option<TransferView>, StoreError> {
    let sql = format!(
        "SELECT t.transfer_id, t.task_sid, t.target_type, t.target_sid, t.mode, t.notes,
                t.initiated_by, t.method, t.created_at,
                CASE WHEN o.state = 'dead' THEN 'dead'
                     WHEN h.outcome IS NOT NULL THEN h.outcome
                     WHEN h.to_task_sid IS NOT NULL THEN 'offered'
                     ELSE 'requested' END AS state,
                h.to_task_sid AS new_task_sid, h.chain_id
         FROM transfers t
         LEFT JOIN outbox o ON o.idempotency_key = 'transfer:' || t.transfer_id
         LEFT JOIN LATERAL (SELECT * FROM hops WHERE hops.transfer_id = t.transfer_id
                            ORDER BY seq LIMIT 1) h ON true
         WHERE {filter}
         ORDER BY t.created_at DESC LIMIT 1"
    );
    Ok(sqlx::query_as::<_, TransferView>(&sql)
        .bind(value)
        .fetch_optional(pool)
        .await?)
}
