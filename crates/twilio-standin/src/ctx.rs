//! What a handler gets (validated parameters, path values, state) and what it returns.

use crate::error::ApiError;
use crate::route_spec::{is_sid, Body, ParamKind, ParamSpec, RouteSpec};
use crate::state::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// A handler's answer before the server turns it into HTTP.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    /// The Task version to send as `ETag`.
    pub etag: Option<u64>,
    /// A Twilio warning code the request produced (logged, not sent), e.g. 80906.
    pub warning: Option<u32>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            etag: None,
            warning: None,
        }
    }

    pub fn no_content() -> Self {
        Reply {
            status: 204,
            body: None,
            etag: None,
            warning: None,
        }
    }

    pub fn with_etag(mut self, version: u64) -> Self {
        self.etag = Some(version);
        self
    }

    pub fn with_warning(mut self, code: u32) -> Self {
        self.warning = Some(code);
        self
    }
}

/// The request as a handler sees it.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut State,
    pub route: &'static RouteSpec,
    /// The request path (for 404 messages).
    pub path: &'a str,
    pub path_params: &'a [(&'static str, String)],
    pub params: &'a Params,
    pub headers: &'a [(String, String)],
    /// `http://host:port` the client used, for `url` fields and paging links.
    pub base: &'a str,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// A path value (`Sid`, `TaskSid`, …) the route template has.
    pub fn path(&self, name: &str) -> Result<String, ApiError> {
        self.path_params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ApiError::bug(format!("path parameter {name} not in template")))
    }

    /// A request header the route declares.
    pub fn header(&self, name: &str) -> Result<Option<&str>, ApiError> {
        if !self
            .route
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            return Err(ApiError::bug(format!(
                "{} reads header {name} it does not declare",
                self.route.operation_id
            )));
        }
        Ok(self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str()))
    }

    /// 404 for this request's path.
    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(self.path)
    }
}

/// Declared parameters that were sent, validated against their [`ParamKind`].
#[derive(Debug)]
pub(crate) struct Params {
    route: &'static RouteSpec,
    values: Vec<(&'static str, Vec<String>)>,
}

impl Params {
    /// Collects and validates the declared parameters of `route` from `pairs` (form or query,
    /// repeated keys kept). Undeclared parameters are ignored, as Twilio ignores them.
    pub fn validate(
        route: &'static RouteSpec,
        pairs: &[(String, String)],
    ) -> Result<Params, ApiError> {
        let mut values = Vec::new();
        for spec in route.params {
            let sent: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == spec.name)
                .map(|(_, v)| v.clone())
                .collect();
            if sent.is_empty() || sent.iter().all(|v| v.is_empty()) {
                if spec.required {
                    let place = match route.body {
                        Body::Form => " in the post body",
                        Body::Json => " in the JSON body",
                        Body::None => "",
                    };
                    return Err(ApiError::invalid(format!(
                        "Missing required parameter {}{place}",
                        spec.name
                    )));
                }
                if sent.is_empty() {
                    continue;
                }
            }
            for value in &sent {
                check(spec, value)?;
            }
            values.push((spec.name, sent));
        }
        Ok(Params { route, values })
    }

    /// The pairs a JSON body stands for: its top-level string (and scalar) fields.
    pub fn pairs_from_json(body: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
        let Some(body) = body else {
            return Err(ApiError::invalid("The request body must be a JSON object"));
        };
        let Some(object) = body.as_object() else {
            return Err(ApiError::invalid("The request body must be a JSON object"));
        };
        Ok(object
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Number(n) => Some((k.clone(), n.to_string())),
                Value::Bool(b) => Some((k.clone(), b.to_string())),
                _ => None,
            })
            .collect())
    }

    fn spec(&self, name: &str) -> Result<&'static ParamSpec, ApiError> {
        self.route.param(name).ok_or_else(|| {
            ApiError::bug(format!(
                "{} reads parameter {name} it does not declare",
                self.route.operation_id
            ))
        })
    }

    fn raw(&self, name: &str) -> Result<Option<&[String]>, ApiError> {
        self.spec(name)?;
        Ok(self
            .values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice()))
    }

    /// The first value sent for `name`.
    pub fn str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        Ok(self.raw(name)?.and_then(|v| v.first()).map(String::as_str))
    }

    /// A required parameter (validation already refused its absence).
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.str(name)?
            .ok_or_else(|| ApiError::invalid(format!("Missing required parameter {name}")))
    }

    /// Every value sent for `name` (repeated keys), in order.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        Ok(self.raw(name)?.map(<[String]>::to_vec).unwrap_or_default())
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.str(name)? {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid(format!("Invalid value '{v}' for parameter {name}"))
            }),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        Ok(self.str(name)?.and_then(parse_bool))
    }

    pub fn datetime(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        match self.str(name)? {
            None => Ok(None),
            Some(v) => parse_datetime(v).map(Some).ok_or_else(|| {
                ApiError::invalid(format!("Invalid value '{v}' for parameter {name}"))
            }),
        }
    }

    /// A JSON object parameter, parsed.
    pub fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.str(name)? {
            None => Ok(None),
            Some(v) => match serde_json::from_str::<Value>(v) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                _ => Err(ApiError::invalid(format!(
                    "Invalid value for parameter {name}: expected a JSON object"
                ))),
            },
        }
    }
}

fn check(spec: &ParamSpec, value: &str) -> Result<(), ApiError> {
    let name = spec.name;
    let bad = |expected: String| {
        ApiError::invalid(format!(
            "Invalid value '{value}' for parameter {name}: expected {expected}"
        ))
    };
    match spec.kind {
        ParamKind::Str | ParamKind::Array => Ok(()),
        ParamKind::Json => serde_json::from_str::<Value>(value)
            .map(|_| ())
            .map_err(|_| bad("a valid JSON string".into())),
        ParamKind::JsonObject => match serde_json::from_str::<Value>(value) {
            Ok(Value::Object(_)) => Ok(()),
            _ => Err(bad("a JSON object".into())),
        },
        ParamKind::Int { min, max } => match value.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ if max == i64::MAX => Err(bad(format!("an integer of at least {min}"))),
            _ => Err(bad(format!("an integer from {min} to {max}"))),
        },
        ParamKind::Bool => parse_bool(value)
            .map(|_| ())
            .ok_or_else(|| bad("true or false".into())),
        ParamKind::DateTime => parse_datetime(value)
            .map(|_| ())
            .ok_or_else(|| bad("an ISO 8601 date-time".into())),
        ParamKind::Enum(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(bad(format!("one of {}", allowed.join(", "))))
            }
        }
        ParamKind::EnumIgnoreCase(allowed) => {
            if allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
                Ok(())
            } else {
                Err(bad(format!("one of {}", allowed.join(", "))))
            }
        }
        ParamKind::Sid(prefix) => {
            if is_sid(value, prefix) {
                Ok(())
            } else {
                Err(bad(format!("a SID matching ^{prefix}[0-9a-fA-F]{{32}}$")))
            }
        }
    }
}

pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// RFC 3339 / ISO 8601 date-time, or a bare `YYYY-MM-DD` (midnight UTC).
pub(crate) fn parse_datetime(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(value) {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}
