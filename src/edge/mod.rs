//! The HTTP edge: routes, signature verification, body limits, and parsing raw Twilio payloads
//! into typed events. Knows HTTP; knows no business rule.

pub mod api;
pub mod console;
pub mod error;
pub mod fuzz;
pub mod health;
pub mod history;
pub mod lookup;
pub mod openapi;
pub mod outbox;
pub mod overview;
pub mod webhooks;

use crate::ingest::signature::RequestValidator;
use crate::store::writer::InboxWriter;
use actix_web::dev::Service;
use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, HttpResponse, Responder};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// What the handlers share.
pub struct AppState {
    pub pool: PgPool,
    /// Group-commits accepted deliveries into the inbox.
    pub inbox: InboxWriter,
    pub validator: RequestValidator,
    /// `BATON_PUBLIC_URL` without a trailing slash.
    pub public_base: String,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (`BATON_BODY_TIMEOUT`).
    pub body_timeout: std::time::Duration,
    pub metrics: PrometheusHandle,
    /// Wakes the local processor when an event is stored.
    pub wake: Arc<Notify>,
    /// The `/api/v1` routes' state.
    pub api: Option<Arc<api::ApiState>>,
}

/// A second handle on a connection's socket, so that the edge can stop reading a body it
/// refused (see [`stop_reading`]).
pub struct ConnectionSocket(std::net::TcpStream);

/// `HttpServer::on_connect`: keeps a handle on each TCP connection's socket.
pub fn remember_socket(connection: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    #[cfg(unix)]
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsFd;
        if let Ok(fd) = stream.as_fd().try_clone_to_owned() {
            data.insert(ConnectionSocket(std::net::TcpStream::from(fd)));
        }
    }
}

/// Shuts the reading side of the request's connection: the server sees the end of the stream,
/// sends its answer and closes, instead of draining whatever the client keeps sending.
pub fn stop_reading(req: &actix_web::HttpRequest) {
    if let Some(ConnectionSocket(socket)) = req.conn_data::<ConnectionSocket>() {
        let _ = socket.shutdown(std::net::Shutdown::Read);
    }
}

/// Where routes are registered: actix's [`web::ServiceConfig`] when serving, a [`RouteList`]
/// when the OpenAPI drift test compares the table with the document.
pub trait Routes {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;
}

impl Routes for web::ServiceConfig {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        // HTTP: a resource that answers GET answers HEAD too (actix sends no body for HEAD).
        if method == Method::GET {
            self.route(path, web::method(Method::HEAD).to(handler.clone()));
        }
        self.route(path, web::method(method).to(handler))
    }
}

/// Every route's method and path, nothing registered.
#[derive(Debug, Default)]
pub struct RouteList(pub Vec<(Method, &'static str)>);

impl Routes for RouteList {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, _handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.push((method, path));
        self
    }
}

/// The route table: every route baton serves. Each handler also carries its
/// `#[utoipa::path]` and is listed in [`openapi::ApiDoc`]; the drift test fails when the two
/// disagree.
pub fn routes<R: Routes>(r: &mut R) {
    r.add(Method::POST, "/webhooks/taskrouter", webhooks::taskrouter)
        .add(
            Method::POST,
            "/webhooks/conversations",
            webhooks::conversations,
        )
        .add(Method::POST, "/webhooks/events", webhooks::event_streams)
        .add(
            Method::GET,
            "/api/v1/tasks/{task_sid}/chain",
            api::task_chain,
        )
        .add(
            Method::GET,
            "/api/v1/conversations/{sid}",
            api::get_conversation,
        )
        .add(Method::POST, "/api/v1/parks", api::create_park)
        .add(Method::GET, "/api/v1/parks", api::list_parks)
        .add(Method::GET, "/api/v1/parks/{park_id}", api::get_park)
        .add(
            Method::POST,
            "/api/v1/parks/{park_id}/resume",
            api::resume_park,
        )
        .add(Method::POST, "/api/v1/transfers", api::create_transfer)
        .add(Method::GET, "/api/v1/transfers", history::list_transfers)
        .add(
            Method::GET,
            "/api/v1/stats/transfers",
            history::transfer_stats,
        )
        .add(
            Method::GET,
            "/api/v1/transfers/{transfer_id}",
            api::get_transfer,
        )
        .add(Method::GET, "/api/v1/overview", overview::overview)
        .add(Method::GET, "/api/v1/sids/{sid}", lookup::find_sid)
        .add(Method::GET, "/api/v1/outbox", outbox::list_calls)
        .add(Method::GET, "/api/v1/outbox/{id}", outbox::get_call)
        .add(
            Method::POST,
            "/api/v1/outbox/{id}/retry",
            outbox::retry_call,
        )
        .add(Method::GET, "/api/v1/openapi.json", openapi::document)
        .add(Method::GET, "/healthz", health::healthz)
        .add(Method::GET, "/readyz", health::readyz)
        .add(Method::GET, "/metrics", health::metrics);
}

/// Registers every route: the API's and the console's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes(cfg);
    console::routes(cfg);
}

/// A listing's `limit` query parameter ([`crate::domain::paging`]), `default` when absent.
pub(crate) fn limit_param(raw: Option<&str>, default: i64) -> Result<i64, error::EdgeError> {
    raw.map_or(Ok(default), |raw| {
        crate::domain::paging::parse_page_size(raw)
            .map_err(|reason| error::EdgeError::Invalid(format!("limit {reason}")))
    })
}

/// What no route answers: `405` with `Allow` when the path is routed for other methods, else
/// JSON 404.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, error::EdgeError> {
    let allow = allowed_methods(req.path());
    if allow.is_empty() {
        Err(error::EdgeError::unrouted())
    } else {
        Err(error::EdgeError::MethodNotAllowed {
            method: req.method().clone(),
            allow,
        })
    }
}

/// The methods the route table answers on `path`, in table order; none when it is unrouted.
/// Read from [`routes`] itself, so `Allow` cannot drift from what is served.
pub fn allowed_methods(path: &str) -> Vec<Method> {
    static TABLE: std::sync::OnceLock<Vec<(actix_web::dev::ResourceDef, Method)>> =
        std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut list = RouteList::default();
        routes(&mut list);
        console::routes(&mut list);
        list.0
            .into_iter()
            .map(|(method, pattern)| (actix_web::dev::ResourceDef::new(pattern), method))
            .collect()
    });
    let mut allow: Vec<Method> = Vec::new();
    for (pattern, method) in table {
        if pattern.is_match(path) && !allow.contains(method) {
            allow.push(method.clone());
            if *method == Method::GET && !allow.contains(&Method::HEAD) {
                allow.push(Method::HEAD);
            }
        }
    }
    allow.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    allow
}

/// Counts requests by route pattern and status, and times them.
pub fn record_request_metrics<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        let status = res.status().as_u16().to_string();
        metrics::counter!("baton_http_requests_total", "route" => route.clone(), "status" => status).increment(1);
        metrics::histogram!("baton_http_request_duration_seconds", "route" => route)
            .record(started.elapsed().as_secs_f64());
        Ok(res)
    }
}
