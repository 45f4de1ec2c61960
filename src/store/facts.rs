//! The facts tables (`tasks`, `reservations`, `workers`): locked, loaded, merged in the domain,
//! and written back inside the processor's transaction.
//!
//! Rows travel as typed columns (binary protocol; `UNNEST` of arrays to write a batch), not as
//! JSON documents: half of processing time went to the facts write, much of it JSON.

use super::StoreError;
use crate::domain::facts::{ReservationFact, Stamp, TaskFact, Versions, WorkerFact};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::collections::BTreeMap;
use std::future::Future;

/// A facts table: how to load and save its rows.
pub trait FactTable: Sized + Send + Sync {
    const TABLE: &'static str;
    const KEY: &'static str;
    fn key(&self) -> &str;
    fn empty(key: &str) -> Self;
    /// Loads the rows for `keys`, locking them (`FOR UPDATE`, in key order) when `lock` is set.
    fn load(
        conn: &mut PgConnection,
        keys: &[String],
        lock: bool,
    ) -> impl Future<Output = Result<Vec<Self>, StoreError>> + Send;
    /// Writes the rows back (they exist: [`lock_and_load`] created them).
    fn save(
        conn: &mut PgConnection,
        facts: &[&Self],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// `field=t,ms,rank,hash;…` — the stamps of a fact's fields.
pub fn encode_versions(versions: &Versions) -> String {
    let mut out = String::with_capacity(versions.len() * 40);
    for (field, s) in versions {
        out.push_str(field);
        out.push('=');
        out.push_str(if s.terminal { "1" } else { "0" });
        out.push_str(&format!(",{},{},{};", s.ms, s.rank, s.tiebreak));
    }
    out
}

pub fn decode_versions(raw: &str) -> Result<Versions, StoreError> {
    let bad = || StoreError::Decode(format!("malformed versions {raw:?}"));
    let mut versions = BTreeMap::new();
    for entry in raw.split(';').filter(|e| !e.is_empty()) {
        let (field, stamp) = entry.split_once('=').ok_or_else(bad)?;
        let mut parts = stamp.split(',');
        let mut next = || parts.next().ok_or_else(bad);
        let terminal = next()? == "1";
        let ms = next()?.parse().map_err(|_| bad())?;
        let rank = next()?.parse().map_err(|_| bad())?;
        let tiebreak = next()?.parse().map_err(|_| bad())?;
        versions.insert(
            field.to_owned(),
            Stamp {
                terminal,
                ms,
                rank,
                tiebreak,
            },
        );
    }
    Ok(versions)
}

fn lock_clause(lock: bool) -> &'static str {
    if lock {
        "FOR UPDATE"
    } else {
        ""
    }
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    task_sid: String,
    workspace_sid: Option<String>,
    assignment_status: Option<String>,
    attributes_hash: Option<i64>,
    task_queue_sid: Option<String>,
    workflow_sid: Option<String>,
    task_channel: Option<String>,
    priority: Option<i64>,
    canceled_reason: Option<String>,
    completed_reason: Option<String>,
    last_event_type: Option<String>,
    versions: String,
    first_event_ms: Option<i64>,
    last_event_ms: Option<i64>,
    deleted: bool,
    event_count: i64,
}

impl FactTable for TaskFact {
    const TABLE: &'static str = "tasks";
    const KEY: &'static str = "task_sid";

    fn key(&self) -> &str {
        &self.task_sid
    }

    fn empty(key: &str) -> Self {
        TaskFact::new(key)
    }

    async fn load(
        conn: &mut PgConnection,
        keys: &[String],
        lock: bool,
    ) -> Result<Vec<Self>, StoreError> {
        let sql = format!(
            "SELECT task_sid, workspace_sid, assignment_status, attributes_hash, task_queue_sid,
                    workflow_sid, task_channel, priority, canceled_reason, completed_reason,
                    last_event_type, versions, first_event_ms, last_event_ms, deleted, event_count
             FROM tasks WHERE task_sid = ANY($1) ORDER BY task_sid {}",
            lock_clause(lock)
        );
        let rows: Vec<TaskRow> = sqlx::query_as(&sql)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TaskFact {
                    task_sid: r.task_sid,
                    workspace_sid: r.workspace_sid,
                    assignment_status: r.assignment_status,
                    attributes: None,
                    attributes_hash: r.attributes_hash,
                    task_queue_sid: r.task_queue_sid,
                    workflow_sid: r.workflow_sid,
                    task_channel: r.task_channel,
                    priority: r.priority,
                    canceled_reason: r.canceled_reason,
                    completed_reason: r.completed_reason,
                    last_event_type: r.last_event_type,
                    versions: decode_versions(&r.versions)?,
                    first_event_ms: r.first_event_ms,
                    last_event_ms: r.last_event_ms,
                    deleted: r.deleted,
                    event_count: r.event_count,
                })
            })
            .collect()
    }

    async fn save(conn: &mut PgConnection, facts: &[&Self]) -> Result<(), StoreError> {
        let col =
            |f: fn(&TaskFact) -> Option<String>| facts.iter().map(|t| f(t)).collect::<Vec<_>>();
        let num = |f: fn(&TaskFact) -> Option<i64>| facts.iter().map(|t| f(t)).collect::<Vec<_>>();
        sqlx::query(
            "UPDATE tasks t SET
                workspace_sid = x.workspace_sid, assignment_status = x.assignment_status,
                attributes_hash = x.attributes_hash, task_queue_sid = x.task_queue_sid,
                workflow_sid = x.workflow_sid, task_channel = x.task_channel, priority = x.priority,
                canceled_reason = x.canceled_reason, completed_reason = x.completed_reason,
                last_event_type = x.last_event_type, versions = x.versions,
                first_event_ms = x.first_event_ms, last_event_ms = x.last_event_ms,
                deleted = x.deleted, event_count = x.event_count, updated_at = now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
                         $7::text[], $8::int8[], $9::text[], $10::text[], $11::text[], $12::text[],
                         $13::int8[], $14::int8[], $15::bool[], $16::int8[])
               AS x(task_sid, workspace_sid, assignment_status, attributes_hash, task_queue_sid,
                    workflow_sid, task_channel, priority, canceled_reason, completed_reason,
                    last_event_type, versions, first_event_ms, last_event_ms, deleted, event_count)
             WHERE t.task_sid = x.task_sid",
        )
        .bind(facts.iter().map(|t| t.task_sid.clone()).collect::<Vec<_>>())
        .bind(col(|t| t.workspace_sid.clone()))
        .bind(col(|t| t.assignment_status.clone()))
        .bind(num(|t| t.attributes_hash))
        .bind(col(|t| t.task_queue_sid.clone()))
        .bind(col(|t| t.workflow_sid.clone()))
        .bind(col(|t| t.task_channel.clone()))
        .bind(num(|t| t.priority))
        .bind(col(|t| t.canceled_reason.clone()))
        .bind(col(|t| t.completed_reason.clone()))
        .bind(col(|t| t.last_event_type.clone()))
        .bind(
            facts
                .iter()
                .map(|t| encode_versions(&t.versions))
                .collect::<Vec<_>>(),
        )
        .bind(num(|t| t.first_event_ms))
        .bind(num(|t| t.last_event_ms))
        .bind(facts.iter().map(|t| t.deleted).collect::<Vec<_>>())
        .bind(facts.iter().map(|t| t.event_count).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    reservation_sid: String,
    task_sid: Option<String>,
    worker_sid: Option<String>,
    task_queue_sid: Option<String>,
    workflow_sid: Option<String>,
    status: Option<String>,
    accepted_ms: Option<i64>,
    versions: String,
    first_event_ms: Option<i64>,
    last_event_ms: Option<i64>,
    event_count: i64,
}

impl FactTable for ReservationFact {
    const TABLE: &'static str = "reservations";
    const KEY: &'static str = "reservation_sid";

    fn key(&self) -> &str {
        &self.reservation_sid
    }

    fn empty(key: &str) -> Self {
        ReservationFact::new(key)
    }

    async fn load(
        conn: &mut PgConnection,
        keys: &[String],
        lock: bool,
    ) -> Result<Vec<Self>, StoreError> {
        let sql = format!(
            "SELECT reservation_sid, task_sid, worker_sid, task_queue_sid, workflow_sid, status,
                    accepted_ms, versions, first_event_ms, last_event_ms, event_count
             FROM reservations WHERE reservation_sid = ANY($1) ORDER BY reservation_sid {}",
            lock_clause(lock)
        );
        let rows: Vec<ReservationRow> = sqlx::query_as(&sql)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ReservationFact {
                    reservation_sid: r.reservation_sid,
                    task_sid: r.task_sid,
                    worker_sid: r.worker_sid,
                    task_queue_sid: r.task_queue_sid,
                    workflow_sid: r.workflow_sid,
                    status: r.status,
                    accepted_ms: r.accepted_ms,
                    versions: decode_versions(&r.versions)?,
                    first_event_ms: r.first_event_ms,
                    last_event_ms: r.last_event_ms,
                    event_count: r.event_count,
                })
            })
            .collect()
    }

    async fn save(conn: &mut PgConnection, facts: &[&Self]) -> Result<(), StoreError> {
        let col = |f: fn(&ReservationFact) -> Option<String>| {
            facts.iter().map(|r| f(r)).collect::<Vec<_>>()
        };
        let num =
            |f: fn(&ReservationFact) -> Option<i64>| facts.iter().map(|r| f(r)).collect::<Vec<_>>();
        sqlx::query(
            "UPDATE reservations t SET
                task_sid = x.task_sid, worker_sid = x.worker_sid, task_queue_sid = x.task_queue_sid,
                workflow_sid = x.workflow_sid, status = x.status, accepted_ms = x.accepted_ms,
                versions = x.versions,
                first_event_ms = x.first_event_ms, last_event_ms = x.last_event_ms,
                event_count = x.event_count, updated_at = now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[])
               AS x(reservation_sid, task_sid, worker_sid, task_queue_sid, workflow_sid, status,
                    versions, first_event_ms, last_event_ms, event_count, accepted_ms)
             WHERE t.reservation_sid = x.reservation_sid",
        )
        .bind(
            facts
                .iter()
                .map(|r| r.reservation_sid.clone())
                .collect::<Vec<_>>(),
        )
        .bind(col(|r| r.task_sid.clone()))
        .bind(col(|r| r.worker_sid.clone()))
        .bind(col(|r| r.task_queue_sid.clone()))
        .bind(col(|r| r.workflow_sid.clone()))
        .bind(col(|r| r.status.clone()))
        .bind(
            facts
                .iter()
                .map(|r| encode_versions(&r.versions))
                .collect::<Vec<_>>(),
        )
        .bind(num(|r| r.first_event_ms))
        .bind(num(|r| r.last_event_ms))
        .bind(facts.iter().map(|r| r.event_count).collect::<Vec<_>>())
        .bind(num(|r| r.accepted_ms))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct WorkerRow {
    worker_sid: String,
    friendly_name: Option<String>,
    activity_sid: Option<String>,
    activity_name: Option<String>,
    previous_activity_sid: Option<String>,
    attributes: Option<serde_json::Value>,
    versions: String,
    first_event_ms: Option<i64>,
    last_event_ms: Option<i64>,
    deleted: bool,
    event_count: i64,
}

impl FactTable for WorkerFact {
    const TABLE: &'static str = "workers";
    const KEY: &'static str = "worker_sid";

    fn key(&self) -> &str {
        &self.worker_sid
    }

    fn empty(key: &str) -> Self {
        WorkerFact::new(key)
    }

    async fn load(
        conn: &mut PgConnection,
        keys: &[String],
        lock: bool,
    ) -> Result<Vec<Self>, StoreError> {
        let sql = format!(
            "SELECT worker_sid, friendly_name, activity_sid, activity_name, previous_activity_sid,
                    attributes, versions, first_event_ms, last_event_ms, deleted, event_count
             FROM workers WHERE worker_sid = ANY($1) ORDER BY worker_sid {}",
            lock_clause(lock)
        );
        let rows: Vec<WorkerRow> = sqlx::query_as(&sql)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(WorkerFact {
                    worker_sid: r.worker_sid,
                    friendly_name: r.friendly_name,
                    activity_sid: r.activity_sid,
                    activity_name: r.activity_name,
                    previous_activity_sid: r.previous_activity_sid,
                    attributes: r.attributes,
                    versions: decode_versions(&r.versions)?,
                    first_event_ms: r.first_event_ms,
                    last_event_ms: r.last_event_ms,
                    deleted: r.deleted,
                    event_count: r.event_count,
                })
            })
            .collect()
    }

    async fn save(conn: &mut PgConnection, facts: &[&Self]) -> Result<(), StoreError> {
        let col =
            |f: fn(&WorkerFact) -> Option<String>| facts.iter().map(|w| f(w)).collect::<Vec<_>>();
        let num =
            |f: fn(&WorkerFact) -> Option<i64>| facts.iter().map(|w| f(w)).collect::<Vec<_>>();
        sqlx::query(
            "UPDATE workers t SET
                friendly_name = x.friendly_name, activity_sid = x.activity_sid,
                activity_name = x.activity_name, previous_activity_sid = x.previous_activity_sid,
                attributes = x.attributes, versions = x.versions,
                first_event_ms = x.first_event_ms, last_event_ms = x.last_event_ms,
                deleted = x.deleted, event_count = x.event_count, updated_at = now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
                         $7::text[], $8::int8[], $9::int8[], $10::bool[], $11::int8[])
               AS x(worker_sid, friendly_name, activity_sid, activity_name, previous_activity_sid,
                    attributes, versions, first_event_ms, last_event_ms, deleted, event_count)
             WHERE t.worker_sid = x.worker_sid",
        )
        .bind(
            facts
                .iter()
                .map(|w| w.worker_sid.clone())
                .collect::<Vec<_>>(),
        )
        .bind(col(|w| w.friendly_name.clone()))
        .bind(col(|w| w.activity_sid.clone()))
        .bind(col(|w| w.activity_name.clone()))
        .bind(col(|w| w.previous_activity_sid.clone()))
        .bind(
            facts
                .iter()
                .map(|w| w.attributes.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            facts
                .iter()
                .map(|w| encode_versions(&w.versions))
                .collect::<Vec<_>>(),
        )
        .bind(num(|w| w.first_event_ms))
        .bind(num(|w| w.last_event_ms))
        .bind(facts.iter().map(|w| w.deleted).collect::<Vec<_>>())
        .bind(facts.iter().map(|w| w.event_count).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Locks the rows for `keys` (creating empty ones first, so two processors meeting the same new
/// task serialize on its row) and loads them. Keys are locked in sorted order to avoid deadlocks.
pub async fn lock_and_load<T: FactTable>(
    tx: &mut Transaction<'_, Postgres>,
    keys: &[String],
) -> Result<BTreeMap<String, T>, StoreError> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let insert = format!(
        "INSERT INTO {table} ({key}) SELECT k FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT DO NOTHING",
        table = T::TABLE,
        key = T::KEY
    );
    sqlx::query(&insert).bind(&keys).execute(&mut **tx).await?;
    let mut facts: BTreeMap<String, T> = T::load(tx, &keys, true)
        .await?
        .into_iter()
        .map(|f| (f.key().to_owned(), f))
        .collect();
    // A key whose row vanished between insert and select (deleted concurrently) starts empty.
    for key in keys {
        facts.entry(key.clone()).or_insert_with(|| T::empty(&key));
    }
    Ok(facts)
}

/// Writes merged facts back (their rows are locked by [`lock_and_load`]).
pub async fn save<'a, T: FactTable + 'a>(
    tx: &mut Transaction<'_, Postgres>,
    facts: impl IntoIterator<Item = &'a T>,
) -> Result<(), StoreError> {
    let facts: Vec<&T> = facts.into_iter().collect();
    if facts.is_empty() {
        return Ok(());
    }
    T::save(tx, &facts).await
}

/// Writes the attributes of tasks whose attributes register changed in this transaction (the
/// `attributes` of a fact loaded by [`lock_and_load`] is `None` until a merge sets it), skipping
/// those equal to what is stored (same hash). Call before [`save`], which stores the hashes.
pub async fn save_task_attributes<'a>(
    tx: &mut Transaction<'_, Postgres>,
    facts: impl IntoIterator<Item = &'a mut TaskFact>,
) -> Result<(), StoreError> {
    let mut sids = Vec::new();
    let mut values = Vec::new();
    for fact in facts {
        let Some(attributes) = &fact.attributes else {
            continue;
        };
        let hash = attributes_hash(attributes);
        if fact.attributes_hash == Some(hash) {
            continue;
        }
        fact.attributes_hash = Some(hash);
        sids.push(fact.task_sid.clone());
        values.push(attributes.clone());
    }
    if sids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO task_attributes (task_sid, attributes)
         SELECT * FROM unnest($1::text[], $2::jsonb[])
         ON CONFLICT (task_sid) DO UPDATE SET attributes = excluded.attributes, updated_at = now()",
    )
    .bind(&sids)
    .bind(&values)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stable hash of attributes (serde_json maps are sorted, so equal values serialize equally).
pub fn attributes_hash(attributes: &serde_json::Value) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(attributes.to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Reads one task with its attributes.
pub async fn fetch_task(
    pool: &sqlx::PgPool,
    task_sid: &str,
) -> Result<Option<TaskFact>, StoreError> {
    let Some(mut fact) = fetch::<TaskFact>(pool, task_sid).await? else {
        return Ok(None);
    };
    fact.attributes =
        sqlx::query_scalar("SELECT attributes FROM task_attributes WHERE task_sid = $1")
            .bind(task_sid)
            .fetch_optional(pool)
            .await?;
    Ok(Some(fact))
}

/// Reads one fact (for the API and tests).
pub async fn fetch<T: FactTable>(pool: &sqlx::PgPool, key: &str) -> Result<Option<T>, StoreError> {
    let mut conn = pool.acquire().await?;
    Ok(T::load(&mut conn, &[key.to_owned()], false)
        .await?
        .into_iter()
        .next())
}

/// The worker who last took the task (an accepted reservation, wrapped or completed since).
pub async fn latest_accepting_worker(
    pool: &PgPool,
    task_sid: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT worker_sid FROM reservations WHERE task_sid = $1
           AND status IN ('accepted', 'wrapping', 'completed')
         ORDER BY accepted_ms DESC NULLS LAST LIMIT 1",
    )
    .bind(task_sid)
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// A worker's activity and the one before it, as baton last saw them.
pub async fn worker_activities(
    pool: &PgPool,
    worker_sid: &str,
) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT activity_sid, previous_activity_sid FROM workers WHERE worker_sid = $1",
    )
    .bind(worker_sid)
    .fetch_optional(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_text() {
        let mut versions = Versions::new();
        versions.insert(
            "assignment_status".into(),
            Stamp::new(true, 1_700_000_000_123, 4, "tr:sid:EV1"),
        );
        versions.insert(
            "task_queue_sid".into(),
            Stamp::new(false, 1_700_000_000_000, -1, "k"),
        );
        let text = encode_versions(&versions);
        assert!(
            text.starts_with("assignment_status=1,1700000000123,4,"),
            "{text}"
        );
        assert_eq!(decode_versions(&text).unwrap(), versions);
        assert_eq!(decode_versions("").unwrap(), Versions::new());
        assert!(decode_versions("x=1,2").is_err());
    }
}
