//! `baton backfill events`: runs (or continues) a backfill of one window from the command line,
//! with a progress bar when stderr is a terminal, Ctrl-C that stops after the current page, and
//! a summary at the end.

use super::backfill::{BackfillConfig, Backfiller, RunEnd, RunOptions, Stopped};
use super::configuration::BackfillSettings;
use crate::store::backfill::{self as runs, AdvisoryLock, LockKey, NewRun, Run, RunKind};
use crate::store::{self, PoolSettings};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::PgPool;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Twilio keeps this many days of events.
const RETENTION_DAYS: i64 = 30;

/// The summary printed at the end (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run_id: i64,
    /// `complete`, `interrupted` (Ctrl-C or `--max-pages`; run the command again to continue)
    /// or `failed` (also continued by running it again).
    pub status: String,
    /// Whether this invocation continued an earlier one.
    pub resumed: bool,
    pub workspace_sid: String,
    pub since: String,
    pub until: String,
    /// The run's totals, over every invocation.
    pub pages: i32,
    pub fetched: i64,
    pub new: i64,
    pub duplicates: i64,
    pub flagged: i64,
    /// Chains holding a task that a new event concerns, rebuilt by the processor since the run
    /// started.
    pub chains_changed: i64,
    /// New events the processor had not applied when the summary was made.
    pub unprocessed: i64,
    pub error: Option<String>,
    /// This invocation alone.
    pub this_invocation: Invocation,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    pub pages: u32,
    pub fetched: u64,
    pub new: u64,
    pub duplicates: u64,
    pub elapsed_secs: f64,
}

fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn date_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), date)
}

/// Stops the run after the current `unit` (page, chain) on the first Ctrl-C (or SIGTERM); quits
/// at once on a second one (the checkpoint is already safe: each unit commits with it). The
/// handlers are in place when this returns.
pub(crate) fn cancel_on_signals(
    cancel: CancellationToken,
    progress: ProgressBar,
    unit: &'static str,
) {
    let mut signals = Signals::install();
    tokio::spawn(async move {
        signals.next().await;
        progress.suspend(|| {
            eprintln!("baton: stopping after the current {unit} (Ctrl-C again to quit now)")
        });
        cancel.cancel();
        signals.next().await;
        progress
            .suspend(|| eprintln!("baton: quitting; the {unit}s stored so far are checkpointed"));
        std::process::exit(130);
    });
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), registered at once.
struct Signals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                unix: signal(SignalKind::interrupt())
                    .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = self.unix.as_mut() {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The progress bar: the share of the window paged through (the list is newest first), with
/// counts and rate.
fn events_progress_bar(run: &Run) -> ProgressBar {
    progress_bar((run.until - run.since).num_milliseconds().max(1) as u64)
}

/// A bar of `length` steps with a message line below it. Hidden unless stderr is a terminal.
pub(crate) fn progress_bar(length: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}%\n  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_progress(bar: &ProgressBar, run: &Run, invocation: (u64, Instant)) {
    let until_ms = run.until.timestamp_millis();
    let done = if run.all_pages_stored() {
        bar.length().unwrap_or(0)
    } else {
        run.oldest_event_ms
            .map_or(0, |oldest| until_ms.saturating_sub(oldest).max(0) as u64)
    };
    let (fetched_now, started) = invocation;
    let rate = fetched_now as f64 / started.elapsed().as_secs_f64().max(0.001);
    bar.set_position(done);
    bar.set_message(format!(
        "page {} · fetched {} · new {} · duplicates {} · {:.0} events/s{}",
        run.pages,
        run.fetched,
        run.stored,
        run.duplicates,
        rate,
        run.oldest_event_ms
            .map(|ms| format!(" · back to {}", date_ms(ms)))
            .unwrap_or_default()
    ));
}

/// Finds the run to continue (same window, unfinished) or starts one.
async fn open_run(
    pool: &PgPool,
    settings: &BackfillSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<(Run, bool, AdvisoryLock)> {
    let workspace = settings.twilio.workspace_sid.as_str();
    let unfinished = runs::resumable(pool, workspace, settings.since, settings.until).await?;
    if settings.restart && !unfinished.is_empty() {
        let ids: Vec<i64> = unfinished.iter().map(|r| r.id).collect();
        for id in &ids {
            // Another process continuing one of them keeps it.
            if AdvisoryLock::try_acquire(pool, LockKey::Run(*id))
                .await?
                .is_none()
            {
                anyhow::bail!("backfill run {id} of this window is running in another process");
            }
        }
        runs::abandon_unfinished(pool, RunKind::Cli, workspace, Some(&ids)).await?;
    } else if let Some(run) = unfinished.into_iter().next() {
        let Some(lock) = AdvisoryLock::try_acquire(pool, LockKey::Run(run.id)).await? else {
            anyhow::bail!(
                "backfill run {} of this window is running in another process",
                run.id
            );
        };
        return Ok((run, true, lock));
    }
    let run = runs::create(
        pool,
        &NewRun {
            kind: RunKind::Cli,
            workspace_sid: workspace,
            since: settings.since,
            until: settings.until.unwrap_or(now),
            until_given: settings.until.is_some(),
            page_size: settings.page_size as i32,
        },
    )
    .await?;
    let lock = AdvisoryLock::try_acquire(pool, LockKey::Run(run.id))
        .await?
        .context("could not lock the new backfill run")?;
    Ok((run, false, lock))
}

/// Waits (up to `wait`, or until cancelled) for the processor to apply the run's new events.
async fn wait_for_processing(
    pool: &PgPool,
    run: &Run,
    wait: Duration,
    cancel: &CancellationToken,
    bar: &ProgressBar,
) -> anyhow::Result<i64> {
    let deadline = Instant::now() + wait;
    let mut announced = false;
    loop {
        let left = runs::unprocessed(pool, run).await?;
        if left == 0 || Instant::now() >= deadline || cancel.is_cancelled() {
            return Ok(left);
        }
        if bar.is_hidden() && !announced {
            eprintln!(
                "baton: waiting up to {}s for baton serve to apply {left} new events",
                wait.as_secs()
            );
            announced = true;
        }
        bar.set_message(format!(
            "waiting for baton serve to apply {left} new events"
        ));
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

fn print_text(summary: &Summary) {
    let mut out = format!(
        "backfill run {} {}: {} .. {} (workspace {})\n",
        summary.run_id, summary.status, summary.since, summary.until, summary.workspace_sid
    );
    let rate =
        summary.this_invocation.fetched as f64 / summary.this_invocation.elapsed_secs.max(0.001);
    out += &format!(
        "  fetched         {:>8}  ({} pages, {:.0} events/s)\n",
        summary.fetched, summary.pages, rate
    );
    out += &format!(
        "  new             {:>8}  ({} flagged)\n",
        summary.new, summary.flagged
    );
    out += &format!("  duplicates      {:>8}\n", summary.duplicates);
    out += &format!("  chains changed  {:>8}\n", summary.chains_changed);
    if summary.unprocessed > 0 {
        out += &format!(
            "  not yet applied {:>8}  (is `baton serve` running? chains changed counts applied events)\n",
            summary.unprocessed
        );
    }
    print!("{out}");
}

/// Connects (at most `max_connections`) and applies the migrations.
pub(crate) async fn open_database(
    url: &secrecy::SecretString,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let pool = store::connect_lazy(
        url.expose_secret(),
        &PoolSettings {
            max_connections,
            ..PoolSettings::default()
        },
    )
    .context("DATABASE_URL is not a usable Postgres URL")?;
    store::migrate(&pool)
        .await
        .context("database migrations failed")?;
    Ok(pool)
}

pub async fn run(settings: BackfillSettings) -> ExitCode {
    match execute(settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton: backfill failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(settings: BackfillSettings) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    if settings.since < now - chrono::TimeDelta::days(RETENTION_DAYS) {
        eprintln!(
            "baton: note: Twilio keeps {RETENTION_DAYS} days of events; nothing older than {} can be fetched",
            date(now - chrono::TimeDelta::days(RETENTION_DAYS))
        );
    }
    let pool = open_database(&settings.database_url, settings.db_pool_size).await?;
    let client = settings
        .twilio
        .client(Duration::from_secs(30))
        .context("could not build the Twilio HTTP client")?;

    let (run, resumed, lock) = open_run(&pool, &settings, now).await?;
    if resumed && !settings.json {
        eprintln!(
            "baton: continuing backfill run {} ({} pages, {} events fetched so far)",
            run.id, run.pages, run.fetched
        );
    }
    let bar = events_progress_bar(&run);
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone(), bar.clone(), "page");

    let started = Instant::now();
    let backfiller = Backfiller::new(pool.clone(), client, BackfillConfig::default());
    let options = RunOptions {
        max_pages: settings.max_pages,
        track_tasks: true,
    };
    let terminal = std::io::stderr().is_terminal();
    let mut fetched_now: u64 = 0;
    let mut last_fetched = run.fetched;
    show_progress(&bar, &run, (0, started));
    let mut on_page = |run: &Run| {
        fetched_now += (run.fetched - last_fetched).max(0) as u64;
        last_fetched = run.fetched;
        show_progress(&bar, run, (fetched_now, started));
        if !terminal && !settings.json {
            eprintln!(
                "baton: page {}: fetched {}, new {}, duplicates {}",
                run.pages, run.fetched, run.stored, run.duplicates
            );
        }
    };
    let end: RunEnd = backfiller
        .run(run, &options, &cancel, &mut on_page)
        .await
        .context("the backfill could not store a page")?;
    lock.release().await;
    let elapsed = started.elapsed();

    let unprocessed = if end.run.stored > 0 && !settings.wait.is_zero() {
        wait_for_processing(&pool, &end.run, settings.wait, &cancel, &bar).await?
    } else {
        runs::unprocessed(&pool, &end.run).await?
    };
    let chains_changed = runs::chains_changed(&pool, &end.run).await?;
    bar.finish_and_clear();

    let run = &end.run;
    let summary = Summary {
        run_id: run.id,
        status: run.status.clone(),
        resumed,
        workspace_sid: run.workspace_sid.clone(),
        since: date(run.since),
        until: date(run.until),
        pages: run.pages,
        fetched: run.fetched,
        new: run.stored,
        duplicates: run.duplicates,
        flagged: run.flagged,
        chains_changed,
        unprocessed,
        error: run.last_error.clone(),
        this_invocation: Invocation {
            pages: end.counts.pages,
            fetched: end.counts.fetched,
            new: end.counts.stored,
            duplicates: end.counts.duplicates,
            elapsed_secs: elapsed.as_secs_f64(),
        },
    };
    if settings.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_text(&summary);
    }
    let again = || {
        eprintln!(
            "baton: run the same command to continue (e.g. baton backfill events --since {} {})",
            summary.since,
            if run.until_given {
                format!("--until {}", summary.until)
            } else {
                String::new()
            }
        )
    };
    Ok(match &end.stopped {
        Stopped::Complete => ExitCode::SUCCESS,
        Stopped::PageLimit => {
            again();
            ExitCode::SUCCESS
        }
        Stopped::Interrupted => {
            again();
            ExitCode::from(130)
        }
        Stopped::Failed(reason) => {
            eprintln!("baton: backfill stopped: {reason}");
            again();
            ExitCode::FAILURE
        }
    })
}
