//! `baton history chain|transfers|stats`: transfer history straight from the database
//! (`DATABASE_URL`), so it works while `baton serve` is down. The queries are
//! `store::history`'s and `store::chains`', the same the API serves.

use super::configuration::{self, ConfigError, DatabaseArgs};
use super::table::{local_time, local_time_or_dash, Align, Table};
use crate::domain::csv::{csv_of, to_values, HOP_COLUMNS};
use crate::domain::history::{
    parse_limit, Cursor, GroupBy, Param, StatsQuery, TransferFilter, TransferQuery, DEFAULT_LIMIT,
};
use crate::domain::sid::{Sid, SidKind};
use crate::store::chains::{ChainView, HopView};
use crate::store::history::{TransferPage, TransferStats};
use crate::store::{self, PoolSettings};
use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::PgPool;

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// The chain a task belongs to: its tasks in order and every hop with its timings.
    Chain(ChainArgs),
    /// Hops newest first, filtered (the same list as `GET /api/v1/transfers`).
    Transfers(TransfersArgs),
    /// Counts by outcome and median/p90 time to accept, per group (as
    /// `GET /api/v1/stats/transfers`).
    Stats(StatsArgs),
}

/// How to print.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print JSON (the API's body) instead of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (every field; times in UTC, RFC 3339) instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// A task of the chain (WT…).
    pub task_sid: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The filters `transfers` and `stats` share.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Initiated at or after: an ISO 8601 time (2026-11-01T09:00Z; UTC when no zone is
    /// given), a date (2026-11-01) or a duration ago (6h, 2d).
    #[arg(long)]
    pub since: Option<String>,
    /// Initiated before, in the same forms.
    #[arg(long)]
    pub until: Option<String>,
    /// The worker on either side (WK…): who transferred, or who it went to.
    #[arg(long)]
    pub worker: Option<String>,
    /// The queue on either side (WQ…): the one the customer came from, or the one it went to.
    #[arg(long)]
    pub queue: Option<String>,
    /// worker, queue or workflow.
    #[arg(long)]
    pub target_type: Option<String>,
    /// completed, failed, canceled, returned or in_flight.
    #[arg(long)]
    pub outcome: Option<String>,
    /// The customer conversation (CH…).
    #[arg(long)]
    pub conversation: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TransfersArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Hops to print (1 to 500).
    #[arg(long)]
    pub limit: Option<String>,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long)]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// queue (the queue the hop went to), worker (who took it), target_type, from_queue,
    /// from_worker (who transferred).
    #[arg(long)]
    pub group_by: String,
    /// The window defaults to the 30 days before --until (default: now).
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Why the command failed: a flag (exit code 2) or the run.
pub enum HistoryFailure {
    Config(ConfigError),
    Run(anyhow::Error),
}

impl From<ConfigError> for HistoryFailure {
    fn from(e: ConfigError) -> Self {
        HistoryFailure::Config(e)
    }
}

fn invalid(flag: &'static str) -> impl Fn(crate::domain::history::ParamError) -> ConfigError {
    move |e| ConfigError::Invalid {
        name: flag,
        reason: e.reason,
    }
}

impl FilterArgs {
    fn parse(&self, now: chrono::DateTime<chrono::Utc>) -> Result<TransferFilter, ConfigError> {
        let mut filter = TransferFilter::default();
        let flags = [
            (Param::Since, "--since", &self.since),
            (Param::Until, "--until", &self.until),
            (Param::WorkerSid, "--worker", &self.worker),
            (Param::QueueSid, "--queue", &self.queue),
            (Param::TargetType, "--target-type", &self.target_type),
            (Param::Outcome, "--outcome", &self.outcome),
            (Param::ConversationSid, "--conversation", &self.conversation),
        ];
        for (param, flag, value) in flags {
            if let Some(raw) = value {
                filter.set(param, raw, now).map_err(invalid(flag))?;
            }
        }
        filter.check().map_err(|_| ConfigError::Invalid {
            name: "--since",
            reason: "must be before --until".into(),
        })?;
        Ok(filter)
    }
}

async fn connect(database: &DatabaseArgs) -> Result<PgPool, HistoryFailure> {
    let url = configuration::database_url(database)?;
    let settings = PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    };
    let pool = store::connect_lazy(url.expose_secret(), &settings)
        .context("DATABASE_URL is not a usable Postgres URL")
        .map_err(HistoryFailure::Run)?;
    // Read-only: never migrate, but say so when the schema is behind this baton.
    let ready = store::is_ready(&pool)
        .await
        .context("the database could not be reached")
        .map_err(HistoryFailure::Run)?;
    if !ready {
        return Err(HistoryFailure::Run(anyhow::anyhow!(
            "the database is not migrated to this baton's version; run `baton migrate`"
        )));
    }
    Ok(pool)
}

pub async fn run(command: HistoryCommand) -> Result<(), HistoryFailure> {
    let now = chrono::Utc::now();
    match command {
        HistoryCommand::Chain(args) => {
            let task_sid = Sid::parse_kind(args.task_sid.trim(), SidKind::Task).map_err(|e| {
                ConfigError::Invalid {
                    name: "TASK_SID",
                    reason: format!("{:?} {e}", args.task_sid),
                }
            })?;
            let pool = connect(&args.database).await?;
            let chain = store::chains::fetch_chain(&pool, task_sid.as_str())
                .await
                .context("reading the chain failed")
                .map_err(HistoryFailure::Run)?
                .ok_or_else(|| {
                    HistoryFailure::Run(anyhow::anyhow!(
                        "baton has seen no event of task {task_sid}"
                    ))
                })?;
            print!("{}", render_chain(&chain, &args.output));
        }
        HistoryCommand::Transfers(args) => {
            let filter = args.filter.parse(now)?;
            let limit = match &args.limit {
                Some(raw) => parse_limit(raw).map_err(invalid("--limit"))?,
                None => DEFAULT_LIMIT,
            };
            let cursor = args
                .cursor
                .as_deref()
                .map(Cursor::decode)
                .transpose()
                .map_err(invalid("--cursor"))?;
            let query = TransferQuery {
                filter,
                cursor,
                limit,
            };
            let pool = connect(&args.database).await?;
            let page = store::history::list_transfers(&pool, &query)
                .await
                .context("reading the transfers failed")
                .map_err(HistoryFailure::Run)?;
            print!("{}", render_transfers(&page, &args.output));
        }
        HistoryCommand::Stats(args) => {
            let group_by = GroupBy::parse(&args.group_by).map_err(invalid("--group-by"))?;
            let query = StatsQuery::new(args.filter.parse(now)?, group_by, now);
            query.filter.check().map_err(|_| ConfigError::Invalid {
                name: "--since",
                reason: "must be before --until (or now)".into(),
            })?;
            let pool = connect(&args.database).await?;
            let stats = store::history::transfer_stats(&pool, &query)
                .await
                .context("reading the stats failed")
                .map_err(HistoryFailure::Run)?;
            print!("{}", render_stats(&stats, &args.output));
        }
    }
    Ok(())
}

fn pretty(value: &impl serde::Serialize) -> String {
    let mut out = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    out.push('\n');
    out
}

/// `12.5s`, `4m 48s`, `2h 05m`; `-` when unknown.
fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 60.0 => format!("{s:.1}s"),
        Some(s) if s < 3600.0 => format!("{}m {:02}s", (s / 60.0) as i64, (s % 60.0) as i64),
        Some(s) => format!(
            "{}h {:02}m",
            (s / 3600.0) as i64,
            ((s % 3600.0) / 60.0) as i64
        ),
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// Where a hop went: `worker Bob`, `queue Billing`, `workflow WW…`.
fn target(hop: &HopView, to_worker_name: Option<&str>) -> String {
    let what = match hop.target_type.as_deref() {
        Some("worker") => to_worker_name.or(hop.target_sid.as_deref()),
        _ => hop.target_name.as_deref().or(hop.target_sid.as_deref()),
    };
    match (hop.target_type.as_deref(), what) {
        (Some(kind), Some(what)) => format!("{kind} {what}"),
        (Some(kind), None) => kind.to_owned(),
        (None, what) => or_dash(what),
    }
}

fn outcome(hop: &HopView) -> String {
    hop.outcome.clone().unwrap_or_else(|| "in flight".into())
}

fn render_transfers(page: &TransferPage, output: &OutputArgs) -> String {
    if output.json {
        return pretty(page);
    }
    if output.csv {
        return csv_of(&HOP_COLUMNS, &to_values(&page.transfers));
    }
    let mut t = Table::new(&[
        ("INITIATED", Align::Left),
        ("CHAIN", Align::Left),
        ("SEQ", Align::Right),
        ("FROM", Align::Left),
        ("TO", Align::Left),
        ("TARGET", Align::Left),
        ("OUTCOME", Align::Left),
        ("TO ACCEPT", Align::Right),
        ("IN HOP", Align::Right),
    ]);
    for r in &page.transfers {
        let h = &r.hop;
        t.row(vec![
            local_time_or_dash(h.initiated_at),
            r.chain_id.clone(),
            h.seq.to_string(),
            or_dash(
                r.from_worker_name
                    .as_deref()
                    .or(h.from_worker_sid.as_deref()),
            ),
            or_dash(r.to_worker_name.as_deref().or(h.to_worker_sid.as_deref())),
            target(h, r.to_worker_name.as_deref()),
            outcome(h),
            duration(h.seconds_to_accept),
            duration(h.seconds_in_hop),
        ]);
    }
    let mut out = if t.is_empty() {
        String::new()
    } else {
        t.render()
    };
    out.push_str(&format!("{} transfer(s)", page.transfers.len()));
    match &page.next {
        Some(next) => out.push_str(&format!("; more with --cursor {next}\n")),
        None => out.push('\n'),
    }
    out
}

fn render_chain(chain: &ChainView, output: &OutputArgs) -> String {
    if output.json {
        return pretty(chain);
    }
    let hops = to_values(&chain.hops);
    if output.csv {
        let mut hops = hops;
        for h in &mut hops {
            h["chain_id"] = Value::String(chain.chain_id.clone());
        }
        return csv_of(&HOP_COLUMNS, &hops);
    }
    let mut out = format!(
        "chain {}  root {}  started {}\n\n",
        chain.chain_id,
        chain.root_task_sid,
        local_time_or_dash(chain.started_at)
    );
    let mut tasks = Table::new(&[
        ("#", Align::Right),
        ("TASK", Align::Left),
        ("STATUS", Align::Left),
        ("INSIGHTS ID", Align::Left),
    ]);
    for task in &chain.tasks {
        tasks.row(vec![
            task.position.to_string(),
            task.task_sid.clone(),
            or_dash(task.assignment_status.as_deref()),
            or_dash(task.insights_conversation_id.as_deref()),
        ]);
    }
    out.push_str(&tasks.render());
    if chain.hops.is_empty() {
        out.push_str("\nno hops\n");
        return out;
    }
    let mut t = Table::new(&[
        ("SEQ", Align::Right),
        ("INITIATED", Align::Left),
        ("FROM", Align::Left),
        ("TO", Align::Left),
        ("TARGET", Align::Left),
        ("OUTCOME", Align::Left),
        ("TO ACCEPT", Align::Right),
        ("IN HOP", Align::Right),
        ("NOTES", Align::Left),
    ]);
    for h in &chain.hops {
        let side = |task: &str, worker: Option<&str>| match worker {
            Some(w) => format!("{task} ({w})"),
            None => task.to_owned(),
        };
        t.row(vec![
            h.seq.to_string(),
            local_time_or_dash(h.initiated_at),
            side(&h.from_task_sid, h.from_worker_sid.as_deref()),
            side(&h.to_task_sid, h.to_worker_sid.as_deref()),
            target(h, None),
            outcome(h),
            duration(h.seconds_to_accept),
            duration(h.seconds_in_hop),
            h.notes.clone().unwrap_or_default(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

const STATS_CSV: [&str; 11] = [
    "group",
    "name",
    "total",
    "completed",
    "failed",
    "canceled",
    "returned",
    "in_flight",
    "accepted",
    "median_seconds_to_accept",
    "p90_seconds_to_accept",
];

fn render_stats(stats: &TransferStats, output: &OutputArgs) -> String {
    if output.json {
        return pretty(stats);
    }
    if output.csv {
        return csv_of(&STATS_CSV, &to_values(&stats.groups));
    }
    let mut out = format!(
        "transfers initiated from {} to {}, by {}\n\n",
        local_time(stats.since),
        local_time(stats.until),
        stats.group_by.name()
    );
    let group_header = match stats.group_by {
        GroupBy::Queue => "QUEUE",
        GroupBy::FromQueue => "FROM QUEUE",
        GroupBy::Worker => "WORKER",
        GroupBy::FromWorker => "FROM WORKER",
        GroupBy::TargetType => "TARGET TYPE",
    };
    let mut t = Table::new(&[
        (group_header, Align::Left),
        ("NAME", Align::Left),
        ("TOTAL", Align::Right),
        ("COMPLETED", Align::Right),
        ("FAILED", Align::Right),
        ("CANCELED", Align::Right),
        ("RETURNED", Align::Right),
        ("IN FLIGHT", Align::Right),
        ("MEDIAN TO ACCEPT", Align::Right),
        ("P90 TO ACCEPT", Align::Right),
    ]);
    for g in &stats.groups {
        t.row(vec![
            g.group.clone().unwrap_or_else(|| "(none)".into()),
            or_dash(g.name.as_deref()),
            g.total.to_string(),
            g.completed.to_string(),
            g.failed.to_string(),
            g.canceled.to_string(),
            g.returned.to_string(),
            g.in_flight.to_string(),
            duration(g.median_seconds_to_accept),
            duration(g.p90_seconds_to_accept),
        ]);
    }
    if t.is_empty() {
        out.push_str("no transfers\n");
    } else {
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(None), "-");
        assert_eq!(duration(Some(12.04)), "12.0s");
        assert_eq!(duration(Some(288.0)), "4m 48s");
        assert_eq!(duration(Some(7500.0)), "2h 05m");
    }
}
