//! Chain storage: the grow-only `task_links`, the component a task belongs to, the task nodes
//! the domain derives chains from, and the derived `chains` / `chain_tasks` / `hops` rows.

use super::facts::FactTable;
use super::StoreError;
use crate::domain::chain::{Chain, Hop, TaskNode};
use crate::domain::facts::{ReservationFact, TaskFact};
use crate::domain::transfer::{Mode, TargetType, Vocabulary};
use crate::domain::transfer::{NativeTransfer, TransferSnapshotAt, TransferStatus};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, BTreeSet};

/// Adds link keys (never removes: a link seen once stays, whatever arrives later).
pub async fn add_links(
    conn: &mut PgConnection,
    links: &BTreeSet<(String, String)>,
) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    let (tasks, keys): (Vec<String>, Vec<String>) = links.iter().cloned().unzip();
    sqlx::query(
        "INSERT INTO task_links (task_sid, link)
         SELECT * FROM UNNEST($1::text[], $2::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(tasks)
    .bind(keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every task connected to `seeds` through shared links (the seeds included).
pub async fn component(
    conn: &mut PgConnection,
    seeds: &[String],
) -> Result<BTreeSet<String>, StoreError> {
    let mut known: BTreeSet<String> = seeds.iter().cloned().collect();
    // Only a task that shares a link can reach another: the walk starts from those.
    let mut frontier: Vec<String> =
        sqlx::query_scalar("SELECT task_sid FROM linked_tasks WHERE task_sid = ANY($1)")
            .bind(seeds)
            .fetch_all(&mut *conn)
            .await?;
    // Chains are short; the bound only guards against a pathological link (one conversation
    // shared by thousands of tasks) turning into an unbounded walk.
    for _ in 0..16 {
        if frontier.is_empty() {
            break;
        }
        // `mine` first, by the primary key: joined directly, the planner may walk the whole
        // link index filtering each entry against the array (see `any_chained_or_linked`).
        let found: Vec<String> = sqlx::query_scalar(
            "WITH mine AS MATERIALIZED (SELECT link FROM task_links WHERE task_sid = ANY($1))
             SELECT DISTINCT other.task_sid
             FROM mine JOIN task_links other ON other.link = mine.link",
        )
        .bind(&frontier)
        .fetch_all(&mut *conn)
        .await?;
        frontier = found
            .into_iter()
            .filter(|sid| known.insert(sid.clone()))
            .collect();
    }
    Ok(known)
}

/// The advisory lock namespace of link keys ("lk").
const LINK_LOCK_CLASS: i32 = 0x6c6b;
/// Link keys share this many locks: a batch of new tasks holds at most this many, well inside
/// Postgres' shared lock table; two links in one bucket only wait for each other.
const LINK_LOCK_BUCKETS: i32 = 1024;

/// Serializes the transactions that may store these link keys: each waits, before it reads
/// the links' holders (again), for any other that may be storing the same link to commit (in key
/// order, before any row lock, so the waits cannot cycle). Without it, two processors storing
/// one new link for two tasks at once each saw only its own holder, and the two tasks stayed
/// apart until an event of either came again — an Insights stamp missing, or made under a
/// chain id that later changed, with three processes under load.
pub async fn lock_new_links(conn: &mut PgConnection, links: &[String]) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext(l) & $3 AS k FROM unnest($2::text[]) AS l) keys
         ORDER BY k",
    )
    .bind(LINK_LOCK_CLASS)
    .bind(links)
    .bind(LINK_LOCK_BUCKETS - 1)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored holders of any of `links` (a batch's links, before they are stored), as (task,
/// link).
pub async fn holders_of_links(
    conn: &mut PgConnection,
    links: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_as("SELECT task_sid, link FROM task_links WHERE link = ANY($1)")
            .bind(links)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Records that these tasks share a link with another task (grow-only, like the links).
/// Called with tasks the transaction has locked, so two processors never insert one task's
/// row at once.
pub async fn mark_linked(conn: &mut PgConnection, sids: &[String]) -> Result<(), StoreError> {
    if sids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO linked_tasks (task_sid)
         SELECT k FROM unnest($1::text[]) AS k ORDER BY k
         ON CONFLICT DO NOTHING",
    )
    .bind(sids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether any of the tasks is in a stored chain, or shares a link with another task. If
/// neither, each is a chain of one (not stored, calling for nothing).
pub async fn any_chained_or_linked(
    conn: &mut PgConnection,
    sids: &[String],
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM chain_tasks WHERE task_sid = ANY($1))
             OR EXISTS (SELECT 1 FROM linked_tasks WHERE task_sid = ANY($1))",
    )
    .bind(sids)
    .fetch_one(&mut *conn)
    .await?)
}

/// Locks the tasks (in SID order, like every other task lock) so two processors never derive
/// one chain from different snapshots.
pub async fn lock_tasks(conn: &mut PgConnection, sids: &[String]) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM tasks WHERE task_sid = ANY($1) ORDER BY task_sid FOR UPDATE")
        .bind(sids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The task nodes for `sids` (tasks baton has facts about), with attributes and reservations.
pub async fn load_nodes(
    conn: &mut PgConnection,
    sids: &[String],
) -> Result<Vec<TaskNode>, StoreError> {
    let tasks = TaskFact::load(conn, sids, false).await?;
    let attributes: BTreeMap<String, Value> =
        sqlx::query_as("SELECT task_sid, attributes FROM task_attributes WHERE task_sid = ANY($1)")
            .bind(sids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let reservation_sids: Vec<String> =
        sqlx::query_scalar("SELECT reservation_sid FROM reservations WHERE task_sid = ANY($1)")
            .bind(sids)
            .fetch_all(&mut *conn)
            .await?;
    let reservations = ReservationFact::load(conn, &reservation_sids, false).await?;
    let transfers = native_transfers(conn, sids).await?;
    Ok(tasks
        .iter()
        .map(|t| {
            let mine: Vec<&ReservationFact> = reservations
                .iter()
                .filter(|r| r.task_sid.as_deref() == Some(t.task_sid.as_str()))
                .collect();
            let mut node = TaskNode::from_facts(t, attributes.get(&t.task_sid), &mine);
            node.transfers = transfers
                .iter()
                .filter(|(task, _)| task == &t.task_sid)
                .map(|(_, transfer)| transfer.clone())
                .collect();
            node
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct TransferRow {
    task_sid: String,
    transfer_sid: String,
    mode: Option<String>,
    target_sid: Option<String>,
    target_type: Option<String>,
    initiating_worker_sid: Option<String>,
    initiating_reservation_sid: Option<String>,
    status: String,
    status_ms: Option<i64>,
    initiated_ms: Option<i64>,
}

/// The native transfers of these tasks.
async fn native_transfers(
    conn: &mut PgConnection,
    sids: &[String],
) -> Result<Vec<(String, NativeTransfer)>, StoreError> {
    let rows: Vec<TransferRow> = sqlx::query_as(
        "SELECT task_sid, transfer_sid, mode, target_sid, target_type, initiating_worker_sid,
                initiating_reservation_sid, status, status_ms, initiated_ms
         FROM task_transfers WHERE task_sid = ANY($1) ORDER BY transfer_sid",
    )
    .bind(sids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let transfer = NativeTransfer {
                transfer_sid: r.transfer_sid,
                mode: r.mode.as_deref().and_then(Mode::parse),
                target_type: r
                    .target_type
                    .as_deref()
                    .and_then(TargetType::parse)
                    .or_else(|| r.target_sid.as_deref().and_then(TargetType::from_sid)),
                target_sid: r.target_sid,
                initiating_worker_sid: r.initiating_worker_sid,
                initiating_reservation_sid: r.initiating_reservation_sid,
                status: TransferStatus::parse(&r.status).unwrap_or(TransferStatus::Initiated),
                status_ms: r.status_ms,
                initiated_ms: r.initiated_ms,
            };
            (r.task_sid, transfer)
        })
        .collect())
}

/// Records what `task.transfer-*` events say about native transfers. Order-free: the earliest
/// initiation time, the first value seen of each property, and a terminal status over
/// `initiated` (the latest terminal one when several arrive).
pub async fn record_transfers(
    conn: &mut PgConnection,
    seen: &[(String, TransferSnapshotAt)],
) -> Result<(), StoreError> {
    for (task_sid, t) in seen {
        sqlx::query(
            "INSERT INTO task_transfers (transfer_sid, task_sid, mode, target_sid, target_type,
                 initiating_worker_sid, initiating_reservation_sid, status, status_ms,
                 failed_reason, initiated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (transfer_sid) DO UPDATE SET
                 mode = COALESCE(task_transfers.mode, excluded.mode),
                 target_sid = COALESCE(task_transfers.target_sid, excluded.target_sid),
                 target_type = COALESCE(task_transfers.target_type, excluded.target_type),
                 initiating_worker_sid = COALESCE(task_transfers.initiating_worker_sid,
                                                  excluded.initiating_worker_sid),
                 initiating_reservation_sid = COALESCE(task_transfers.initiating_reservation_sid,
                                                       excluded.initiating_reservation_sid),
                 status = CASE WHEN excluded.status <> 'initiated'
                                AND (task_transfers.status = 'initiated'
                                     OR excluded.status_ms > task_transfers.status_ms)
                               THEN excluded.status ELSE task_transfers.status END,
                 status_ms = CASE WHEN excluded.status <> 'initiated'
                                   AND (task_transfers.status = 'initiated'
                                        OR excluded.status_ms > task_transfers.status_ms)
                                  THEN excluded.status_ms ELSE task_transfers.status_ms END,
                 failed_reason = COALESCE(task_transfers.failed_reason, excluded.failed_reason),
                 initiated_ms = LEAST(task_transfers.initiated_ms, excluded.initiated_ms),
                 updated_at = now()",
        )
        .bind(&t.transfer_sid)
        .bind(task_sid)
        .bind(t.mode.map(Mode::as_str))
        .bind(&t.target_sid)
        .bind(t.target_type.map(TargetType::as_str))
        .bind(&t.initiating_worker_sid)
        .bind(&t.initiating_reservation_sid)
        .bind(t.status.as_str())
        .bind(t.ms)
        .bind(&t.failed_reason)
        .bind((t.status == TransferStatus::Initiated).then_some(t.ms))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Rewrites the stored chains of `tasks` with `chains` (which cover them). Chains of one task
/// are not stored unless they have hops (native voice transfers). Keeps when each task was first seen linked.
pub async fn save(
    conn: &mut PgConnection,
    tasks: &[String],
    chains: &[Chain],
) -> Result<(), StoreError> {
    let old_ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT chain_id FROM chain_tasks WHERE task_sid = ANY($1)")
            .bind(tasks)
            .fetch_all(&mut *conn)
            .await?;
    // A task alone is no chain, unless Flex transferred it (voice transfers keep the task).
    let stored: Vec<&Chain> = chains
        .iter()
        .filter(|c| c.tasks.len() > 1 || !c.hops.is_empty())
        .collect();
    let mut ids: BTreeSet<String> = old_ids.into_iter().collect();
    ids.extend(stored.iter().map(|c| c.chain_id.clone()));
    let ids: Vec<String> = ids.into_iter().collect();
    sqlx::query("DELETE FROM hops WHERE chain_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM chains WHERE chain_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    if stored.is_empty() {
        return Ok(());
    }
    let mut c_id = Vec::new();
    let mut c_root = Vec::new();
    let mut c_tasks = Vec::new();
    let mut c_hops = Vec::new();
    let mut c_started = Vec::new();
    let mut t_sid = Vec::new();
    let mut t_chain = Vec::new();
    let mut t_pos = Vec::new();
    let mut t_value: Vec<Option<String>> = Vec::new();
    for chain in &stored {
        c_id.push(chain.chain_id.clone());
        c_root.push(chain.root_task_sid.clone());
        c_tasks.push(chain.tasks.len() as i32);
        c_hops.push(chain.hops.len() as i32);
        c_started.push(chain.started_ms);
        for t in &chain.tasks {
            t_sid.push(t.task_sid.clone());
            t_chain.push(chain.chain_id.clone());
            t_pos.push(t.position);
            // The root carries the chain id implicitly when it has none.
            let linked = t
                .insights_id
                .clone()
                .or_else(|| (t.task_sid == chain.chain_id).then(|| t.task_sid.clone()));
            t_value.push(linked);
        }
    }
    sqlx::query(
        "INSERT INTO chains (chain_id, root_task_sid, task_count, hop_count, started_ms)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::int4[], $5::int8[])",
    )
    .bind(&c_id)
    .bind(&c_root)
    .bind(&c_tasks)
    .bind(&c_hops)
    .bind(&c_started)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO chain_tasks AS ct (task_sid, chain_id, position, linked_value, linked_at)
         SELECT sid, chain, pos, value, CASE WHEN value = chain THEN now() END
         FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::text[]) AS x(sid, chain, pos, value)
         ON CONFLICT (task_sid) DO UPDATE SET
             chain_id = EXCLUDED.chain_id,
             position = EXCLUDED.position,
             linked_value = EXCLUDED.linked_value,
             linked_at = CASE
                 WHEN EXCLUDED.linked_value IS DISTINCT FROM EXCLUDED.chain_id THEN NULL
                 WHEN ct.linked_value = EXCLUDED.linked_value AND ct.chain_id = EXCLUDED.chain_id
                     THEN ct.linked_at
                 ELSE now() END",
    )
    .bind(&t_sid)
    .bind(&t_chain)
    .bind(&t_pos)
    .bind(&t_value)
    .execute(&mut *conn)
    .await?;
    let hops: Vec<(&str, &Hop)> = stored
        .iter()
        .flat_map(|c| c.hops.iter().map(move |h| (c.chain_id.as_str(), h)))
        .collect();
    if hops.is_empty() {
        return Ok(());
    }
    let text =
        |f: &dyn Fn(&Hop) -> Option<String>| hops.iter().map(|(_, h)| f(h)).collect::<Vec<_>>();
    let num = |f: &dyn Fn(&Hop) -> Option<i64>| hops.iter().map(|(_, h)| f(h)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO hops (chain_id, seq, from_task_sid, to_task_sid, from_reservation_sid,
             to_reservation_sid, from_worker_sid, to_worker_sid, target_type, target_sid,
             target_name, mode, notes, initiated_by, vocabulary, native_transfer_sid, transfer_id,
             initiated_ms, offered_ms, accepted_ms, finished_ms, outcome, from_queue_sid,
             to_queue_sid, ended_ms)
         SELECT * FROM UNNEST($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
             $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::int8[],
             $19::int8[], $20::int8[], $21::int8[], $22::text[], $23::text[], $24::text[],
             $25::int8[])",
    )
    .bind(hops.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>())
    .bind(hops.iter().map(|(_, h)| h.seq).collect::<Vec<_>>())
    .bind(
        hops.iter()
            .map(|(_, h)| h.from_task_sid.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        hops.iter()
            .map(|(_, h)| h.to_task_sid.clone())
            .collect::<Vec<_>>(),
    )
    .bind(text(&|h| h.from_reservation_sid.clone()))
    .bind(text(&|h| h.to_reservation_sid.clone()))
    .bind(text(&|h| h.from_worker_sid.clone()))
    .bind(text(&|h| h.to_worker_sid.clone()))
    .bind(text(&|h| h.target_type.map(|t| t.as_str().to_owned())))
    .bind(text(&|h| h.target_sid.clone()))
    .bind(text(&|h| h.target_name.clone()))
    .bind(text(&|h| h.mode.map(|m| m.as_str().to_owned())))
    .bind(text(&|h| h.notes.clone()))
    .bind(text(&|h| h.initiated_by.clone()))
    .bind(text(&|h| {
        h.vocabulary.map(|v| vocabulary_str(v).to_owned())
    }))
    .bind(text(&|h| h.native_transfer_sid.clone()))
    .bind(text(&|h| h.transfer_id.clone()))
    .bind(num(&|h| h.initiated_ms))
    .bind(num(&|h| h.offered_ms))
    .bind(num(&|h| h.accepted_ms))
    .bind(num(&|h| h.finished_ms))
    .bind(text(&|h| h.outcome.map(|o| o.as_str().to_owned())))
    .bind(text(&|h| h.from_queue_sid.clone()))
    .bind(text(&|h| h.to_queue_sid.clone()))
    .bind(num(&|h| h.ended_ms))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn vocabulary_str(v: Vocabulary) -> &'static str {
    match v {
        Vocabulary::ChatSmsTransfer => "chat_sms_transfer",
        Vocabulary::ProjectTemplate => "project_template",
        Vocabulary::NativeFlex => "native_flex",
        Vocabulary::Baton => "baton",
    }
}

/// The id of the stored chain `task_sid` belongs to.
pub async fn chain_id_of<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    task_sid: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT chain_id FROM chain_tasks WHERE task_sid = $1")
            .bind(task_sid)
            .fetch_optional(executor)
            .await?,
    )
}

/// Records that baton stamped (or found stamped) a task's Insights id.
pub async fn record_stamp(
    pool: &PgPool,
    task_sid: &str,
    chain_id: &str,
    already_linked: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO insights_stamps (task_sid, chain_id, already_linked)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(task_sid)
    .bind(chain_id)
    .bind(already_linked)
    .execute(pool)
    .await?;
    Ok(())
}

/// A stored chain as ops see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ChainView {
    pub chain_id: String,
    pub root_task_sid: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub tasks: Vec<ChainTaskView>,
    pub hops: Vec<HopView>,
    /// The Twilio calls baton decided about the chain's tasks, oldest first.
    pub calls: Vec<super::outbox::CallView>,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ChainTaskView {
    pub task_sid: String,
    pub position: i32,
    pub assignment_status: Option<String>,
    /// Its `conversations.conversation_id` as last seen.
    pub insights_conversation_id: Option<String>,
    /// When baton first saw it carry the chain id.
    pub linked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When baton wrote the chain id into it (absent when it never had to).
    pub stamped_at: Option<chrono::DateTime<chrono::Utc>>,
    pub task_queue_sid: Option<String>,
    pub task_channel: Option<String>,
    /// Its offers to workers, first to last.
    #[sqlx(skip)]
    pub reservations: Vec<ReservationView>,
}

/// A reservation (an offer of the task to a worker) as last seen.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReservationView {
    pub reservation_sid: String,
    pub worker_sid: Option<String>,
    pub worker_name: Option<String>,
    /// `pending`, `accepted`, `wrapping`, `completed`, `rejected`, `timeout`, `canceled`, `rescinded`.
    pub status: Option<String>,
    /// Its first event: when it was offered.
    pub offered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its latest event: when it took `status`.
    pub status_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HopView {
    pub seq: i32,
    pub from_task_sid: String,
    pub to_task_sid: String,
    pub from_reservation_sid: Option<String>,
    pub to_reservation_sid: Option<String>,
    pub from_worker_sid: Option<String>,
    pub to_worker_sid: Option<String>,
    pub target_type: Option<String>,
    pub target_sid: Option<String>,
    pub target_name: Option<String>,
    pub mode: Option<String>,
    pub notes: Option<String>,
    pub initiated_by: Option<String>,
    pub vocabulary: Option<String>,
    pub native_transfer_sid: Option<String>,
    pub transfer_id: Option<String>,
    pub initiated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub offered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome: Option<String>,
    /// The queue of the task the customer came from, and the one the hop went to.
    pub from_queue_sid: Option<String>,
    pub to_queue_sid: Option<String>,
    /// When the target's side ended (its reservation, wrap-up included).
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Initiated → first offered to a worker.
    pub seconds_to_offer: Option<f64>,
    /// Initiated → accepted.
    pub seconds_to_accept: Option<f64>,
    /// Accepted → the target's side ended: how long the customer was in this hop.
    pub seconds_in_hop: Option<f64>,
}

/// The [`HopView`] columns of `hops h` (timings in seconds, to the millisecond).
pub const HOP_COLUMNS: &str = "h.seq, h.from_task_sid, h.to_task_sid, h.from_reservation_sid,
    h.to_reservation_sid, h.from_worker_sid, h.to_worker_sid, h.target_type, h.target_sid,
    h.target_name, h.mode, h.notes, h.initiated_by, h.vocabulary, h.native_transfer_sid,
    h.transfer_id,
    to_timestamp(h.initiated_ms / 1000.0) AS initiated_at,
    to_timestamp(h.offered_ms / 1000.0) AS offered_at,
    to_timestamp(h.accepted_ms / 1000.0) AS accepted_at,
    to_timestamp(h.finished_ms / 1000.0) AS finished_at, h.outcome,
    h.from_queue_sid, h.to_queue_sid, to_timestamp(h.ended_ms / 1000.0) AS ended_at,
    ((h.offered_ms - h.initiated_ms) / 1000.0)::float8 AS seconds_to_offer,
    ((h.accepted_ms - h.initiated_ms) / 1000.0)::float8 AS seconds_to_accept,
    ((h.ended_ms - h.accepted_ms) / 1000.0)::float8 AS seconds_in_hop";

fn ms_to_time(ms: Option<i64>) -> Option<chrono::DateTime<chrono::Utc>> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
}

/// The chain `task_sid` belongs to; a task baton knows alone is a chain of one. `None` when
/// baton has never seen the task.
pub async fn fetch_chain(pool: &PgPool, task_sid: &str) -> Result<Option<ChainView>, StoreError> {
    let head: Option<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT c.chain_id, c.root_task_sid, c.started_ms
         FROM chain_tasks ct JOIN chains c ON c.chain_id = ct.chain_id
         WHERE ct.task_sid = $1",
    )
    .bind(task_sid)
    .fetch_optional(pool)
    .await?;
    let Some((chain_id, root_task_sid, started_ms)) = head else {
        // Not in a stored chain: a chain of one, if baton knows the task.
        #[allow(clippy::type_complexity)]
        let single: Option<(
            Option<String>,
            Option<i64>,
            Option<Value>,
            Option<String>,
            Option<String>,
        )> = sqlx::query_as(
            "SELECT t.assignment_status, t.first_event_ms, a.attributes, t.task_queue_sid,
                    t.task_channel
             FROM tasks t LEFT JOIN task_attributes a USING (task_sid)
             WHERE t.task_sid = $1",
        )
        .bind(task_sid)
        .fetch_optional(pool)
        .await?;
        let Some((status, first_ms, attributes, task_queue_sid, task_channel)) = single else {
            return Ok(None);
        };
        let reservations = reservations_of(pool, &[task_sid.to_owned()])
            .await?
            .remove(task_sid)
            .unwrap_or_default();
        let calls = super::outbox::of_tasks(pool, &[task_sid.to_owned()]).await?;
        return Ok(Some({
            let insights = attributes.as_ref().and_then(|a| {
                crate::domain::transfer::conversation_keys(a).insights_conversation_id
            });
            ChainView {
                chain_id: insights.clone().unwrap_or_else(|| task_sid.to_owned()),
                root_task_sid: task_sid.to_owned(),
                started_at: ms_to_time(first_ms),
                tasks: vec![ChainTaskView {
                    task_sid: task_sid.to_owned(),
                    position: 0,
                    assignment_status: status,
                    insights_conversation_id: insights,
                    linked_at: None,
                    stamped_at: None,
                    task_queue_sid,
                    task_channel,
                    reservations,
                }],
                hops: Vec::new(),
                calls,
            }
        }));
    };
    let mut tasks: Vec<ChainTaskView> = sqlx::query_as(
        "SELECT ct.task_sid, ct.position, t.assignment_status,
                ct.linked_value AS insights_conversation_id, ct.linked_at,
                (SELECT min(s.stamped_at) FROM insights_stamps s
                  WHERE s.task_sid = ct.task_sid AND s.chain_id = ct.chain_id
                    AND NOT s.already_linked) AS stamped_at,
                t.task_queue_sid, t.task_channel
         FROM chain_tasks ct LEFT JOIN tasks t USING (task_sid)
         WHERE ct.chain_id = $1 ORDER BY ct.position",
    )
    .bind(&chain_id)
    .fetch_all(pool)
    .await?;
    let hops: Vec<HopView> = sqlx::query_as(&format!(
        "SELECT {HOP_COLUMNS} FROM hops h WHERE h.chain_id = $1 ORDER BY h.seq"
    ))
    .bind(&chain_id)
    .fetch_all(pool)
    .await?;
    let task_sids: Vec<String> = tasks.iter().map(|t| t.task_sid.clone()).collect();
    let mut reservations = reservations_of(pool, &task_sids).await?;
    for task in &mut tasks {
        task.reservations = reservations.remove(&task.task_sid).unwrap_or_default();
    }
    let calls = super::outbox::of_tasks(pool, &task_sids).await?;
    Ok(Some(ChainView {
        chain_id,
        root_task_sid,
        started_at: ms_to_time(started_ms),
        tasks,
        hops,
        calls,
    }))
}

/// The tasks' reservations, by task, each task's first to last.
async fn reservations_of(
    pool: &PgPool,
    task_sids: &[String],
) -> Result<std::collections::HashMap<String, Vec<ReservationView>>, StoreError> {
    let rows: Vec<(String, ReservationView)> = sqlx::query_as::<_, TaskReservation>(
        "SELECT r.task_sid, r.reservation_sid, r.worker_sid, w.friendly_name AS worker_name,
                r.status, to_timestamp(r.first_event_ms / 1000.0) AS offered_at,
                to_timestamp(r.last_event_ms / 1000.0) AS status_at
         FROM reservations r LEFT JOIN workers w USING (worker_sid)
         WHERE r.task_sid = ANY($1)
         ORDER BY r.first_event_ms NULLS LAST, r.reservation_sid",
    )
    .bind(task_sids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.task_sid, r.reservation))
    .collect();
    let mut by_task: std::collections::HashMap<String, Vec<ReservationView>> =
        std::collections::HashMap::new();
    for (task_sid, reservation) in rows {
        by_task.entry(task_sid).or_default().push(reservation);
    }
    Ok(by_task)
}

#[derive(sqlx::FromRow)]
struct TaskReservation {
    task_sid: String,
    #[sqlx(flatten)]
    reservation: ReservationView,
}
