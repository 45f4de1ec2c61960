//! REST calls the stand-in makes to itself. The plays that stand in for the clients Flex
//! customers run (flex-project-template's serverless functions, Flex UI plugins) make the very
//! calls those clients make, through the route table and the same handlers as baton's
//! requests: so they change state, record effects and produce TaskRouter events and
//! Conversations webhooks exactly as those requests do. They are not requests: no
//! authentication, no faults, no request log entry.

use crate::ctx::{Ctx, Params};
use crate::error::ApiError;
use crate::route_spec::is_sid;
use crate::routes::{self, Match};
use crate::server;
use crate::state::State;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A REST client of the stand-in's own routes, on its locked state.
pub(crate) struct Rest<'s> {
    state: &'s mut State,
    base: &'s str,
    now: DateTime<Utc>,
}

impl<'s> Rest<'s> {
    pub(crate) fn new(state: &'s mut State, base: &'s str, now: DateTime<Utc>) -> Rest<'s> {
        Rest { state, base, now }
    }

    /// The state, for what a client reads from elsewhere than these routes (Flex UI state,
    /// Sync): reading only.
    pub(crate) fn state(&self) -> &State {
        self.state
    }

    /// `/v1/Workspaces/{WS}`, the prefix of TaskRouter paths.
    pub(crate) fn workspace(&self) -> String {
        format!("/v1/Workspaces/{}", self.state.settings.workspace_sid)
    }

    pub(crate) fn get(&mut self, path: &str) -> Result<Value, String> {
        self.call("GET", path, &[])
    }

    pub(crate) fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        self.call("POST", path, form)
    }

    pub(crate) fn delete(&mut self, path: &str) -> Result<Value, String> {
        self.call("DELETE", path, &[])
    }

    /// One call: the answer's body (`null` for 204), or what went wrong as the client would
    /// report it (`POST /v1/… answered 400 (20001): …`).
    fn call(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        self.dispatch(method, path, form).map_err(|e| {
            format!(
                "{method} {path} answered {} ({}): {}",
                e.status, e.code, e.message
            )
        })
    }

    fn dispatch(
        &mut self,
        method: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        let (route, path_params) = match routes::find(method, path) {
            Match::Found(route, params) => (route, params),
            Match::MethodNotAllowed => return Err(ApiError::method_not_allowed(method)),
            Match::NotFound => return Err(ApiError::not_found(path)),
        };
        let sids_ok = route.spec.path_sids.iter().all(|(name, prefix)| {
            path_params
                .iter()
                .any(|(n, v)| n == name && is_sid(v, prefix))
        });
        if !sids_ok {
            return Err(ApiError::not_found(path));
        }
        let pairs: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let params = Params::validate(&route.spec, &pairs)?;
        let mut ctx = Ctx {
            state: self.state,
            route: &route.spec,
            path,
            path_params: &path_params,
            params: &params,
            headers: &[],
            base: self.base,
            now: self.now,
        };
        let reply = server::handle(route.handler, &mut ctx)?;
        Ok(reply.body.unwrap_or(Value::Null))
    }
}

/// A JSON object held as a string (task or conversation `attributes`): parsed, or empty when
/// it is not an object.
pub(crate) fn object_in(text: Option<&str>) -> Map<String, Value> {
    match text.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A string field of a JSON object, if it is a non-empty string.
pub(crate) fn text<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
