//! Conversations, orphan checks and close records (see `domain::orphan` for the rules).

use super::StoreError;
use crate::domain::orphan::{CloseReason, CloseResult, ConversationRef, Occupancy};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

/// Records (or completes) what tasks' attributes say about their conversations.
pub async fn upsert(conn: &mut PgConnection, refs: &[ConversationRef]) -> Result<(), StoreError> {
    if refs.is_empty() {
        return Ok(());
    }
    let mut refs: Vec<&ConversationRef> = refs.iter().collect();
    refs.sort_by(|a, b| a.conversation_sid.cmp(&b.conversation_sid));
    refs.dedup_by(|a, b| a.conversation_sid == b.conversation_sid);
    let sids: Vec<&str> = refs.iter().map(|r| r.conversation_sid.as_str()).collect();
    let kds: Vec<Option<&str>> = refs
        .iter()
        .map(|r| r.interaction.as_ref().map(|(kd, _)| kd.as_str()))
        .collect();
    let uos: Vec<Option<&str>> = refs
        .iter()
        .map(|r| r.interaction.as_ref().map(|(_, uo)| uo.as_str()))
        .collect();
    let types: Vec<Option<&str>> = refs.iter().map(|r| r.channel_type.as_deref()).collect();
    sqlx::query(
        "INSERT INTO conversations (conversation_sid, interaction_sid, channel_sid, channel_type)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
         ON CONFLICT (conversation_sid) DO UPDATE SET
             interaction_sid = COALESCE(conversations.interaction_sid, excluded.interaction_sid),
             channel_sid = COALESCE(conversations.channel_sid, excluded.channel_sid),
             channel_type = COALESCE(conversations.channel_type, excluded.channel_type),
             updated_at = now()
         WHERE conversations.interaction_sid IS NULL AND excluded.interaction_sid IS NOT NULL
            OR conversations.channel_type IS NULL AND excluded.channel_type IS NOT NULL",
    )
    .bind(&sids)
    .bind(&kds)
    .bind(&uos)
    .bind(&types)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Tasks ended (`domain::orphan::ends_task`): their open conversations are looked at again
/// after `grace`. A later end moves the check later, never earlier.
pub async fn schedule_checks(
    conn: &mut PgConnection,
    ended: &[(String, String)],
    grace: Duration,
) -> Result<u64, StoreError> {
    if ended.is_empty() {
        return Ok(0);
    }
    let tasks: Vec<&str> = ended.iter().map(|(t, _)| t.as_str()).collect();
    let types: Vec<&str> = ended.iter().map(|(_, e)| e.as_str()).collect();
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let scheduled = sqlx::query(
        "WITH ended AS (
             SELECT DISTINCT ON (c.conversation_sid) c.conversation_sid, e.task_sid, e.event_type
             FROM unnest($1::text[], $2::text[]) AS e(task_sid, event_type)
             JOIN task_links l ON l.task_sid = e.task_sid AND l.link LIKE 'conv:%'
             JOIN conversations c ON c.conversation_sid = substr(l.link, 6)
             WHERE c.state <> 'closed' AND NOT c.removed
             ORDER BY c.conversation_sid
         ), touched AS (
             UPDATE conversations c SET last_task_ended_at = now(), updated_at = now()
             FROM ended WHERE c.conversation_sid = ended.conversation_sid
         )
         INSERT INTO orphan_checks (conversation_sid, due_at, task_sid, event_type)
         SELECT conversation_sid, now() + make_interval(secs => $3::float8 / 1000), task_sid, event_type
         FROM ended
         ON CONFLICT (conversation_sid) DO UPDATE SET
             due_at = GREATEST(orphan_checks.due_at, excluded.due_at),
             task_sid = excluded.task_sid,
             event_type = excluded.event_type",
    )
    .bind(&tasks)
    .bind(&types)
    .bind(grace_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(scheduled)
}

/// Someone left these open conversations (`onParticipantRemoved`): each is looked at again
/// after `grace`, as when a task ends. A later leave moves the check later, never earlier.
pub async fn schedule_checks_for(
    conn: &mut PgConnection,
    left: &[(String, String)],
    grace: Duration,
) -> Result<u64, StoreError> {
    if left.is_empty() {
        return Ok(0);
    }
    let sids: Vec<&str> = left.iter().map(|(c, _)| c.as_str()).collect();
    let types: Vec<&str> = left.iter().map(|(_, e)| e.as_str()).collect();
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let scheduled = sqlx::query(
        "WITH left_ AS (
             SELECT DISTINCT ON (c.conversation_sid) c.conversation_sid, e.event_type
             FROM unnest($1::text[], $2::text[]) AS e(conversation_sid, event_type)
             JOIN conversations c ON c.conversation_sid = e.conversation_sid
             WHERE c.state <> 'closed' AND NOT c.removed
             ORDER BY c.conversation_sid
         )
         INSERT INTO orphan_checks (conversation_sid, due_at, task_sid, event_type)
         SELECT conversation_sid, now() + make_interval(secs => $3::float8 / 1000), NULL, event_type
         FROM left_
         ON CONFLICT (conversation_sid) DO UPDATE SET
             due_at = GREATEST(orphan_checks.due_at, excluded.due_at)",
    )
    .bind(&sids)
    .bind(&types)
    .bind(grace_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(scheduled)
}

/// A state Conversations reported (`onConversationStateUpdated`, `onConversationRemoved`).
/// `closed` and `removed` are sticky; otherwise the latest event time wins.
pub async fn apply_state(
    conn: &mut PgConnection,
    conversation_sid: &str,
    state: Option<&str>,
    removed: bool,
    ms: i64,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO conversations (conversation_sid, state, state_ms, state_reason, removed)
         VALUES ($1, COALESCE($2, 'active'), $3, $4, $5)
         ON CONFLICT (conversation_sid) DO UPDATE SET
             state = CASE
                 WHEN conversations.state = 'closed' THEN 'closed'
                 WHEN $2 IS NULL THEN conversations.state
                 WHEN $2 = 'closed' OR $3 >= COALESCE(conversations.state_ms, 0) THEN $2
                 ELSE conversations.state END,
             state_ms = CASE
                 WHEN $2 IS NOT NULL AND conversations.state <> 'closed'
                      AND ($2 = 'closed' OR $3 >= COALESCE(conversations.state_ms, 0)) THEN $3
                 ELSE conversations.state_ms END,
             state_reason = CASE
                 WHEN $2 IS NOT NULL AND conversations.state <> 'closed'
                      AND ($2 = 'closed' OR $3 >= COALESCE(conversations.state_ms, 0)) THEN $4
                 ELSE conversations.state_reason END,
             removed = conversations.removed OR $5,
             updated_at = now()",
    )
    .bind(conversation_sid)
    .bind(state)
    .bind(ms)
    .bind(reason)
    .bind(removed)
    .execute(&mut *conn)
    .await?;
    if state == Some("closed") || removed {
        sqlx::query("DELETE FROM orphan_checks WHERE conversation_sid = $1")
            .bind(conversation_sid)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What holds a conversation open, from baton's state. A done invite counts as pending for
/// `invite_window` after it was sent: its task may not have been reported yet.
pub async fn occupancy(
    conn: &mut PgConnection,
    conversation_sid: &str,
    invite_window: Duration,
) -> Result<Occupancy, StoreError> {
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT state, removed FROM conversations WHERE conversation_sid = $1")
            .bind(conversation_sid)
            .fetch_optional(&mut *conn)
            .await?;
    let (state, removed) = row.unwrap_or_else(|| ("active".into(), false));
    let live_tasks: Vec<String> = sqlx::query_scalar(
        "SELECT t.task_sid FROM task_links l JOIN tasks t ON t.task_sid = l.task_sid
         WHERE l.link = 'conv:' || $1
           AND t.assignment_status IN ('pending', 'reserved', 'assigned')
           AND NOT t.deleted
         ORDER BY t.task_sid",
    )
    .bind(conversation_sid)
    .fetch_all(&mut *conn)
    .await?;
    let window_ms = i64::try_from(invite_window.as_millis()).unwrap_or(i64::MAX);
    let pending: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, idempotency_key FROM outbox
         WHERE conversation_sid = $1 AND kind IN ('create_invite', 'create_task')
           AND (state = 'pending'
                OR state = 'done' AND done_at > now() - make_interval(secs => $2::float8 / 1000))
         ORDER BY id",
    )
    .bind(conversation_sid)
    .bind(window_ms)
    .fetch_all(&mut *conn)
    .await?;
    let (transfers, invites): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|(_, key)| key.starts_with("transfer:"));
    let parks: Vec<String> = sqlx::query_scalar(
        "SELECT park_id FROM parks WHERE conversation_sid = $1 AND state = 'parked' ORDER BY park_id",
    )
    .bind(conversation_sid)
    .fetch_all(&mut *conn)
    .await?;
    let close_decided: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM conversation_closes WHERE conversation_sid = $1
                        AND (result IS NULL OR result IN ('closed', 'already_closed')))",
    )
    .bind(conversation_sid)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Occupancy {
        state,
        removed,
        live_tasks,
        pending_invites: invites.into_iter().map(|(id, _)| id).collect(),
        transfers_in_flight: transfers
            .into_iter()
            .map(|(_, key)| key.trim_start_matches("transfer:").to_owned())
            .collect(),
        parks,
        close_decided,
    })
}

/// A due orphan check, claimed (locked) in the caller's transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueCheck {
    pub conversation_sid: String,
    pub task_sid: Option<String>,
    pub event_type: Option<String>,
}

pub async fn claim_due_checks(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<DueCheck>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT conversation_sid, task_sid, event_type FROM orphan_checks
         WHERE due_at <= now() ORDER BY due_at
         FOR UPDATE SKIP LOCKED LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn finish_check(
    conn: &mut PgConnection,
    conversation_sid: &str,
    again_in: Option<Duration>,
) -> Result<(), StoreError> {
    match again_in {
        None => {
            sqlx::query("DELETE FROM orphan_checks WHERE conversation_sid = $1")
                .bind(conversation_sid)
                .execute(&mut *conn)
                .await?;
        }
        Some(d) => {
            sqlx::query(
                "UPDATE orphan_checks SET due_at = now() + make_interval(secs => $2::float8 / 1000)
                 WHERE conversation_sid = $1",
            )
            .bind(conversation_sid)
            .bind(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// What an orphan check found: `closing`, or `kept: …` with the reason.
pub async fn record_check(
    conn: &mut PgConnection,
    conversation_sid: &str,
    result: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE conversations SET last_check_at = now(), last_check_result = $2
         WHERE conversation_sid = $1",
    )
    .bind(conversation_sid)
    .bind(result)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The conversation as stored.
pub async fn conversation_ref(
    conn: &mut PgConnection,
    conversation_sid: &str,
) -> Result<Option<ConversationRef>, StoreError> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT interaction_sid, channel_sid, channel_type FROM conversations
         WHERE conversation_sid = $1",
    )
    .bind(conversation_sid)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(kd, uo, channel_type)| ConversationRef {
        conversation_sid: conversation_sid.to_owned(),
        interaction: kd.zip(uo),
        channel_type,
    }))
}

/// The close generation to use next (`close:{CH}:{generation}`): a close withdrawn at send
/// time may be decided again later.
pub async fn next_close_generation(
    conn: &mut PgConnection,
    conversation_sid: &str,
) -> Result<i32, StoreError> {
    let current: Option<i32> = sqlx::query_scalar(
        "SELECT generation FROM conversation_closes WHERE conversation_sid = $1",
    )
    .bind(conversation_sid)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(current.map_or(1, |g| g + 1))
}

/// Records a close decision (replacing a withdrawn one).
#[allow(clippy::too_many_arguments)]
pub async fn record_close(
    conn: &mut PgConnection,
    conversation_sid: &str,
    generation: i32,
    reason: CloseReason,
    detail: Option<&str>,
    task_sid: Option<&str>,
    event_type: Option<&str>,
    method: &str,
    idempotency_key: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO conversation_closes (conversation_sid, generation, reason, detail, task_sid,
                                          event_type, method, outbox_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7,
                 (SELECT id FROM outbox WHERE idempotency_key = $8))
         ON CONFLICT (conversation_sid) DO UPDATE SET
             generation = excluded.generation, reason = excluded.reason, detail = excluded.detail,
             task_sid = excluded.task_sid, event_type = excluded.event_type,
             method = excluded.method, outbox_id = excluded.outbox_id, decided_at = now(),
             result = NULL, result_at = NULL",
    )
    .bind(conversation_sid)
    .bind(generation)
    .bind(reason.as_str())
    .bind(detail)
    .bind(task_sid)
    .bind(event_type)
    .bind(method)
    .bind(idempotency_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the close call found. A close (or one found done) makes baton's view closed too.
pub async fn record_close_result(
    pool: &PgPool,
    conversation_sid: &str,
    result: &CloseResult,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE conversation_closes SET result = $2, result_at = now() WHERE conversation_sid = $1",
    )
    .bind(conversation_sid)
    .bind(result.spelled())
    .execute(&mut *tx)
    .await?;
    if result.closes() {
        sqlx::query(
            "UPDATE conversations SET state = 'closed', state_reason = 'baton', updated_at = now()
             WHERE conversation_sid = $1",
        )
        .bind(conversation_sid)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM orphan_checks WHERE conversation_sid = $1")
            .bind(conversation_sid)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks a conversation closed in baton's view (Twilio said so during a sweep).
pub async fn mark_closed(pool: &PgPool, conversation_sid: &str) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    apply_state(
        &mut conn,
        conversation_sid,
        Some("closed"),
        false,
        Utc::now().timestamp_millis(),
        Some("sweep: Twilio reports it closed"),
    )
    .await
}

/// A conversation the sweep looks at: open in baton's view, no close decided, and no task of it
/// ended (or, with none ended, first seen) within `older_than`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct SweepCandidate {
    pub conversation_sid: String,
    pub interaction_sid: Option<String>,
    pub channel_sid: Option<String>,
    pub channel_type: Option<String>,
    pub idle_since: DateTime<Utc>,
}

pub async fn sweep_candidates(
    pool: &PgPool,
    older_than: Duration,
    limit: i64,
) -> Result<Vec<SweepCandidate>, StoreError> {
    let older_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    Ok(sqlx::query_as(
        "SELECT c.conversation_sid, c.interaction_sid, c.channel_sid, c.channel_type,
                COALESCE(c.last_task_ended_at, c.first_seen_at) AS idle_since
         FROM conversations c
         WHERE c.state <> 'closed' AND NOT c.removed
           AND COALESCE(c.last_task_ended_at, c.first_seen_at)
               < now() - make_interval(secs => $1::float8 / 1000)
           AND NOT EXISTS (SELECT 1 FROM conversation_closes k
                           WHERE k.conversation_sid = c.conversation_sid
                             AND (k.result IS NULL OR k.result IN ('closed', 'already_closed')))
         ORDER BY idle_since, c.conversation_sid
         LIMIT $2",
    )
    .bind(older_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Invite tasks of an open conversation that were canceled (a rejected known-worker invite, a
/// timeout) or deleted at least `min_age` ago and that the sweep has not looked at yet: their
/// `invites` entries in the conversation's attributes may be stale (`domain::invites`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndedInvites {
    pub conversation_sid: String,
    pub interaction_sid: Option<String>,
    pub channel_sid: Option<String>,
    pub task_sids: Vec<String>,
    /// When the last of them ended.
    pub ended_at: DateTime<Utc>,
}

pub async fn ended_invite_tasks(
    pool: &PgPool,
    min_age: Duration,
    limit: i64,
) -> Result<Vec<EndedInvites>, StoreError> {
    let min_age_ms = i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    Ok(sqlx::query_as(
        "SELECT c.conversation_sid, c.interaction_sid, c.channel_sid,
                array_agg(t.task_sid ORDER BY t.task_sid) AS task_sids,
                to_timestamp(max(COALESCE(t.last_event_ms, 0)) / 1000.0) AS ended_at
         FROM conversations c
         JOIN task_links l ON l.link = 'conv:' || c.conversation_sid
         JOIN tasks t ON t.task_sid = l.task_sid
         WHERE c.state <> 'closed' AND NOT c.removed
           AND (t.assignment_status = 'canceled' OR t.deleted)
           AND COALESCE(t.last_event_ms, 0)
               <= (extract(epoch FROM now()) * 1000)::bigint - $1
           AND NOT EXISTS (SELECT 1 FROM invite_cleanups i
                           WHERE i.conversation_sid = c.conversation_sid
                             AND i.task_sid = t.task_sid)
           AND NOT EXISTS (SELECT 1 FROM conversation_closes k
                           WHERE k.conversation_sid = c.conversation_sid
                             AND (k.result IS NULL OR k.result IN ('closed', 'already_closed')))
         GROUP BY c.conversation_sid, c.interaction_sid, c.channel_sid
         ORDER BY ended_at, c.conversation_sid
         LIMIT $2",
    )
    .bind(min_age_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Records that the sweep looked at these ended invite tasks: `absent` (none of them in the
/// conversation's invites) or `clearing` (the outbox call named by `idempotency_key` removes
/// them).
pub async fn record_invite_cleanups(
    conn: &mut PgConnection,
    conversation_sid: &str,
    task_sids: &[String],
    state: &str,
    idempotency_key: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invite_cleanups (conversation_sid, task_sid, state, outbox_id)
         SELECT $1, t, $3, (SELECT id FROM outbox WHERE idempotency_key = $4)
         FROM unnest($2::text[]) AS t
         ON CONFLICT (conversation_sid, task_sid) DO NOTHING",
    )
    .bind(conversation_sid)
    .bind(task_sids)
    .bind(state)
    .bind(idempotency_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the clearing call found: `cleared`, or `already_gone`.
pub async fn record_invite_result(
    pool: &PgPool,
    conversation_sid: &str,
    task_sids: &[String],
    result: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE invite_cleanups SET state = $3, result_at = now()
         WHERE conversation_sid = $1 AND task_sid = ANY($2) AND state = 'clearing'",
    )
    .bind(conversation_sid)
    .bind(task_sids)
    .bind(result)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many close and invite-clearing calls of these conversations are still pending.
pub async fn pending_cleanup_calls(pool: &PgPool, sids: &[String]) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM outbox o WHERE o.state = 'pending' AND o.id IN (
             SELECT outbox_id FROM conversation_closes WHERE conversation_sid = ANY($1)
             UNION SELECT outbox_id FROM invite_cleanups WHERE conversation_sid = ANY($1))",
    )
    .bind(sids)
    .fetch_one(pool)
    .await?)
}

/// A close's result (`closed`, `already_closed`, `kept: …`; none yet) and its call's state.
pub async fn close_result(
    pool: &PgPool,
    conversation_sid: &str,
) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT k.result, o.state FROM conversation_closes k
         LEFT JOIN outbox o ON o.id = k.outbox_id WHERE k.conversation_sid = $1",
    )
    .bind(conversation_sid)
    .fetch_optional(pool)
    .await?)
}

/// An invite clearing's result (`cleared`, `already_gone`; none while clearing) and its call's
/// state.
pub async fn invite_cleanup_result(
    pool: &PgPool,
    conversation_sid: &str,
    task_sids: &[String],
) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT NULLIF(i.state, 'clearing'), o.state FROM invite_cleanups i
         LEFT JOIN outbox o ON o.id = i.outbox_id
         WHERE i.conversation_sid = $1 AND i.task_sid = ANY($2) LIMIT 1",
    )
    .bind(conversation_sid)
    .bind(task_sids)
    .fetch_optional(pool)
    .await?)
}

/// A conversation as ops see it (`GET /api/v1/conversations/{sid}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    pub conversation_sid: String,
    pub interaction_sid: Option<String>,
    pub channel_sid: Option<String>,
    pub channel_type: Option<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub removed: bool,
    pub first_seen_at: DateTime<Utc>,
    pub last_task_ended_at: Option<DateTime<Utc>>,
    pub tasks: Vec<ConversationTaskView>,
    pub chain_ids: Vec<String>,
    pub orphan_check_due_at: Option<DateTime<Utc>>,
    /// When an orphan check last looked at it, and what it found (`closing`, or `kept: …`).
    pub last_check_at: Option<DateTime<Utc>>,
    pub last_check_result: Option<String>,
    pub close: Option<CloseView>,
    /// Ended invite tasks whose `invites` entries the sweep looked for.
    pub invite_cleanups: Vec<InviteCleanupView>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InviteCleanupView {
    pub task_sid: String,
    pub state: String,
    pub outbox_id: Option<i64>,
    pub decided_at: DateTime<Utc>,
    pub result_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ConversationTaskView {
    pub task_sid: String,
    pub assignment_status: Option<String>,
    pub task_queue_sid: Option<String>,
    pub chain_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CloseView {
    pub reason: String,
    pub detail: Option<String>,
    pub task_sid: Option<String>,
    pub event_type: Option<String>,
    pub method: String,
    pub outbox_id: Option<i64>,
    pub outbox_state: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub result: Option<String>,
    pub result_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    conversation_sid: String,
    interaction_sid: Option<String>,
    channel_sid: Option<String>,
    channel_type: Option<String>,
    state: String,
    state_reason: Option<String>,
    removed: bool,
    first_seen_at: DateTime<Utc>,
    last_task_ended_at: Option<DateTime<Utc>>,
    last_check_at: Option<DateTime<Utc>>,
    last_check_result: Option<String>,
}

pub async fn fetch_view(
    pool: &PgPool,
    conversation_sid: &str,
) -> Result<Option<ConversationView>, StoreError> {
    let Some(row) = sqlx::query_as::<_, ConversationRow>(
        "SELECT conversation_sid, interaction_sid, channel_sid, channel_type, state, state_reason,
                removed, first_seen_at, last_task_ended_at, last_check_at, last_check_result
         FROM conversations WHERE conversation_sid = $1",
    )
    .bind(conversation_sid)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let tasks: Vec<ConversationTaskView> = sqlx::query_as(
        "SELECT t.task_sid, t.assignment_status, t.task_queue_sid, ct.chain_id
         FROM task_links l JOIN tasks t ON t.task_sid = l.task_sid
         LEFT JOIN chain_tasks ct ON ct.task_sid = t.task_sid
         WHERE l.link = 'conv:' || $1
         ORDER BY t.first_event_ms NULLS LAST, t.task_sid",
    )
    .bind(conversation_sid)
    .fetch_all(pool)
    .await?;
    let mut chain_ids: Vec<String> = tasks.iter().filter_map(|t| t.chain_id.clone()).collect();
    chain_ids.sort();
    chain_ids.dedup();
    let orphan_check_due_at: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT due_at FROM orphan_checks WHERE conversation_sid = $1")
            .bind(conversation_sid)
            .fetch_optional(pool)
            .await?;
    let close: Option<CloseView> = sqlx::query_as(
        "SELECT k.reason, k.detail, k.task_sid, k.event_type, k.method, k.outbox_id,
                o.state AS outbox_state, k.decided_at, k.result, k.result_at
         FROM conversation_closes k LEFT JOIN outbox o ON o.id = k.outbox_id
         WHERE k.conversation_sid = $1",
    )
    .bind(conversation_sid)
    .fetch_optional(pool)
    .await?;
    let invite_cleanups: Vec<InviteCleanupView> = sqlx::query_as(
        "SELECT task_sid, state, outbox_id, decided_at, result_at FROM invite_cleanups
         WHERE conversation_sid = $1 ORDER BY decided_at, task_sid",
    )
    .bind(conversation_sid)
    .fetch_all(pool)
    .await?;
    Ok(Some(ConversationView {
        conversation_sid: row.conversation_sid,
        interaction_sid: row.interaction_sid,
        channel_sid: row.channel_sid,
        channel_type: row.channel_type,
        state: row.state,
        state_reason: row.state_reason,
        removed: row.removed,
        first_seen_at: row.first_seen_at,
        last_task_ended_at: row.last_task_ended_at,
        tasks,
        chain_ids,
        orphan_check_due_at,
        last_check_at: row.last_check_at,
        last_check_result: row.last_check_result,
        close,
        invite_cleanups,
    }))
}
