//! The `baton` command line.

use super::backfill_command;
use super::configuration::{
    self, BackfillEventsArgs, BackfillSettings, ConfigError, DatabaseArgs, ServeArgs, Settings,
};
use super::history_command::{self, HistoryCommand, HistoryFailure};
use super::insights_backfill::{self, InsightsSettings};
use super::startup::{self, Application, BuildOptions};
use super::telemetry;
use super::workflow_command;
use crate::store::{self, PoolSettings};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Durable transfer chains, parks and orphan cleanup for Twilio Flex"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the background workers.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run one orphan sweep: find idle open conversations, confirm with Twilio, close them.
    Sweep(SweepArgs),
    /// Fetch events baton may have missed from Twilio and store them like callbacks.
    #[command(subcommand)]
    Backfill(BackfillCommand),
    /// Transfer history straight from the database (works while `baton serve` is down).
    #[command(subcommand)]
    History(HistoryCommand),
    /// The TaskRouter workflow routes baton's transfer and park attributes need: print them,
    /// check a workflow for them, merge them in.
    #[command(subcommand)]
    Workflow(workflow_command::WorkflowCommand),
}

/// `baton sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The account, and the workspace whose task list confirms that nothing serves a
    /// conversation before it is closed.
    #[command(flatten)]
    pub twilio: configuration::TwilioAccountArgs,
    /// List what would be closed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only conversations with no live task for at least this long (e.g. 30m, 1h, 2d).
    #[arg(long, default_value = "1h")]
    pub older_than: String,
    /// Most conversations looked at.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the closes to be sent.
    #[arg(long, default_value = "60s")]
    pub wait: String,
}

#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Page through TaskRouter's Events API (`GET /v1/Workspaces/{WS}/Events`, 30 days kept)
    /// over a window and feed every event through the inbox; events baton already has are
    /// duplicates, stored once. Resumable: Ctrl-C stops after the current page, and running
    /// the same command again continues.
    Events(Box<BackfillEventsArgs>),
    /// Make every chain task still live in TaskRouter carry its chain id as
    /// `conversations.conversation_id` (Flex Insights' conversation), and report the tasks that
    /// can no longer change. Resumable; `--dry-run` changes nothing.
    Insights(Box<insights_backfill::BackfillInsightsArgs>),
}

/// Exit code 2: configuration error (one line on stderr).
fn config_failure(e: ConfigError) -> ExitCode {
    eprintln!("baton: configuration error: {e}");
    ExitCode::from(2)
}

fn failure(e: anyhow::Error) -> ExitCode {
    tracing::error!(error = format!("{e:#}"), "baton failed");
    eprintln!("baton: {e:#}");
    ExitCode::FAILURE
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => {
            let settings = match Settings::from_args(&args) {
                Ok(s) => s,
                Err(e) => return config_failure(e),
            };
            telemetry::init_tracing(settings.log_format);
            let app =
                match Application::build(&settings, BuildOptions::from_settings(&settings)).await {
                    Ok(app) => app,
                    Err(e) => return failure(e),
                };
            tracing::info!(
                listen = %settings.listen,
                public_url = %settings.public_url,
                port = app.port(),
                "baton is serving"
            );
            startup::stop_on_signals(app.stopper());
            match app.run_until_stopped().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failure(e),
            }
        }
        Command::Migrate(args) => {
            telemetry::init_tracing(configuration::LogFormat::Text);
            let url = match configuration::database_url(&args) {
                Ok(u) => u,
                Err(e) => return config_failure(e),
            };
            let pool = match store::connect_lazy(url.expose_secret(), &PoolSettings::default()) {
                Ok(p) => p,
                Err(_) => {
                    return config_failure(ConfigError::Invalid {
                        name: "DATABASE_URL",
                        reason: "is not a usable Postgres URL".into(),
                    })
                }
            };
            match store::migrate(&pool).await {
                Ok(()) => {
                    eprintln!("baton: migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => failure(anyhow::Error::new(e).context("migrations failed")),
            }
        }
        Command::Sweep(args) => {
            telemetry::init_tracing(configuration::LogFormat::Text);
            match sweep(args).await {
                Ok(code) => code,
                Err(SweepFailure::Config(e)) => config_failure(e),
                Err(SweepFailure::Run(e)) => failure(e),
            }
        }
        // No tracing: stdout is the table, JSON or CSV, stderr one line on failure.
        Command::History(command) => match history_command::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(HistoryFailure::Config(e)) => config_failure(e),
            Err(HistoryFailure::Run(e)) => {
                eprintln!("baton: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Backfill(BackfillCommand::Events(args)) => {
            let settings = match BackfillSettings::from_args(&args, chrono::Utc::now()) {
                Ok(s) => s,
                Err(e) => return config_failure(e),
            };
            telemetry::init_tracing_with_default(configuration::LogFormat::Text, "warn");
            backfill_command::run(settings).await
        }
        Command::Workflow(workflow_command::WorkflowCommand::Render(args)) => {
            workflow_command::render(&args).unwrap_or_else(config_failure)
        }
        Command::Workflow(workflow_command::WorkflowCommand::Check(args)) => {
            telemetry::init_tracing_with_default(configuration::LogFormat::Text, "warn");
            workflow_command::check_command(&args)
                .await
                .unwrap_or_else(config_failure)
        }
        Command::Backfill(BackfillCommand::Insights(args)) => {
            let settings = match InsightsSettings::from_args(&args, chrono::Utc::now()) {
                Ok(s) => s,
                Err(e) => return config_failure(e),
            };
            telemetry::init_tracing_with_default(configuration::LogFormat::Text, "warn");
            insights_backfill::run(settings).await
        }
    }
}

enum SweepFailure {
    Config(ConfigError),
    Run(anyhow::Error),
}

impl From<ConfigError> for SweepFailure {
    fn from(e: ConfigError) -> Self {
        SweepFailure::Config(e)
    }
}

async fn sweep(args: SweepArgs) -> Result<ExitCode, SweepFailure> {
    use crate::app::dispatcher::{Dispatcher, DispatcherConfig};
    use crate::app::orphans::{OrphanConfig, OrphanWorker};
    use anyhow::Context;
    use std::sync::Arc;

    let url = configuration::database_url(&args.database)?;
    let older_than = configuration::duration(&args.older_than, "--older-than")?;
    let wait = configuration::duration(&args.wait, "--wait")?;
    let account = configuration::TwilioAccount::from_args(&args.twilio)?;
    let workspace = account.workspace_sid.clone();
    let run = async {
        let pool = store::connect_lazy(url.expose_secret(), &PoolSettings::default())
            .context("DATABASE_URL is not a usable Postgres URL")?;
        store::migrate(&pool).await.context("migrations failed")?;
        let client = account
            .client(std::time::Duration::from_secs(15))
            .context("could not build the Twilio HTTP client")?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let worker = OrphanWorker::new(
            pool.clone(),
            client.clone(),
            OrphanConfig {
                workspace_sid: workspace.to_string(),
                ..OrphanConfig::default()
            },
            wake.clone(),
        );
        let mut items = worker
            .sweep(args.dry_run, older_than, args.limit)
            .await
            .context("sweep failed")?;
        let sent = |i: &crate::app::orphans::SweepItem| {
            matches!(i.action.as_str(), "closing" | "clearing_invites")
        };
        if !args.dry_run && items.iter().any(sent) {
            // Send the calls now (a running baton would too; the outbox sends each once).
            let config = DispatcherConfig {
                workspace_sid: workspace.to_string(),
                ..DispatcherConfig::default()
            };
            let dispatcher = Dispatcher::new(pool.clone(), client, config, wake);
            let deadline = std::time::Instant::now() + wait;
            let sids: Vec<String> = items
                .iter()
                .filter(|i| sent(i))
                .map(|i| i.conversation_sid.clone())
                .collect();
            loop {
                dispatcher
                    .drain_due()
                    .await
                    .context("sending the calls failed")?;
                let pending = store::conversations::pending_cleanup_calls(&pool, &sids)
                    .await
                    .context("reading the calls failed")?;
                if pending == 0 || std::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            for item in items.iter_mut().filter(|i| sent(i)) {
                let result = if item.action == "closing" {
                    store::conversations::close_result(&pool, &item.conversation_sid).await
                } else {
                    store::conversations::invite_cleanup_result(
                        &pool,
                        &item.conversation_sid,
                        &item.invite_tasks,
                    )
                    .await
                }
                .context("reading the calls failed")?;
                item.action = match result {
                    Some((Some(r), _)) if r == "closed" => "closed".into(),
                    Some((Some(r), _)) if r == "cleared" => "cleared_invites".into(),
                    Some((Some(r), _)) if r == "already_closed" || r == "already_gone" => r,
                    Some((Some(r), _)) => {
                        item.detail = Some(r);
                        "kept".into()
                    }
                    Some((None, Some(state))) if state == "dead" => "dead".into(),
                    _ => "pending".into(),
                };
            }
        }
        Ok::<_, anyhow::Error>(items)
    };
    let items = run.await.map_err(SweepFailure::Run)?;
    if args.json {
        let out = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
        println!("{out}");
    } else {
        print_sweep_table(&items, args.dry_run);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_sweep_table(items: &[crate::app::orphans::SweepItem], dry_run: bool) {
    use crate::app::table::{local_time, Table};
    let mut table = Table::left(&["CONVERSATION", "IDLE SINCE", "ACTION", "DETAIL"]);
    for i in items {
        table.row(vec![
            i.conversation_sid.clone(),
            local_time(i.idle_since),
            i.action.clone(),
            i.detail.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    let closing = items
        .iter()
        .filter(|i| matches!(i.action.as_str(), "would_close" | "closed" | "closing"))
        .count();
    let invites = items
        .iter()
        .filter(|i| {
            matches!(
                i.action.as_str(),
                "would_clear_invites" | "clearing_invites" | "cleared_invites"
            )
        })
        .count();
    let (closed, cleared) = if dry_run {
        (
            "would be closed",
            "would have stale invites cleared (dry run)",
        )
    } else {
        ("closed", "had stale invites cleared")
    };
    println!(
        "{} conversation(s) looked at; {closing} {closed}; {invites} {cleared}",
        items.len()
    );
}
