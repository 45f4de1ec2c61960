//! `baton backfill insights`: for every chain baton knows, make each task still live in
//! TaskRouter carry the chain id as its `conversations.conversation_id` (Flex Insights groups a
//! conversation's segments by it, and reads a task's attributes only until it completes). Each
//! task is read (`GET …/Tasks/{WT}`) and, when unlinked, stamped by the same procedure the
//! dispatcher runs for new chains (`twilio::tasks::merge_task_attributes`: ETag, merge into the
//! existing `conversations` object, `If-Match`, a 412 re-reads). Paced to `--rate` requests/s,
//! 429/5xx retried (`domain::retry`), resumable (a chain's report rows and the checkpoint commit
//! together), with a report of every task.

use super::backfill_command::{cancel_on_signals, open_database, progress_bar};
use super::configuration::{window, ConfigError, DatabaseArgs, TwilioAccount, TwilioAccountArgs};
use crate::domain::insights::{self, BackfillAction};
use crate::domain::outbound::stamp_attributes;
use crate::domain::retry::RetryPolicy;
use crate::store::backfill::{AdvisoryLock, LockKey, RunStatus};
use crate::store::insights_backfill::{
    self as runs, ChainToCheck, InsightsRun, NewInsightsRun, TaskRow,
};
use crate::store::{chains, StoreError};
use crate::twilio::tasks::{merge_task_attributes, Pace, Retrying};
use crate::twilio::TwilioClient;
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `baton backfill insights` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillInsightsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub twilio: TwilioAccountArgs,
    /// Only chains still going at or after this time (derived again since), in the forms of
    /// `baton backfill events --since`. Default: every chain.
    #[arg(long)]
    pub since: Option<String>,
    /// Only chains that started before this time. Default: when the run starts (fixed, so a
    /// rerun continues the same selection).
    #[arg(long)]
    pub until: Option<String>,
    /// Read the tasks and report what would be stamped; change nothing in Twilio.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the report (one row per task, every invocation of the run) to this CSV file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Most TaskRouter requests per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Stop after this many chains; running the command again continues.
    #[arg(long)]
    pub max_chains: Option<u32>,
    /// Start a new run even if an unfinished one of the same selection exists.
    #[arg(long)]
    pub restart: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Validated [`BackfillInsightsArgs`].
#[derive(Debug, Clone)]
pub struct InsightsSettings {
    pub database_url: SecretString,
    pub db_pool_size: u32,
    pub twilio: TwilioAccount,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub out: Option<PathBuf>,
    pub rate: f64,
    pub max_chains: Option<u32>,
    pub restart: bool,
    pub json: bool,
}

impl InsightsSettings {
    pub fn from_args(
        args: &BackfillInsightsArgs,
        now: DateTime<Utc>,
    ) -> Result<InsightsSettings, ConfigError> {
        let database_url = super::configuration::database_url(&args.database)?;
        let twilio = TwilioAccount::from_args(&args.twilio)?;
        let (since, until) = window(args.since.as_deref(), args.until.as_deref(), now)?;
        if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 1000.0) {
            return Err(ConfigError::Invalid {
                name: "--rate",
                reason: "must be a number of requests per second above 0 and at most 1000".into(),
            });
        }
        Ok(InsightsSettings {
            database_url,
            db_pool_size: args.database.db_pool_size.clamp(2, 4),
            twilio,
            since,
            until,
            dry_run: args.dry_run,
            out: args.out.clone(),
            rate: args.rate,
            max_chains: args.max_chains.filter(|&n| n > 0),
            restart: args.restart,
            json: args.json,
        })
    }
}

/// How the backfill talks to Twilio.
#[derive(Debug, Clone)]
pub struct InsightsConfig {
    /// 429 (`Retry-After` honoured), 5xx and transport failures are retried by this policy;
    /// past it the run stops (resumable). Another 4xx fails that task only.
    pub policy: RetryPolicy,
    /// Requests per second (TaskRouter limits them per account).
    pub rate: f64,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        InsightsConfig {
            policy: super::backfill::BackfillConfig::default().policy,
            rate: 10.0,
        }
    }
}

/// Why a run returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Every selected chain is done.
    Complete,
    /// Cancelled (Ctrl-C): the checkpoint is after the last chain stored.
    Interrupted,
    /// `--max-chains` reached.
    ChainLimit,
    /// Twilio kept failing (past the retries); the run can be continued.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct InsightsRunEnd {
    pub run: InsightsRun,
    pub stopped: Stopped,
    /// Chains done by this call.
    pub chains: u32,
}

/// What checking one task came to.
enum Checked {
    Row(TaskRow),
    Cancelled,
    /// Twilio kept failing: stop the run here.
    Stop(String),
}

pub struct InsightsBackfiller {
    pool: PgPool,
    client: TwilioClient,
    config: InsightsConfig,
    pace: Pace,
}

impl InsightsBackfiller {
    pub fn new(pool: PgPool, client: TwilioClient, config: InsightsConfig) -> InsightsBackfiller {
        InsightsBackfiller {
            pace: Pace::per_second(config.rate),
            pool,
            client,
            config,
        }
    }

    /// Goes through the run's chains from its checkpoint until the last, `cancel`,
    /// `max_chains` or Twilio failing for good; `on_chain` sees the run and the chain's rows
    /// after each chain stored. Only a database failure is an `Err`.
    pub async fn run(
        &self,
        mut run: InsightsRun,
        max_chains: Option<u32>,
        cancel: &CancellationToken,
        on_chain: &mut (dyn FnMut(&InsightsRun, &[TaskRow]) + Send),
    ) -> Result<InsightsRunEnd, StoreError> {
        let twilio = Retrying {
            client: &self.client,
            policy: &self.config.policy,
            cancel,
            pace: Some(&self.pace),
        };
        let mut done: u32 = 0;
        loop {
            let batch = runs::next_chains(&self.pool, &run, 100).await?;
            let mut ended = None;
            if batch.is_empty() {
                ended = Some((RunStatus::Complete, Stopped::Complete));
            }
            for chain in &batch {
                if cancel.is_cancelled() {
                    ended = Some((RunStatus::Interrupted, Stopped::Interrupted));
                } else if max_chains.is_some_and(|max| done >= max) {
                    ended = Some((RunStatus::Interrupted, Stopped::ChainLimit));
                }
                if ended.is_some() {
                    break;
                }
                match self.check_chain(&twilio, &run, chain).await {
                    Ok(rows) => {
                        self.record_stamps(&run, &rows).await?;
                        run = runs::save_chain(&self.pool, run.id, &chain.chain_id, &rows).await?;
                        done += 1;
                        on_chain(&run, &rows);
                    }
                    Err(Checked::Stop(reason)) => {
                        tracing::warn!(run = run.id, error = %reason, "insights backfill stopped; it can be continued");
                        ended = Some((RunStatus::Failed, Stopped::Failed(reason)));
                        break;
                    }
                    Err(_) => {
                        ended = Some((RunStatus::Interrupted, Stopped::Interrupted));
                        break;
                    }
                }
            }
            if let Some((status, stopped)) = ended {
                let error = match &stopped {
                    Stopped::Failed(reason) => Some(reason.as_str()),
                    _ => None,
                };
                let run = runs::set_status(&self.pool, run.id, status, error).await?;
                return Ok(InsightsRunEnd {
                    run,
                    stopped,
                    chains: done,
                });
            }
        }
    }

    /// Checks the chain's tasks (concurrently; the pace holds the rate).
    async fn check_chain(
        &self,
        twilio: &Retrying<'_>,
        run: &InsightsRun,
        chain: &ChainToCheck,
    ) -> Result<Vec<TaskRow>, Checked> {
        let checks = chain.tasks.iter().map(|(task_sid, position)| {
            self.check_task(twilio, run, &chain.chain_id, task_sid, *position)
        });
        let mut rows = Vec::with_capacity(chain.tasks.len());
        for checked in futures_util::future::join_all(checks).await {
            match checked {
                Checked::Row(row) => rows.push(row),
                other => return Err(other),
            }
        }
        Ok(rows)
    }

    /// Reads the task and, unless this is a dry run, stamps it when it is live and unlinked.
    async fn check_task(
        &self,
        twilio: &Retrying<'_>,
        run: &InsightsRun,
        chain_id: &str,
        task_sid: &str,
        position: i32,
    ) -> Checked {
        let write = !run.dry_run;
        let merged = merge_task_attributes(twilio, &run.workspace_sid, task_sid, |task| {
            let settled = insights::judge(
                task_sid,
                chain_id,
                task.assignment_status.as_deref(),
                &task.attributes,
            );
            if !write || settled.is_some() {
                return None;
            }
            stamp_attributes(&task.attributes, chain_id)
        })
        .await;
        let merged = match merged {
            Ok(merged) => merged,
            Err(_) if twilio.cancel.is_cancelled() => return Checked::Cancelled,
            Err(e) => return Checked::Stop(twilio.failure(&Err(e))),
        };
        let task = merged.task.as_ref();
        let action = match (merged.unchanged, task) {
            (Some(false), _) => BackfillAction::Stamped,
            (Some(true), Some(task)) => insights::judge(
                task_sid,
                chain_id,
                task.assignment_status.as_deref(),
                &task.attributes,
            )
            .unwrap_or(if write {
                BackfillAction::AlreadyLinked
            } else {
                BackfillAction::WouldStamp
            }),
            _ => {
                let response = &merged.response;
                let code = response.error().and_then(|e| e.code);
                if response.status == 404 || code == Some(20404) {
                    BackfillAction::Gone
                } else if response.status == 429 || response.status >= 500 {
                    return Checked::Stop(twilio.failure(&Ok(response.clone())));
                } else if response.status == 412 {
                    BackfillAction::Failed("the task changed under every write (412)".into())
                } else {
                    BackfillAction::Failed(twilio.failure(&Ok(response.clone())))
                }
            }
        };
        Checked::Row(TaskRow {
            task_sid: task_sid.to_owned(),
            chain_id: chain_id.to_owned(),
            position,
            found_id: task.and_then(|t| insights::insights_id(&t.attributes)),
            task_status: task.and_then(|t| t.assignment_status.clone()),
            action: action.label(),
        })
    }

    /// `insights_stamps`, as the dispatcher records them: written, or found carrying the id.
    async fn record_stamps(&self, run: &InsightsRun, rows: &[TaskRow]) -> Result<(), StoreError> {
        if run.dry_run {
            return Ok(());
        }
        for row in rows {
            let already_linked = match row.action.as_str() {
                "stamped" => false,
                "already_linked" if row.found_id.as_deref() == Some(row.chain_id.as_str()) => true,
                _ => continue,
            };
            chains::record_stamp(&self.pool, &row.task_sid, &row.chain_id, already_linked).await?;
        }
        Ok(())
    }
}

/// The summary printed at the end (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run_id: i64,
    /// `complete`, `interrupted` (Ctrl-C or `--max-chains`) or `failed`; the last two are
    /// continued by running the same command again.
    pub status: String,
    pub resumed: bool,
    pub dry_run: bool,
    pub workspace_sid: String,
    pub since: Option<String>,
    pub until: String,
    /// The run's totals, over every invocation.
    pub chains: i32,
    pub tasks: usize,
    pub stamped: usize,
    pub already_linked: usize,
    pub would_stamp: usize,
    pub completed_unchangeable: usize,
    pub gone: usize,
    pub failed: usize,
    pub error: Option<String>,
    /// Where the report was written.
    pub report: Option<String>,
    /// Chains done by this invocation alone, and how long it took.
    pub this_invocation_chains: u32,
    pub elapsed_secs: f64,
}

fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The report as CSV: a header, then one row per task.
pub fn report_csv(rows: &[TaskRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.task_sid.clone(),
                row.chain_id.clone(),
                row.found_id.clone().unwrap_or_default(),
                row.task_status.clone().unwrap_or_default(),
                row.action.clone(),
            ]
        })
        .collect();
    crate::domain::csv::csv(
        &[
            "task_sid",
            "chain_id",
            "found_conversation_id",
            "task_status",
            "action",
        ],
        &rows,
    )
}

/// Finds the run to continue (same selection, unfinished) or starts one.
async fn open_run(
    pool: &PgPool,
    settings: &InsightsSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<(InsightsRun, bool, AdvisoryLock)> {
    let workspace = settings.twilio.workspace_sid.as_str();
    let unfinished = runs::resumable(
        pool,
        workspace,
        settings.since,
        settings.until,
        settings.dry_run,
    )
    .await?;
    let busy = |id| anyhow::anyhow!("insights backfill run {id} is running in another process");
    if settings.restart && !unfinished.is_empty() {
        let ids: Vec<i64> = unfinished.iter().map(|r| r.id).collect();
        for id in &ids {
            if AdvisoryLock::try_acquire(pool, LockKey::InsightsRun(*id))
                .await?
                .is_none()
            {
                return Err(busy(*id));
            }
        }
        runs::abandon(pool, &ids).await?;
    } else if let Some(run) = unfinished.into_iter().next() {
        let lock = AdvisoryLock::try_acquire(pool, LockKey::InsightsRun(run.id))
            .await?
            .ok_or_else(|| busy(run.id))?;
        return Ok((run, true, lock));
    }
    let run = runs::create(
        pool,
        &NewInsightsRun {
            workspace_sid: workspace,
            since: settings.since,
            until: settings.until.unwrap_or(now),
            until_given: settings.until.is_some(),
            dry_run: settings.dry_run,
        },
    )
    .await?;
    let lock = AdvisoryLock::try_acquire(pool, LockKey::InsightsRun(run.id))
        .await?
        .context("could not lock the new insights backfill run")?;
    Ok((run, false, lock))
}

fn summarize(
    end: &InsightsRunEnd,
    rows: &[TaskRow],
    resumed: bool,
    report: Option<String>,
    elapsed: Duration,
) -> Summary {
    let count = |label: &str| rows.iter().filter(|r| r.action == label).count();
    let run = &end.run;
    Summary {
        run_id: run.id,
        status: run.status.clone(),
        resumed,
        dry_run: run.dry_run,
        workspace_sid: run.workspace_sid.clone(),
        since: run.since.map(date),
        until: date(run.until),
        chains: run.chains,
        tasks: rows.len(),
        stamped: count("stamped"),
        already_linked: count("already_linked"),
        would_stamp: count("would_stamp"),
        completed_unchangeable: count("completed_unchangeable"),
        gone: count("gone"),
        failed: rows
            .iter()
            .filter(|r| r.action.starts_with("failed"))
            .count(),
        error: run.last_error.clone(),
        report,
        this_invocation_chains: end.chains,
        elapsed_secs: elapsed.as_secs_f64(),
    }
}

fn print_text(summary: &Summary, rows: &[TaskRow]) {
    let mut out = format!(
        "insights backfill run {} {}{}: chains started before {}{} (workspace {})\n",
        summary.run_id,
        summary.status,
        if summary.dry_run { " (dry run)" } else { "" },
        summary.until,
        summary
            .since
            .as_ref()
            .map(|s| format!(", still going at {s}"))
            .unwrap_or_default(),
        summary.workspace_sid
    );
    for (label, n) in [
        ("chains", summary.chains as usize),
        ("tasks", summary.tasks),
        ("stamped", summary.stamped),
        ("would stamp", summary.would_stamp),
        ("already linked", summary.already_linked),
        ("completed, unchangeable", summary.completed_unchangeable),
        ("gone", summary.gone),
        ("failed", summary.failed),
    ] {
        if n > 0 || matches!(label, "chains" | "tasks") {
            out += &format!("  {label:<24}{n:>8}\n");
        }
    }
    // What stays unlinked in Insights, and why.
    let attention: Vec<&TaskRow> = rows
        .iter()
        .filter(|r| {
            r.action == "completed_unchangeable"
                || r.action == "gone"
                || r.action.starts_with("failed")
        })
        .collect();
    if !attention.is_empty() {
        out += "not linked in Insights:\n";
        for r in attention {
            out += &format!(
                "  {}  chain {}  has {}  {}  {}\n",
                r.task_sid,
                r.chain_id,
                r.found_id.as_deref().unwrap_or("none"),
                r.task_status.as_deref().unwrap_or("-"),
                r.action
            );
        }
    }
    if let Some(path) = &summary.report {
        out += &format!("report: {path}\n");
    }
    print!("{out}");
}

pub async fn run(settings: InsightsSettings) -> ExitCode {
    match execute(settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton: insights backfill failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(settings: InsightsSettings) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let pool = open_database(&settings.database_url, settings.db_pool_size).await?;
    let client = settings
        .twilio
        .client(Duration::from_secs(30))
        .context("could not build the Twilio HTTP client")?;
    let (run, resumed, lock) = open_run(&pool, &settings, now).await?;
    if resumed && !settings.json {
        eprintln!(
            "baton: continuing insights backfill run {} ({} chains done so far)",
            run.id, run.chains
        );
    }
    let total = runs::selected_chains(&pool, &run).await?;
    let bar = progress_bar(total.max(1) as u64);
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone(), bar.clone(), "chain");

    let started = Instant::now();
    let backfiller = InsightsBackfiller::new(
        pool.clone(),
        client,
        InsightsConfig {
            rate: settings.rate,
            ..InsightsConfig::default()
        },
    );
    let terminal = std::io::stderr().is_terminal();
    let mut stamped_now = 0usize;
    bar.set_position(run.chains as u64);
    let mut on_chain = |run: &InsightsRun, rows: &[TaskRow]| {
        let stamped = rows
            .iter()
            .filter(|r| matches!(r.action.as_str(), "stamped" | "would_stamp"))
            .count();
        stamped_now += stamped;
        bar.set_position(run.chains as u64);
        bar.set_message(format!(
            "chain {} of {total} · {} {stamped_now} this time · {:.1} chains/s",
            run.chains,
            if run.dry_run {
                "would stamp"
            } else {
                "stamped"
            },
            f64::from(run.chains) / started.elapsed().as_secs_f64().max(0.001),
        ));
        if !terminal && !settings.json {
            let actions: Vec<String> = rows
                .iter()
                .map(|r| format!("{} {}", r.task_sid, r.action))
                .collect();
            eprintln!(
                "baton: chain {} ({}/{total}): {}",
                rows.first().map_or("", |r| r.chain_id.as_str()),
                run.chains,
                actions.join(", ")
            );
        }
    };
    let end = backfiller
        .run(run, settings.max_chains, &cancel, &mut on_chain)
        .await
        .context("the insights backfill could not store a chain")?;
    lock.release().await;
    bar.finish_and_clear();

    let rows = runs::report(&pool, end.run.id).await?;
    let report = match &settings.out {
        Some(path) => {
            std::fs::write(path, report_csv(&rows))
                .with_context(|| format!("could not write the report to {}", path.display()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let summary = summarize(&end, &rows, resumed, report, started.elapsed());
    if settings.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_text(&summary, &rows);
    }
    let again = || {
        let mut command = String::from("baton backfill insights");
        if let Some(since) = &summary.since {
            command += &format!(" --since {since}");
        }
        if end.run.until_given {
            command += &format!(" --until {}", summary.until);
        }
        if end.run.dry_run {
            command += " --dry-run";
        }
        eprintln!("baton: run the same command to continue (e.g. {command})");
    };
    Ok(match &end.stopped {
        Stopped::Complete => ExitCode::SUCCESS,
        Stopped::ChainLimit => {
            again();
            ExitCode::SUCCESS
        }
        Stopped::Interrupted => {
            again();
            ExitCode::from(130)
        }
        Stopped::Failed(reason) => {
            eprintln!("baton: insights backfill stopped: {reason}");
            again();
            ExitCode::FAILURE
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let rows = vec![TaskRow {
            task_sid: "WT2".into(),
            chain_id: "WT1".into(),
            position: 1,
            found_id: None,
            task_status: Some("assigned".into()),
            action: "failed: HTTP 400, Twilio error 20001: \"bad\"".into(),
        }];
        assert_eq!(
            report_csv(&rows),
            "task_sid,chain_id,found_conversation_id,task_status,action\n\
             WT2,WT1,,assigned,\"failed: HTTP 400, Twilio error 20001: \"\"bad\"\"\"\n"
        );
    }
}
