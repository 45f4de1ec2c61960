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
//! The queue and the callbacks it holds are `crate::callback_queue` (part of the state); this
//! module sends them and gives tests their controls.

use crate::callback_queue::{check_url, AttemptOutcome, Callback, DeliveredCallback, Release};
use crate::server::Shared;
use crate::StandIn;
use std::sync::Arc;
use std::time::Duration;

/// The `User-Agent` Twilio's webhooks arrive with.
pub const CALLBACK_USER_AGENT: &str = "TwilioProxy/1.1";

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
        self.shared.lock().callbacks.set_url(url);
    }

    pub fn callback_url(&self) -> Option<String> {
        self.shared.lock().callbacks.url().map(str::to_owned)
    }

    /// Every delivery so far (each with its attempts), in the order sent; at most `log_limit`,
    /// the oldest dropped first.
    pub fn callbacks(&self) -> Vec<DeliveredCallback> {
        self.shared
            .lock()
            .callbacks
            .delivered()
            .iter()
            .cloned()
            .collect()
    }

    /// The `EventType`s delivered so far, in the order sent (redeliveries included).
    pub fn callback_types(&self) -> Vec<String> {
        self.shared
            .lock()
            .callbacks
            .delivered()
            .iter()
            .map(|d| d.callback.event_type.clone())
            .collect()
    }

    /// Callbacks waiting to be sent (held, or not yet reached), in the order they will go.
    pub fn queued_callbacks(&self) -> Vec<Callback> {
        self.shared.lock().callbacks.queued()
    }

    /// Removes the queued callbacks and returns them, in order: the stand-in will not send them;
    /// a test delivers them itself (e.g. at load, or around a crash of the receiver).
    pub fn take_queued_callbacks(&self) -> Vec<Callback> {
        self.shared.lock().callbacks.take_queued()
    }

    /// Forgets the deliveries recorded so far (the queue is kept).
    pub fn clear_callbacks(&self) {
        self.shared.lock().callbacks.clear_delivered();
    }

    /// While held, callbacks queue up unsent (what is in flight finishes). `false` sends them in
    /// order; [`StandIn::release_callbacks`] sends them in another order.
    pub fn hold_callbacks(&self, hold: bool) {
        self.shared.lock().callbacks.hold(hold);
    }

    /// Reorders the queued callbacks and stops holding them: what Twilio's undocumented ordering
    /// and duplicate deliveries look like to baton.
    pub fn release_callbacks(&self, order: Release) {
        self.shared.lock().callbacks.release(order);
    }

    /// Sends an already delivered callback again, after what is queued: the same URL, parameters,
    /// signature and idempotency token (a Twilio redelivery). `event_sid` is
    /// [`Callback::event_sid`]: the `EV…` SID of a TaskRouter event, the idempotency token of a
    /// Conversations webhook. Panics if it was never delivered (or its record was dropped, see
    /// [`StandIn::callbacks`]).
    pub fn redeliver(&self, event_sid: &str) {
        if !self.shared.lock().callbacks.redeliver(event_sid) {
            panic!("twilio-standin redeliver: event {event_sid} was never delivered");
        }
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
                        callbacks.queue_len(),
                        u8::from(callbacks.in_flight()),
                        callbacks.url()
                    ));
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
