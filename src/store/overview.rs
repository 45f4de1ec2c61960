//! The operations overview (`GET /api/v1/overview`): what happened in a window and what needs
//! attention now. Each figure is one index-backed query, so the page stays fast on a year of
//! history.

use super::history::{transfer_stats, TransferStatsRow};
use super::parks::ParkView;
use super::StoreError;
use crate::domain::history::{GroupBy, StatsQuery, TransferFilter};
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

/// A transfer in flight longer than this is listed as stuck.
pub const STUCK_AFTER: TimeDelta = TimeDelta::minutes(10);
/// Most entries of each kind in the attention list.
const ATTENTION_LIMIT: i64 = 10;

/// Hops by outcome.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OutcomeCounts {
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub canceled: i64,
    pub returned: i64,
    pub in_flight: i64,
}

/// Orphan checks' closes decided in the window.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CloseCounts {
    /// Closes decided.
    pub decided: i64,
    /// Closed (or found already closed) by baton.
    pub closed: i64,
    /// Kept open: the check at send time found someone or something still serving the customer.
    pub kept: i64,
}

/// Where the outbound calls and the inbound events stand now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct QueueHealth {
    /// Outbound calls waiting for their next attempt.
    pub outbox_pending: i64,
    /// Outbound calls a dispatcher is sending.
    pub outbox_in_flight: i64,
    /// Outbound calls given up, waiting for ops.
    pub outbox_dead: i64,
    /// Stored callbacks not yet processed.
    pub inbox_pending: i64,
    /// Age of the oldest of them: how far processing lags.
    pub inbox_lag_seconds: Option<f64>,
    /// Callbacks processing gave up on.
    pub inbox_dead: i64,
}

/// What needs someone's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// An outbound call given up: re-drive it or see why.
    DeadCall,
    /// A transfer in flight for longer than [`STUCK_AFTER`].
    StuckTransfer,
    /// A park past its time to live.
    OverduePark,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Attention {
    pub kind: AttentionKind,
    /// Since when it has needed attention.
    pub since: Option<DateTime<Utc>>,
    /// What it is, in a line.
    pub summary: String,
    /// The outbox id (dead calls).
    pub outbox_id: Option<i64>,
    /// The task (stuck transfers, overdue parks).
    pub task_sid: Option<String>,
    /// The park (overdue parks).
    pub park_id: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Hops initiated in the window, by outcome.
    pub transfers: OutcomeCounts,
    /// Per target queue: counts and the median and p90 time to accept, over the window.
    pub by_queue: Vec<TransferStatsRow>,
    /// Hops in flight now, whenever they started.
    pub in_flight_now: i64,
    /// Conversations and calls parked now, longest held first (at most 50).
    pub parked_now: Vec<ParkView>,
    /// How many are parked now (the list may be cut).
    pub parked_count: i64,
    pub orphan_closes: CloseCounts,
    pub health: QueueHealth,
    /// Dead calls, stuck transfers and overdue parks, newest first per kind.
    pub attention: Vec<Attention>,
}

/// The overview of `[since, until)`, as of now.
pub async fn overview(
    pool: &PgPool,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Overview, StoreError> {
    let (since_ms, until_ms) = (since.timestamp_millis(), until.timestamp_millis());
    let transfers: OutcomeCounts = sqlx::query_as(
        "SELECT count(*) AS total,
                count(*) FILTER (WHERE outcome = 'completed') AS completed,
                count(*) FILTER (WHERE outcome = 'failed') AS failed,
                count(*) FILTER (WHERE outcome = 'canceled') AS canceled,
                count(*) FILTER (WHERE outcome = 'returned') AS returned,
                count(*) FILTER (WHERE outcome IS NULL) AS in_flight
         FROM hops WHERE at_ms >= $1 AND at_ms < $2",
    )
    .bind(since_ms)
    .bind(until_ms)
    .fetch_one(pool)
    .await?;
    let by_queue = transfer_stats(
        pool,
        &StatsQuery {
            group_by: GroupBy::Queue,
            filter: TransferFilter {
                since: Some(since),
                until: Some(until),
                ..TransferFilter::default()
            },
        },
    )
    .await?
    .groups;
    let in_flight_now: i64 = sqlx::query_scalar("SELECT count(*) FROM hops WHERE outcome IS NULL")
        .fetch_one(pool)
        .await?;
    let parked_now = super::parks::longest_parked(pool, 50).await?;
    let parked_count: i64 = sqlx::query_scalar("SELECT count(*) FROM parks WHERE state = 'parked'")
        .fetch_one(pool)
        .await?;
    let orphan_closes: CloseCounts = sqlx::query_as(
        "SELECT count(*) AS decided,
                count(*) FILTER (WHERE result IN ('closed', 'already_closed')) AS closed,
                count(*) FILTER (WHERE result LIKE 'kept%') AS kept
         FROM conversation_closes WHERE decided_at >= $1 AND decided_at < $2",
    )
    .bind(since)
    .bind(until)
    .fetch_one(pool)
    .await?;
    let (outbox_pending, outbox_in_flight, outbox_dead) = super::outbox::health(pool).await?;
    let backlog = super::inbox::backlog(pool).await?;
    let health = QueueHealth {
        outbox_pending,
        outbox_in_flight,
        outbox_dead,
        inbox_pending: backlog.pending,
        inbox_lag_seconds: backlog.oldest_pending_seconds,
        inbox_dead: backlog.dead,
    };
    let mut attention = dead_calls(pool).await?;
    attention.extend(stuck_transfers(pool, Utc::now() - STUCK_AFTER).await?);
    attention.extend(overdue_parks(pool).await?);
    Ok(Overview {
        since,
        until,
        transfers,
        by_queue,
        in_flight_now,
        parked_now,
        parked_count,
        orphan_closes,
        health,
        attention,
    })
}

async fn dead_calls(pool: &PgPool) -> Result<Vec<Attention>, StoreError> {
    type Row = (i64, String, Option<DateTime<Utc>>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, kind, dead_at, last_error FROM outbox WHERE state = 'dead'
         ORDER BY dead_at DESC LIMIT $1",
    )
    .bind(ATTENTION_LIMIT)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, dead_at, error)| Attention {
            kind: AttentionKind::DeadCall,
            since: dead_at,
            summary: match error {
                Some(error) => format!("{kind} call #{id} is dead: {error}"),
                None => format!("{kind} call #{id} is dead"),
            },
            outbox_id: Some(id),
            task_sid: None,
            park_id: None,
        })
        .collect())
}

async fn stuck_transfers(
    pool: &PgPool,
    before: DateTime<Utc>,
) -> Result<Vec<Attention>, StoreError> {
    type Row = (String, String, Option<String>, Option<String>, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT from_task_sid, to_task_sid, target_type, COALESCE(target_name, target_sid),
                at_ms
         FROM hops WHERE outcome IS NULL AND at_ms > 0 AND at_ms < $1
         ORDER BY at_ms DESC, chain_id DESC, seq DESC LIMIT $2",
    )
    .bind(before.timestamp_millis())
    .bind(ATTENTION_LIMIT)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(from, to, target_type, target, at_ms)| Attention {
            kind: AttentionKind::StuckTransfer,
            since: DateTime::from_timestamp_millis(at_ms),
            summary: format!(
                "transfer of {from} to {} {} still in flight",
                target_type.as_deref().unwrap_or("target"),
                target.as_deref().unwrap_or(&to)
            ),
            outbox_id: None,
            task_sid: Some(to),
            park_id: None,
        })
        .collect())
}

async fn overdue_parks(pool: &PgPool) -> Result<Vec<Attention>, StoreError> {
    let rows: Vec<(String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT park_id, task_sid, expires_at FROM parks
         WHERE state = 'parked' AND expires_at < now()
         ORDER BY expires_at DESC LIMIT $1",
    )
    .bind(ATTENTION_LIMIT)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(park_id, task_sid, expires_at)| Attention {
            kind: AttentionKind::OverduePark,
            since: expires_at,
            summary: format!("park {park_id} of {task_sid} is past its time to live"),
            outbox_id: None,
            task_sid: Some(task_sid),
            park_id: Some(park_id),
        })
        .collect())
}
