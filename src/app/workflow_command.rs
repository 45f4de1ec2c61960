//! `baton workflow render|check`: print the TaskRouter workflow configuration baton's transfer
//! and park attributes need (`domain::workflow`), check a live workflow for it
//! (`GET /v1/Workspaces/{WS}/Workflows/{WW}`), and with `--apply` merge the missing routes in
//! (showing the diff first) with `POST … Configuration=`.

use super::configuration::{ConfigError, TwilioAccount, TwilioAccountArgs};
use crate::domain::outbound::{Product, TwilioRequest};
use crate::domain::sid::{Sid, SidKind};
use crate::domain::workflow::{check, line_diff, merge, RouteOptions, RouteState};
use anyhow::Context;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum WorkflowCommand {
    /// Print the workflow configuration JSON baton's transfers (and, with --park, parks) need.
    Render(RouteArgs),
    /// Fetch a workflow and say which of baton's routes it lacks (exit code 1 if any);
    /// `--apply` merges them in, showing the diff first.
    Check(Box<CheckArgs>),
}

/// What the routes are built from.
#[derive(Debug, Clone, clap::Args)]
pub struct RouteArgs {
    /// The queue every worker is in (WQ…): known-worker targets and the default filter.
    #[arg(long)]
    pub everyone_queue: String,
    /// A queue transfers may target (WQ…); repeat for each.
    #[arg(long = "queue")]
    pub queues: Vec<String>,
    /// Add the parked-call route and the resume-from-park routes.
    #[arg(long)]
    pub park: bool,
    /// Seconds a conversation resumed from park waits for its own worker before anyone in the
    /// queue may take it.
    #[arg(long, default_value_t = 120)]
    pub timeout: u32,
}

/// `baton workflow check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The workflow (WW…).
    pub workflow_sid: String,
    #[command(flatten)]
    pub routes: RouteArgs,
    #[command(flatten)]
    pub twilio: TwilioAccountArgs,
    /// Merge the missing routes into the workflow (before a catch-all filter), after printing
    /// the diff of its configuration.
    #[arg(long)]
    pub apply: bool,
}

fn queue_sid(raw: &str, name: &'static str) -> Result<String, ConfigError> {
    Sid::parse_kind(raw.trim(), SidKind::TaskQueue)
        .map(|sid| sid.to_string())
        .map_err(|e| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        })
}

impl RouteArgs {
    pub fn options(&self) -> Result<RouteOptions, ConfigError> {
        Ok(RouteOptions {
            everyone_queue: queue_sid(&self.everyone_queue, "--everyone-queue")?,
            queues: self
                .queues
                .iter()
                .map(|q| queue_sid(q, "--queue"))
                .collect::<Result<_, _>>()?,
            park: self.park,
            timeout: self.timeout,
        })
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

pub fn render(args: &RouteArgs) -> Result<ExitCode, ConfigError> {
    println!("{}", pretty(&args.options()?.render()));
    Ok(ExitCode::SUCCESS)
}

pub async fn check_command(args: &CheckArgs) -> Result<ExitCode, ConfigError> {
    let options = args.routes.options()?;
    let workflow = Sid::parse_kind(args.workflow_sid.trim(), SidKind::Workflow).map_err(|e| {
        ConfigError::Invalid {
            name: "WORKFLOW_SID",
            reason: e.to_string(),
        }
    })?;
    let twilio = TwilioAccount::from_args(&args.twilio)?;
    Ok(
        match run_check(&twilio, workflow.as_str(), &options, args.apply).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("baton: workflow check failed: {e:#}");
                ExitCode::from(3)
            }
        },
    )
}

async fn run_check(
    twilio: &TwilioAccount,
    workflow_sid: &str,
    options: &RouteOptions,
    apply: bool,
) -> anyhow::Result<ExitCode> {
    let client = twilio
        .client(Duration::from_secs(30))
        .context("could not build the Twilio HTTP client")?;
    let path = format!(
        "/v1/Workspaces/{}/Workflows/{workflow_sid}",
        twilio.workspace_sid
    );
    let answer = client
        .send(&TwilioRequest::get(Product::TaskRouter, path.as_str()))
        .await?;
    if !(200..300).contains(&answer.status) {
        anyhow::bail!(
            "fetching the workflow answered HTTP {}: {}",
            answer.status,
            answer.body
        );
    }
    let workflow: Value = serde_json::from_str(&answer.body).context("the workflow is not JSON")?;
    let raw = workflow["configuration"].as_str().unwrap_or("{}");
    let configuration: Value =
        serde_json::from_str(raw).context("the workflow's configuration is not JSON")?;
    let states = check(&configuration, options);
    println!(
        "workflow {workflow_sid} ({})",
        workflow["friendly_name"].as_str().unwrap_or("")
    );
    for (name, state) in &states {
        println!("  {:<8} {name}", state.as_str());
    }
    let lacking = states
        .iter()
        .filter(|(_, s)| *s != RouteState::Present)
        .count();
    if lacking == 0 {
        println!("every route baton needs is present");
        return Ok(ExitCode::SUCCESS);
    }
    if !apply {
        println!("{lacking} route(s) missing or different; --apply merges them in");
        return Ok(ExitCode::from(1));
    }
    let merged = merge(&configuration, options);
    print!("{}", line_diff(&pretty(&configuration), &pretty(&merged)));
    let update = TwilioRequest::post(
        Product::TaskRouter,
        path,
        vec![("Configuration".into(), merged.to_string())],
    );
    let written = client.send(&update).await?;
    if !(200..300).contains(&written.status) {
        anyhow::bail!(
            "updating the workflow answered HTTP {}: {}",
            written.status,
            written.body
        );
    }
    println!("applied: {lacking} route(s) merged into workflow {workflow_sid}");
    Ok(ExitCode::SUCCESS)
}
