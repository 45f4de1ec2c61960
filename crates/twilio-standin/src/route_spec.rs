//! What a route declares: its API, method and path, how its request body is read, the
//! parameters it reads and how each is validated, the headers it reads and the fields it
//! returns. The route table (`crate::routes`) lists one [`RouteSpec`] per route with its
//! handler; a handler's request (`crate::ctx`) validates its parameters by it.

/// Which Twilio API (and which OpenAPI file) a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    TaskRouter,
    Conversations,
    Flex,
    /// `iam.twilio.com` Flex token validation: not in the twilio-oai specs.
    Iam,
}

impl Api {
    /// The twilio-oai file describing this API (`None` for [`Api::Iam`]).
    pub fn spec_file(self) -> Option<&'static str> {
        match self {
            Api::TaskRouter => Some("twilio_taskrouter_v1.json"),
            Api::Conversations => Some("twilio_conversations_v1.json"),
            Api::Flex => Some("twilio_flex_v1.json"),
            Api::Iam => None,
        }
    }
}

/// How a request parameter is validated (and what the spec must say about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any string (spec: `type: string` without enum/pattern, or untyped).
    Str,
    /// A JSON object sent as a string (spec: `string` or untyped, e.g. `Attributes`, `Routing`).
    JsonObject,
    /// Any JSON value sent as a string.
    Json,
    /// An integer within bounds (spec: `type: integer`).
    Int { min: i64, max: i64 },
    /// `true` / `false` (spec: `type: boolean`).
    Bool,
    /// ISO 8601 date-time (spec: `format: date-time`).
    DateTime,
    /// One of these values, exact case (spec: the same `enum`).
    Enum(&'static [&'static str]),
    /// One of these values, any case (Twilio accepts `POST` where the spec says `post`).
    EnumIgnoreCase(&'static [&'static str]),
    /// A SID with this prefix (spec: `pattern: ^XX[0-9a-fA-F]{32}$`).
    Sid(&'static str),
    /// Repeated keys, each a string (spec: `type: array` of strings).
    Array,
}

/// A parameter a route reads: a form field (POST), a query parameter (GET/DELETE) or a top-level
/// JSON field ([`Body::Json`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
}

/// How the request body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body; parameters come from the query string.
    None,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json` (only the IAM token validation).
    Json,
}

/// What one route declares (the route table pairs it with its handler).
#[derive(Clone, Copy)]
pub struct RouteSpec {
    pub api: Api,
    pub method: &'static str,
    /// The spec's path template, e.g. `/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}`.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub body: Body,
    pub params: &'static [ParamSpec],
    /// Request headers read (spec: header parameters).
    pub headers: &'static [&'static str],
    /// Path parameters that must be SIDs with a prefix (anything else: 404).
    pub path_sids: &'static [(&'static str, &'static str)],
    /// The success status.
    pub status: u16,
    /// For list operations, the array's key; the answer is `{<key>: [...], "meta": {...}}`.
    pub list_key: Option<&'static str>,
    /// The top-level fields of the returned resource (of each item, for lists). Exactly these
    /// are returned.
    pub fields: &'static [&'static str],
}

impl std::fmt::Debug for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSpec")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation_id", &self.operation_id)
            .finish_non_exhaustive()
    }
}

impl RouteSpec {
    /// The declared parameter `name`.
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Whether `value` is a SID with `prefix`: the prefix and 32 hex digits.
pub(crate) fn is_sid(value: &str, prefix: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_check() {
        assert!(is_sid("WT0123456789abcdefABCDEF0123456789", "WT"));
        assert!(!is_sid("WT0123", "WT"));
        assert!(!is_sid("WK0123456789abcdefABCDEF0123456789", "WT"));
        assert!(!is_sid("WT0123456789abcdefABCDEF012345678z", "WT"));
    }
}
