//! Building and running the application: pool, migrations, HTTP server, processors, and a
//! graceful shutdown (stop accepting, finish in-flight requests and claimed work, release leases).

use super::backfill::Backfiller;
use super::configuration::Settings;
use super::dispatcher::{Dispatcher, DispatcherConfig};
use super::orphans::{OrphanConfig, OrphanWorker};
use super::processor::{Processor, ProcessorConfig};
use super::reconcile::{ReconcileConfig, Reconciler};
use super::retention::{InboxRetention, RetentionConfig};
use super::telemetry;
use crate::edge::{self, api::ApiState, AppState};
use crate::ingest::signature::RequestValidator;
use crate::services::parks::ParkService;
use crate::services::transfers::TransferService;
use crate::store::writer::{InboxWriter, WriterConfig};
use crate::store::{self, PoolSettings};
use crate::twilio::TwilioClient;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpMessage, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::{RequestId, TracingLogger};

/// What to start besides the HTTP server.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Apply migrations before serving (waiting up to this long for the database).
    pub migrate: Option<Duration>,
    /// Inbox processors to run in this process.
    pub processors: usize,
    pub processor: ProcessorConfig,
    /// The outbox dispatcher, if this process sends Twilio calls.
    pub dispatcher: Option<DispatcherConfig>,
    /// Orphan checks and sweeps, if this process runs them.
    pub orphans: Option<OrphanConfig>,
    /// The reconciler (`BATON_RECONCILE_INTERVAL`), if on.
    pub reconcile: Option<ReconcileConfig>,
    /// Inbox retention (`BATON_INBOX_RETENTION`), if on.
    pub retention: Option<RetentionConfig>,
}

impl BuildOptions {
    pub fn from_settings(settings: &Settings) -> BuildOptions {
        BuildOptions {
            migrate: Some(Duration::from_secs(60)),
            processors: settings.processors,
            processor: ProcessorConfig {
                lease: settings.inbox_lease,
                ..ProcessorConfig::default()
            },
            dispatcher: Some(DispatcherConfig {
                concurrency: settings.twilio_concurrency,
                lease: settings.outbox_lease,
                ..DispatcherConfig::default()
            }),
            orphans: Some(OrphanConfig::default()),
            reconcile: settings.reconcile_interval.map(ReconcileConfig::every),
            retention: settings.inbox_retention.map(RetentionConfig::keep),
        }
    }
}

pub struct Application {
    port: u16,
    pool: PgPool,
    server: Server,
    shutdown: CancellationToken,
    workers: Vec<Worker>,
    shutdown_timeout: Duration,
    /// When a [`Stopper`] stopped the application.
    stopping: Arc<OnceLock<Instant>>,
}

/// A background task and the leases it holds while it works.
struct Worker {
    name: &'static str,
    leases: Option<Leases>,
    handle: JoinHandle<()>,
}

/// Whose leases a worker takes, so that they can be given back for it if it does not finish.
enum Leases {
    Inbox(uuid::Uuid),
    Outbox(uuid::Uuid),
}

impl Leases {
    async fn release(&self, pool: &PgPool) -> Result<u64, store::StoreError> {
        match self {
            Leases::Inbox(owner) => store::inbox::release_leases(pool, *owner).await,
            Leases::Outbox(owner) => store::outbox::release_leases(pool, *owner).await,
        }
    }
}

/// Of the shutdown timeout, what is kept back to release leases and close the pool after the
/// work that did not finish is abandoned.
fn shutdown_reserve(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(1))
}

impl Application {
    pub async fn build(settings: &Settings, options: BuildOptions) -> anyhow::Result<Application> {
        let pool = store::connect_lazy(
            settings.database_url.expose_secret(),
            &PoolSettings {
                max_connections: settings.db_pool_size,
                ..PoolSettings::default()
            },
        )
        .context("DATABASE_URL is not a usable Postgres URL")?;
        if let Some(wait) = options.migrate {
            migrate_with_retry(&pool, wait).await?;
        }
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let wake = Arc::new(Notify::new());
        let outbox_wake = Arc::new(Notify::new());
        let client = twilio_client(settings)?;
        let api = Arc::new(
            ApiState::new(
                settings.ops_token.clone(),
                client.clone(),
                TransferService {
                    pool: pool.clone(),
                    client: client.clone(),
                    workspace_sid: settings.workspace_sid.to_string(),
                    transfer_workflow_sid: settings
                        .transfer_workflow_sid
                        .as_ref()
                        .map(|s| s.to_string()),
                },
                ParkService {
                    pool: pool.clone(),
                    client: client.clone(),
                    workspace_sid: settings.workspace_sid.to_string(),
                    webhooks_url: format!(
                        "{}/webhooks/conversations",
                        settings.public_base_on(port)
                    ),
                },
            )
            .with_outbox_wake(outbox_wake.clone())
            .with_session_ttl(settings.console_session),
        );
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            inbox: InboxWriter::start(
                pool.clone(),
                WriterConfig {
                    writers: settings.ingest_writers,
                    ..WriterConfig::default()
                },
            ),
            validator: RequestValidator::new(settings.auth_tokens.clone()),
            public_base: settings.public_base_on(port),
            max_body_bytes: settings.max_body_bytes,
            body_timeout: settings.body_timeout,
            metrics: telemetry::metrics_handle(),
            wake: wake.clone(),
            api: Some(api),
        });
        let server = run_server(listener, state, settings)?;
        let shutdown = CancellationToken::new();
        let processor_config = ProcessorConfig {
            workspace_sid: settings.workspace_sid.to_string(),
            complete_on: settings.complete_on,
            orphan_grace: settings.orphan_grace,
            voice_park_ttl: settings.park_ttl,
            fallback_workflow_sid: settings
                .timeout_fallback_workflow_sid
                .as_ref()
                .map(|s| s.to_string()),
            ..options.processor.clone()
        };
        let mut workers: Vec<Worker> = (0..options.processors)
            .map(|_| {
                let processor =
                    Processor::new(pool.clone(), processor_config.clone(), wake.clone())
                        .with_outbox_wake(outbox_wake.clone());
                let leases = Leases::Inbox(processor.id());
                Worker {
                    name: "inbox processor",
                    leases: Some(leases),
                    handle: tokio::spawn(processor.run(shutdown.child_token())),
                }
            })
            .collect();
        if let Some(config) = options.orphans {
            let worker = OrphanWorker::new(
                pool.clone(),
                client.clone(),
                OrphanConfig {
                    grace: settings.orphan_grace,
                    sweep_interval: settings.sweep_interval,
                    sweep_older_than: settings.sweep_older_than,
                    workspace_sid: settings.workspace_sid.to_string(),
                    ..config
                },
                outbox_wake.clone(),
            );
            workers.push(Worker {
                name: "orphan worker",
                leases: None,
                handle: tokio::spawn(worker.run(shutdown.child_token())),
            });
        }
        if let Some(config) = options.reconcile {
            let backfiller = Backfiller::new(pool.clone(), client.clone(), config.backfill.clone())
                .with_wake(wake.clone());
            let reconciler =
                Reconciler::new(backfiller, settings.workspace_sid.to_string(), config);
            workers.push(Worker {
                name: "reconciler",
                leases: None,
                handle: tokio::spawn(reconciler.run(shutdown.child_token())),
            });
        }
        if let Some(config) = options.retention {
            let retention = InboxRetention::new(pool.clone(), config);
            workers.push(Worker {
                name: "inbox retention",
                leases: None,
                handle: tokio::spawn(retention.run(shutdown.child_token())),
            });
        }
        if let Some(config) = options.dispatcher {
            let config = DispatcherConfig {
                invite_window: settings.orphan_grace,
                workspace_sid: settings.workspace_sid.to_string(),
                ..config
            };
            let dispatcher = Dispatcher::new(pool.clone(), client, config, outbox_wake);
            let leases = Leases::Outbox(dispatcher.id());
            workers.push(Worker {
                name: "outbox dispatcher",
                leases: Some(leases),
                handle: tokio::spawn(dispatcher.run(shutdown.child_token())),
            });
        }
        Ok(Application {
            port,
            pool,
            server,
            shutdown,
            workers,
            shutdown_timeout: settings.shutdown_timeout,
            stopping: Arc::new(OnceLock::new()),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A handle that stops the application gracefully (what SIGTERM does).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            shutdown: self.shutdown.clone(),
            stopping: self.stopping.clone(),
        }
    }

    /// Serves until stopped, then drains within `BATON_SHUTDOWN_TIMEOUT` of the stop: in-flight
    /// requests finish while the workers finish what they claimed (processors their batch, the
    /// dispatcher its calls in flight) and give back their leases. Whatever is still running
    /// at the deadline is abandoned and its leases are released for it, so no row waits for a
    /// lease to expire.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut server = std::pin::pin!(self.server);
        let result = tokio::select! {
            // The server ended by itself (it failed).
            result = &mut server => result,
            () = self.shutdown.cancelled() => server.await,
        };
        // Measured from the stop (the server drains within its own, shorter, timeout).
        let stopped_at = self.stopping.get().copied().unwrap_or_else(Instant::now);
        self.shutdown.cancel();
        let reserve = shutdown_reserve(self.shutdown_timeout);
        let deadline = stopped_at + self.shutdown_timeout.saturating_sub(reserve);
        let mut abandoned = Vec::new();
        for mut worker in self.workers {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, &mut worker.handle)
                .await
                .is_err()
            {
                tracing::warn!(
                    worker = worker.name,
                    "did not finish before the shutdown deadline; releasing its leases"
                );
                worker.handle.abort();
                abandoned.extend(worker.leases);
            }
        }
        let release = async {
            for leases in &abandoned {
                if let Err(e) = leases.release(&self.pool).await {
                    tracing::warn!(error = %e, "could not release leases; they expire by themselves");
                }
            }
            self.pool.close().await;
        };
        if tokio::time::timeout(reserve, release).await.is_err() {
            tracing::warn!("the database pool did not close in time");
        }
        tracing::info!("baton stopped");
        result.context("HTTP server failed")
    }
}

/// Stops an [`Application`] gracefully.
#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    shutdown: CancellationToken,
    stopping: Arc<OnceLock<Instant>>,
}

impl Stopper {
    /// Stops accepting connections, lets in-flight requests finish, and tells the workers to
    /// finish what they hold, all at once; returns when the HTTP server has stopped.
    pub async fn stop(&self) {
        tracing::info!("shutting down: no new connections; finishing in-flight work");
        let _ = self.stopping.set(Instant::now());
        self.shutdown.cancel();
        self.server.stop(true).await;
    }
}

/// Stops the application on SIGTERM or Ctrl-C.
pub fn stop_on_signals(stopper: Stopper) {
    tokio::spawn(async move {
        wait_for_signal().await;
        stopper.stop().await;
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The Twilio REST client for these settings (the first auth token signs outbound calls).
pub fn twilio_client(settings: &Settings) -> anyhow::Result<TwilioClient> {
    let token = settings
        .auth_tokens
        .first()
        .cloned()
        .context("TWILIO_AUTH_TOKEN is empty")?;
    TwilioClient::new(
        settings.account_sid.as_str(),
        token,
        settings.twilio_api_base_url.clone(),
        settings.twilio_timeout,
    )
    .context("could not build the Twilio HTTP client")
}

async fn migrate_with_retry(pool: &PgPool, wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    let mut delay = Duration::from_millis(250);
    loop {
        match store::migrate(pool).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let unreachable = matches!(&e, sqlx::migrate::MigrateError::Execute(inner) if store::is_unavailable(inner));
                if !unreachable || Instant::now() >= deadline {
                    return Err(e).context("database migrations failed");
                }
            }
        }
        tracing::warn!(retry_in = ?delay, "database not reachable yet; retrying migrations");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn run_server(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Settings,
) -> anyhow::Result<Server> {
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap_fn(edge::record_request_metrics)
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                let request_id = req.extensions().get::<RequestId>().copied();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if let Some(id) =
                        request_id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok())
                    {
                        res.headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), id);
                    }
                    Ok(res)
                }
            })
            .wrap(TracingLogger::default())
            .app_data(state.clone())
            .configure(edge::configure)
            .default_service(web::to(edge::not_found))
    })
    // Slow clients may not hold a connection open: a new connection's first request headers
    // within BATON_HEADER_TIMEOUT (408 after), its body within BATON_BODY_TIMEOUT (read_body).
    .client_request_timeout(settings.header_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(Duration::from_secs(75))
    // In-flight requests get the shutdown timeout less what is kept back to release leases.
    .shutdown_timeout(
        settings
            .shutdown_timeout
            .saturating_sub(shutdown_reserve(settings.shutdown_timeout))
            .as_secs(),
    )
    .on_connect(edge::remember_socket)
    .disable_signals()
    .listen(listener)?;
    if let Some(workers) = settings.http_workers {
        server = server.workers(workers.max(1));
    }
    Ok(server.run())
}
