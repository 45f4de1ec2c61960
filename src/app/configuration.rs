//! Settings: every one an environment variable and a flag (clap), checked once at startup.
//! A missing or malformed setting stops baton with one line naming it; secrets are never printed.

use crate::domain::chain::CompleteOn;
use crate::domain::sid::{Sid, SidKind};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The database connection (`baton migrate` needs only this).
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Postgres connection URL. `scripts/run` starts a private local Postgres when it is unset.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most database connections this process opens.
    #[arg(long, env = "BATON_DB_POOL_SIZE", default_value_t = 20)]
    pub db_pool_size: u32,
}

/// `baton serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "BATON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The external base URL Twilio calls (e.g. https://baton.example.com). Signatures are checked
    /// against it plus the request's raw path and query, never against the Host header.
    #[arg(long, env = "BATON_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub twilio: TwilioAccountArgs,
    /// Bearer token for the /api/ routes.
    #[arg(long, env = "BATON_OPS_TOKEN", hide_env_values = true)]
    pub ops_token: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "BATON_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Log format.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "BATON_HTTP_WORKERS")]
    pub http_workers: Option<usize>,
    /// Inbox processors in this process.
    #[arg(long, env = "BATON_PROCESSORS", default_value_t = 1)]
    pub processors: usize,
    /// Outbound Twilio REST calls in flight at once (per process).
    #[arg(long, env = "BATON_TWILIO_CONCURRENCY", default_value_t = 16)]
    pub twilio_concurrency: usize,
    /// How long one outbound Twilio REST request may take before it counts as failed (and is
    /// retried).
    #[arg(long, env = "BATON_TWILIO_TIMEOUT", default_value = "15s")]
    pub twilio_timeout: String,
    /// How long a processor's claim on inbox events lasts: a crashed process's events are taken
    /// over by another process (or itself, restarted) once it ends.
    #[arg(long, env = "BATON_INBOX_LEASE", default_value = "30s")]
    pub inbox_lease: String,
    /// How long a dispatcher's claim on an outbound call lasts (longer than
    /// BATON_TWILIO_TIMEOUT, so a slow call is not sent twice): a crashed process's calls are
    /// sent by another once it ends.
    #[arg(long, env = "BATON_OUTBOX_LEASE", default_value = "60s")]
    pub outbox_lease: String,
    /// Concurrent inbox insert statements (deliveries arriving meanwhile are group-committed).
    #[arg(long, env = "BATON_INGEST_WRITERS", default_value_t = 1)]
    pub ingest_writers: usize,
    /// When the transferring agent's side of baton's own transfers is finished: `accepted`
    /// (when the target's reservation is accepted) or `created` (as soon as the transfer task
    /// exists). Other tools' transfers are theirs; a failed transfer with nobody left with the
    /// customer is routed back either way.
    #[arg(long, env = "BATON_COMPLETE_ON", default_value = "accepted")]
    pub complete_on: String,
    /// The workflow baton's own transfers to a worker or queue are routed by (WW…; routes on
    /// `transferTargetSid`/`transferTargetType`, like flex-project-template's "Chat Transfer").
    #[arg(long, env = "BATON_TRANSFER_WORKFLOW_SID")]
    pub transfer_workflow_sid: Option<String>,
    /// How long after a conversation's last task ended baton waits before closing it as an
    /// orphan (a follow-up transfer or re-invite in that time keeps it open). E.g. `30s`.
    #[arg(long, env = "BATON_ORPHAN_GRACE", default_value = "30s")]
    pub orphan_grace: String,
    /// How often the reconciler sweeps for idle open conversations (`off` to disable).
    #[arg(long, env = "BATON_SWEEP_INTERVAL", default_value = "5m")]
    pub sweep_interval: String,
    /// How long a conversation must have had no live task before the sweep looks at it.
    #[arg(long, env = "BATON_SWEEP_OLDER_THAN", default_value = "1h")]
    pub sweep_older_than: String,
    /// On `workflow.timeout` of a conversation task, invite the customer again through this
    /// workflow (WW…) instead of closing the conversation. Unset: close it.
    #[arg(long, env = "BATON_TIMEOUT_FALLBACK_WORKFLOW_SID")]
    pub timeout_fallback_workflow_sid: Option<String>,
    /// How long a parked call may wait before baton un-parks it to its queue (e.g. 10m).
    #[arg(long, env = "BATON_PARK_TTL", default_value = "10m")]
    pub park_ttl: String,
    /// How long processed inbox events are kept (at least 31d: Twilio's Events API keeps 30
    /// days, and a backfill must still find what baton has), or `off` to keep them for ever.
    #[arg(long, env = "BATON_INBOX_RETENTION", default_value = "45d")]
    pub inbox_retention: String,
    /// How long a console sign-in lasts (the session cookie's lifetime). E.g. `8h`.
    #[arg(long, env = "BATON_CONSOLE_SESSION", default_value = "8h")]
    pub console_session: String,
    /// How long a new connection has to send its first request's headers (slow clients are cut
    /// with 408). E.g. `5s`.
    #[arg(long, env = "BATON_HEADER_TIMEOUT", default_value = "5s")]
    pub header_timeout: String,
    /// How long a request has to send its whole body once its headers are in (slow clients are
    /// cut with 408). E.g. `10s`.
    #[arg(long, env = "BATON_BODY_TIMEOUT", default_value = "10s")]
    pub body_timeout: String,
    /// Seconds to finish in-flight requests and claimed work after SIGTERM.
    #[arg(long, env = "BATON_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Run the Events API backfill over the recent past this often (`off` to disable), so an
    /// event whose callback never arrived is recovered within minutes: TaskRouter does not send
    /// a failed callback again.
    #[arg(long, env = "BATON_RECONCILE_INTERVAL", default_value = "5m")]
    pub reconcile_interval: String,
}

/// The Twilio account and workspace a command talks to (commands without an HTTP server).
#[derive(Debug, Clone, Args)]
pub struct TwilioAccountArgs {
    /// Twilio account SID (AC…).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token; a comma-separated list is accepted so a rotated token and its
    /// successor both validate callbacks (calls to Twilio use the first).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// TaskRouter workspace SID (WS…).
    #[arg(long, env = "TWILIO_WORKSPACE_SID")]
    pub twilio_workspace_sid: Option<String>,
    /// Send every outbound Twilio REST call to this base instead of Twilio's hosts (tests, load
    /// runs).
    #[arg(long, env = "TWILIO_API_BASE_URL")]
    pub twilio_api_base_url: Option<String>,
}

impl TwilioAccountArgs {
    /// Every auth token of the comma-separated list (at least one).
    pub fn auth_tokens(&self) -> Result<Vec<SecretString>, ConfigError> {
        let tokens: Vec<SecretString> = required(&self.twilio_auth_token, "TWILIO_AUTH_TOKEN")?
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .collect();
        if tokens.is_empty() {
            return Err(ConfigError::Missing {
                name: "TWILIO_AUTH_TOKEN",
            });
        }
        Ok(tokens)
    }
}

/// Validated [`TwilioAccountArgs`].
#[derive(Debug, Clone)]
pub struct TwilioAccount {
    pub account_sid: Sid,
    pub auth_token: SecretString,
    pub workspace_sid: Sid,
    pub twilio_api_base_url: Option<Url>,
}

impl TwilioAccount {
    pub fn from_args(args: &TwilioAccountArgs) -> Result<TwilioAccount, ConfigError> {
        let account_sid = sid(
            &args.twilio_account_sid,
            "TWILIO_ACCOUNT_SID",
            SidKind::Account,
        )?;
        let auth_token = args
            .auth_tokens()?
            .into_iter()
            .next()
            .ok_or(ConfigError::Missing {
                name: "TWILIO_AUTH_TOKEN",
            })?;
        let workspace_sid = sid(
            &args.twilio_workspace_sid,
            "TWILIO_WORKSPACE_SID",
            SidKind::Workspace,
        )?;
        let twilio_api_base_url =
            optional_http_url(&args.twilio_api_base_url, "TWILIO_API_BASE_URL")?;
        Ok(TwilioAccount {
            account_sid,
            auth_token,
            workspace_sid,
            twilio_api_base_url,
        })
    }

    /// A REST client for this account.
    pub fn client(&self, timeout: Duration) -> Result<crate::twilio::TwilioClient, reqwest::Error> {
        crate::twilio::TwilioClient::new(
            self.account_sid.as_str(),
            self.auth_token.clone(),
            self.twilio_api_base_url.clone(),
            timeout,
        )
    }
}

/// `(since, until)`, each optional.
pub type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A window given as `--since`/`--until` (each optional): parsed by [`parse_time_arg`], `--until`
/// not in the future, `--since` before `--until` (or now).
pub fn window(
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Window, ConfigError> {
    let parse = |raw: Option<&str>, name: &'static str| {
        raw.map(|raw| {
            parse_time_arg(raw, now).map_err(|reason| ConfigError::Invalid { name, reason })
        })
        .transpose()
    };
    let since = parse(since, "--since")?;
    let until = parse(until, "--until")?;
    if until.is_some_and(|until| until > now) {
        return Err(ConfigError::Invalid {
            name: "--until",
            reason: "is in the future; leave it out to backfill up to now".into(),
        });
    }
    if since.is_some_and(|since| since >= until.unwrap_or(now)) {
        return Err(ConfigError::Invalid {
            name: "--since",
            reason: "must be before --until (or now)".into(),
        });
    }
    Ok((since, until))
}

/// `baton backfill events` settings: the database and the Twilio account (no HTTP server).
#[derive(Debug, Clone, Args)]
pub struct BackfillEventsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub twilio: TwilioAccountArgs,
    /// Start of the window: an ISO 8601 time (2026-11-01T00:00Z; UTC when no zone is given), a
    /// date (2026-11-01), or a duration ago (6h, 2d). Twilio keeps 30 days of events.
    #[arg(long)]
    pub since: String,
    /// End of the window, in the same forms. Default: now (fixed when the run starts, so a
    /// rerun continues the same window).
    #[arg(long)]
    pub until: Option<String>,
    /// Events per page (Twilio allows at most 1000).
    #[arg(long, default_value_t = 1000)]
    pub page_size: u32,
    /// Stop after this many pages; running the command again continues.
    #[arg(long)]
    pub max_pages: Option<u32>,
    /// At the end, wait up to this many seconds for baton's processor to apply the new events
    /// ("chains changed" counts applied events only); 0: do not wait.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
    /// Start a new run even if an unfinished one of the same window exists.
    #[arg(long)]
    pub restart: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Validated `baton backfill events` settings.
#[derive(Debug, Clone)]
pub struct BackfillSettings {
    pub database_url: SecretString,
    pub db_pool_size: u32,
    pub twilio: TwilioAccount,
    pub since: DateTime<Utc>,
    /// `None`: up to the run's start.
    pub until: Option<DateTime<Utc>>,
    pub page_size: u32,
    pub max_pages: Option<u32>,
    pub wait: Duration,
    pub restart: bool,
    pub json: bool,
}

/// A point in time on the command line (the API's `since`/`until` take the same forms).
pub use crate::domain::history::parse_time as parse_time_arg;

impl BackfillSettings {
    pub fn from_args(args: &BackfillEventsArgs, now: DateTime<Utc>) -> Result<Self, ConfigError> {
        let database_url = database_url(&args.database)?;
        let twilio = TwilioAccount::from_args(&args.twilio)?;
        let (since, until) = window(Some(&args.since), args.until.as_deref(), now)?;
        let since = since.ok_or(ConfigError::Missing { name: "--since" })?;
        if args.page_size == 0 || args.page_size > 1000 {
            return Err(ConfigError::Invalid {
                name: "--page-size",
                reason: "must be between 1 and 1000".into(),
            });
        }
        Ok(BackfillSettings {
            database_url,
            db_pool_size: args.database.db_pool_size.clamp(2, 4),
            twilio,
            since,
            until,
            page_size: args.page_size,
            max_pages: args.max_pages.filter(|&n| n > 0),
            wait: Duration::from_secs(args.wait_secs),
            restart: args.restart,
            json: args.json,
        })
    }
}

/// A setting that is missing or malformed; `Display` is the one line printed at startup.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not set")]
    Missing { name: &'static str },
    #[error("{name} {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Validated settings for `baton serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub db_pool_size: u32,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub account_sid: Sid,
    pub auth_tokens: Vec<SecretString>,
    pub workspace_sid: Sid,
    pub twilio_api_base_url: Option<Url>,
    pub ops_token: SecretString,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    pub http_workers: Option<usize>,
    pub processors: usize,
    pub ingest_writers: usize,
    pub twilio_concurrency: usize,
    /// `BATON_TWILIO_TIMEOUT`: one outbound request.
    pub twilio_timeout: Duration,
    /// `BATON_INBOX_LEASE`: a processor's claim on inbox events.
    pub inbox_lease: Duration,
    /// `BATON_OUTBOX_LEASE`: a dispatcher's claim on an outbound call.
    pub outbox_lease: Duration,
    pub complete_on: CompleteOn,
    pub transfer_workflow_sid: Option<Sid>,
    pub orphan_grace: Duration,
    pub sweep_interval: Option<Duration>,
    pub sweep_older_than: Duration,
    pub timeout_fallback_workflow_sid: Option<Sid>,
    pub park_ttl: Duration,
    pub shutdown_timeout: Duration,
    /// `BATON_HEADER_TIMEOUT`: a new connection's first request headers must arrive within it.
    pub header_timeout: Duration,
    /// `BATON_BODY_TIMEOUT`: a request body must arrive within it once the headers are in.
    pub body_timeout: Duration,
    /// `BATON_RECONCILE_INTERVAL`; `None`: off.
    pub reconcile_interval: Option<Duration>,
    /// `BATON_INBOX_RETENTION`; `None`: processed events are kept for ever.
    pub inbox_retention: Option<Duration>,
    /// `BATON_CONSOLE_SESSION`: how long a console sign-in lasts.
    pub console_session: Duration,
}

/// A duration such as `30s`, `5m`, `1h 30m`.
pub fn duration(raw: &str, name: &'static str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(raw.trim()).map_err(|e| ConfigError::Invalid {
        name,
        reason: format!("must be a duration such as 30s, 5m or 1h ({e})"),
    })
}

/// A duration that is not zero (a zero timeout would refuse every request).
fn positive_duration(raw: &str, name: &'static str) -> Result<Duration, ConfigError> {
    let d = duration(raw, name)?;
    if d.is_zero() {
        return Err(ConfigError::Invalid {
            name,
            reason: "must be longer than 0s".into(),
        });
    }
    Ok(d)
}

/// A duration, or `off` (also `0`) for none.
pub fn optional_duration(raw: &str, name: &'static str) -> Result<Option<Duration>, ConfigError> {
    match raw.trim() {
        "off" | "none" | "0" | "" => Ok(None),
        other => duration(other, name).map(|d| (!d.is_zero()).then_some(d)),
    }
}

fn optional_sid(
    value: &Option<String>,
    name: &'static str,
    kind: SidKind,
) -> Result<Option<Sid>, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => Some(sid(&Some(raw.to_owned()), name, kind)).transpose(),
        _ => Ok(None),
    }
}

fn required(value: &Option<String>, name: &'static str) -> Result<String, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(ConfigError::Missing { name }),
    }
}

fn optional_http_url(
    value: &Option<String>,
    name: &'static str,
) -> Result<Option<Url>, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => http_url(raw, name).map(Some),
        _ => Ok(None),
    }
}

fn http_url(raw: &str, name: &'static str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::Invalid {
        name,
        reason: format!("is not a valid URL ({e})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            name,
            reason: "must be an http:// or https:// URL".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::Invalid {
            name,
            reason: "must not have a query or fragment".into(),
        });
    }
    Ok(url)
}

fn sid(value: &Option<String>, name: &'static str, kind: SidKind) -> Result<Sid, ConfigError> {
    let raw = required(value, name)?;
    Sid::parse_kind(&raw, kind).map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })
}

/// Checks a database URL without ever echoing it (it may hold a password).
pub fn database_url(args: &DatabaseArgs) -> Result<SecretString, ConfigError> {
    let raw = required(&args.database_url, "DATABASE_URL")?;
    let url = Url::parse(&raw).map_err(|_| ConfigError::Invalid {
        name: "DATABASE_URL",
        reason: "is not a valid URL".into(),
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(ConfigError::Invalid {
            name: "DATABASE_URL",
            reason: "must be a postgres:// URL".into(),
        });
    }
    Ok(SecretString::from(raw))
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let database_url = database_url(&args.database)?;
        let listen = args
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::Invalid {
                name: "BATON_LISTEN",
                reason: "must be an address and port such as 127.0.0.1:8080".into(),
            })?;
        let public_url = http_url(
            &required(&args.public_url, "BATON_PUBLIC_URL")?,
            "BATON_PUBLIC_URL",
        )?;
        let TwilioAccount {
            account_sid,
            workspace_sid,
            twilio_api_base_url,
            ..
        } = TwilioAccount::from_args(&args.twilio)?;
        let auth_tokens = args.twilio.auth_tokens()?;
        let ops_token = required(&args.ops_token, "BATON_OPS_TOKEN")?;
        if ops_token.len() < 16 {
            return Err(ConfigError::Invalid {
                name: "BATON_OPS_TOKEN",
                reason: "must be at least 16 characters".into(),
            });
        }
        if args.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                name: "BATON_MAX_BODY_BYTES",
                reason: "must be at least 1024".into(),
            });
        }
        if args.ingest_writers == 0 || args.ingest_writers > 64 {
            return Err(ConfigError::Invalid {
                name: "BATON_INGEST_WRITERS",
                reason: "must be between 1 and 64".into(),
            });
        }
        if args.processors > 64 {
            return Err(ConfigError::Invalid {
                name: "BATON_PROCESSORS",
                reason: "must be at most 64".into(),
            });
        }
        let complete_on = args
            .complete_on
            .trim()
            .parse::<CompleteOn>()
            .map_err(|reason| ConfigError::Invalid {
                name: "BATON_COMPLETE_ON",
                reason,
            })?;
        let transfer_workflow_sid = optional_sid(
            &args.transfer_workflow_sid,
            "BATON_TRANSFER_WORKFLOW_SID",
            SidKind::Workflow,
        )?;
        let timeout_fallback_workflow_sid = optional_sid(
            &args.timeout_fallback_workflow_sid,
            "BATON_TIMEOUT_FALLBACK_WORKFLOW_SID",
            SidKind::Workflow,
        )?;
        let orphan_grace = duration(&args.orphan_grace, "BATON_ORPHAN_GRACE")?;
        let sweep_interval = optional_duration(&args.sweep_interval, "BATON_SWEEP_INTERVAL")?;
        let sweep_older_than = duration(&args.sweep_older_than, "BATON_SWEEP_OLDER_THAN")?;
        let park_ttl = duration(&args.park_ttl, "BATON_PARK_TTL")?;
        let header_timeout = positive_duration(&args.header_timeout, "BATON_HEADER_TIMEOUT")?;
        let body_timeout = positive_duration(&args.body_timeout, "BATON_BODY_TIMEOUT")?;
        let reconcile_interval =
            optional_duration(&args.reconcile_interval, "BATON_RECONCILE_INTERVAL")?;
        if reconcile_interval.is_some_and(|d| d < Duration::from_secs(10)) {
            return Err(ConfigError::Invalid {
                name: "BATON_RECONCILE_INTERVAL",
                reason: "must be at least 10s (or off)".into(),
            });
        }
        let twilio_timeout = duration(&args.twilio_timeout, "BATON_TWILIO_TIMEOUT")?;
        if twilio_timeout < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                name: "BATON_TWILIO_TIMEOUT",
                reason: "must be at least 100ms".into(),
            });
        }
        let inbox_lease = duration(&args.inbox_lease, "BATON_INBOX_LEASE")?;
        if inbox_lease < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                name: "BATON_INBOX_LEASE",
                reason: "must be at least 1s".into(),
            });
        }
        let outbox_lease = duration(&args.outbox_lease, "BATON_OUTBOX_LEASE")?;
        if outbox_lease <= twilio_timeout {
            return Err(ConfigError::Invalid {
                name: "BATON_OUTBOX_LEASE",
                reason: "must be longer than BATON_TWILIO_TIMEOUT".into(),
            });
        }
        let inbox_retention = optional_duration(&args.inbox_retention, "BATON_INBOX_RETENTION")?;
        if inbox_retention.is_some_and(|d| d < crate::app::retention::MIN_RETENTION) {
            return Err(ConfigError::Invalid {
                name: "BATON_INBOX_RETENTION",
                reason: "must be at least 31d (Twilio's Events API keeps 30 days of events) or off"
                    .into(),
            });
        }
        let console_session = positive_duration(&args.console_session, "BATON_CONSOLE_SESSION")?;
        Ok(Settings {
            database_url,
            db_pool_size: args.database.db_pool_size.max(2),
            listen,
            public_url,
            account_sid,
            auth_tokens,
            workspace_sid,
            twilio_api_base_url,
            ops_token: SecretString::from(ops_token),
            max_body_bytes: args.max_body_bytes,
            log_format: args.log_format,
            http_workers: args.http_workers,
            processors: args.processors,
            ingest_writers: args.ingest_writers,
            twilio_concurrency: args.twilio_concurrency.clamp(1, 256),
            twilio_timeout,
            inbox_lease,
            outbox_lease,
            complete_on,
            transfer_workflow_sid,
            orphan_grace,
            sweep_interval,
            sweep_older_than,
            timeout_fallback_workflow_sid,
            park_ttl,
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout_secs),
            header_timeout,
            body_timeout,
            reconcile_interval,
            inbox_retention,
            console_session,
        })
    }

    /// The public base URL without a trailing slash, to which request paths are appended.
    pub fn public_base(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    /// [`Settings::public_base`] once the server listens on `port`: a public URL on port 0
    /// means "this server's own port" (tests and demos that let the OS pick one).
    pub fn public_base_on(&self, port: u16) -> String {
        let mut url = self.public_url.clone();
        if url.port() == Some(0) {
            let _ = url.set_port(Some(port));
        }
        url.as_str().trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(args_override_self = true)]
    struct TestCli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    const TOKEN: &str = "s3cr3t-auth-token-value";

    fn args(extra: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec![
            "baton",
            "--database-url",
            "postgres://u:hunter2@localhost/baton",
            "--public-url",
            "https://baton.example.com/",
            "--twilio-account-sid",
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "--twilio-auth-token",
            TOKEN,
            "--twilio-workspace-sid",
            "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "--ops-token",
            "0123456789abcdef0123",
        ];
        argv.extend_from_slice(extra);
        Settings::from_args(&TestCli::parse_from(argv).serve)
    }

    #[test]
    fn valid_settings_parse() {
        let s = args(&["--twilio-auth-token", "old-token,new-token"]).unwrap();
        assert_eq!(s.public_base(), "https://baton.example.com");
        assert_eq!(s.auth_tokens.len(), 2);
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn wrong_sid_prefix_names_the_setting() {
        let e = args(&[
            "--twilio-workspace-sid",
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "TWILIO_WORKSPACE_SID must start with WS (a TaskRouter workspace SID)"
        );
    }

    #[test]
    fn durations_parse_and_name_the_setting() {
        let s = args(&["--orphan-grace", "2s", "--sweep-interval", "off"]).unwrap();
        assert_eq!(s.orphan_grace, Duration::from_secs(2));
        assert_eq!(s.sweep_interval, None);
        assert_eq!(s.sweep_older_than, Duration::from_secs(3600));
        let s = args(&[]).unwrap();
        assert_eq!(s.orphan_grace, Duration::from_secs(30));
        assert_eq!(s.sweep_interval, Some(Duration::from_secs(300)));
        let e = args(&["--orphan-grace", "soon"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("BATON_ORPHAN_GRACE must be a duration"),
            "{e}"
        );
    }

    #[test]
    fn request_timeouts_default_parse_and_refuse_zero() {
        let s = args(&[]).unwrap();
        assert_eq!(s.header_timeout, Duration::from_secs(5));
        assert_eq!(s.body_timeout, Duration::from_secs(10));
        let s = args(&["--header-timeout", "500ms", "--body-timeout", "1m"]).unwrap();
        assert_eq!(s.header_timeout, Duration::from_millis(500));
        assert_eq!(s.body_timeout, Duration::from_secs(60));
        let e = args(&["--body-timeout", "0s"]).unwrap_err();
        assert_eq!(e.to_string(), "BATON_BODY_TIMEOUT must be longer than 0s");
    }

    #[test]
    fn leases_and_the_twilio_timeout_parse_and_are_checked_against_each_other() {
        let s = args(&[]).unwrap();
        assert_eq!(s.inbox_lease, Duration::from_secs(30));
        assert_eq!(s.outbox_lease, Duration::from_secs(60));
        assert_eq!(s.twilio_timeout, Duration::from_secs(15));
        let s = args(&[
            "--inbox-lease",
            "2s",
            "--outbox-lease",
            "3s",
            "--twilio-timeout",
            "1500ms",
        ])
        .unwrap();
        assert_eq!(s.inbox_lease, Duration::from_secs(2));
        assert_eq!(s.outbox_lease, Duration::from_secs(3));
        assert_eq!(s.twilio_timeout, Duration::from_millis(1500));
        assert_eq!(
            args(&["--outbox-lease", "10s"]).unwrap_err().to_string(),
            "BATON_OUTBOX_LEASE must be longer than BATON_TWILIO_TIMEOUT"
        );
        assert_eq!(
            args(&["--inbox-lease", "100ms"]).unwrap_err().to_string(),
            "BATON_INBOX_LEASE must be at least 1s"
        );
    }

    #[test]
    fn unparseable_url_names_the_setting() {
        let e = args(&["--public-url", "not a url"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("BATON_PUBLIC_URL is not a valid URL"),
            "{e}"
        );
        let e = args(&["--twilio-api-base-url", "ftp://x"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TWILIO_API_BASE_URL must be an http:// or https:// URL"
        );
    }

    #[test]
    fn inbox_retention_defaults_to_45_days_and_must_outlast_the_events_api() {
        let day = 24 * 3600;
        assert_eq!(
            args(&[]).unwrap().inbox_retention,
            Some(Duration::from_secs(45 * day))
        );
        assert_eq!(
            args(&["--inbox-retention", "off"]).unwrap().inbox_retention,
            None
        );
        assert_eq!(
            args(&["--inbox-retention", "90d"]).unwrap().inbox_retention,
            Some(Duration::from_secs(90 * day))
        );
        let e = args(&["--inbox-retention", "7d"]).unwrap_err().to_string();
        assert!(e.contains("BATON_INBOX_RETENTION"), "{e}");
        assert!(e.contains("at least 31d"), "{e}");
    }

    #[test]
    fn the_reconcile_interval_is_five_minutes_by_default_and_parses_like_a_duration() {
        assert_eq!(
            args(&[]).unwrap().reconcile_interval,
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            args(&["--reconcile-interval", "off"])
                .unwrap()
                .reconcile_interval,
            None
        );
        assert_eq!(
            args(&["--reconcile-interval", "5m"])
                .unwrap()
                .reconcile_interval,
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            args(&["--reconcile-interval", "1h 30m"])
                .unwrap()
                .reconcile_interval,
            Some(Duration::from_secs(5400))
        );
        let e = args(&["--reconcile-interval", "often"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("BATON_RECONCILE_INTERVAL must be a duration such as 30s, 5m or 1h"),
            "{e}"
        );
        assert_eq!(
            args(&["--reconcile-interval", "2s"])
                .unwrap_err()
                .to_string(),
            "BATON_RECONCILE_INTERVAL must be at least 10s (or off)"
        );
    }

    fn backfill(extra: &[&str]) -> Result<BackfillSettings, ConfigError> {
        #[derive(Parser)]
        struct BackfillCli {
            #[command(flatten)]
            events: BackfillEventsArgs,
        }
        let mut argv = vec![
            "baton",
            "--database-url",
            "postgres://u:hunter2@localhost/baton",
            "--twilio-account-sid",
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "--twilio-auth-token",
            "first-token,second-token",
            "--twilio-workspace-sid",
            "WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        argv.extend_from_slice(extra);
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        BackfillSettings::from_args(&BackfillCli::parse_from(argv).events, now)
    }

    #[test]
    fn backfill_windows_parse_from_times_dates_and_durations() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let s = backfill(&["--since", "2026-11-01T00:00Z"]).unwrap();
        assert_eq!(s.since, at("2026-11-01T00:00:00Z"));
        assert_eq!(s.until, None);
        assert_eq!(s.page_size, 1000);
        assert_eq!(s.wait, Duration::from_secs(60));
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("first-token") && !debug.contains("hunter2"),
            "{debug}"
        );
        let s = backfill(&[
            "--since",
            "2026-11-20",
            "--until",
            "2026-11-21T10:30+01:00",
            "--page-size",
            "50",
        ])
        .unwrap();
        assert_eq!(s.since, at("2026-11-20T00:00:00Z"));
        assert_eq!(s.until, Some(at("2026-11-21T09:30:00Z")));
        assert_eq!(s.page_size, 50);
        let s = backfill(&["--since", "6h", "--until", "2026-11-23T11:59:30.5Z"]).unwrap();
        assert_eq!(s.since, at("2026-11-23T06:00:00Z"));
        assert_eq!(s.until, Some(at("2026-11-23T11:59:30.5Z")));
        assert_eq!(
            backfill(&["--since", "2026-11-22 08:15"]).unwrap().since,
            at("2026-11-22T08:15:00Z")
        );
    }

    #[test]
    fn bad_backfill_windows_name_the_flag() {
        assert_eq!(
            backfill(&["--since", "yesterday"]).unwrap_err().to_string(),
            "--since \"yesterday\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h"
        );
        assert_eq!(
            backfill(&["--since", "1d", "--until", "2d"])
                .unwrap_err()
                .to_string(),
            "--since must be before --until (or now)"
        );
        assert_eq!(
            backfill(&["--since", "1d", "--until", "2026-12-01"])
                .unwrap_err()
                .to_string(),
            "--until is in the future; leave it out to backfill up to now"
        );
        assert_eq!(
            backfill(&["--since", "1d", "--page-size", "1001"])
                .unwrap_err()
                .to_string(),
            "--page-size must be between 1 and 1000"
        );
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug_output() {
        let e = args(&["--database-url", "mysql://u:hunter2@localhost/x"]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let s = args(&[]).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("0123456789abcdef0123"), "{debug}");
    }
}
