//! The Twilio REST client: HTTP Basic auth, Twilio's per-product hosts (or one override base),
//! Twilio's error bodies, `Retry-After` and `ETag`. Used only by the outbox dispatcher and the
//! backfills. Never logs or returns the auth token.

pub mod events;
pub mod tasks;

use crate::domain::outbound::{Product, TwilioRequest};
use crate::domain::retry::Outcome;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// Twilio's error body (the legacy shape every TaskRouter, Conversations and Flex v1 endpoint
/// uses; RFC 9457 problem bodies carry `code`/`status` too and parse the same way).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default, alias = "detail", alias = "title")]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

/// A response from Twilio (any status).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
    pub etag: Option<String>,
}

impl Response {
    pub fn error(&self) -> Option<ApiError> {
        if (200..300).contains(&self.status) {
            return None;
        }
        serde_json::from_str(&self.body).ok()
    }

    /// What this answer means for retrying, given the operation's already-done rule.
    pub fn outcome(&self, already_done: impl Fn(u16, Option<u32>) -> bool) -> Outcome {
        let status = self.status;
        if (200..300).contains(&status) {
            return Outcome::Success;
        }
        let error = self.error();
        let code = error.as_ref().and_then(|e| e.code);
        let detail = error
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| format!("HTTP {status}"));
        if already_done(status, code) {
            return Outcome::AlreadyDone { status, code };
        }
        match status {
            429 => Outcome::RateLimited {
                retry_after: self.retry_after,
            },
            // 412: the task changed since its ETag was read; re-read and retry.
            412 | 500..=599 => Outcome::Transient {
                status: Some(status),
                detail,
            },
            _ if code == Some(20429) => Outcome::RateLimited {
                retry_after: self.retry_after,
            },
            _ => Outcome::Permanent {
                status,
                code,
                detail,
            },
        }
    }
}

/// A call that got no HTTP answer (connect failure, reset, timeout). Safe to classify as
/// transient: the effect may or may not have happened, so operations must be idempotent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl TransportError {
    pub fn outcome(&self) -> Outcome {
        Outcome::Transient {
            status: None,
            detail: self.0.clone(),
        }
    }
}

/// The Flex user a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlexUser {
    pub identity: String,
    pub worker_sid: Option<String>,
    pub roles: Vec<String>,
    /// When the token expires, as Twilio says (`expiration`).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    account_sid: String,
    auth_token: SecretString,
    base_override: Option<Url>,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("account_sid", &self.account_sid)
            .field(
                "base_override",
                &self.base_override.as_ref().map(Url::as_str),
            )
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    pub fn new(
        account_sid: &str,
        auth_token: SecretString,
        base_override: Option<Url>,
        timeout: Duration,
    ) -> Result<TwilioClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(TwilioClient {
            http,
            account_sid: account_sid.to_owned(),
            auth_token,
            base_override,
        })
    }

    /// The base URL for a product: the override when set, else Twilio's host.
    pub fn base(&self, product: Product) -> String {
        match &self.base_override {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => match product {
                Product::TaskRouter => "https://taskrouter.twilio.com".into(),
                Product::Conversations => "https://conversations.twilio.com".into(),
                Product::Flex => "https://flex-api.twilio.com".into(),
                Product::Iam => "https://iam.twilio.com".into(),
            },
        }
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// Validates a Flex user's token (what `twilio-flex-token-validator` does): the identity
    /// behind it, or `None` when Twilio says it is not valid.
    pub async fn validate_flex_token(
        &self,
        token: &str,
    ) -> Result<Result<FlexUser, String>, TransportError> {
        let url = format!(
            "{}/v1/Accounts/{}/Tokens/validate",
            self.base(Product::Iam),
            self.account_sid
        );
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .map_err(|e| TransportError(describe(&e)))?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| TransportError(describe(&e)))?;
        if !(200..300).contains(&status) {
            return Err(TransportError(format!(
                "token validation answered HTTP {status}"
            )));
        }
        if body.get("valid").and_then(serde_json::Value::as_bool) != Some(true) {
            let message = body
                .get("message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("invalid token");
            return Ok(Err(message.to_owned()));
        }
        let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Ok(FlexUser {
            expires_at: text("expiration")
                .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e).ok())
                .map(|e| e.with_timezone(&chrono::Utc)),
            identity: text("identity").unwrap_or_default(),
            worker_sid: text("worker_sid"),
            roles: body
                .get("roles")
                .and_then(|r| r.as_array())
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    /// A read made while a caller waits (an API request): a 429 (when its `Retry-After` is
    /// short), a 5xx or a transport error is retried with jittered backoff, up to
    /// [`READ_RETRY`]'s attempts, so a moment's rate limit does not fail the caller's request.
    /// Writes never come here: they go through the outbox, which retries them durably.
    pub async fn read(&self, request: &TwilioRequest) -> Result<Response, TransportError> {
        let mut attempt = 1;
        loop {
            let result = self.send(request).await;
            let outcome = match &result {
                Ok(r) if r.status == 429 => Outcome::RateLimited {
                    retry_after: r.retry_after,
                },
                Ok(r) if r.status >= 500 => Outcome::Transient {
                    status: Some(r.status),
                    detail: String::new(),
                },
                Ok(_) => return result,
                Err(e) => Outcome::Transient {
                    status: None,
                    detail: e.0.clone(),
                },
            };
            if let Outcome::RateLimited {
                retry_after: Some(after),
            } = outcome
            {
                if after > READ_RETRY.max_delay {
                    return result;
                }
            }
            match READ_RETRY.decide(attempt, &outcome, rand::random::<f64>()) {
                crate::domain::retry::Decision::RetryAfter(wait) => {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return result,
            }
        }
    }

    pub async fn send(&self, request: &TwilioRequest) -> Result<Response, TransportError> {
        let url = format!("{}{}", self.base(request.product), request.path);
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| TransportError(format!("invalid HTTP method {:?}", request.method)))?;
        let mut builder = self
            .http
            .request(method.clone(), &url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()));
        if let Some(etag) = &request.if_match {
            builder = builder.header("If-Match", etag);
        }
        if method == reqwest::Method::GET {
            builder = builder.query(&request.form);
        } else if !request.form.is_empty() {
            builder = builder.form(&request.form);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| TransportError(describe(&e)))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let etag = headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|e| TransportError(describe(&e)))?;
        Ok(Response {
            status,
            body,
            retry_after,
            etag,
        })
    }
}

/// How a read a caller waits for is retried: three attempts within a few seconds.
pub const READ_RETRY: crate::domain::retry::RetryPolicy = crate::domain::retry::RetryPolicy {
    base_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(2),
    max_attempts: 3,
};

/// A transport error without the URL's credentials or query (reqwest's Display may include the URL).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "response body failed"
    } else {
        "request failed"
    };
    match e.url() {
        Some(url) => format!("{kind}: {} {}", url.host_str().unwrap_or(""), url.path()),
        None => kind.to_owned(),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.into(),
            retry_after: None,
            etag: None,
        }
    }

    #[test]
    fn twilio_error_bodies_classify() {
        let not_found = response(
            404,
            r#"{"code":20404,"message":"The requested resource was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}"#,
        );
        assert_eq!(
            not_found.outcome(
                |s, c| crate::domain::outbound::OperationKind::CompleteTask.already_done(s, c)
            ),
            Outcome::AlreadyDone {
                status: 404,
                code: Some(20404)
            }
        );
        let bad = response(
            400,
            r#"{"code":20001,"message":"Invalid parameter","status":400}"#,
        );
        assert_eq!(
            bad.outcome(|_, _| false),
            Outcome::Permanent {
                status: 400,
                code: Some(20001),
                detail: "Invalid parameter".into()
            }
        );
        assert!(matches!(
            response(503, "oops").outcome(|_, _| false),
            Outcome::Transient {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            response(412, "{}").outcome(|_, _| false),
            Outcome::Transient {
                status: Some(412),
                ..
            }
        ));
        let mut limited = response(
            429,
            r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
        );
        limited.retry_after = Some(Duration::from_secs(3));
        assert_eq!(
            limited.outcome(|_, _| false),
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn debug_output_hides_the_token() {
        let client = TwilioClient::new(
            "AC00000000000000000000000000000001",
            SecretString::from("very-secret-token".to_owned()),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("very-secret-token"));
        assert_eq!(client.base(Product::Flex), "https://flex-api.twilio.com");
    }
}
