//! What to do after an outbound Twilio call: done, retry later, or give up (dead letter).
//! Pure: the dispatcher feeds it the outcome and a random number.

use std::time::Duration;

/// The outcome of one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Success,
    /// An error that means the effect is already in place (e.g. completing a task Twilio says is
    /// already completed or gone). Counts as done.
    AlreadyDone { status: u16, code: Option<u32> },
    /// 429: Twilio did not process the request; safe to retry, after `retry_after` if given.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, timeout, connection failure, 412 (stale ETag: re-read and retry).
    Transient { status: Option<u16>, detail: String },
    /// Any other 4xx: retrying the same request cannot succeed.
    Permanent {
        status: u16,
        code: Option<u32>,
        detail: String,
    },
}

/// What the dispatcher does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Done,
    RetryAfter(Duration),
    Dead(String),
}

/// Exponential backoff with full jitter, capped; `Retry-After` honoured (clamped to `max_delay`).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Attempts before an outbound call is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// `attempt` is the number of the attempt that just ended (1 for the first). `jitter` is a
    /// uniform random number in [0, 1).
    pub fn decide(&self, attempt: u32, outcome: &Outcome, jitter: f64) -> Decision {
        match outcome {
            Outcome::Success | Outcome::AlreadyDone { .. } => Decision::Done,
            Outcome::Permanent {
                status,
                code,
                detail,
            } => Decision::Dead(match code {
                Some(code) => format!("HTTP {status}, Twilio error {code}: {detail}"),
                None => format!("HTTP {status}: {detail}"),
            }),
            _ if attempt >= self.max_attempts => Decision::Dead(format!(
                "gave up after {attempt} attempts: {}",
                describe(outcome)
            )),
            Outcome::RateLimited {
                retry_after: Some(after),
            } => {
                // Twilio asked for a pause: at least that, plus a little jitter so a burst of
                // throttled calls does not return all at once.
                let after = (*after).min(self.max_delay);
                Decision::RetryAfter(after + self.base_delay.mul_f64(jitter.clamp(0.0, 1.0)))
            }
            Outcome::RateLimited { retry_after: None } | Outcome::Transient { .. } => {
                Decision::RetryAfter(self.backoff(attempt, jitter))
            }
        }
    }

    /// Full jitter: uniform in [0, min(max, base × 2^(attempt-1))], never below 10 ms.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let ceiling = exp.min(self.max_delay);
        ceiling
            .mul_f64(jitter.clamp(0.0, 1.0))
            .max(Duration::from_millis(10))
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::RateLimited { .. } => "rate limited (429)".into(),
        Outcome::Transient {
            status: Some(s),
            detail,
        } => format!("HTTP {s}: {detail}"),
        Outcome::Transient {
            status: None,
            detail,
        } => detail.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 5,
        }
    }

    #[test]
    fn success_and_already_done_finish() {
        assert_eq!(policy().decide(1, &Outcome::Success, 0.5), Decision::Done);
        let done = Outcome::AlreadyDone {
            status: 404,
            code: Some(20404),
        };
        assert_eq!(policy().decide(3, &done, 0.5), Decision::Done);
    }

    #[test]
    fn permanent_errors_dead_letter_at_once() {
        let outcome = Outcome::Permanent {
            status: 400,
            code: Some(20001),
            detail: "Invalid parameter".into(),
        };
        assert_eq!(
            policy().decide(1, &outcome, 0.5),
            Decision::Dead("HTTP 400, Twilio error 20001: Invalid parameter".into())
        );
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let outcome = Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            policy().decide(1, &outcome, 0.0),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        let long = Outcome::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(
            policy().decide(1, &long, 0.5),
            Decision::RetryAfter(Duration::from_millis(60_500))
        );
    }

    #[test]
    fn backoff_grows_exponentially_under_full_jitter_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff(20, 1.0), Duration::from_secs(60));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(10));
    }

    #[test]
    fn transient_failures_give_up_after_max_attempts() {
        let outcome = Outcome::Transient {
            status: Some(503),
            detail: "Service Unavailable".into(),
        };
        assert!(matches!(
            policy().decide(4, &outcome, 0.5),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            policy().decide(5, &outcome, 0.5),
            Decision::Dead("gave up after 5 attempts: HTTP 503: Service Unavailable".into())
        );
    }
}
