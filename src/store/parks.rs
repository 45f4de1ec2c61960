//! Parks (see `domain::park`).

use super::StoreError;
use crate::domain::park::{ParkEnd, ParkState, ParkedReservation, ResumeRoute, ResumeState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// A park as ops see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ParkView {
    pub park_id: String,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub state: ParkState,
    pub task_sid: String,
    pub worker_sid: Option<String>,
    pub conversation_sid: Option<String>,
    pub interaction_sid: Option<String>,
    pub channel_sid: Option<String>,
    pub channel_type: Option<String>,
    pub vocabulary: Option<String>,
    pub reason: Option<String>,
    pub parked_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub resumed_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub resume_route: Option<String>,
    pub resumed_task_sid: Option<String>,
    /// Seconds parked (so far, while parked).
    pub hold_seconds: i64,
    /// A voice park's reservations (offers of the parked call).
    pub reservation_sids: Vec<String>,
}

const COLUMNS: &str = "park_id, kind, state, task_sid, worker_sid, conversation_sid,
    interaction_sid, channel_sid, channel_type, vocabulary, reason, parked_at, expires_at,
    resumed_at, ended_by, resume_route, resumed_task_sid,
    floor(extract(epoch FROM COALESCE(resumed_at, now()) - parked_at))::bigint AS hold_seconds,
    ARRAY(SELECT r.reservation_sid FROM reservations r
          WHERE kind = 'voice' AND r.task_sid = parks.task_sid AND r.first_event_ms >= parks.parked_ms
          ORDER BY r.first_event_ms, r.reservation_sid) AS reservation_sids";

/// A new messaging park.
pub struct NewPark<'a> {
    pub park_id: &'a str,
    pub task_sid: &'a str,
    pub worker_sid: Option<&'a str>,
    pub channel_type: Option<&'a str>,
    pub notes: Option<&'a str>,
    pub ttl_seconds: Option<i64>,
    pub resume_state: &'a ResumeState,
    pub idempotency_key: &'a str,
}

/// Inserts a messaging park; false when the idempotency key was used already.
pub async fn insert_messaging(
    conn: &mut PgConnection,
    park: &NewPark<'_>,
) -> Result<bool, StoreError> {
    let state =
        serde_json::to_value(park.resume_state).map_err(|e| StoreError::Decode(e.to_string()))?;
    let inserted = sqlx::query(
        "INSERT INTO parks (park_id, kind, task_sid, worker_sid, conversation_sid,
                            interaction_sid, channel_sid, channel_type, reason, expires_at,
                            resume_state, idempotency_key)
         VALUES ($1, 'messaging', $2, $3, $4, $5, $6, $7, $8,
                 now() + make_interval(secs => $9::float8), $10, $11)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(park.park_id)
    .bind(park.task_sid)
    .bind(park.worker_sid)
    .bind(&park.resume_state.conversation_sid)
    .bind(&park.resume_state.interaction_sid)
    .bind(&park.resume_state.channel_sid)
    .bind(park.channel_type)
    .bind(park.notes)
    .bind(park.ttl_seconds)
    .bind(state)
    .bind(park.idempotency_key)
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records a voice park observed from a task's attributes (one open park per task, identified by
/// its `offer`, the reservation that parked the call, once seen); returns the open park's id, or
/// `None` when the event shows no park (a picked-up call whose marks stayed).
#[allow(clippy::too_many_arguments)]
pub async fn observe_voice(
    conn: &mut PgConnection,
    new_park_id: &str,
    task_sid: &str,
    worker_sid: Option<&str>,
    vocabulary: &str,
    parked_ms: i64,
    ttl_seconds: i64,
    offer: Option<&str>,
) -> Result<Option<String>, StoreError> {
    // The park the offer (the park's own reservation) belongs to, else the task's open park.
    let existing: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT park_id, reservation_sid FROM parks
         WHERE kind = 'voice' AND (reservation_sid = $2 OR task_sid = $1 AND state = 'parked')
         ORDER BY (reservation_sid = $2) DESC NULLS LAST
         LIMIT 1 FOR UPDATE",
    )
    .bind(task_sid)
    .bind(offer)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((id, reservation)) = existing {
        // A later delivery of an earlier event moves the park's start earlier, never later.
        sqlx::query(
            "UPDATE parks SET parked_ms = LEAST(parked_ms, $2),
                 worker_sid = COALESCE(worker_sid, $3),
                 reservation_sid = COALESCE(reservation_sid, $4), updated_at = now()
             WHERE park_id = $1",
        )
        .bind(&id)
        .bind(parked_ms)
        .bind(worker_sid)
        .bind(reservation.is_none().then_some(offer).flatten())
        .execute(&mut *conn)
        .await?;
        return Ok(Some(id));
    }
    // No open park. The park marks are sticky (the transfer-park plugin never clears them), so
    // a marked event opens a park only if it is the task's first, or if it is a new offer still
    // waiting for its pickup (a call parked again).
    let opens = match offer {
        Some(reservation) => {
            let status: Option<Option<String>> =
                sqlx::query_scalar("SELECT status FROM reservations WHERE reservation_sid = $1")
                    .bind(reservation)
                    .fetch_optional(&mut *conn)
                    .await?;
            matches!(status.flatten().as_deref(), None | Some("pending"))
        }
        None => {
            let any: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM parks WHERE task_sid = $1 AND kind = 'voice')",
            )
            .bind(task_sid)
            .fetch_one(&mut *conn)
            .await?;
            !any
        }
    };
    if !opens {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO parks (park_id, kind, task_sid, worker_sid, vocabulary, reason, parked_at,
                            parked_ms, expires_at, reservation_sid)
         VALUES ($1, 'voice', $2, $3, $4, 'worker parked the call',
                 to_timestamp($5::float8 / 1000), $5,
                 to_timestamp($5::float8 / 1000) + make_interval(secs => $6::float8), $7)",
    )
    .bind(new_park_id)
    .bind(task_sid)
    .bind(worker_sid)
    .bind(vocabulary)
    .bind(parked_ms)
    .bind(ttl_seconds)
    .bind(offer)
    .execute(&mut *conn)
    .await?;
    Ok(Some(new_park_id.to_owned()))
}

/// A park locked for ending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockedPark {
    pub park_id: String,
    pub kind: String,
    pub task_sid: String,
    pub worker_sid: Option<String>,
    pub conversation_sid: Option<String>,
    pub parked_at: DateTime<Utc>,
    pub resume_state: Option<serde_json::Value>,
}

impl LockedPark {
    pub fn resume_state(&self) -> Option<ResumeState> {
        self.resume_state
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

const LOCKED: &str =
    "park_id, kind, task_sid, worker_sid, conversation_sid, parked_at, resume_state";

/// The park, locked, if it is still parked.
pub async fn lock_parked(
    conn: &mut PgConnection,
    park_id: &str,
) -> Result<Option<LockedPark>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOCKED} FROM parks WHERE park_id = $1 AND state = 'parked' FOR UPDATE"
    ))
    .bind(park_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The conversation's open park, locked.
pub async fn lock_parked_conversation(
    conn: &mut PgConnection,
    conversation_sid: &str,
) -> Result<Option<LockedPark>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOCKED} FROM parks WHERE conversation_sid = $1 AND state = 'parked'
         ORDER BY parked_at LIMIT 1 FOR UPDATE"
    ))
    .bind(conversation_sid)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The task's open voice park, locked.
pub async fn lock_parked_task(
    conn: &mut PgConnection,
    task_sid: &str,
) -> Result<Option<LockedPark>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOCKED} FROM parks WHERE task_sid = $1 AND state = 'parked'
         ORDER BY parked_at LIMIT 1 FOR UPDATE"
    ))
    .bind(task_sid)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Parks whose TTL ran out, locked (skipping those another process holds).
pub async fn lock_expired(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<LockedPark>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOCKED} FROM parks WHERE state = 'parked' AND expires_at <= now()
         ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// The open voice parks of these tasks, locked, each with its start, its task's status and
/// reservations.
#[allow(clippy::type_complexity)]
pub async fn open_voice_parks(
    conn: &mut PgConnection,
    task_sids: &[String],
) -> Result<Vec<(LockedPark, i64, Option<String>, Vec<ParkedReservation>)>, StoreError> {
    if task_sids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        park: LockedPark,
        parked_ms: i64,
    }
    let parks: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {LOCKED}, parked_ms FROM parks
         WHERE task_sid = ANY($1) AND kind = 'voice' AND state = 'parked'
         ORDER BY park_id FOR UPDATE"
    ))
    .bind(task_sids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(parks.len());
    for Row {
        park: locked,
        parked_ms,
    } in parks
    {
        let status: Option<String> =
            sqlx::query_scalar("SELECT assignment_status FROM tasks WHERE task_sid = $1")
                .bind(&locked.task_sid)
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
        let reservations: Vec<(String, Option<String>, Option<String>, Option<i64>)> =
            sqlx::query_as(
                "SELECT reservation_sid, worker_sid, status, first_event_ms FROM reservations
                 WHERE task_sid = $1 ORDER BY first_event_ms, reservation_sid",
            )
            .bind(&locked.task_sid)
            .fetch_all(&mut *conn)
            .await?;
        let reservations = reservations
            .into_iter()
            .map(
                |(reservation_sid, worker_sid, status, created_ms)| ParkedReservation {
                    reservation_sid,
                    worker_sid,
                    status,
                    created_ms,
                },
            )
            .collect();
        out.push((locked, parked_ms, status, reservations));
    }
    Ok(out)
}

/// Ends a locked park.
pub async fn finish(
    conn: &mut PgConnection,
    park_id: &str,
    end: ParkEnd,
    route: Option<ResumeRoute>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE parks SET state = $2, ended_by = $3, resume_route = $4, outcome = $3,
             resumed_at = now(), updated_at = now()
         WHERE park_id = $1",
    )
    .bind(park_id)
    .bind(end.state().as_str())
    .bind(end.as_str())
    .bind(route.map(ResumeRoute::as_str))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The task a resume created, once seen (its attributes carry `baton.park_id`).
pub async fn record_resumed_tasks(
    conn: &mut PgConnection,
    resumed: &[(String, String)],
) -> Result<(), StoreError> {
    for (park_id, task_sid) in resumed {
        sqlx::query(
            "UPDATE parks SET resumed_task_sid = $2, updated_at = now()
             WHERE park_id = $1 AND resumed_task_sid IS NULL",
        )
        .bind(park_id)
        .bind(task_sid)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get(pool: &PgPool, park_id: &str) -> Result<Option<ParkView>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM parks WHERE park_id = $1"))
            .bind(park_id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn by_idempotency_key(pool: &PgPool, key: &str) -> Result<Option<ParkView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM parks WHERE idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// The conversation's open park, if any.
pub async fn parked_in(
    pool: &PgPool,
    conversation_sid: &str,
) -> Result<Option<ParkView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM parks WHERE conversation_sid = $1 AND state = 'parked' LIMIT 1"
    ))
    .bind(conversation_sid)
    .fetch_optional(pool)
    .await?)
}

/// Parks, newest first, filtered by state and worker.
pub async fn list(
    pool: &PgPool,
    state: Option<ParkState>,
    worker_sid: Option<&str>,
    limit: i64,
) -> Result<Vec<ParkView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM parks
         WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR worker_sid = $2)
         ORDER BY parked_at DESC, park_id DESC LIMIT $3"
    ))
    .bind(state.map(ParkState::as_str))
    .bind(worker_sid)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Parks still parked, longest held first.
pub async fn longest_parked(pool: &PgPool, limit: i64) -> Result<Vec<ParkView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM parks WHERE state = 'parked'
         ORDER BY parked_at, park_id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The parks of a conversation (for its history).
pub async fn of_conversation(
    pool: &PgPool,
    conversation_sid: &str,
) -> Result<Vec<ParkView>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM parks WHERE conversation_sid = $1 ORDER BY parked_at"
    ))
    .bind(conversation_sid)
    .fetch_all(pool)
    .await?)
}

/// A conversation closed while parked ends its park.
pub async fn end_for_closed_conversation(
    conn: &mut PgConnection,
    conversation_sid: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE parks SET state = 'ended', ended_by = 'conversation_closed',
             outcome = 'conversation_closed', resumed_at = now(), updated_at = now()
         WHERE conversation_sid = $1 AND state = 'parked'",
    )
    .bind(conversation_sid)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
