//! `spawn_app`: a baton on port 0 with its own fresh database, and signing helpers.

use baton::app::configuration::{LogFormat, Settings};
use baton::app::processor::ProcessorConfig;
use baton::app::startup::{Application, BuildOptions, Stopper};
use baton::domain::sid::Sid;
use baton::ingest::form::form_body;
use baton::ingest::signature::{body_sha256_hex, compute_signature};
use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::time::Duration;

pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";
pub const PUBLIC_BASE: &str = "https://baton.example.test";

pub fn sid(prefix: &str, n: u128) -> String {
    format!("{prefix}{n:032x}")
}

/// The server that test databases are created on.
pub fn server_url() -> String {
    std::env::var("BATON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&server)
        .await
        .expect("connect to the test Postgres server");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create test database");
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (server.clone(), String::new()),
    };
    let base = base
        .rsplit_once('/')
        .map_or(base.clone(), |(b, _)| b.to_owned());
    format!("{base}/{name}{query}")
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub stopper: Stopper,
    pub database_url: String,
}

pub struct AppOptions {
    pub processors: usize,
    pub auth_tokens: Vec<String>,
    pub database_url: Option<String>,
    pub migrate: bool,
    pub max_body_bytes: usize,
    pub twilio_api_base_url: Option<url::Url>,
    pub complete_on: baton::domain::chain::CompleteOn,
    /// `BATON_PUBLIC_URL` (default [`PUBLIC_BASE`]); port 0 means the app's own port.
    pub public_url: Option<String>,
    pub dispatcher: Option<baton::app::dispatcher::DispatcherConfig>,
    pub transfer_workflow_sid: Option<String>,
    /// Run orphan checks (and sweeps, with `sweep_interval`).
    pub orphans: bool,
    pub orphan_grace: Duration,
    pub sweep_interval: Option<Duration>,
    pub timeout_fallback_workflow_sid: Option<String>,
    pub park_ttl: Duration,
    pub reconcile: Option<baton::app::reconcile::ReconcileConfig>,
    /// `BATON_HEADER_TIMEOUT` and `BATON_BODY_TIMEOUT`.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            processors: 0,
            auth_tokens: vec![AUTH_TOKEN.to_owned()],
            database_url: None,
            migrate: true,
            max_body_bytes: 1024 * 1024,
            twilio_api_base_url: None,
            complete_on: Default::default(),
            public_url: None,
            dispatcher: None,
            transfer_workflow_sid: None,
            orphans: false,
            orphan_grace: Duration::from_secs(30),
            sweep_interval: None,
            timeout_fallback_workflow_sid: None,
            park_ttl: Duration::from_secs(600),
            reconcile: None,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
        }
    }
}

pub fn settings(database_url: &str, options: &AppOptions) -> Settings {
    Settings {
        database_url: SecretString::from(database_url.to_owned()),
        db_pool_size: 10,
        listen: "127.0.0.1:0".parse().expect("listen address"),
        public_url: url::Url::parse(options.public_url.as_deref().unwrap_or(PUBLIC_BASE))
            .expect("public url"),
        account_sid: Sid::parse(&sid("AC", 1)).expect("sid"),
        auth_tokens: options
            .auth_tokens
            .iter()
            .map(|t| SecretString::from(t.clone()))
            .collect(),
        workspace_sid: Sid::parse(&sid("WS", 1)).expect("sid"),
        twilio_api_base_url: options.twilio_api_base_url.clone(),
        ops_token: SecretString::from("ops-token-0123456789abcdef".to_owned()),
        max_body_bytes: options.max_body_bytes,
        log_format: LogFormat::Text,
        http_workers: Some(1),
        processors: options.processors,
        ingest_writers: 2,
        twilio_concurrency: 4,
        twilio_timeout: Duration::from_secs(15),
        inbox_lease: Duration::from_secs(30),
        outbox_lease: Duration::from_secs(60),
        complete_on: options.complete_on,
        transfer_workflow_sid: options
            .transfer_workflow_sid
            .as_deref()
            .map(|s| Sid::parse(s).expect("workflow sid")),
        orphan_grace: options.orphan_grace,
        sweep_interval: options.sweep_interval,
        sweep_older_than: Duration::from_secs(3600),
        timeout_fallback_workflow_sid: options
            .timeout_fallback_workflow_sid
            .as_deref()
            .map(|s| Sid::parse(s).expect("workflow sid")),
        park_ttl: options.park_ttl,
        shutdown_timeout: Duration::from_secs(5),
        header_timeout: options.header_timeout,
        body_timeout: options.body_timeout,
        reconcile_interval: options.reconcile.as_ref().map(|r| r.interval),
        inbox_retention: None,
        console_session: Duration::from_secs(8 * 3600),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        baton::app::telemetry::init_tracing(LogFormat::Text);
    }
    let database_url = match &options.database_url {
        Some(url) => url.clone(),
        None => fresh_database().await,
    };
    let settings = settings(&database_url, &options);
    let app = Application::build(
        &settings,
        BuildOptions {
            migrate: options.migrate.then(|| Duration::from_secs(10)),
            processors: options.processors,
            processor: ProcessorConfig {
                idle_poll: Duration::from_millis(20),
                ..ProcessorConfig::default()
            },
            dispatcher: options.dispatcher.clone(),
            orphans: options.orphans.then(|| baton::app::orphans::OrphanConfig {
                poll: Duration::from_millis(20),
                ..Default::default()
            }),
            reconcile: options.reconcile.clone(),
            retention: None,
        },
    )
    .await
    .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let stopper = app.stopper();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        stopper,
        database_url,
    }
}

pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl TestApp {
    /// Posts a form signed as Twilio would sign it for `path` on the public URL.
    pub async fn post_signed_form(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> reqwest::Response {
        let signature = compute_signature(AUTH_TOKEN, &format!("{PUBLIC_BASE}{path}"), params);
        self.post_form(path, params, Some(&signature)).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form_body(params));
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send().await.expect("request sent")
    }

    /// Posts an Event Streams batch, signed with `bodySHA256` in the query.
    pub async fn post_signed_events(&self, body: &str) -> reqwest::Response {
        let path = format!(
            "/webhooks/events?bodySHA256={}",
            body_sha256_hex(body.as_bytes())
        );
        let signature = compute_signature(AUTH_TOKEN, &format!("{PUBLIC_BASE}{path}"), &[]);
        self.client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", "application/json")
            .header("X-Twilio-Signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /metrics`: the Prometheus text (the scrape must succeed).
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
        response.text().await.expect("metrics text")
    }

    pub async fn inbox_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM inbox_events")
            .fetch_one(&self.pool)
            .await
            .expect("count inbox")
    }
}

/// A TaskRouter callback as Twilio sends it.
pub fn task_callback(event_type: &str, task: &str, status: &str, ms: i64) -> Vec<(String, String)> {
    let mut p = pairs(&[
        ("AccountSid", &sid("AC", 1)),
        ("WorkspaceSid", &sid("WS", 1)),
        ("WorkspaceName", "Flex Task Assignment"),
        ("EventType", event_type),
        ("EventDescription", &format!("{event_type} for {task}")),
        ("ResourceType", "task"),
        ("ResourceSid", task),
        ("TaskSid", task),
        ("TaskAssignmentStatus", status),
        (
            "TaskAttributes",
            r#"{"conversationSid":"CH00000000000000000000000000000001","channelType":"sms"}"#,
        ),
        ("WorkflowSid", &sid("WW", 1)),
        ("Timestamp", &(ms / 1000).to_string()),
        ("TimestampMs", &ms.to_string()),
    ]);
    if event_type.starts_with("reservation.") {
        p.extend(pairs(&[
            ("ReservationSid", &sid("WR", 1)),
            ("WorkerSid", &sid("WK", 1)),
            ("WorkerActivitySid", &sid("WA", ms as u128)),
            ("TaskQueueSid", &sid("WQ", 1)),
        ]));
    }
    p
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> String {
        let body: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not a JSON body ({e}): {self:?}"));
        body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code: {body}"))
            .to_owned()
    }
}

/// An HTTP/1.1 connection driven byte by byte, for what a well-behaved client never sends
/// (bodies that lie about their length, trickled headers, endless chunked bodies).
pub struct RawConnection {
    pub reader: RawReader,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

/// The reading side of a [`RawConnection`], to read while the other side writes.
pub struct RawReader {
    half: tokio::net::tcp::OwnedReadHalf,
    buffer: Vec<u8>,
}

impl RawConnection {
    /// Connects to `address` (`http://127.0.0.1:port`).
    pub async fn open(address: &str) -> RawConnection {
        let authority = address.trim_start_matches("http://");
        let (half, writer) = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect")
            .into_split();
        RawConnection {
            reader: RawReader {
                half,
                buffer: Vec::new(),
            },
            writer,
        }
    }

    /// Writes bytes; false once the server has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        self.writer.write_all(bytes).await.is_ok()
    }

    pub async fn response(&mut self) -> Option<RawResponse> {
        self.reader.response().await
    }

    pub async fn closed_within(&mut self, within: Duration) -> bool {
        self.reader.closed_within(within).await
    }
}

impl RawReader {
    /// Reads one response (its body by `Content-Length`). `None` when the connection closes
    /// before a whole response arrives.
    pub async fn response(&mut self) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()?
            .split(' ')
            .nth(1)?
            .parse()
            .expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().expect("content-length"));
        while self.buffer.len() < head_end + 4 + length {
            if !self.fill().await {
                return None;
            }
        }
        let rest = self.buffer.split_off(head_end + 4 + length);
        let body = self.buffer[head_end + 4..].to_vec();
        self.buffer = rest;
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Whether the server closes the connection (EOF or reset) within `within`, reading and
    /// discarding whatever else it sends.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async { while self.fill().await {} })
            .await
            .is_ok()
    }

    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 8192];
        match self.half.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
}

/// The head of a POST of `content_type` to `path` with these extra header lines (each ending
/// in `\r\n`), e.g. a signature and a `Content-Length` or `Transfer-Encoding: chunked`.
pub fn post_head(path: &str, content_type: &str, extra: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: baton.example.test\r\nContent-Type: {content_type}\r\n{extra}\r\n")
}

/// Waits until the processor has applied every stored event (none dead).
pub async fn drained(pool: &PgPool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (pending, dead): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE processed_at IS NULL AND dead_at IS NULL),
                    count(*) FILTER (WHERE dead_at IS NOT NULL)
             FROM inbox_progress",
        )
        .fetch_one(pool)
        .await
        .expect("progress");
        assert_eq!(dead, 0, "dead-lettered events");
        if pending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} events not processed"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// `error.code` of a JSON error response.
pub async fn error_code(res: reqwest::Response) -> String {
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// `baton serve`, the real binary, on its own port and database.
pub struct ServeProcess {
    child: std::process::Child,
    pub address: String,
    pub pool: PgPool,
    /// Its log lines (stderr), as they arrive.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The thread reading them; joined once the process has exited, so that the log then holds
    /// every line, the last ones included.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    /// Starts `baton serve` on a fresh database with these settings added to the required
    /// ones (Twilio at `twilio_base_url`); returns once it listens.
    pub async fn start(twilio_base_url: &str, env: &[(&str, &str)]) -> ServeProcess {
        use std::io::BufRead;
        let database_url = fresh_database().await;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", &database_url)
            .env("BATON_LISTEN", "127.0.0.1:0")
            .env("BATON_PUBLIC_URL", PUBLIC_BASE)
            .env("TWILIO_ACCOUNT_SID", sid("AC", 1))
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("TWILIO_WORKSPACE_SID", sid("WS", 1))
            .env("TWILIO_API_BASE_URL", twilio_base_url)
            .env("BATON_OPS_TOKEN", "ops-token-0123456789abcdef")
            .env("BATON_HTTP_WORKERS", "1")
            .env("BATON_DB_POOL_SIZE", "5")
            .env("BATON_SWEEP_INTERVAL", "off")
            .env("BATON_RECONCILE_INTERVAL", "off")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("BATON_LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn baton serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().expect("log").push(line);
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let port = loop {
            let serving = log
                .lock()
                .expect("log")
                .iter()
                .find(|l| l.contains("baton is serving"))
                .cloned();
            if let Some(line) = serving {
                let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
                break line["port"].as_u64().expect("port in the log line");
            }
            if let Some(status) = child.try_wait().expect("child status") {
                panic!("baton serve exited with {status}: {:?}", log.lock());
            }
            assert!(std::time::Instant::now() < deadline, "baton did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let pool = baton::store::connect_lazy(
            &database_url,
            &baton::store::PoolSettings {
                max_connections: 2,
                ..baton::store::PoolSettings::default()
            },
        )
        .expect("pool");
        ServeProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
            pool,
            log,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit: its exit code, or `None` if it is still running after
    /// `within` (it is then killed).
    pub async fn exit_within(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                self.finish_log();
                return status.code();
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.finish_log();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the reader to reach the end of the exited process's stderr.
    fn finish_log(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Resident memory (`VmRSS`, KiB) of the process.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // Never leave a server running after a failed test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed TaskRouter callback: its form body and the header lines signing it.
pub fn signed_taskrouter_callback(params: &[(String, String)]) -> (String, String) {
    let signature = compute_signature(
        AUTH_TOKEN,
        &format!("{PUBLIC_BASE}/webhooks/taskrouter"),
        params,
    );
    (
        form_body(params),
        format!("X-Twilio-Signature: {signature}\r\n"),
    )
}

/// A signed-to-be `task.created` callback of task `WT…n` with event SID `EV…n`.
pub fn task_created(n: u128) -> Vec<(String, String)> {
    let mut params = task_callback(
        "task.created",
        &sid("WT", n),
        "pending",
        1_700_000_000_000 + n as i64,
    );
    params.push(("Sid".into(), sid("EV", n)));
    params
}

/// The outbox call completing `task` at the stand-in.
pub fn complete_task(
    twilio: &twilio_standin::StandIn,
    task: &str,
) -> baton::store::outbox::NewCall {
    baton::store::outbox::NewCall {
        idempotency_key: format!("complete:{task}"),
        kind: baton::domain::outbound::OperationKind::CompleteTask,
        request: baton::domain::outbound::TwilioRequest {
            product: baton::domain::outbound::Product::TaskRouter,
            method: "POST".into(),
            path: format!("/v1/Workspaces/{}/Tasks/{task}", twilio.workspace_sid()),
            form: vec![
                ("AssignmentStatus".into(), "completed".into()),
                ("Reason".into(), "task transferred".into()),
            ],
            if_match: None,
        },
        procedure: None,
        caused_by_event: None,
        conversation_sid: None,
        guard: None,
        after_key: None,
    }
}
