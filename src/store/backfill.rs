//! Backfill runs from TaskRouter's Events API and their checkpoints (`backfill_runs`). A page's
//! events go into the inbox in the same transaction that moves the run's checkpoint to the next
//! page, so a run continues exactly where it stopped and its counts are exact.

use super::inbox::{self, NewInboxEvent};
use super::StoreError;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::collections::BTreeSet;

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `baton backfill events`.
    Cli,
    /// The server's reconciler (`BATON_RECONCILE_INTERVAL`).
    Reconcile,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Cli => "cli",
            RunKind::Reconcile => "reconcile",
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    /// Stopped on request (Ctrl-C, shutdown, a page limit) before the last page: resumable.
    Interrupted,
    /// Stopped by an error (Twilio kept failing, an unreadable page): resumable.
    Failed,
    Complete,
    /// Superseded: a new run was started instead of continuing this one.
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
            RunStatus::Complete => "complete",
            RunStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Interrupted,
            RunStatus::Failed,
            RunStatus::Complete,
            RunStatus::Abandoned,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether the run is over (complete or abandoned); the others can be continued.
    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Complete | RunStatus::Abandoned)
    }
}

/// A `backfill_runs` row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub kind: String,
    pub workspace_sid: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub until_given: bool,
    pub page_size: i32,
    pub next_page: Option<String>,
    pub pages: i32,
    pub fetched: i64,
    pub stored: i64,
    pub duplicates: i64,
    pub flagged: i64,
    pub oldest_event_ms: Option<i64>,
    pub status: String,
    pub last_error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Run {
    pub fn status(&self) -> Option<RunStatus> {
        RunStatus::parse(&self.status)
    }

    /// Whether every page has been stored (the last one had no next page).
    pub fn all_pages_stored(&self) -> bool {
        self.pages > 0 && self.next_page.is_none()
    }
}

/// A run to start.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub kind: RunKind,
    pub workspace_sid: &'a str,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub until_given: bool,
    pub page_size: i32,
}

const RUN_COLUMNS: &str = "id, kind, workspace_sid, since, until, until_given, page_size, \
    next_page, pages, fetched, stored, duplicates, flagged, oldest_event_ms, status, last_error, \
    started_at, updated_at, finished_at";

pub async fn create(pool: &PgPool, new: &NewRun<'_>) -> Result<Run, StoreError> {
    let run = sqlx::query_as::<_, Run>(&format!(
        "INSERT INTO backfill_runs (kind, workspace_sid, since, until, until_given, page_size)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {RUN_COLUMNS}"
    ))
    .bind(new.kind.as_str())
    .bind(new.workspace_sid)
    .bind(new.since)
    .bind(new.until)
    .bind(new.until_given)
    .bind(new.page_size)
    .fetch_one(pool)
    .await?;
    Ok(run)
}

pub async fn load(pool: &PgPool, id: i64) -> Result<Option<Run>, StoreError> {
    let run = sqlx::query_as::<_, Run>(&format!(
        "SELECT {RUN_COLUMNS} FROM backfill_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(run)
}

/// The unfinished `baton backfill events` runs of this window, newest first: the same `since`,
/// and the same `until` when one is given (else runs that were given none).
pub async fn resumable(
    pool: &PgPool,
    workspace_sid: &str,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<Run>, StoreError> {
    let runs = sqlx::query_as::<_, Run>(&format!(
        "SELECT {RUN_COLUMNS} FROM backfill_runs
         WHERE kind = 'cli' AND workspace_sid = $1 AND since = $2 AND finished_at IS NULL
           AND CASE WHEN $3::timestamptz IS NULL THEN NOT until_given
                    ELSE until_given AND until = $3 END
         ORDER BY id DESC"
    ))
    .bind(workspace_sid)
    .bind(since)
    .bind(until)
    .fetch_all(pool)
    .await?;
    Ok(runs)
}

/// What a page brought.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    pub rows: &'a [NewInboxEvent],
    /// How many of `rows` are flagged (`interpret_error`).
    pub flagged: usize,
    /// The page after this one; `None` when this was the last.
    pub next_page: Option<&'a str>,
    /// Record the tasks of the events stored (for the run's "chains changed").
    pub track_tasks: bool,
}

/// What storing a page did.
#[derive(Debug, Clone, PartialEq)]
pub struct PageSaved {
    /// The run after the page.
    pub run: Run,
    /// Events new to the inbox.
    pub stored: usize,
    /// Events already in the inbox (from any source).
    pub duplicates: usize,
}

/// Stores a page's events in the inbox and moves the run's checkpoint past the page, in one
/// transaction.
pub async fn save_page(
    pool: &PgPool,
    run_id: i64,
    page: &Page<'_>,
) -> Result<PageSaved, StoreError> {
    let mut tx = pool.begin().await?;
    let keys = inbox::insert_returning_keys(&mut *tx, page.rows).await?;
    let stored_keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    if page.track_tasks {
        let tasks: BTreeSet<&str> = page
            .rows
            .iter()
            .filter(|row| stored_keys.contains(row.event_key.as_str()))
            .filter_map(|row| row.task_sid.as_deref())
            .collect();
        if !tasks.is_empty() {
            sqlx::query(
                "INSERT INTO backfill_run_tasks (run_id, task_sid)
                 SELECT $1, t FROM UNNEST($2::text[]) t ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(tasks.into_iter().collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
    }
    let oldest = page.rows.iter().filter_map(|row| row.event_time_ms).min();
    let stored = keys.len();
    let duplicates = page.rows.len() - stored;
    let run = sqlx::query_as::<_, Run>(&format!(
        "UPDATE backfill_runs
         SET next_page = $2, pages = pages + 1, fetched = fetched + $3, stored = stored + $4,
             duplicates = duplicates + $5, flagged = flagged + $6,
             oldest_event_ms = LEAST(oldest_event_ms, $7), status = 'running', last_error = NULL,
             updated_at = now()
         WHERE id = $1
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(run_id)
    .bind(page.next_page)
    .bind(page.rows.len() as i64)
    .bind(stored as i64)
    .bind(duplicates as i64)
    .bind(page.flagged as i64)
    .bind(oldest)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(PageSaved {
        run,
        stored,
        duplicates,
    })
}

/// Records where a run stopped: `finished_at` is set for complete and abandoned runs.
pub async fn set_status(
    pool: &PgPool,
    run_id: i64,
    status: RunStatus,
    error: Option<&str>,
) -> Result<Run, StoreError> {
    let run = sqlx::query_as::<_, Run>(&format!(
        "UPDATE backfill_runs
         SET status = $2, last_error = $3, updated_at = now(),
             finished_at = CASE WHEN $4 THEN now() END
         WHERE id = $1
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(run_id)
    .bind(status.as_str())
    .bind(error)
    .bind(status.is_finished())
    .fetch_one(pool)
    .await?;
    Ok(run)
}

/// Chains holding a task that an event this run stored concerns, rebuilt by the processor since
/// the run started.
pub async fn chains_changed(pool: &PgPool, run: &Run) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT c.chain_id)
         FROM backfill_run_tasks bt
         JOIN chain_tasks ct ON ct.task_sid = bt.task_sid
         JOIN chains c ON c.chain_id = ct.chain_id
         WHERE bt.run_id = $1 AND c.updated_at >= $2",
    )
    .bind(run.id)
    .bind(run.started_at)
    .fetch_one(pool)
    .await?;
    Ok(n)
}

/// Events API events stored since the run started that the processor has not applied yet
/// (neither processed nor dead-lettered).
pub async fn unprocessed(pool: &PgPool, run: &Run) -> Result<i64, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inbox_progress p JOIN inbox_events e ON e.id = p.event_id
         WHERE p.processed_at IS NULL AND p.dead_at IS NULL
           AND e.source = 'events_api' AND e.received_at >= $1",
    )
    .bind(run.started_at)
    .fetch_one(pool)
    .await?;
    Ok(n)
}

/// The reconciler's latest run of a workspace (any status), and the end of its latest complete
/// one.
pub async fn reconcile_state(
    pool: &PgPool,
    workspace_sid: &str,
) -> Result<(Option<Run>, Option<DateTime<Utc>>), StoreError> {
    let latest = sqlx::query_as::<_, Run>(&format!(
        "SELECT {RUN_COLUMNS} FROM backfill_runs
         WHERE kind = 'reconcile' AND workspace_sid = $1
         ORDER BY started_at DESC, id DESC LIMIT 1"
    ))
    .bind(workspace_sid)
    .fetch_optional(pool)
    .await?;
    let covered: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(until) FROM backfill_runs
         WHERE kind = 'reconcile' AND workspace_sid = $1 AND status = 'complete'",
    )
    .bind(workspace_sid)
    .fetch_one(pool)
    .await?;
    Ok((latest, covered))
}

/// Marks unfinished runs of this kind as abandoned — all of them (runs a crash left behind), or
/// those in `ids` (superseded by a new run). Returns how many.
pub async fn abandon_unfinished(
    pool: &PgPool,
    kind: RunKind,
    workspace_sid: &str,
    ids: Option<&[i64]>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE backfill_runs SET status = 'abandoned', finished_at = now(), updated_at = now()
         WHERE kind = $1 AND workspace_sid = $2 AND finished_at IS NULL
           AND ($3::int8[] IS NULL OR id = ANY($3))",
    )
    .bind(kind.as_str())
    .bind(workspace_sid)
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the reconciler's finished runs older than `days`.
pub async fn prune_reconcile_runs(pool: &PgPool, days: i32) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM backfill_runs
         WHERE kind = 'reconcile' AND finished_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The advisory lock namespace of backfills ("bf").
const LOCK_CLASS: i32 = 0x6266;

/// What a lock is held on.
#[derive(Debug, Clone, Copy)]
pub enum LockKey<'a> {
    /// One run (two `baton backfill events` on one run would fetch its pages twice).
    Run(i64),
    /// A workspace's reconciler (several `baton serve` processes: one reconciles at a time).
    Reconcile(&'a str),
    /// One `baton backfill insights` run.
    InsightsRun(i64),
}

/// A session advisory lock, held on its own connection until released. Dropped unreleased, the
/// connection is closed instead of going back to the pool, which releases the lock.
pub struct AdvisoryLock {
    conn: Option<PoolConnection<Postgres>>,
}

impl std::fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisoryLock").finish_non_exhaustive()
    }
}

impl AdvisoryLock {
    /// Takes the lock if nobody holds it.
    pub async fn try_acquire(
        pool: &PgPool,
        key: LockKey<'_>,
    ) -> Result<Option<AdvisoryLock>, StoreError> {
        let mut conn = pool.acquire().await?;
        let query = match key {
            LockKey::Run(id) => sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(LOCK_CLASS)
                .bind((id % i64::from(i32::MAX)) as i32),
            LockKey::Reconcile(ws) => {
                sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                    .bind(LOCK_CLASS)
                    .bind(format!("reconcile:{ws}"))
            }
            LockKey::InsightsRun(id) => {
                sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                    .bind(LOCK_CLASS)
                    .bind(format!("insights:{id}"))
            }
        };
        let got: bool = query.fetch_one(&mut *conn).await?;
        Ok(got.then_some(AdvisoryLock { conn: Some(conn) }))
    }

    /// Releases the lock (all of this session's backfill locks) and gives the connection back.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                drop(conn.detach());
            }
        }
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}
