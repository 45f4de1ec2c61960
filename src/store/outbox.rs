//! The outbox: outbound Twilio calls, enqueued in the transaction that decided them and sent by
//! the dispatcher. Claimed with a lease (`FOR UPDATE SKIP LOCKED`), so several processes never
//! send the same call at the same time; a crashed sender's calls come back when the lease ends.

use super::StoreError;
use crate::domain::chain::PlannedCall;
use crate::domain::outbound::{OperationKind, Procedure, TwilioRequest};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// A call to enqueue.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub idempotency_key: String,
    pub kind: OperationKind,
    pub request: TwilioRequest,
    pub procedure: Option<Procedure>,
    pub caused_by_event: Option<i64>,
    /// The conversation the call is about (a pending invite keeps it open).
    pub conversation_sid: Option<String>,
}

impl NewCall {
    /// A planned call, as decided while processing `caused_by_event`.
    pub fn planned(planned: PlannedCall, caused_by_event: Option<i64>) -> NewCall {
        NewCall {
            idempotency_key: planned.idempotency_key,
            kind: planned.kind,
            request: planned.request,
            procedure: planned.procedure,
            caused_by_event,
            conversation_sid: planned.conversation_sid,
        }
    }
}

/// Enqueues a call inside the caller's transaction. Returns false when a call with the same
/// idempotency key already exists (the decision was already made).
pub async fn enqueue(tx: &mut sqlx::PgConnection, call: &NewCall) -> Result<bool, StoreError> {
    let request =
        serde_json::to_value(&call.request).map_err(|e| StoreError::Decode(e.to_string()))?;
    let procedure = call
        .procedure
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| StoreError::Decode(e.to_string()))?;
    let inserted = sqlx::query(
        "INSERT INTO outbox (idempotency_key, kind, request, procedure, caused_by_event,
                             conversation_sid)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&call.idempotency_key)
    .bind(call.kind.as_str())
    .bind(request)
    .bind(procedure)
    .bind(call.caused_by_event)
    .bind(&call.conversation_sid)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A claimed call.
#[derive(Debug, Clone)]
pub struct ClaimedCall {
    pub id: i64,
    pub kind: OperationKind,
    pub request: TwilioRequest,
    pub procedure: Option<Procedure>,
    /// This attempt's number over the call's whole life.
    pub attempt: i32,
    /// This attempt's number since the call was last re-driven (what the retry budget counts).
    pub budget_attempt: i32,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    kind: String,
    request: serde_json::Value,
    procedure: Option<serde_json::Value>,
    attempts: i32,
    attempt_base: i32,
}

/// Claims up to `limit` calls that are due and not leased.
pub async fn claim_due(
    pool: &PgPool,
    owner: Uuid,
    lease: Duration,
    limit: i64,
) -> Result<Vec<ClaimedCall>, StoreError> {
    let rows = sqlx::query_as::<_, ClaimedRow>(
        "UPDATE outbox o
         SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2), attempts = o.attempts + 1
         WHERE o.id IN (
             SELECT id FROM outbox
             WHERE state = 'pending' AND next_attempt_at <= now()
               AND (lease_expires_at IS NULL OR lease_expires_at < now())
             ORDER BY next_attempt_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
         RETURNING o.id, o.kind, o.request, o.procedure, o.attempts, o.attempt_base",
    )
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let request = serde_json::from_value(r.request)
                .map_err(|e| StoreError::Decode(format!("outbox {}: {e}", r.id)))?;
            let procedure = r
                .procedure
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| StoreError::Decode(format!("outbox {}: {e}", r.id)))?;
            Ok(ClaimedCall {
                id: r.id,
                kind: OperationKind::parse(&r.kind),
                request,
                procedure,
                attempt: r.attempts,
                budget_attempt: r.attempts - r.attempt_base,
            })
        })
        .collect()
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub twilio_code: Option<u32>,
    pub error: Option<String>,
    pub response: Option<serde_json::Value>,
}

/// What the attempt led to.
#[derive(Debug, Clone)]
pub enum Next {
    Done,
    RetryAfter(Duration),
    Dead(String),
}

/// Records the attempt and moves the call on, if `owner` still holds its lease.
pub async fn finish_attempt(
    pool: &PgPool,
    owner: Uuid,
    call: &ClaimedCall,
    record: &AttemptRecord,
    next: &Next,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let (state, retry_secs, dead_reason, decision) = match next {
        Next::Done => ("done", 0.0, None, "done".to_owned()),
        Next::RetryAfter(d) => (
            "pending",
            d.as_secs_f64(),
            None,
            format!("retry in {:.3}s", d.as_secs_f64()),
        ),
        Next::Dead(reason) => ("dead", 0.0, Some(reason.clone()), format!("dead: {reason}")),
    };
    let updated = sqlx::query(
        "UPDATE outbox
         SET state = $3,
             next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $4) ELSE next_attempt_at END,
             lease_owner = NULL, lease_expires_at = NULL,
             last_status = $5, last_error = COALESCE($6, $7),
             response = COALESCE($8, response),
             done_at = CASE WHEN $3 = 'done' THEN now() END,
             dead_at = CASE WHEN $3 = 'dead' THEN now() END
         WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
    )
    .bind(call.id)
    .bind(owner)
    .bind(state)
    .bind(retry_secs)
    .bind(record.http_status.map(i32::from))
    .bind(&dead_reason)
    .bind(&record.error)
    .bind(&record.response)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        // Our lease ended and someone else has the call now; their attempt is the one that counts.
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO outbox_attempts (outbox_id, attempt, started_at, http_status, twilio_code, error, decision)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (outbox_id, attempt) DO NOTHING",
    )
    .bind(call.id)
    .bind(call.attempt)
    .bind(record.started_at)
    .bind(record.http_status.map(i32::from))
    .bind(record.twilio_code.map(|c| c as i32))
    .bind(&record.error)
    .bind(decision)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Puts a dead call back in the queue (ops re-drive). Returns false if it is not dead.
pub async fn retry_dead(pool: &PgPool, id: i64) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE outbox SET state = 'pending', next_attempt_at = now(), dead_at = NULL, attempt_base = attempts
         WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Gives back the leases `owner` holds (graceful shutdown).
pub async fn release_leases(pool: &PgPool, owner: Uuid) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL
         WHERE lease_owner = $1 AND state = 'pending'",
    )
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Counts by state, for metrics.
pub async fn counts(pool: &PgPool) -> Result<(i64, i64), StoreError> {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'),
                (SELECT count(*) FROM outbox WHERE state = 'dead')",
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}
