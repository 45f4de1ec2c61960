//! The real `baton serve` binary as a child process: started with its settings as environment
//! variables, killed with SIGKILL (no shutdown code runs: leases stay taken, calls in flight are
//! cut), frozen with SIGSTOP, and its JSON log read back.

use crate::helpers::{fresh_database, sid};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use twilio_standin::StandIn;
use uuid::Uuid;

pub const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

/// How a `baton serve` is configured: its environment, as an operator would set it.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub database_url: String,
    /// Listen port (0: a free one, picked once and kept across restarts).
    pub port: u16,
    pub account_sid: String,
    pub auth_token: String,
    pub workspace_sid: String,
    pub twilio_api_base_url: Option<String>,
    /// Other settings (`BATON_…` variables), overriding the defaults below.
    pub env: Vec<(String, String)>,
}

impl ServeOptions {
    /// A baton for `database_url` whose Twilio is `twilio`, with short leases so a crashed
    /// process's work comes back within seconds.
    pub fn new(database_url: &str, twilio: &StandIn) -> ServeOptions {
        ServeOptions {
            database_url: database_url.to_owned(),
            port: 0,
            account_sid: twilio.account_sid().to_owned(),
            auth_token: twilio.auth_token().to_owned(),
            workspace_sid: twilio.workspace_sid().to_owned(),
            twilio_api_base_url: Some(twilio.base_url()),
            env: Vec::new(),
        }
    }

    /// A baton with no Twilio behind it (ingest and processing only).
    pub fn without_twilio(database_url: &str) -> ServeOptions {
        ServeOptions {
            database_url: database_url.to_owned(),
            port: 0,
            account_sid: sid("AC", 1),
            auth_token: crate::helpers::AUTH_TOKEN.to_owned(),
            workspace_sid: sid("WS", 1),
            twilio_api_base_url: None,
            env: Vec::new(),
        }
    }

    pub fn set(mut self, name: &str, value: &str) -> ServeOptions {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A running `baton serve`.
pub struct Baton {
    child: Child,
    pub options: ServeOptions,
    /// `http://127.0.0.1:PORT`: where it listens, and its `BATON_PUBLIC_URL`.
    pub address: String,
    log: PathBuf,
    /// What the processes this one replaced (restarts) logged.
    earlier_logs: String,
}

/// A port nobody listens on now (the OS picks it; baton binds it with `SO_REUSEADDR`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Baton {
    /// Starts `baton serve` and waits until it answers `/healthz`.
    pub async fn start(mut options: ServeOptions) -> Baton {
        if options.port == 0 {
            options.port = free_port();
        }
        let address = format!("http://127.0.0.1:{}", options.port);
        let log = std::env::temp_dir().join(format!("baton-faults-{}.log", Uuid::new_v4()));
        let stderr = File::create(&log).expect("log file");
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", options.database_url.as_str()),
            ("BATON_LISTEN", &format!("127.0.0.1:{}", options.port)),
            ("BATON_PUBLIC_URL", address.as_str()),
            ("TWILIO_ACCOUNT_SID", options.account_sid.as_str()),
            ("TWILIO_AUTH_TOKEN", options.auth_token.as_str()),
            ("TWILIO_WORKSPACE_SID", options.workspace_sid.as_str()),
            ("BATON_OPS_TOKEN", OPS_TOKEN),
            ("BATON_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,sqlx=warn"),
            ("BATON_HTTP_WORKERS", "1"),
            ("BATON_DB_POOL_SIZE", "6"),
            ("BATON_SWEEP_INTERVAL", "off"),
            ("BATON_RECONCILE_INTERVAL", "off"),
            ("BATON_SHUTDOWN_TIMEOUT", "2"),
            ("BATON_INBOX_LEASE", "2s"),
            ("BATON_TWILIO_TIMEOUT", "2s"),
            ("BATON_OUTBOX_LEASE", "3s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(base) = &options.twilio_api_base_url {
            env.push(("TWILIO_API_BASE_URL".into(), base.clone()));
        }
        for (name, value) in &options.env {
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        let child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .arg("serve")
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start baton serve");
        let mut baton = Baton {
            child,
            options,
            address,
            log,
            earlier_logs: String::new(),
        };
        baton.wait_healthy().await;
        baton
    }

    /// Starts it again after a crash: same settings, same port, same database.
    pub async fn restart(&mut self) {
        assert!(!self.is_running(), "restart only a stopped baton");
        let mut again = Baton::start(self.options.clone()).await;
        again.earlier_logs = format!("{}{}", self.earlier_logs, self.log());
        drop(std::mem::replace(self, again));
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("baton serve exited with {status}:\n{}", self.log());
            }
            let ok = client
                .get(format!("{}/healthz", self.address))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "baton serve did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process ends at once, mid-whatever.
    pub fn kill9(&mut self) {
        signal(self.child.id(), "-CONT");
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for baton");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "killed by SIGKILL"
        );
    }

    /// SIGSTOP: frozen (leases held, nothing progresses) until [`Baton::resume`] or a kill.
    pub fn pause(&self) {
        assert!(signal(self.child.id(), "-STOP"), "SIGSTOP baton");
    }

    pub fn resume(&self) {
        assert!(signal(self.child.id(), "-CONT"), "SIGCONT baton");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it logged (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines that report a panic (none may exist), this process's and those it replaced.
    pub fn panics(&self) -> Vec<String> {
        format!("{}{}", self.earlier_logs, self.log())
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// The ids its inbox processors and outbox dispatcher logged at start (`processor`,
    /// `dispatcher`): the `lease_owner`s of the work it holds.
    pub fn worker_ids(&self, field: &str) -> Vec<Uuid> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("started"))
            })
            .filter_map(|v| v[field].as_str().and_then(|s| s.parse().ok()))
            .collect()
    }
}

fn signal(pid: u32, which: &str) -> bool {
    Command::new("kill")
        .args([which, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Baton {
    fn drop(&mut self) {
        if self.is_running() {
            signal(self.child.id(), "-CONT");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A fresh database, migrated by a first `baton migrate` so that several processes started
/// together do not race on the migrations.
pub async fn migrated_database() -> String {
    let url = fresh_database().await;
    let status = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run baton migrate");
    assert!(status.success(), "baton migrate");
    url
}
