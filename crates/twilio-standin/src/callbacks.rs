//! Webhook deliveries: every TaskRouter event the stand-in produces is POSTed, signed, to the
//! Workspace `EventCallbackUrl` (set with [`StandIn::set_callback_url`]), and every Conversations
//! post-action event to the webhooks configured for it (`crate::webhooks`), one at a time and in
//! the order produced, by a background task on the stand-in's own runtime. Both products share
//! this one queue, so holding, reordering, duplicating and redelivering work the same for both.
//! Every delivery is recorded ([`StandIn::callbacks`]) so tests assert on what baton was sent.
//!
//! The events are queued under the state lock, in the same step as the state change that
//! produced them, so when a REST answer (or a control method such as [`StandIn::offer`]) returns,
//! its callbacks are queued; [`StandIn::settle`] then waits until they have been delivered.

use crate::server::Shared;
use crate::StandIn;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sha1::Sha1;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The `User-Agent` Twilio's webhooks arrive with.
pub const CALLBACK_USER_AGENT: &str = "TwilioProxy/1.1";

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

    fn retries_after(&self, outcome: &AttemptOutcome) -> bool {
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
    /// The delivery's stable id, what [`StandIn::redeliver`] takes. For TaskRouter, the event's
    /// `Sid` (`EV…`). Conversations webhooks carry no event SID: there it is the
    /// `I-Twilio-Idempotency-Token` (one per event and webhook target).
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
    /// [`StandIn::redeliver`].
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

/// The order [`StandIn::release_callbacks`] sends held callbacks in.
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
    fn next(&mut self) -> Option<(Callback, bool, CallbackRetry)> {
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

    fn finish(&mut self, delivered: DeliveredCallback) {
        if self.keep > 0 {
            while self.delivered.len() >= self.keep {
                self.delivered.pop_front();
            }
            self.delivered.push_back(delivered);
        }
        self.in_flight = false;
    }

    /// Nothing in flight and nothing that could be sent now.
    fn settled(&self) -> bool {
        !self.in_flight && (self.held || self.queue.iter().all(|job| self.target(job).is_none()))
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

/// The delivery task: runs on the stand-in's runtime until the server stops.
pub(crate) async fn deliver(shared: Arc<Shared>) {
    let (wake, idle) = {
        let state = shared.lock();
        (state.callbacks.wake.clone(), state.callbacks.idle.clone())
    };
    // A fresh connection per callback: a kept-alive connection the receiver has closed would
    // turn into a failed attempt that Twilio would not have made.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default();
    loop {
        let next = shared.lock().callbacks.next();
        let Some((callback, redelivery, retry)) = next else {
            idle.notify_waiters();
            wake.notified().await;
            continue;
        };
        let mut attempts = Vec::new();
        let mut backoff = retry.backoff;
        loop {
            let outcome = attempt(&client, &callback, retry.timeout).await;
            let again = retry.retries_after(&outcome) && attempts.len() < retry.retries as usize;
            attempts.push(outcome);
            if !again {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
        shared.lock().callbacks.finish(DeliveredCallback {
            callback,
            attempts,
            redelivery,
        });
        idle.notify_waiters();
    }
}

async fn attempt(
    client: &reqwest::Client,
    callback: &Callback,
    timeout: Duration,
) -> AttemptOutcome {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(callback.params.iter())
        .finish();
    let sent = client
        .post(&callback.url)
        .timeout(timeout)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &callback.signature)
        .header("I-Twilio-Idempotency-Token", &callback.idempotency_token)
        .header("User-Agent", CALLBACK_USER_AGENT)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the answer to its end so the exchange is complete.
            match response.bytes().await {
                Ok(_) => AttemptOutcome::Status(status),
                Err(error) => AttemptOutcome::NoAnswer(error.to_string()),
            }
        }
        Err(error) if error.is_connect() => AttemptOutcome::ConnectFailed(error.to_string()),
        Err(error) => AttemptOutcome::NoAnswer(error.to_string()),
    }
}

/// How long [`StandIn::settle`] waits.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

impl StandIn {
    /// Sets (or clears) the Workspace `EventCallbackUrl`. From now on every TaskRouter event is
    /// POSTed there; events produced while it was unset are not sent (as on Twilio). A
    /// `#fragment` (Twilio's connection overrides) is dropped before sending and signing.
    /// Panics if the URL is not an absolute `http` URL.
    pub fn set_callback_url(&self, url: Option<String>) {
        if let Some(url) = &url {
            if let Err(problem) = check_url(url) {
                panic!("twilio-standin set_callback_url: {problem}");
            }
        }
        let mut state = self.shared.lock();
        state.callbacks.url = url;
        state.callbacks.wake.notify_one();
    }

    pub fn callback_url(&self) -> Option<String> {
        self.shared.lock().callbacks.url.clone()
    }

    /// Every delivery so far (each with its attempts), in the order sent; at most `log_limit`,
    /// the oldest dropped first.
    pub fn callbacks(&self) -> Vec<DeliveredCallback> {
        self.shared
            .lock()
            .callbacks
            .delivered
            .iter()
            .cloned()
            .collect()
    }

    /// The `EventType`s delivered so far, in the order sent (redeliveries included).
    pub fn callback_types(&self) -> Vec<String> {
        self.shared
            .lock()
            .callbacks
            .delivered
            .iter()
            .map(|d| d.callback.event_type.clone())
            .collect()
    }

    /// Callbacks waiting to be sent (held, or not yet reached), in the order they will go.
    pub fn queued_callbacks(&self) -> Vec<Callback> {
        self.shared
            .lock()
            .callbacks
            .queue
            .iter()
            .map(|job| job.callback.clone())
            .collect()
    }

    /// Removes the queued callbacks and returns them, in order: the stand-in will not send them;
    /// a test delivers them itself (e.g. at load, or around a crash of the receiver).
    pub fn take_queued_callbacks(&self) -> Vec<Callback> {
        let mut state = self.shared.lock();
        state
            .callbacks
            .queue
            .drain(..)
            .map(|job| job.callback)
            .collect()
    }

    /// Forgets the deliveries recorded so far (the queue is kept).
    pub fn clear_callbacks(&self) {
        self.shared.lock().callbacks.delivered.clear();
    }

    /// While held, callbacks queue up unsent (what is in flight finishes). `false` sends them in
    /// order; [`StandIn::release_callbacks`] sends them in another order.
    pub fn hold_callbacks(&self, hold: bool) {
        let mut state = self.shared.lock();
        state.callbacks.held = hold;
        state.callbacks.wake.notify_one();
    }

    /// Reorders the queued callbacks and stops holding them: what Twilio's undocumented ordering
    /// and duplicate deliveries look like to baton.
    pub fn release_callbacks(&self, order: Release) {
        let mut state = self.shared.lock();
        let queue = &mut state.callbacks.queue;
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
        state.callbacks.held = false;
        state.callbacks.wake.notify_one();
    }

    /// Sends an already delivered callback again, after what is queued: the same URL, parameters,
    /// signature and idempotency token (a Twilio redelivery). `event_sid` is
    /// [`Callback::event_sid`]: the `EV…` SID of a TaskRouter event, the idempotency token of a
    /// Conversations webhook. Panics if it was never delivered (or its record was dropped, see
    /// [`StandIn::callbacks`]).
    pub fn redeliver(&self, event_sid: &str) {
        let mut state = self.shared.lock();
        let Some(first) = state
            .callbacks
            .delivered
            .iter()
            .find(|d| d.callback.event_sid == event_sid)
            .map(|d| d.callback.clone())
        else {
            panic!("twilio-standin redeliver: event {event_sid} was never delivered");
        };
        state.callbacks.queue.push_back(Job {
            url: Some(first.url.clone()),
            callback: first,
            redelivery: true,
        });
        state.callbacks.wake.notify_one();
    }

    /// Waits until every callback that can be sent has been delivered (retries included) and
    /// nothing is in flight; held callbacks do not count. Panics after [`SETTLE_TIMEOUT`].
    pub async fn settle(&self) {
        if let Err(problem) = self.settle_within(SETTLE_TIMEOUT).await {
            panic!("{problem}");
        }
    }

    /// [`StandIn::settle`] with a limit, reporting what is still undelivered.
    pub async fn settle_within(&self, limit: Duration) -> Result<(), String> {
        let idle = self.shared.lock().callbacks.idle.clone();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = idle.notified();
            tokio::pin!(notified);
            // Registered before checking, so a signal between the check and the wait counts.
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                let callbacks = &state.callbacks;
                if callbacks.settled() {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "twilio-standin settle: callbacks not delivered after {limit:?}: {} queued, {} in flight, to {:?} (is the receiver answering?)",
                        callbacks.queue.len(),
                        u8::from(callbacks.in_flight),
                        callbacks.url
                    ));
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
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
