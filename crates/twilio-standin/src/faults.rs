//! Fault injection: random faults (seeded, so a run is reproducible) and scripted failures.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the stand-in did to a request instead of (or besides) answering it normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 429, `Retry-After: <retry_after_secs>`, body code 20429 "Too Many Requests".
    /// Not processed (Twilio: "An API Request that receives an error 429 response is never
    /// processed and is always safe to retry").
    RateLimited,
    /// HTTP 500, body code 20500, before processing: no effect.
    ServerError,
    /// HTTP 503, body code 20503, before processing: no effect.
    ServiceUnavailable,
    /// Holds the connection for `timeout_delay`, then drops it without an answer. Not processed.
    /// A client whose timeout is shorter than the delay sees a timeout.
    Timeout,
    /// Processes the request (the effect happens), then holds the connection for
    /// `timeout_delay` and drops it without an answer: the "did it happen?" case.
    TimeoutAfterApply,
    /// Drops the connection at once without an answer. Not processed.
    ConnectionReset,
    /// Processes the request (the effect happens), then answers HTTP 500 / 20500: for testing
    /// that the client's retry is idempotent.
    ErrorAfterApply,
    /// A `fail_next` failure: this status and Twilio error code, before processing.
    Scripted { status: u16, code: u32 },
}

impl FaultKind {
    /// Whether the request's effect is applied despite the fault.
    pub fn applies_effect(self) -> bool {
        matches!(
            self,
            FaultKind::TimeoutAfterApply | FaultKind::ErrorAfterApply
        )
    }
}

/// Probabilities (0.0–1.0) of each random fault, drawn once per eligible request from a
/// generator seeded with [`StandInConfig::seed`](crate::StandInConfig::seed). The draws are
/// cumulative in field order, so the sum must not exceed 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// [`FaultKind::RateLimited`].
    pub rate_limit: f64,
    /// `Retry-After` seconds sent with a 429 (random or scripted).
    pub retry_after_secs: u64,
    /// [`FaultKind::ServerError`].
    pub server_error: f64,
    /// [`FaultKind::ServiceUnavailable`].
    pub unavailable: f64,
    /// [`FaultKind::Timeout`].
    pub timeout: f64,
    /// [`FaultKind::TimeoutAfterApply`].
    pub timeout_after_apply: f64,
    /// How long `Timeout` / `TimeoutAfterApply` hold the connection before dropping it.
    pub timeout_delay: Duration,
    /// [`FaultKind::ConnectionReset`].
    pub reset: f64,
    /// [`FaultKind::ErrorAfterApply`] ("500 after applying").
    pub error_after_apply: f64,
    /// Added before every answer (after routing), like Twilio's own response time; plus a
    /// uniform random share of `latency_jitter`. Applies to all requests, not only to
    /// `path_prefix`/`methods`.
    pub latency: Duration,
    pub latency_jitter: Duration,
    /// Only requests whose path starts with this prefix draw faults (`None`: all).
    pub path_prefix: Option<String>,
    /// Only these methods draw faults (empty: all), e.g. `["POST", "DELETE"]`.
    pub methods: Vec<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate_limit: 0.0,
            retry_after_secs: 1,
            server_error: 0.0,
            unavailable: 0.0,
            timeout: 0.0,
            timeout_after_apply: 0.0,
            timeout_delay: Duration::from_secs(10),
            reset: 0.0,
            error_after_apply: 0.0,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            path_prefix: None,
            methods: Vec::new(),
        }
    }
}

impl Faults {
    /// No random faults.
    pub fn none() -> Self {
        Faults::default()
    }

    /// The sum of all probabilities.
    pub fn total(&self) -> f64 {
        self.weights().iter().map(|(p, _)| p).sum()
    }

    /// Checks every probability is in 0.0–1.0 and their sum is at most 1.0.
    pub fn validate(&self) -> Result<(), String> {
        for (p, kind) in self.weights() {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("probability of {kind:?} is {p}, not in 0.0..=1.0"));
            }
        }
        if self.total() > 1.0 + 1e-9 {
            return Err(format!(
                "fault probabilities sum to {}, more than 1.0",
                self.total()
            ));
        }
        Ok(())
    }

    fn weights(&self) -> [(f64, FaultKind); 7] {
        [
            (self.rate_limit, FaultKind::RateLimited),
            (self.server_error, FaultKind::ServerError),
            (self.unavailable, FaultKind::ServiceUnavailable),
            (self.timeout, FaultKind::Timeout),
            (self.timeout_after_apply, FaultKind::TimeoutAfterApply),
            (self.reset, FaultKind::ConnectionReset),
            (self.error_after_apply, FaultKind::ErrorAfterApply),
        ]
    }

    /// The fault a uniform draw in `[0, 1)` selects.
    fn pick(&self, draw: f64) -> Option<FaultKind> {
        let mut edge = 0.0;
        for (p, kind) in self.weights() {
            edge += p;
            if draw < edge {
                return Some(kind);
            }
        }
        None
    }

    fn eligible(&self, method: &str, path: &str) -> bool {
        let prefix_ok = self
            .path_prefix
            .as_deref()
            .map_or(true, |prefix| path.starts_with(prefix));
        let method_ok =
            self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
        prefix_ok && method_ok
    }

    /// The faults the first `n` eligible requests get after `set_faults(self)` on a stand-in
    /// started with `seed` (`None`: answered normally). The stand-in uses the same draws, so a
    /// test can predict them.
    pub fn sequence(&self, seed: u64, n: usize) -> Vec<Option<FaultKind>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| self.pick(rng.gen::<f64>())).collect()
    }
}

/// A scripted failure from `fail_next` / `fault_next`.
#[derive(Debug, Clone)]
struct Scripted {
    method: String,
    path_prefix: String,
    remaining: usize,
    kind: FaultKind,
}

impl Scripted {
    fn matches(&self, method: &str, path: &str) -> bool {
        (self.method.is_empty() || self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// The engine the server consults once per authenticated, routed request.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    seed: u64,
    faults: Faults,
    rng: StdRng,
    scripted: Vec<Scripted>,
}

impl FaultEngine {
    pub(crate) fn new(seed: u64, faults: Faults) -> Self {
        FaultEngine {
            seed,
            faults,
            rng: StdRng::seed_from_u64(seed),
            scripted: Vec::new(),
        }
    }

    /// Replaces the random faults and re-seeds the generator, so the draws restart.
    pub(crate) fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.rng = StdRng::seed_from_u64(self.seed);
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    pub(crate) fn script(
        &mut self,
        method: &str,
        path_prefix: &str,
        times: usize,
        kind: FaultKind,
    ) {
        if times > 0 {
            self.scripted.push(Scripted {
                method: method.to_owned(),
                path_prefix: path_prefix.to_owned(),
                remaining: times,
                kind,
            });
        }
    }

    pub(crate) fn clear_scripted(&mut self) {
        self.scripted.clear();
    }

    /// The fault for this request, if any. A scripted failure wins and draws nothing; otherwise
    /// an eligible request draws once from the seeded generator.
    pub(crate) fn decide(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        if let Some(pos) = self.scripted.iter().position(|s| s.matches(method, path)) {
            let kind = self.scripted[pos].kind;
            self.scripted[pos].remaining -= 1;
            if self.scripted[pos].remaining == 0 {
                self.scripted.remove(pos);
            }
            return Some(kind);
        }
        if !self.faults.eligible(method, path) {
            return None;
        }
        let draw = self.rng.gen::<f64>();
        self.faults.pick(draw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_follows_cumulative_order() {
        let faults = Faults {
            rate_limit: 0.1,
            server_error: 0.2,
            ..Faults::default()
        };
        assert_eq!(faults.pick(0.05), Some(FaultKind::RateLimited));
        assert_eq!(faults.pick(0.15), Some(FaultKind::ServerError));
        assert_eq!(faults.pick(0.29), Some(FaultKind::ServerError));
        assert_eq!(faults.pick(0.31), None);
    }

    #[test]
    fn validate_rejects_sums_above_one() {
        let faults = Faults {
            rate_limit: 0.6,
            reset: 0.6,
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        assert!(Faults::default().validate().is_ok());
    }

    #[test]
    fn engine_matches_sequence_and_scripted_draws_nothing() {
        let faults = Faults {
            rate_limit: 0.5,
            ..Faults::default()
        };
        let expected = faults.sequence(7, 20);
        let mut engine = FaultEngine::new(7, Faults::none());
        engine.set(faults);
        engine.script("POST", "/v1/x", 1, FaultKind::ConnectionReset);
        assert_eq!(
            engine.decide("POST", "/v1/x/y"),
            Some(FaultKind::ConnectionReset)
        );
        let got: Vec<_> = (0..20).map(|_| engine.decide("GET", "/v1/x")).collect();
        assert_eq!(got, expected);
    }
}
