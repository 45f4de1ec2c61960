//! Task attribute updates as Twilio wants them: GET the task (its `ETag`), change its attributes,
//! POST them with `If-Match`; a 412 means someone else wrote in between, so read again. One
//! procedure for the outbox dispatcher (Insights stamps, un-parks) and `baton backfill insights`,
//! which differ only in how a request is sent ([`Requester`]: once, or paced and retried).

use super::{Response, TransportError, TwilioClient};
use crate::domain::outbound::{Product, TwilioRequest};
use crate::domain::paths;
use crate::domain::retry::{Decision, Outcome, RetryPolicy};
use rand::Rng;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Sends one request to Twilio and gives back its answer.
pub trait Requester: Sync {
    fn call(
        &self,
        request: &TwilioRequest,
    ) -> impl Future<Output = Result<Response, TransportError>> + Send;
}

/// A plain client sends once: the outbox retries a whole procedure later.
impl Requester for TwilioClient {
    fn call(
        &self,
        request: &TwilioRequest,
    ) -> impl Future<Output = Result<Response, TransportError>> + Send {
        self.send(request)
    }
}

/// The task as a read found it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// `pending`, `reserved`, `assigned`, `wrapping`, `completed` or `canceled`.
    pub assignment_status: Option<String>,
    /// The attributes parsed (`Null` when they are not JSON).
    pub attributes: Value,
}

impl TaskView {
    fn parse(body: &str) -> TaskView {
        let task = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
        TaskView {
            assignment_status: task
                .get("assignment_status")
                .and_then(Value::as_str)
                .map(str::to_owned),
            attributes: task
                .get("attributes")
                .and_then(Value::as_str)
                .and_then(|raw| serde_json::from_str(raw).ok())
                .unwrap_or(Value::Null),
        }
    }
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The answer that decides the outcome: the write's, or the read's when nothing was written
    /// (or the read failed).
    pub response: Response,
    /// The task as last read; `None` when no read succeeded.
    pub task: Option<TaskView>,
    /// When the attributes are as wanted: whether they already were (`Some(true)`: nothing was
    /// written) or were just written (`Some(false)`). `None` on failure.
    pub unchanged: Option<bool>,
}

/// GET the task, `change` its attributes (`None`: leave them as they are), POST them with
/// `If-Match`; on a 412 read again (three times in all).
pub async fn merge_task_attributes<R: Requester>(
    twilio: &R,
    workspace_sid: &str,
    task_sid: &str,
    change: impl Fn(&TaskView) -> Option<Value>,
) -> Result<Merged, TransportError> {
    let path = paths::task(workspace_sid, task_sid);
    let mut last_read = None;
    for _ in 0..3 {
        let read = twilio
            .call(&TwilioRequest::get(Product::TaskRouter, path.as_str()))
            .await?;
        if !(200..300).contains(&read.status) {
            return Ok(Merged {
                response: read,
                task: None,
                unchanged: None,
            });
        }
        let task = TaskView::parse(&read.body);
        let Some(changed) = change(&task) else {
            return Ok(Merged {
                response: read,
                task: Some(task),
                unchanged: Some(true),
            });
        };
        let write = TwilioRequest {
            if_match: read.etag.clone(),
            ..TwilioRequest::post(
                Product::TaskRouter,
                path.as_str(),
                vec![("Attributes".into(), changed.to_string())],
            )
        };
        let written = twilio.call(&write).await?;
        if written.status != 412 {
            let ok = (200..300).contains(&written.status);
            return Ok(Merged {
                response: written,
                task: Some(task),
                unchanged: ok.then_some(false),
            });
        }
        last_read = Some(task);
    }
    Ok(Merged {
        response: Response {
            status: 412,
            body: String::new(),
            retry_after: None,
            etag: None,
        },
        task: last_read,
        unchanged: None,
    })
}

/// Spaces requests at least `1 / rate` seconds apart (Twilio limits requests per second).
#[derive(Debug)]
pub struct Pace {
    gap: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pace {
    pub fn per_second(rate: f64) -> Pace {
        Pace {
            gap: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + self.gap;
        drop(next);
        tokio::time::sleep_until(at).await;
    }
}

/// Cancelled while waiting to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Sends with retries: a 429 after its `Retry-After`, 5xx and transport failures with
/// exponential backoff and full jitter (`domain::retry`), optionally paced. Any other answer
/// (a 412 included: the caller re-reads) is returned as it is; so is the last one when the
/// policy gives up.
pub struct Retrying<'a> {
    pub client: &'a TwilioClient,
    pub policy: &'a RetryPolicy,
    pub cancel: &'a CancellationToken,
    pub pace: Option<&'a Pace>,
}

impl Retrying<'_> {
    pub async fn send(
        &self,
        request: &TwilioRequest,
    ) -> Result<Result<Response, TransportError>, Cancelled> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(pace) = self.pace {
                tokio::select! {
                    _ = self.cancel.cancelled() => return Err(Cancelled),
                    _ = pace.wait() => {}
                }
            }
            let result = self.client.send(request).await;
            let outcome = match &result {
                Ok(response) => response.outcome(|_, _| false),
                Err(e) => e.outcome(),
            };
            let retryable = match &outcome {
                Outcome::RateLimited { .. } => true,
                Outcome::Transient { status, .. } => *status != Some(412),
                _ => false,
            };
            if !retryable {
                return Ok(result);
            }
            let jitter: f64 = rand::thread_rng().gen();
            match self.policy.decide(attempt, &outcome, jitter) {
                Decision::RetryAfter(delay) => {
                    tracing::warn!(attempt, ?delay, ?outcome, path = %request.path, "Twilio request not answered; retrying");
                    metrics::counter!("baton_backfill_retries_total").increment(1);
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Decision::Done | Decision::Dead(_) => return Ok(result),
            }
        }
    }

    /// Why the policy gives up on this answer (a 4xx at once, others after the last attempt).
    pub fn failure(&self, result: &Result<Response, TransportError>) -> String {
        let outcome = match result {
            Ok(response) => response.outcome(|_, _| false),
            Err(e) => e.outcome(),
        };
        match self.policy.decide(self.policy.max_attempts, &outcome, 0.0) {
            Decision::Dead(reason) => reason,
            other => format!("unexpected answer from Twilio: {outcome:?} ({other:?})"),
        }
    }
}

impl Requester for Retrying<'_> {
    async fn call(&self, request: &TwilioRequest) -> Result<Response, TransportError> {
        self.send(request)
            .await
            .unwrap_or_else(|Cancelled| Err(TransportError("cancelled".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_read_gives_its_status_and_parsed_attributes() {
        let view = TaskView::parse(
            r#"{"sid":"WT1","assignment_status":"wrapping","attributes":"{\"a\":1}"}"#,
        );
        assert_eq!(view.assignment_status.as_deref(), Some("wrapping"));
        assert_eq!(view.attributes, serde_json::json!({"a": 1}));
        let odd = TaskView::parse(r#"{"attributes":"not json"}"#);
        assert_eq!(odd.assignment_status, None);
        assert_eq!(odd.attributes, Value::Null);
    }

    #[tokio::test]
    async fn pace_spaces_requests() {
        let pace = Pace::per_second(50.0);
        let start = Instant::now();
        for _ in 0..4 {
            pace.wait().await;
        }
        // The first goes at once, each later one 20 ms after the one before.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(60), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
    }
}
