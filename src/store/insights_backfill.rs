//! `baton backfill insights` runs (`insights_backfill_runs`): the chains they select, their
//! checkpoint (the last chain done, in chain id order) and what they found and did for each task
//! (`insights_backfill_tasks`, the report). A chain's rows and the checkpoint commit together.

use super::backfill::RunStatus;
use super::StoreError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// An `insights_backfill_runs` row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InsightsRun {
    pub id: i64,
    pub workspace_sid: String,
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub until_given: bool,
    pub dry_run: bool,
    pub last_chain_id: Option<String>,
    pub chains: i32,
    pub status: String,
    pub last_error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str = "id, workspace_sid, since, until, until_given, dry_run, last_chain_id, \
    chains, status, last_error, started_at, finished_at";

/// A run to start.
#[derive(Debug, Clone)]
pub struct NewInsightsRun<'a> {
    pub workspace_sid: &'a str,
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub until_given: bool,
    pub dry_run: bool,
}

pub async fn create(pool: &PgPool, new: &NewInsightsRun<'_>) -> Result<InsightsRun, StoreError> {
    Ok(sqlx::query_as::<_, InsightsRun>(&format!(
        "INSERT INTO insights_backfill_runs (workspace_sid, since, until, until_given, dry_run)
         VALUES ($1, $2, $3, $4, $5) RETURNING {RUN_COLUMNS}"
    ))
    .bind(new.workspace_sid)
    .bind(new.since)
    .bind(new.until)
    .bind(new.until_given)
    .bind(new.dry_run)
    .fetch_one(pool)
    .await?)
}

/// The unfinished runs of the same selection, newest first: the same `since`, the same `until`
/// when one is given (else runs given none), the same dry-run choice.
pub async fn resumable(
    pool: &PgPool,
    workspace_sid: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    dry_run: bool,
) -> Result<Vec<InsightsRun>, StoreError> {
    Ok(sqlx::query_as::<_, InsightsRun>(&format!(
        "SELECT {RUN_COLUMNS} FROM insights_backfill_runs
         WHERE workspace_sid = $1 AND finished_at IS NULL AND since IS NOT DISTINCT FROM $2
           AND dry_run = $4
           AND CASE WHEN $3::timestamptz IS NULL THEN NOT until_given
                    ELSE until_given AND until = $3 END
         ORDER BY id DESC"
    ))
    .bind(workspace_sid)
    .bind(since)
    .bind(until)
    .bind(dry_run)
    .fetch_all(pool)
    .await?)
}

/// Marks runs abandoned (superseded by a new one: `--restart`).
pub async fn abandon(pool: &PgPool, ids: &[i64]) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE insights_backfill_runs
         SET status = 'abandoned', finished_at = now(), updated_at = now()
         WHERE id = ANY($1) AND finished_at IS NULL",
    )
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records where a run stopped: `finished_at` is set for complete and abandoned runs.
pub async fn set_status(
    pool: &PgPool,
    run_id: i64,
    status: RunStatus,
    error: Option<&str>,
) -> Result<InsightsRun, StoreError> {
    Ok(sqlx::query_as::<_, InsightsRun>(&format!(
        "UPDATE insights_backfill_runs
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
    .await?)
}

/// The chains of a selection after a chain id: `$1` the last chain done (none: from the first),
/// `$2` since (none: from the start), `$3` until. A chain is selected when its life overlaps the
/// window: it started (or, unknown, was last derived) before `until` and was derived again at or
/// after `since`.
const SELECTED: &str = "($1::text IS NULL OR chain_id > $1)
    AND ($2::timestamptz IS NULL OR updated_at >= $2)
    AND COALESCE(to_timestamp(started_ms / 1000.0), updated_at) < $3";

/// A chain to look at: its id and its tasks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainToCheck {
    pub chain_id: String,
    /// `(task_sid, position)`.
    pub tasks: Vec<(String, i32)>,
}

/// The next `limit` chains of the run's selection after its checkpoint, in chain id order.
pub async fn next_chains(
    pool: &PgPool,
    run: &InsightsRun,
    limit: i64,
) -> Result<Vec<ChainToCheck>, StoreError> {
    let rows: Vec<(String, String, i32)> = sqlx::query_as(&format!(
        "WITH picked AS (
             SELECT chain_id FROM chains WHERE {SELECTED} ORDER BY chain_id LIMIT $4)
         SELECT ct.chain_id, ct.task_sid, ct.position
         FROM picked JOIN chain_tasks ct USING (chain_id)
         ORDER BY ct.chain_id, ct.position, ct.task_sid"
    ))
    .bind(&run.last_chain_id)
    .bind(run.since)
    .bind(run.until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut chains: Vec<ChainToCheck> = Vec::new();
    for (chain_id, task_sid, position) in rows {
        match chains.last_mut() {
            Some(last) if last.chain_id == chain_id => last.tasks.push((task_sid, position)),
            _ => chains.push(ChainToCheck {
                chain_id,
                tasks: vec![(task_sid, position)],
            }),
        }
    }
    Ok(chains)
}

/// One task of the report.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TaskRow {
    pub task_sid: String,
    /// The id it should carry: its chain's.
    pub chain_id: String,
    pub position: i32,
    /// Its `conversations.conversation_id` when read.
    pub found_id: Option<String>,
    /// Its `assignment_status` when read.
    pub task_status: Option<String>,
    pub action: String,
}

/// Stores a chain's rows and moves the checkpoint past it, in one transaction.
pub async fn save_chain(
    pool: &PgPool,
    run_id: i64,
    chain_id: &str,
    rows: &[TaskRow],
) -> Result<InsightsRun, StoreError> {
    let mut tx = pool.begin().await?;
    let column = |f: fn(&TaskRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO insights_backfill_tasks
             (run_id, task_sid, chain_id, position, found_id, task_status, action)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int4[], $5::text[], $6::text[],
                                  $7::text[])
         ON CONFLICT (run_id, task_sid) DO UPDATE SET
             chain_id = EXCLUDED.chain_id, position = EXCLUDED.position,
             found_id = EXCLUDED.found_id, task_status = EXCLUDED.task_status,
             action = EXCLUDED.action",
    )
    .bind(run_id)
    .bind(column(|r| Some(r.task_sid.clone())))
    .bind(column(|r| Some(r.chain_id.clone())))
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(column(|r| r.found_id.clone()))
    .bind(column(|r| r.task_status.clone()))
    .bind(column(|r| Some(r.action.clone())))
    .execute(&mut *tx)
    .await?;
    let run = sqlx::query_as::<_, InsightsRun>(&format!(
        "UPDATE insights_backfill_runs
         SET last_chain_id = $2, chains = chains + 1, status = 'running', last_error = NULL,
             updated_at = now()
         WHERE id = $1
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(run_id)
    .bind(chain_id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(run)
}

/// Every task row of the run, by chain and position.
pub async fn report(pool: &PgPool, run_id: i64) -> Result<Vec<TaskRow>, StoreError> {
    Ok(sqlx::query_as::<_, TaskRow>(
        "SELECT task_sid, chain_id, position, found_id, task_status, action
         FROM insights_backfill_tasks WHERE run_id = $1
         ORDER BY chain_id, position, task_sid",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?)
}

/// How many chains the run's selection holds in all (for the progress bar).
pub async fn selected_chains(pool: &PgPool, run: &InsightsRun) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(&format!("SELECT count(*) FROM chains WHERE {SELECTED}"))
            .bind(None::<String>)
            .bind(run.since)
            .bind(run.until)
            .fetch_one(pool)
            .await?,
    )
}
