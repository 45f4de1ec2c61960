//! Transfer history over the derived `hops`: the list (newest first, keyset pagination) and the
//! stats (counts by outcome, median and p90 time to accept). One query builder serves
//! `GET /api/v1/transfers`, `GET /api/v1/stats/transfers`, `baton history` and the benchmark's
//! EXPLAINs, so what is measured is what is served.

use super::chains::{HopView, HOP_COLUMNS};
use super::StoreError;
use crate::domain::history::{Cursor, GroupBy, StatsQuery, TransferFilter, TransferQuery};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

/// One hop in the list: the hop as the chain shows it, with its chain and the workers' names.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TransferRecord {
    pub chain_id: String,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub hop: HopView,
    pub from_worker_name: Option<String>,
    pub to_worker_name: Option<String>,
    #[serde(skip)]
    pub at_ms: i64,
}

impl TransferRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            at_ms: self.at_ms,
            chain_id: self.chain_id.clone(),
            seq: self.hop.seq,
        }
    }
}

/// A page: the hops, and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TransferPage {
    pub transfers: Vec<TransferRecord>,
    pub next: Option<String>,
}

/// One group of the stats. Seconds are rounded to the millisecond.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TransferStatsRow {
    /// The queue, worker or target type (`None`: hops without one, e.g. not taken by anyone).
    pub group: Option<String>,
    /// The worker's friendly name, or the queue's name as transfers to it gave it.
    pub name: Option<String>,
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
    pub canceled: i64,
    pub returned: i64,
    pub in_flight: i64,
    /// Hops accepted (with a time to accept).
    pub accepted: i64,
    pub median_seconds_to_accept: Option<f64>,
    pub p90_seconds_to_accept: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TransferStats {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub group_by: GroupBy,
    pub groups: Vec<TransferStatsRow>,
}

/// Which side-agnostic filter drives the list's index scans: the most selective one set. A
/// worker or queue matches either side of a hop, so it is two index scans merged.
enum Driver {
    Conversation,
    Worker,
    Queue,
    /// One scan; the planner picks the index (outcome, target type, or time).
    Plain,
}

impl Driver {
    fn of(filter: &TransferFilter) -> Driver {
        if filter.conversation_sid.is_some() {
            Driver::Conversation
        } else if filter.worker_sid.is_some() {
            Driver::Worker
        } else if filter.queue_sid.is_some() {
            Driver::Queue
        } else {
            Driver::Plain
        }
    }

    /// The leading condition of each scan (`None`: no extra condition).
    fn branches(&self) -> Vec<Option<&'static str>> {
        match self {
            Driver::Worker => vec![Some("from_worker_sid"), Some("to_worker_sid")],
            Driver::Queue => vec![Some("from_queue_sid"), Some("to_queue_sid")],
            Driver::Conversation | Driver::Plain => vec![None],
        }
    }
}

/// `AND`s every filter except the driving scan's own column (which `leading` covers).
fn push_conditions(
    qb: &mut QueryBuilder<'_, Postgres>,
    filter: &TransferFilter,
    driver: &Driver,
    leading: Option<&str>,
) {
    qb.push(" WHERE true");
    if let Some(column) = leading {
        let value = match driver {
            Driver::Worker => filter.worker_sid.as_ref(),
            _ => filter.queue_sid.as_ref(),
        };
        qb.push(format!(" AND {column} = "))
            .push_bind(value.map(|s| s.to_string()));
    }
    if let Some(since) = filter.since {
        qb.push(" AND at_ms >= ")
            .push_bind(since.timestamp_millis());
    }
    if let Some(until) = filter.until {
        qb.push(" AND at_ms < ").push_bind(until.timestamp_millis());
    }
    if let (Some(worker), false) = (&filter.worker_sid, matches!(driver, Driver::Worker)) {
        qb.push(" AND (from_worker_sid = ")
            .push_bind(worker.to_string())
            .push(" OR to_worker_sid = ")
            .push_bind(worker.to_string())
            .push(")");
    }
    if let (Some(queue), false) = (&filter.queue_sid, matches!(driver, Driver::Queue)) {
        qb.push(" AND (from_queue_sid = ")
            .push_bind(queue.to_string())
            .push(" OR to_queue_sid = ")
            .push_bind(queue.to_string())
            .push(")");
    }
    if let Some(t) = filter.target_type {
        qb.push(" AND target_type = ").push_bind(t.as_str());
    }
    match filter.outcome.map(|o| o.stored()) {
        Some(Some(outcome)) => {
            qb.push(" AND outcome = ").push_bind(outcome);
        }
        Some(None) => {
            qb.push(" AND outcome IS NULL");
        }
        None => {}
    }
    if let Some(conversation) = &filter.conversation_sid {
        // The chains any of whose tasks named the conversation (task_links keeps every
        // conversation key a task's attributes ever carried).
        qb.push(
            " AND chain_id IN (SELECT ct.chain_id FROM task_links l
                 JOIN chain_tasks ct ON ct.task_sid = l.task_sid WHERE l.link = ",
        )
        .push_bind(format!("conv:{conversation}"))
        .push(")");
    }
}

/// The list's SQL: each scan takes `limit + 1` keys after the cursor in index order, the union
/// is merged and the page's rows joined (one more row than asked says whether a next page
/// exists).
fn push_list<'a>(qb: &mut QueryBuilder<'a, Postgres>, query: &'a TransferQuery) {
    let driver = Driver::of(&query.filter);
    qb.push(format!(
        "SELECT h.chain_id, h.at_ms, {HOP_COLUMNS},
                fw.friendly_name AS from_worker_name, tw.friendly_name AS to_worker_name
         FROM ("
    ));
    for (i, leading) in driver.branches().into_iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ");
        }
        qb.push("(SELECT chain_id, seq, at_ms FROM hops");
        push_conditions(qb, &query.filter, &driver, leading);
        if let Some(cursor) = &query.cursor {
            qb.push(" AND (at_ms, chain_id, seq) < (")
                .push_bind(cursor.at_ms)
                .push(", ")
                .push_bind(cursor.chain_id.as_str())
                .push(", ")
                .push_bind(cursor.seq)
                .push(")");
        }
        qb.push(" ORDER BY at_ms DESC, chain_id DESC, seq DESC LIMIT ")
            .push_bind(query.limit + 1)
            .push(")");
    }
    qb.push(
        ") k JOIN hops h ON h.chain_id = k.chain_id AND h.seq = k.seq
         LEFT JOIN workers fw ON fw.worker_sid = h.from_worker_sid
         LEFT JOIN workers tw ON tw.worker_sid = h.to_worker_sid
         ORDER BY k.at_ms DESC, k.chain_id DESC, k.seq DESC LIMIT ",
    )
    .push_bind(query.limit + 1);
}

/// A page of hops, newest first.
pub async fn list_transfers(
    pool: &PgPool,
    query: &TransferQuery,
) -> Result<TransferPage, StoreError> {
    let mut qb = QueryBuilder::new("");
    push_list(&mut qb, query);
    let mut transfers: Vec<TransferRecord> = qb.build_query_as().fetch_all(pool).await?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next = if transfers.len() > limit {
        transfers.truncate(limit);
        transfers.last().map(|t| t.cursor().encode())
    } else {
        None
    };
    Ok(TransferPage { transfers, next })
}

fn group_column(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::Queue => "to_queue_sid",
        GroupBy::Worker => "to_worker_sid",
        GroupBy::TargetType => "target_type",
        GroupBy::FromQueue => "from_queue_sid",
        GroupBy::FromWorker => "from_worker_sid",
    }
}

fn push_stats<'a>(qb: &mut QueryBuilder<'a, Postgres>, query: &'a StatsQuery) {
    let column = group_column(query.group_by);
    // Queues have no table of their own: their name is what transfers to them called them.
    let name = match query.group_by {
        GroupBy::Worker | GroupBy::FromWorker => {
            "(SELECT w.friendly_name FROM workers w WHERE w.worker_sid = g.grp)"
        }
        GroupBy::Queue | GroupBy::FromQueue => "g.queue_name",
        GroupBy::TargetType => "NULL::text",
    };
    qb.push(format!(
        "SELECT g.grp AS \"group\", {name} AS name, g.total, g.completed, g.failed, g.canceled,
                g.returned, g.in_flight, g.accepted,
                round((g.median_ms / 1000)::numeric, 3)::float8 AS median_seconds_to_accept,
                round((g.p90_ms / 1000)::numeric, 3)::float8 AS p90_seconds_to_accept
         FROM (SELECT {column} AS grp, count(*) AS total,
                      count(*) FILTER (WHERE outcome = 'completed') AS completed,
                      count(*) FILTER (WHERE outcome = 'failed') AS failed,
                      count(*) FILTER (WHERE outcome = 'canceled') AS canceled,
                      count(*) FILTER (WHERE outcome = 'returned') AS returned,
                      count(*) FILTER (WHERE outcome IS NULL) AS in_flight,
                      count(accepted_ms - initiated_ms) AS accepted,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY accepted_ms - initiated_ms)
                          AS median_ms,
                      percentile_cont(0.9) WITHIN GROUP (ORDER BY accepted_ms - initiated_ms)
                          AS p90_ms,
                      max(target_name) FILTER (WHERE target_type = 'queue'
                                               AND target_sid = {column}) AS queue_name
               FROM hops"
    ));
    push_conditions(qb, &query.filter, &Driver::Plain, None);
    qb.push(
        " GROUP BY 1) g
         ORDER BY g.total DESC, g.grp NULLS LAST",
    );
}

/// Counts by outcome and time to accept, per group, over the query's window.
pub async fn transfer_stats(
    pool: &PgPool,
    query: &StatsQuery,
) -> Result<TransferStats, StoreError> {
    let mut qb = QueryBuilder::new("");
    push_stats(&mut qb, query);
    let groups = qb.build_query_as().fetch_all(pool).await?;
    let (Some(since), Some(until)) = (query.filter.since, query.filter.until) else {
        return Err(StoreError::Decode("a stats query without a window".into()));
    };
    Ok(TransferStats {
        since,
        until,
        group_by: query.group_by,
        groups,
    })
}

/// What a history query is, for [`explain`].
pub enum HistoryQuery<'a> {
    List(&'a TransferQuery),
    Stats(&'a StatsQuery),
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the exact SQL [`list_transfers`] or [`transfer_stats`] runs:
/// the plan's lines.
pub async fn explain(pool: &PgPool, query: HistoryQuery<'_>) -> Result<Vec<String>, StoreError> {
    let mut qb = QueryBuilder::new("EXPLAIN (ANALYZE, BUFFERS) ");
    match query {
        HistoryQuery::List(q) => push_list(&mut qb, q),
        HistoryQuery::Stats(q) => push_stats(&mut qb, q),
    }
    let rows: Vec<(String,)> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(|(line,)| line).collect())
}
