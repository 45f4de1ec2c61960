//! The callback queue: what the stand-in sends to baton (TaskRouter event callbacks and
//! Conversations webhooks), held in the state and filled under its lock in the same step as the
//! state change that produced it; how deliveries are retried, signed and recorded. The
//! delivery task and the control methods that hold, reorder and redeliver are in
//! `crate::callbacks`.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sha1::Sha1;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Which failed callback attempts are tried again, how often, and how fast. Real TaskRouter
/// retries per the URL's connection overrides (`#rc=…&rp=…`), by default once and only when the
/// connection cannot be made ([`CallbackRetry::twilio_default`]); the stand-in's default is more
/// generous so a baton that is briefly busy does not lose an event in a test, and fast (a few
/// milliseconds between attempts) so tests stay quick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRetry {
    /// Attempts after the first one (Twilio's `rc`, at most 5 there).
    pub retries: u32,
    /// Retry when the connection cannot be made (`rp=ct`).
    pub on_connect_failure: bool,
    /// Retry when no answer came: timed out or the connection dropped (`rp=rt`).
    pub on_no_answer: bool,
    /// Retry a 5xx answer (`rp=5xx`).
    pub on_5xx: bool,
    /// Retry a 4xx answer (`rp=4xx`).
    pub on_4xx: bool,
    /// The wait before the first retry; doubled before each further one.
    pub backoff: Duration,
    /// How long one attempt may take (TaskRouter waits 15 s).
    pub timeout: Duration,
}

impl Default for CallbackRetry {
    /// Three retries on a connection failure, no answer or a 5xx; 10 ms backoff; 5 s per attempt.
    fn default() -> Self {
        CallbackRetry {
            retries: 3,
            on_connect_failure: true,
            on_no_answer: true,
            on_5xx: true,
            on_4xx: false,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        }
    }
}

impl CallbackRetry {
    /// What a URL without connection overrides gets from Twilio: one retry, only when the
    /// connection could not be made; 15 s per attempt.
    pub fn twilio_default() -> Self {
        CallbackRetry {
            retries: 1,
            on_connect_failure: true,
            on_no_answer: false,
            on_5xx: false,
            on_4xx: false,
            backoff: Duration::ZERO,
            timeout: Duration::from_secs(15),
        }
    }

    /// No retries at all.
    pub fn none() -> Self {
        CallbackRetry {
            retries: 0,
            ..CallbackRetry::default()
        }
    }

    pub(crate) fn retries_after(&self, outcome: &AttemptOutcome) -> bool {
        match outcome {
            AttemptOutcome::Status(status) => {
                (self.on_5xx && *status >= 500) || (self.on_4xx && (400..500).contains(status))
            }
            AttemptOutcome::ConnectFailed(_) => self.on_connect_failure,
            AttemptOutcome::NoAnswer(_) => self.on_no_answer,
        }
    }
}

/// Which Twilio product a callback comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackKind {
    /// A TaskRouter event callback, to the Workspace `EventCallbackUrl`.
    TaskRouter,
    /// A Conversations post-action webhook, to the service-level `PostWebhookUrl` or a
    /// conversation-scoped webhook's `Configuration.Url`.
    Conversations,
}

/// One callback as sent (or to be sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The delivery's stable id, what [`StandIn::redeliver`](crate::StandIn::redeliver) takes.
    /// For TaskRouter, the event's `Sid` (`EV…`). Conversations webhooks carry no event SID:
    /// there it is the `I-Twilio-Idempotency-Token` (one per event and webhook target).
    pub event_sid: String,
    /// `EventType` (`task.created`, `onMessageAdded`, …).
    pub event_type: String,
    pub kind: CallbackKind,
    /// For a conversation-scoped webhook, its `WH…` SID; `None` for the service-level
    /// Conversations webhook and for TaskRouter.
    pub webhook_sid: Option<String>,
    /// The URL posted to and signed (a `#fragment` is dropped, as Twilio drops connection
    /// overrides). For TaskRouter it is empty while queued, as the Workspace URL is read when
    /// the callback is sent; a Conversations callback has its webhook's URL from the start.
    pub url: String,
    /// The form parameters, in the order sent.
    pub params: Vec<(String, String)>,
    /// `X-Twilio-Signature` (empty while queued).
    pub signature: String,
    /// `I-Twilio-Idempotency-Token`: one per event, the same on every retry and redelivery.
    pub idempotency_token: String,
}

impl Callback {
    /// Whether this is a Conversations webhook (not a TaskRouter event callback).
    pub fn is_conversations(&self) -> bool {
        self.kind == CallbackKind::Conversations
    }

    /// A form parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one attempt to deliver a callback got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this HTTP status.
    Status(u16),
    /// No connection could be made.
    ConnectFailed(String),
    /// Connected, but no answer came: timed out or the connection dropped.
    NoAnswer(String),
}

/// One delivery of a callback: its attempts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredCallback {
    pub callback: Callback,
    /// At least one; more when failures were retried ([`CallbackRetry`]).
    pub attempts: Vec<AttemptOutcome>,
    /// A second delivery of an event already sent: [`Release::Duplicated`] or
    /// [`StandIn::redeliver`](crate::StandIn::redeliver).
    pub redelivery: bool,
}

impl DeliveredCallback {
    pub fn event_sid(&self) -> &str {
        &self.callback.event_sid
    }

    pub fn event_type(&self) -> &str {
        &self.callback.event_type
    }

    pub fn kind(&self) -> CallbackKind {
        self.callback.kind
    }

    /// Whether this is a Conversations webhook (not a TaskRouter event callback).
    pub fn is_conversations(&self) -> bool {
        self.callback.is_conversations()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.callback.param(name)
    }

    /// The last attempt's HTTP status, if the receiver answered.
    pub fn status(&self) -> Option<u16> {
        match self.attempts.last() {
            Some(AttemptOutcome::Status(status)) => Some(*status),
            _ => None,
        }
    }

    /// Whether the last attempt got a 2xx.
    pub fn succeeded(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }
}

/// The order [`StandIn::release_callbacks`](crate::StandIn::release_callbacks) sends held
/// callbacks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// As produced.
    InOrder,
    /// Newest first.
    Reversed,
    /// A permutation drawn from this seed (the same seed, the same permutation).
    Shuffled(u64),
    /// As produced, each sent twice in a row (the second with the same idempotency token and
    /// signature, as a Twilio redelivery).
    Duplicated,
}

/// A queued delivery.
#[derive(Debug, Clone)]
struct Job {
    callback: Callback,
    /// Where it goes: `None` for a TaskRouter event (the Workspace URL when it is sent); the
    /// webhook's URL for a Conversations event; the first delivery's URL for a redelivery (so
    /// the signature inputs repeat).
    url: Option<String>,
    redelivery: bool,
}

/// The callback side of the state: the URL, the queue, what was delivered.
pub(crate) struct CallbackQueue {
    auth_token: String,
    url: Option<String>,
    held: bool,
    queue: VecDeque<Job>,
    /// Sent but not yet recorded (the delivery task is working on it).
    in_flight: bool,
    /// Oldest dropped first beyond `keep` (the config's `log_limit`), as the request log.
    delivered: VecDeque<DeliveredCallback>,
    keep: usize,
    pub retry: CallbackRetry,
    /// Wakes the delivery task (a permit is kept if it is busy, so no wake-up is lost).
    pub wake: Arc<Notify>,
    /// Signalled whenever the delivery task finishes a callback or runs out of work.
    pub idle: Arc<Notify>,
}

impl CallbackQueue {
    pub(crate) fn new(
        auth_token: String,
        url: Option<String>,
        retry: CallbackRetry,
        keep: usize,
    ) -> Self {
        CallbackQueue {
            auth_token,
            url,
            held: false,
            queue: VecDeque::new(),
            in_flight: false,
            delivered: VecDeque::new(),
            keep,
            retry,
            wake: Arc::new(Notify::new()),
            idle: Arc::new(Notify::new()),
        }
    }

    /// Whether TaskRouter events are being sent anywhere (else they are not built for
    /// callbacks at all).
    pub(crate) fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Queues a TaskRouter event's callback. Without a URL nothing is queued: Twilio sends
    /// nothing when no `EventCallbackUrl` is configured.
    pub(crate) fn enqueue(
        &mut self,
        event_sid: String,
        event_type: String,
        params: Vec<(String, String)>,
        idempotency_token: String,
    ) {
        if self.url.is_none() {
            return;
        }
        self.queue.push_back(Job {
            callback: Callback {
                event_sid,
                event_type,
                kind: CallbackKind::TaskRouter,
                webhook_sid: None,
                url: String::new(),
                params,
                signature: String::new(),
                idempotency_token,
            },
            url: None,
            redelivery: false,
        });
        self.wake.notify_one();
    }

    /// Queues a Conversations webhook delivery to its own URL (the idempotency token is its
    /// id, see [`Callback::event_sid`]).
    pub(crate) fn enqueue_webhook(
        &mut self,
        url: &str,
        webhook_sid: Option<String>,
        event_type: String,
        params: Vec<(String, String)>,
        idempotency_token: String,
    ) {
        self.queue.push_back(Job {
            callback: Callback {
                event_sid: idempotency_token.clone(),
                event_type,
                kind: CallbackKind::Conversations,
                webhook_sid,
                url: strip_fragment(url).to_owned(),
                params,
                signature: String::new(),
                idempotency_token,
            },
            url: Some(url.to_owned()),
            redelivery: false,
        });
        self.wake.notify_one();
    }

    /// The Workspace `EventCallbackUrl`, if set.
    pub(crate) fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Where a job goes now, if anywhere.
    fn target(&self, job: &Job) -> Option<String> {
        job.url.clone().or_else(|| self.url.clone())
    }

    /// Takes the next callback to send, signed for the URL it goes to, and marks it in flight.
    /// That is the first queued one that has somewhere to go: TaskRouter callbacks queued while
    /// a Workspace URL was set, which has since been cleared, keep their place (they go once a
    /// URL is set again) without holding up the Conversations webhooks behind them.
    pub(crate) fn next(&mut self) -> Option<(Callback, bool, CallbackRetry)> {
        if self.held || self.in_flight {
            return None;
        }
        let (index, url) = self
            .queue
            .iter()
            .enumerate()
            .find_map(|(i, job)| self.target(job).map(|url| (i, url)))?;
        let job = self.queue.remove(index)?;
        let url = strip_fragment(&url).to_owned();
        let mut callback = job.callback;
        callback.signature = sign(&self.auth_token, &url, &callback.params);
        callback.url = url;
        self.in_flight = true;
        Some((callback, job.redelivery, self.retry.clone()))
    }

    pub(crate) fn finish(&mut self, delivered: DeliveredCallback) {
        if self.keep > 0 {
            while self.delivered.len() >= self.keep {
                self.delivered.pop_front();
            }
            self.delivered.push_back(delivered);
        }
        self.in_flight = false;
    }

    /// Nothing in flight and nothing that could be sent now.
    pub(crate) fn settled(&self) -> bool {
        !self.in_flight && (self.held || self.queue.iter().all(|job| self.target(job).is_none()))
    }

    /// Callbacks waiting to be sent (held, or not yet reached).
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the delivery task is working on a callback.
    pub(crate) fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Sets (or clears) the Workspace `EventCallbackUrl`.
    pub(crate) fn set_url(&mut self, url: Option<String>) {
        self.url = url;
        self.wake.notify_one();
    }

    /// The deliveries recorded, in the order sent.
    pub(crate) fn delivered(&self) -> &VecDeque<DeliveredCallback> {
        &self.delivered
    }

    /// Forgets the deliveries recorded (the queue is kept).
    pub(crate) fn clear_delivered(&mut self) {
        self.delivered.clear();
    }

    /// The queued callbacks, in the order they will go.
    pub(crate) fn queued(&self) -> Vec<Callback> {
        self.queue.iter().map(|job| job.callback.clone()).collect()
    }

    /// Removes the queued callbacks and returns them, in order.
    pub(crate) fn take_queued(&mut self) -> Vec<Callback> {
        self.queue.drain(..).map(|job| job.callback).collect()
    }

    /// Holds the queue (nothing new goes out) or lets it go in order.
    pub(crate) fn hold(&mut self, hold: bool) {
        self.held = hold;
        self.wake.notify_one();
    }

    /// Reorders the queued callbacks and stops holding them.
    pub(crate) fn release(&mut self, order: Release) {
        let queue = &mut self.queue;
        match order {
            Release::InOrder => {}
            Release::Reversed => queue.make_contiguous().reverse(),
            Release::Shuffled(seed) => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                queue.make_contiguous().shuffle(&mut rng);
            }
            Release::Duplicated => {
                let doubled: VecDeque<Job> = queue
                    .drain(..)
                    .flat_map(|job| {
                        let mut again = job.clone();
                        again.redelivery = true;
                        [job, again]
                    })
                    .collect();
                *queue = doubled;
            }
        }
        self.held = false;
        self.wake.notify_one();
    }

    /// Queues a delivered callback again, after what is queued, to the URL it first went to.
    /// `false` if no delivery of `event_sid` is recorded.
    pub(crate) fn redeliver(&mut self, event_sid: &str) -> bool {
        let Some(first) = self
            .delivered
            .iter()
            .find(|d| d.callback.event_sid == event_sid)
            .map(|d| d.callback.clone())
        else {
            return false;
        };
        self.queue.push_back(Job {
            url: Some(first.url.clone()),
            callback: first,
            redelivery: true,
        });
        self.wake.notify_one();
        true
    }
}

/// A callback URL must be an absolute `http` URL.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "http" => Ok(()),
        Ok(parsed) => Err(format!(
            "callback URL {url:?}: scheme {} is not supported (plain http only)",
            parsed.scheme()
        )),
        Err(error) => Err(format!("callback URL {url:?} is not a URL: {error}")),
    }
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(before, _)| before)
}

/// `X-Twilio-Signature`: Base64(HMAC-SHA1(auth token, URL + every parameter's name and value,
/// sorted by name in byte order, then by value)).
pub(crate) fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn signs_twilios_documented_example() {
        // twilio.com/docs/usage/security, token 12345 (shared/reference §1.5.9).
        let params = pairs(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(
            sign(
                "12345",
                "https://example.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        );
    }

    #[test]
    fn sorts_names_in_byte_order() {
        // shared/reference §1.5.10 D4.
        let params = pairs(&[
            ("b", "1"),
            ("B", "2"),
            ("_x", "3"),
            ("a", "4"),
            ("A", "5"),
            ("Z", "6"),
            ("0", "7"),
        ]);
        assert_eq!(
            sign("12345", "https://example.com/s", &params),
            "VCOP2M2zzMBSgLB3LN6PGfeAEvo="
        );
    }

    #[test]
    fn retry_policy_follows_its_flags() {
        let twilio = CallbackRetry::twilio_default();
        assert!(twilio.retries_after(&AttemptOutcome::ConnectFailed("refused".into())));
        assert!(!twilio.retries_after(&AttemptOutcome::Status(500)));
        assert!(!twilio.retries_after(&AttemptOutcome::NoAnswer("timeout".into())));
        let ours = CallbackRetry::default();
        assert!(ours.retries_after(&AttemptOutcome::Status(503)));
        assert!(!ours.retries_after(&AttemptOutcome::Status(403)));
        assert!(!ours.retries_after(&AttemptOutcome::Status(204)));
    }

    #[test]
    fn the_fragment_is_not_signed() {
        assert_eq!(
            strip_fragment("http://h/p?x=1#rc=3&rp=5xx"),
            "http://h/p?x=1"
        );
        assert_eq!(strip_fragment("http://h/p"), "http://h/p");
    }
}
