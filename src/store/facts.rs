//! The facts tables (`tasks`, `reservations`, `workers`): locked, loaded, merged in the domain,
//! and written back inside the processor's transaction.
//!
//! Rows are (de)serialized with serde: the domain fact structs' field names are the column names.

use super::StoreError;
use crate::domain::facts::{ReservationFact, TaskFact, WorkerFact};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;

/// A facts table: its name, key column and the columns baton writes.
pub trait FactTable: Serialize + DeserializeOwned {
    const TABLE: &'static str;
    const KEY: &'static str;
    const COLUMNS: &'static [&'static str];
    fn key(&self) -> &str;
    fn empty(key: &str) -> Self;
}

impl FactTable for TaskFact {
    const TABLE: &'static str = "tasks";
    const KEY: &'static str = "task_sid";
    const COLUMNS: &'static [&'static str] = &[
        "workspace_sid",
        "assignment_status",
        "attributes_hash",
        "task_queue_sid",
        "workflow_sid",
        "task_channel",
        "priority",
        "canceled_reason",
        "completed_reason",
        "last_event_type",
        "versions",
        "first_event_ms",
        "last_event_ms",
        "deleted",
        "event_count",
    ];
    fn key(&self) -> &str {
        &self.task_sid
    }
    fn empty(key: &str) -> Self {
        TaskFact::new(key)
    }
}

impl FactTable for ReservationFact {
    const TABLE: &'static str = "reservations";
    const KEY: &'static str = "reservation_sid";
    const COLUMNS: &'static [&'static str] = &[
        "task_sid",
        "worker_sid",
        "task_queue_sid",
        "workflow_sid",
        "status",
        "versions",
        "first_event_ms",
        "last_event_ms",
        "event_count",
    ];
    fn key(&self) -> &str {
        &self.reservation_sid
    }
    fn empty(key: &str) -> Self {
        ReservationFact::new(key)
    }
}

impl FactTable for WorkerFact {
    const TABLE: &'static str = "workers";
    const KEY: &'static str = "worker_sid";
    const COLUMNS: &'static [&'static str] = &[
        "friendly_name",
        "activity_sid",
        "activity_name",
        "previous_activity_sid",
        "attributes",
        "versions",
        "first_event_ms",
        "last_event_ms",
        "deleted",
        "event_count",
    ];
    fn key(&self) -> &str {
        &self.worker_sid
    }
    fn empty(key: &str) -> Self {
        WorkerFact::new(key)
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
    let select = format!(
        "SELECT to_jsonb(t) FROM {table} t WHERE {key} = ANY($1) ORDER BY {key} FOR UPDATE",
        table = T::TABLE,
        key = T::KEY
    );
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(&select)
        .bind(&keys)
        .fetch_all(&mut **tx)
        .await?;
    let mut facts = BTreeMap::new();
    for row in rows {
        let fact: T = serde_json::from_value(row)
            .map_err(|e| StoreError::Decode(format!("{}: {e}", T::TABLE)))?;
        facts.insert(fact.key().to_owned(), fact);
    }
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
    let rows = serde_json::to_value(&facts).map_err(|e| StoreError::Decode(e.to_string()))?;
    let set: Vec<String> = T::COLUMNS.iter().map(|c| format!("{c} = x.{c}")).collect();
    let update = format!(
        "UPDATE {table} t SET {set}, updated_at = now()
         FROM jsonb_populate_recordset(NULL::{table}, $1) AS x
         WHERE t.{key} = x.{key}",
        table = T::TABLE,
        key = T::KEY,
        set = set.join(", ")
    );
    sqlx::query(&update).bind(rows).execute(&mut **tx).await?;
    Ok(())
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
fn attributes_hash(attributes: &serde_json::Value) -> i64 {
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
    let select = format!(
        "SELECT to_jsonb(t) FROM {table} t WHERE {key} = $1",
        table = T::TABLE,
        key = T::KEY
    );
    let row: Option<serde_json::Value> = sqlx::query_scalar(&select)
        .bind(key)
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        serde_json::from_value(r).map_err(|e| StoreError::Decode(format!("{}: {e}", T::TABLE)))
    })
    .transpose()
}
