//! The outbox: outbound Twilio calls, enqueued in the transaction that decided them and sent by
//! the dispatcher. Claimed with a lease (`FOR UPDATE SKIP LOCKED`), so several processes never
//! send the same call at the same time; a crashed sender's calls come back when the lease ends.

use super::StoreError;
use crate::domain::guard::Guard;
use crate::domain::outbound::{OperationKind, Procedure, Product, TwilioRequest};
use crate::domain::planned::PlannedCall;
use crate::domain::sid::SidKind;
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
    pub guard: Option<Guard>,
    /// The key of the call that must have succeeded before this one is sent.
    pub after_key: Option<String>,
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
            guard: planned.guard,
            after_key: planned.after,
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
    let guard = call
        .guard
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| StoreError::Decode(e.to_string()))?;
    let inserted = sqlx::query(
        "INSERT INTO outbox (idempotency_key, kind, request, procedure, caused_by_event,
                             conversation_sid, guard, after_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&call.idempotency_key)
    .bind(call.kind.as_str())
    .bind(request)
    .bind(procedure)
    .bind(call.caused_by_event)
    .bind(&call.conversation_sid)
    .bind(guard)
    .bind(&call.after_key)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The id of the call with this idempotency key.
pub async fn id_of(conn: &mut sqlx::PgConnection, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM outbox WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?,
    )
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
    pub guard: Option<Guard>,
    /// How the call it waits for ended, when that call did not succeed.
    pub prerequisite: Option<Prerequisite>,
}

/// A call that had to succeed first, and did not. (One withdrawn at send time counts as
/// done: what it would have done was not needed, and the steps after it still are.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prerequisite {
    /// It is dead: this one is not sent either (and is dead too, for ops to see).
    Dead { key: String },
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    kind: String,
    request: serde_json::Value,
    procedure: Option<serde_json::Value>,
    attempts: i32,
    attempt_base: i32,
    guard: Option<serde_json::Value>,
    after_key: Option<String>,
    after_state: Option<String>,
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
               -- An ordered step waits until the call before it has ended.
               AND (after_key IS NULL OR EXISTS (
                   SELECT 1 FROM outbox p WHERE p.idempotency_key = outbox.after_key
                     AND p.state IN ('done', 'dead')))
             ORDER BY next_attempt_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
         RETURNING o.id, o.kind, o.request, o.procedure, o.attempts, o.attempt_base, o.guard,
                   o.after_key,
                   (SELECT p.state FROM outbox p WHERE p.idempotency_key = o.after_key) AS after_state",
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
            let guard = r
                .guard
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| StoreError::Decode(format!("outbox {}: {e}", r.id)))?;
            let prerequisite = match (r.after_key, r.after_state.as_deref()) {
                (Some(key), Some("dead")) => Some(Prerequisite::Dead { key }),
                _ => None,
            };
            Ok(ClaimedCall {
                guard,
                prerequisite,
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
    /// Why the call was not sent (Twilio did not confirm what justified it).
    pub withdrawn: Option<String>,
}

/// What the attempt led to.
#[derive(Debug, Clone)]
pub enum Next {
    Done,
    RetryAfter(Duration),
    Dead(String),
}

/// Records the attempt and moves the call on, if `owner` still holds its lease. One statement
/// (its own transaction): the state change and the attempt row commit together, in one round
/// trip instead of four (`BEGIN`, update, insert, `COMMIT`) per Twilio call.
pub async fn finish_attempt(
    pool: &PgPool,
    owner: Uuid,
    call: &ClaimedCall,
    record: &AttemptRecord,
    next: &Next,
) -> Result<bool, StoreError> {
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
    // No row updated: our lease ended and someone else has the call now; their attempt is the
    // one that counts, and nothing is recorded.
    let updated: i64 = sqlx::query_scalar(
        "WITH moved AS (
             UPDATE outbox
             SET state = $3,
                 next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + make_interval(secs => $4) ELSE next_attempt_at END,
                 lease_owner = NULL, lease_expires_at = NULL,
                 last_status = $5, last_error = COALESCE($6, $7),
                 response = COALESCE($8, response),
                 withdrawn = $13,
                 done_at = CASE WHEN $3 = 'done' THEN now() END,
                 dead_at = CASE WHEN $3 = 'dead' THEN now() END,
                 updated_at = now()
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'
             RETURNING id),
         recorded AS (
             INSERT INTO outbox_attempts (outbox_id, attempt, started_at, http_status, twilio_code, error, decision)
             SELECT id, $9, $10, $5, $11, $7, $12 FROM moved
             ON CONFLICT (outbox_id, attempt) DO NOTHING)
         SELECT count(*) FROM moved",
    )
    .bind(call.id)
    .bind(owner)
    .bind(state)
    .bind(retry_secs)
    .bind(record.http_status.map(i32::from))
    .bind(&dead_reason)
    .bind(&record.error)
    .bind(&record.response)
    .bind(call.attempt)
    .bind(record.started_at)
    .bind(record.twilio_code.map(|c| c as i32))
    .bind(decision)
    .bind(&record.withdrawn)
    .fetch_one(pool)
    .await?;
    Ok(updated == 1)
}

/// Puts a dead call back in the queue (ops re-drive), with the ordered steps that died because
/// it did. Returns false if it is not dead.
pub async fn retry_dead(pool: &PgPool, id: i64) -> Result<bool, StoreError> {
    let updated: i64 = sqlx::query_scalar(
        "WITH RECURSIVE redriven AS (
             SELECT id, idempotency_key FROM outbox WHERE id = $1 AND state = 'dead'
             UNION
             SELECT o.id, o.idempotency_key FROM outbox o JOIN redriven r ON o.after_key = r.idempotency_key
             WHERE o.state = 'dead' AND o.last_error LIKE 'prerequisite %'),
         moved AS (
             UPDATE outbox SET state = 'pending', next_attempt_at = now(), dead_at = NULL, attempt_base = attempts,
                 redrives = redrives + 1, redriven_at = now(), updated_at = now()
             WHERE id IN (SELECT id FROM redriven) AND state = 'dead'
             RETURNING id)
         SELECT count(*) FROM moved WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok(updated == 1)
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

/// Where a call is, as ops see it: `pending` (waiting for its next attempt), `in_flight` (a
/// dispatcher holds its lease and is sending it), `done`, `dead`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Pending,
    InFlight,
    Done,
    Dead,
}

impl CallState {
    pub const ALL: [CallState; 4] = [
        CallState::Pending,
        CallState::InFlight,
        CallState::Done,
        CallState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::InFlight => "in_flight",
            CallState::Done => "done",
            CallState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<CallState> {
        CallState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// An outbound call as ops see it: what it does, what it is about, and how its attempts went.
/// Never the auth header (it is not stored) nor the form parameters (see [`CallDetail`]).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallView {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: String,
    pub state: CallState,
    pub product: Product,
    pub method: String,
    /// Twilio's path, e.g. `/v1/Workspaces/WS…/Tasks/WT…`.
    pub path: String,
    /// The task the call is about (named by its path or its procedure).
    pub task_sid: Option<String>,
    /// The conversation the call is about.
    pub conversation_sid: Option<String>,
    /// The inbox event whose processing decided it, if any.
    pub caused_by_event: Option<i64>,
    /// Attempts over the call's whole life.
    pub attempts: i32,
    /// How often ops re-drove it after it died.
    pub redrives: i32,
    pub last_error: Option<LastError>,
    /// Why it was not sent: when it was about to be, Twilio did not confirm the facts that
    /// justified it (someone still served the customer, the task had moved on…).
    pub withdrawn: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When an attempt or a re-drive last changed it.
    pub updated_at: DateTime<Utc>,
    /// When it is due next (pending calls).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub dead_at: Option<DateTime<Utc>>,
    pub redriven_at: Option<DateTime<Utc>>,
}

/// How the latest failed attempt ended: Twilio's HTTP status, error code and message, or why no
/// answer came (timeout, connection refused) — or, for a dead call, why it was given up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LastError {
    pub http_status: Option<i32>,
    pub twilio_code: Option<i32>,
    pub message: Option<String>,
}

/// One call with its request's form parameters and Twilio's last answer.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: CallView,
    /// The form parameters sent (task attributes, routing), `[name, value]` pairs; no
    /// credentials are ever stored.
    #[schema(value_type = Vec<Vec<String>>)]
    pub form: Vec<(String, String)>,
    /// Twilio's JSON answer to the attempt that finished it.
    pub response: Option<serde_json::Value>,
}

/// One attempt, as recorded in `outbox_attempts`.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub twilio_code: Option<i32>,
    pub error: Option<String>,
    /// `done`, `retry in 0.250s`, `dead: …`.
    pub decision: String,
}

#[derive(sqlx::FromRow)]
struct CallRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    state: String,
    request: serde_json::Value,
    procedure: Option<serde_json::Value>,
    conversation_sid: Option<String>,
    caused_by_event: Option<i64>,
    attempts: i32,
    redrives: i32,
    last_status: Option<i32>,
    last_code: Option<i32>,
    last_error: Option<String>,
    withdrawn: Option<String>,
    response: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    done_at: Option<DateTime<Utc>>,
    dead_at: Option<DateTime<Utc>>,
    redriven_at: Option<DateTime<Utc>>,
}

/// The columns of a [`CallRow`]; `in_flight` is a pending call whose lease is current.
const CALL_COLUMNS: &str = "o.id, o.idempotency_key, o.kind,
    CASE WHEN o.state = 'pending' AND o.lease_expires_at >= now() THEN 'in_flight' ELSE o.state END
        AS state,
    o.request, o.procedure, o.conversation_sid, o.caused_by_event, o.attempts, o.redrives,
    o.last_status,
    (SELECT a.twilio_code FROM outbox_attempts a WHERE a.outbox_id = o.id
     ORDER BY a.attempt DESC LIMIT 1) AS last_code,
    o.last_error, o.withdrawn, o.response, o.created_at,
    COALESCE(o.updated_at, o.created_at) AS updated_at,
    o.next_attempt_at, o.done_at, o.dead_at, o.redriven_at";

impl CallRow {
    fn into_detail(self) -> Result<CallDetail, StoreError> {
        let decode = |e: serde_json::Error| StoreError::Decode(format!("outbox {}: {e}", self.id));
        let request: TwilioRequest =
            serde_json::from_value(self.request.clone()).map_err(decode)?;
        let procedure: Option<Procedure> = self
            .procedure
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(decode)?;
        let state = CallState::parse(&self.state).ok_or_else(|| {
            StoreError::Decode(format!("outbox {}: state {}", self.id, self.state))
        })?;
        let task_sid = request
            .path_sid(SidKind::Task)
            .or_else(|| procedure.as_ref().and_then(Procedure::task_sid))
            .map(str::to_owned);
        let conversation_sid = self
            .conversation_sid
            .or_else(|| request.path_sid(SidKind::Conversation).map(str::to_owned));
        // A call that succeeded has no error; a dead one keeps why it was given up.
        let failed = state != CallState::Done
            && (self.last_error.is_some() || self.last_status.is_some_and(|s| s >= 300));
        let last_error = failed.then_some(LastError {
            http_status: self.last_status,
            twilio_code: self.last_code,
            message: self.last_error,
        });
        Ok(CallDetail {
            call: CallView {
                id: self.id,
                idempotency_key: self.idempotency_key,
                kind: self.kind,
                state,
                product: request.product,
                method: request.method,
                path: request.path,
                task_sid,
                conversation_sid,
                caused_by_event: self.caused_by_event,
                attempts: self.attempts,
                redrives: self.redrives,
                last_error,
                withdrawn: self.withdrawn,
                created_at: self.created_at,
                updated_at: self.updated_at,
                next_attempt_at: matches!(state, CallState::Pending | CallState::InFlight)
                    .then_some(self.next_attempt_at),
                done_at: self.done_at,
                dead_at: self.dead_at,
                redriven_at: self.redriven_at,
            },
            form: request.form,
            response: self.response,
        })
    }
}

/// Calls, newest first, optionally in one state; `before` is a keyset cursor (the last id of
/// the previous page).
pub async fn list(
    pool: &PgPool,
    state: Option<CallState>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CallView>, StoreError> {
    let rows = sqlx::query_as::<_, CallRow>(&format!(
        "SELECT {CALL_COLUMNS} FROM outbox o
         WHERE ($1::text IS NULL
                OR ($1 = 'in_flight' AND o.state = 'pending' AND o.lease_expires_at >= now())
                OR ($1 = 'pending' AND o.state = 'pending'
                    AND (o.lease_expires_at IS NULL OR o.lease_expires_at < now()))
                OR ($1 IN ('done', 'dead') AND o.state = $1))
           AND ($2::bigint IS NULL OR o.id < $2)
         ORDER BY o.id DESC LIMIT $3"
    ))
    .bind(state.map(CallState::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| r.into_detail().map(|d| d.call))
        .collect()
}

/// The task a call is about, as the `outbox_task` index computes it: the task its path names,
/// else the first task its idempotency key names.
const TASK_OF_CALL: &str = "COALESCE(
    substring(o.request->>'path' from '/Tasks/(WT[0-9a-fA-F]{32})'),
    substring(o.idempotency_key from 'WT[0-9a-fA-F]{32}'))";

/// The calls about these tasks, oldest first (at most 500).
pub async fn of_tasks(pool: &PgPool, task_sids: &[String]) -> Result<Vec<CallView>, StoreError> {
    let rows = sqlx::query_as::<_, CallRow>(&format!(
        "SELECT {CALL_COLUMNS} FROM outbox o WHERE {TASK_OF_CALL} = ANY($1)
         ORDER BY o.id LIMIT 500"
    ))
    .bind(task_sids)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| r.into_detail().map(|d| d.call))
        .collect()
}

/// Calls by state, for the overview: `(pending, in_flight, dead)`.
pub async fn health(pool: &PgPool) -> Result<(i64, i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE lease_expires_at IS NULL OR lease_expires_at < now()),
                count(*) FILTER (WHERE lease_expires_at >= now()),
                (SELECT count(*) FROM outbox WHERE state = 'dead')
         FROM outbox WHERE state = 'pending'",
    )
    .fetch_one(pool)
    .await?)
}

/// One call.
pub async fn get(pool: &PgPool, id: i64) -> Result<Option<CallDetail>, StoreError> {
    sqlx::query_as::<_, CallRow>(&format!(
        "SELECT {CALL_COLUMNS} FROM outbox o WHERE o.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(CallRow::into_detail)
    .transpose()
}

/// A call's attempts, first to last.
pub async fn attempts(pool: &PgPool, id: i64) -> Result<Vec<AttemptView>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT attempt, started_at, finished_at, http_status, twilio_code, error, decision
         FROM outbox_attempts WHERE outbox_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}
