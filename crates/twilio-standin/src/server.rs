//! HTTP plumbing: one actix default service routes every request through the route table,
//! checks auth, injects faults, validates parameters, runs the handler, checks the answer's
//! fields against the table and logs the exchange.

use crate::ctx::{Ctx, Params, Reply};
use crate::error::{ApiError, CODE_INTERNAL, CODE_TOO_MANY_REQUESTS, CODE_UNAVAILABLE};
use crate::faults::FaultKind;
use crate::log::{redact, redact_json, redact_pairs, LoggedRequest, LOGGED_HEADERS};
use crate::route_spec::{is_sid, Body, RouteSpec};
use crate::routes::{self, Handler, Match, Route, META_FIELDS};
use crate::state::State;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use chrono::Utc;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Requests being handled now, and the most at once since the last reset.
    in_flight: AtomicUsize,
    pub(crate) max_in_flight: AtomicUsize,
    pub account_sid: String,
    pub auth_token: String,
    pub workspace_sid: String,
}

impl Shared {
    pub(crate) fn new(state: State) -> Shared {
        Shared {
            account_sid: state.settings.account_sid.clone(),
            auth_token: state.settings.auth_token.clone(),
            workspace_sid: state.settings.workspace_sid.clone(),
            state: Mutex::new(state),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    /// Counts a request as in flight until the guard drops (also when actix drops the handler
    /// because the client went away).
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    /// The state; a poisoned lock (a panic elsewhere) still yields it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The request, decoded once.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    json: Option<Value>,
    /// Every header except `Authorization`, names in lower case.
    headers: Vec<(String, String)>,
    authorization: Option<String>,
    base: String,
}

enum Answer {
    Http {
        status: u16,
        code: Option<u32>,
        headers: Vec<(&'static str, String)>,
        body: Option<Value>,
    },
    /// Close the connection without answering.
    Drop,
}

struct Outcome {
    answer: Answer,
    operation: Option<&'static str>,
    fault: Option<FaultKind>,
    processed_status: Option<u16>,
    warning: Option<u32>,
}

impl Outcome {
    fn error(error: ApiError, operation: Option<&'static str>) -> Outcome {
        Outcome {
            answer: error_answer(&error),
            operation,
            fault: None,
            processed_status: None,
            warning: None,
        }
    }
}

fn error_answer(error: &ApiError) -> Answer {
    Answer::Http {
        status: error.status,
        code: Some(error.code),
        headers: Vec::new(),
        body: Some(error.body()),
    }
}

fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The actix entry point for every request.
pub(crate) async fn entry(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let _in_flight = shared.enter();
    let mut headers = Vec::new();
    let mut authorization = None;
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name.as_str().eq_ignore_ascii_case("authorization") {
            authorization = Some(value);
        } else {
            headers.push((name.as_str().to_ascii_lowercase(), value));
        }
    }
    let is_json = headers.iter().any(|(n, v)| {
        n == "content-type" && v.to_ascii_lowercase().starts_with("application/json")
    });
    let (form, json) = if is_json {
        (Vec::new(), serde_json::from_slice::<Value>(&body).ok())
    } else {
        (parse_pairs(&body), None)
    };
    let base = {
        let connection = req.connection_info();
        format!("{}://{}", connection.scheme(), connection.host())
    };
    let incoming = Incoming {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        query: parse_pairs(req.query_string().as_bytes()),
        form,
        json,
        headers,
        authorization,
        base,
    };

    let id = {
        let secret = shared.auth_token.as_str();
        let mut state = shared.lock();
        let id = state.next_request_id();
        let entry = LoggedRequest {
            id,
            method: incoming.method.clone(),
            path: redact(&incoming.path, secret),
            query: redact_pairs(&incoming.query, secret),
            form: redact_pairs(&incoming.form, secret),
            json: incoming.json.as_ref().map(|j| redact_json(j, secret)),
            headers: redact_pairs(
                &incoming
                    .headers
                    .iter()
                    .filter(|(n, _)| LOGGED_HEADERS.contains(&n.as_str()))
                    .cloned()
                    .collect::<Vec<_>>(),
                secret,
            ),
            operation: None,
            status: None,
            error_code: None,
            warning: None,
            fault: None,
            processed_status: None,
        };
        state.push_log(entry);
        id
    };

    let outcome = process(&shared, &incoming, id).await;
    note(&shared, id, &outcome, true);
    to_http(outcome.answer, id)
}

/// Writes what is known of a request's handling to its log entry: before a held answer (the
/// fault and whether it was applied show while the client still waits), and with the answer.
fn note(shared: &Shared, id: u64, outcome: &Outcome, answered: bool) {
    let mut state = shared.lock();
    if let Some(entry) = state.log_entry(id) {
        entry.operation = outcome.operation.map(str::to_owned);
        entry.fault = outcome.fault;
        entry.warning = outcome.warning;
        entry.processed_status = outcome.processed_status;
        if let (true, Answer::Http { status, code, .. }) = (answered, &outcome.answer) {
            entry.status = Some(*status);
            entry.error_code = *code;
        }
    }
}

fn to_http(answer: Answer, id: u64) -> HttpResponse {
    match answer {
        Answer::Http {
            status,
            headers,
            body,
            ..
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = HttpResponse::build(status);
            response.insert_header(("Twilio-Request-Id", format!("RQ{id:032x}")));
            for (name, value) in headers {
                response.insert_header((name, value));
            }
            match body {
                Some(body) => response
                    .content_type("application/json")
                    .body(body.to_string()),
                None => response.finish(),
            }
        }
        // A streamed body that fails before its first chunk makes actix drop the connection
        // before anything (not even the status line) is written.
        Answer::Drop => HttpResponse::Ok().streaming(futures_util::stream::once(async {
            Err::<web::Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "twilio-standin: injected connection drop",
            ))
        })),
    }
}

fn authorized(header: Option<&str>, shared: &Shared) -> bool {
    let Some(header) = header else {
        return false;
    };
    let Some((scheme, encoded)) = header.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    matches!(text.split_once(':'), Some((user, pass)) if user == shared.account_sid && pass == shared.auth_token)
}

fn fault_answer(kind: FaultKind, retry_after_secs: u64) -> Option<Answer> {
    let (status, code) = match kind {
        FaultKind::RateLimited => (429, CODE_TOO_MANY_REQUESTS),
        FaultKind::ServerError | FaultKind::ErrorAfterApply => (500, CODE_INTERNAL),
        FaultKind::ServiceUnavailable => (503, CODE_UNAVAILABLE),
        FaultKind::Scripted { status, code } => (status, code),
        FaultKind::Timeout | FaultKind::TimeoutAfterApply | FaultKind::ConnectionReset => {
            return None
        }
    };
    let error = ApiError::for_code(status, code);
    let mut headers = Vec::new();
    if status == 429 {
        headers.push(("Retry-After", retry_after_secs.to_string()));
    }
    Some(Answer::Http {
        status,
        code: Some(code),
        headers,
        body: Some(error.body()),
    })
}

async fn process(shared: &Shared, incoming: &Incoming, id: u64) -> Outcome {
    let (route, path_params) = match routes::find(&incoming.method, &incoming.path) {
        Match::Found(route, params) => (route, params),
        Match::MethodNotAllowed => {
            return Outcome::error(ApiError::method_not_allowed(&incoming.method), None)
        }
        Match::NotFound => return Outcome::error(ApiError::not_found(&incoming.path), None),
    };
    let operation = Some(route.spec.operation_id);
    if !authorized(incoming.authorization.as_deref(), shared) {
        let mut outcome = Outcome::error(ApiError::unauthenticated(), operation);
        if let Answer::Http { headers, .. } = &mut outcome.answer {
            headers.push(("WWW-Authenticate", "Basic realm=\"Twilio API\"".to_owned()));
        }
        return outcome;
    }
    let path_ok = route.spec.path_sids.iter().all(|(name, prefix)| {
        path_params
            .iter()
            .any(|(n, v)| n == name && is_sid(v, prefix))
    }) && path_params.iter().all(|(name, value)| match *name {
        "WorkspaceSid" => *value == shared.workspace_sid,
        "AccountSid" => *value == shared.account_sid,
        _ => true,
    });
    if !path_ok {
        return Outcome::error(ApiError::not_found(&incoming.path), operation);
    }

    let (fault, retry_after, delay, latency) = {
        let mut state = shared.lock();
        let fault = state.faults.decide(&incoming.method, &incoming.path);
        let faults = state.faults.faults();
        let jitter = faults.latency_jitter.mul_f64(rand::random::<f64>());
        (
            fault,
            faults.retry_after_secs,
            faults.timeout_delay,
            faults.latency + jitter,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut outcome = Outcome {
        answer: Answer::Drop,
        operation,
        fault,
        processed_status: None,
        warning: None,
    };
    match fault {
        None | Some(FaultKind::ErrorAfterApply | FaultKind::TimeoutAfterApply) => {}
        Some(FaultKind::Timeout) => {
            note(shared, id, &outcome, false);
            tokio::time::sleep(delay).await;
            return outcome;
        }
        Some(FaultKind::ConnectionReset) => return outcome,
        Some(kind) => {
            if let Some(answer) = fault_answer(kind, retry_after) {
                outcome.answer = answer;
            }
            return outcome;
        }
    }

    let result = run(shared, route, incoming, &path_params);
    outcome.processed_status = Some(match &result {
        Ok(reply) => reply.status,
        Err(error) => error.status,
    });
    outcome.answer = match result {
        Ok(reply) => {
            outcome.warning = reply.warning;
            let mut headers = Vec::new();
            if let Some(version) = reply.etag {
                headers.push(("ETag", version.to_string()));
            }
            Answer::Http {
                status: reply.status,
                code: None,
                headers,
                body: reply.body,
            }
        }
        Err(error) => error_answer(&error),
    };
    match fault {
        Some(FaultKind::ErrorAfterApply) => {
            if let Some(answer) = fault_answer(FaultKind::ErrorAfterApply, retry_after) {
                outcome.answer = answer;
            }
        }
        Some(FaultKind::TimeoutAfterApply) => {
            outcome.answer = Answer::Drop;
            note(shared, id, &outcome, false);
            tokio::time::sleep(delay).await;
        }
        _ => {}
    }
    outcome
}

fn run(
    shared: &Shared,
    route: &'static Route,
    incoming: &Incoming,
    path_params: &[(&'static str, String)],
) -> Result<Reply, ApiError> {
    let pairs = match route.spec.body {
        Body::None => incoming.query.clone(),
        Body::Form => incoming.form.clone(),
        Body::Json => Params::pairs_from_json(incoming.json.as_ref())?,
    };
    let params = Params::validate(&route.spec, &pairs)?;
    let mut state = shared.lock();
    let mut ctx = Ctx {
        state: &mut state,
        route: &route.spec,
        path: &incoming.path,
        path_params,
        params: &params,
        headers: &incoming.headers,
        base: &incoming.base,
        now: Utc::now(),
    };
    handle(route.handler, &mut ctx)
}

/// Runs the route's handler and checks its answer's fields: what every request that reached
/// its handler goes through, the stand-in's own calls ([`crate::internal`]) included.
pub(crate) fn handle(handler: Handler, ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let reply = handler(ctx)?;
    check_fields(ctx.route, &reply)?;
    Ok(reply)
}

fn keys(value: &Value) -> Option<BTreeSet<&str>> {
    value
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
}

fn expect_keys(what: &str, value: &Value, expected: &[&str]) -> Result<(), ApiError> {
    let got = keys(value).ok_or_else(|| ApiError::bug(format!("{what} is not an object")))?;
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    if got != want {
        let extra: Vec<_> = got.difference(&want).collect();
        let missing: Vec<_> = want.difference(&got).collect();
        return Err(ApiError::bug(format!(
            "{what}: fields not as declared (undeclared: {extra:?}, missing: {missing:?})"
        )));
    }
    Ok(())
}

/// The answer must have exactly the declared fields (so the table, which the contract test
/// checks against the spec, is the truth).
fn check_fields(route: &RouteSpec, reply: &Reply) -> Result<(), ApiError> {
    let what = route.operation_id;
    match (&reply.body, route.list_key) {
        (None, _) if route.fields.is_empty() => Ok(()),
        (None, _) => Err(ApiError::bug(format!("{what} answered without a body"))),
        (Some(body), Some(key)) => {
            expect_keys(what, body, &[key, "meta"])?;
            if let Some(meta) = body.get("meta") {
                expect_keys(&format!("{what} meta"), meta, META_FIELDS)?;
            }
            let items = body
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| ApiError::bug(format!("{what}: {key} is not an array")))?;
            for item in items {
                expect_keys(what, item, route.fields)?;
            }
            Ok(())
        }
        (Some(body), None) => expect_keys(what, body, route.fields),
    }
}
