//! Playing a conversation against baton: TaskRouter callbacks and Conversations webhooks,
//! signed and delivered as Twilio delivers them, spread over the batons under load; a park
//! through baton's API; the agent ending the chat as Flex does.

use super::{iso, lock, now_ms, random_sid, Conversation, Kind, Run, TaskPlan};
use crate::http1;
use crate::signing::signed_form;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::time::sleep_until;

/// The stand-in's Conversations service and messaging service (its defaults).
const CHAT_SERVICE_SID: &str = "IS00000000000000000000000000000001";
const MESSAGING_SERVICE_SID: &str = "MG00000000000000000000000000000001";

impl Run {
    fn target(&self) -> &str {
        let n = self.next_target.fetch_add(1, Ordering::Relaxed);
        &self.targets[n % self.targets.len()]
    }

    /// POSTs a signed form to `path` (with `query`) of the next baton: Twilio's delivery,
    /// retried on a refused connection or a 5xx like the stand-in's callbacks.
    async fn deliver(&self, path_and_query: &str, pairs: Vec<(String, String)>, idem: bool) {
        let signed_url = format!("{}{path_and_query}", self.public_url);
        let (signature, body) = signed_form(&self.token, &signed_url, &pairs);
        let token = idem.then(|| random_sid("ID"));
        self.events.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..3 {
            let Ok(_permit) = self.permits.acquire().await else {
                return;
            };
            let mut headers = vec![
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", signature.as_str()),
                ("User-Agent", "TwilioProxy/1.1"),
            ];
            if let Some(token) = &token {
                headers.push(("I-Twilio-Idempotency-Token", token.as_str()));
            }
            let sent = Instant::now();
            let outcome = self
                .callbacks
                .post(
                    self.target(),
                    path_and_query,
                    &headers,
                    body.as_bytes(),
                    Duration::from_secs(30),
                )
                .await;
            let micros = sent.elapsed().as_micros() as u64;
            let (label, retry) = match outcome {
                Ok(status) => {
                    if (200..300).contains(&status) {
                        let _ = lock(&self.sent).histogram.record(micros.max(1));
                    }
                    (status.to_string(), status >= 500)
                }
                Err(http1::Failure::Timeout) => ("timeout".to_owned(), true),
                Err(http1::Failure::Connection) => ("connection error".to_owned(), true),
            };
            *lock(&self.sent).statuses.entry(label).or_default() += 1;
            if !retry {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
        }
    }

    fn envelope(
        &self,
        c: &Conversation,
        event: &str,
        resource: (&str, &str),
        description: String,
    ) -> Vec<(String, String)> {
        let ms = c.next_ms();
        [
            ("AccountSid", self.account_sid.clone()),
            ("WorkspaceSid", self.setup.workspace_sid.clone()),
            ("WorkspaceName", "Flex Task Assignment".to_owned()),
            ("Sid", random_sid("EV")),
            ("EventType", event.to_owned()),
            ("EventDescription", description),
            ("ResourceType", resource.0.to_owned()),
            ("ResourceSid", resource.1.to_owned()),
            ("Timestamp", (ms / 1000).to_string()),
            ("TimestampMs", ms.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A task or reservation event of `task` in `status`, as TaskRouter sends it.
    async fn task_event(
        &self,
        c: &Conversation,
        task: &TaskPlan,
        event: &str,
        status: &str,
        extra: &[(&str, String)],
    ) {
        let reservation = event.starts_with("reservation.");
        let resource = if reservation {
            ("reservation", task.reservation_sid.as_str())
        } else {
            ("task", task.sid.as_str())
        };
        let mut pairs = self.envelope(c, event, resource, format!("{event} for {}", task.sid));
        let started = match c.started_ms.load(Ordering::Relaxed) {
            0 => {
                c.started_ms.store(now_ms(), Ordering::Relaxed);
                now_ms()
            }
            ms => ms,
        };
        let age = ((now_ms() - started) / 1000).max(0);
        let mut fields: Vec<(&str, String)> = vec![
            ("TaskSid", task.sid.clone()),
            ("TaskAttributes", task.attributes.clone()),
            ("TaskAssignmentStatus", status.to_owned()),
            ("TaskAge", age.to_string()),
            ("TaskPriority", "0".to_owned()),
            ("TaskChannelUniqueName", "chat".to_owned()),
            ("WorkflowSid", self.setup.workflow_sid.clone()),
            ("WorkflowName", "Assign to Anyone".to_owned()),
        ];
        if event != "task.created" {
            fields.push(("TaskQueueSid", self.setup.task_queue_sid.clone()));
            fields.push(("TaskQueueName", self.setup.task_queue_name.clone()));
        }
        if reservation {
            let w = &task.worker;
            fields.push(("ReservationSid", task.reservation_sid.clone()));
            fields.push(("WorkerSid", w.sid.clone()));
            fields.push(("WorkerName", w.friendly_name.clone()));
            fields.push((
                "WorkerAttributes",
                json!({"contact_uri": format!("client:{}", w.friendly_name)}).to_string(),
            ));
        }
        fields.extend(extra.iter().cloned());
        pairs.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
        self.deliver("/webhooks/taskrouter", pairs, false).await;
    }

    /// A Conversations post-event webhook to `path_and_query`.
    pub(super) async fn conversations_event(
        &self,
        c: &Conversation,
        path_and_query: &str,
        event: &str,
    ) {
        let ms = c.next_ms();
        let mut pairs: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.account_sid.clone()),
            ("EventType".into(), event.to_owned()),
            ("ChatServiceSid".into(), CHAT_SERVICE_SID.to_owned()),
            ("ConversationSid".into(), c.ch.clone()),
            (
                "MessagingServiceSid".into(),
                MESSAGING_SERVICE_SID.to_owned(),
            ),
        ];
        if event == "onMessageAdded" {
            pairs.extend([
                ("Source".into(), "SDK".into()),
                ("MessageSid".into(), random_sid("IM")),
                ("Index".into(), "1".into()),
                ("DateCreated".into(), iso(ms)),
                ("Body".into(), "I'm back".into()),
                ("Author".into(), c.customer.clone()),
                ("ParticipantSid".into(), random_sid("MB")),
                ("Attributes".into(), "{}".into()),
            ]);
        } else {
            pairs.extend([
                ("Source".into(), "API".into()),
                ("StateUpdated".into(), iso(ms)),
                ("StateFrom".into(), "active".into()),
                ("StateTo".into(), "closed".into()),
                ("Reason".into(), "API".into()),
            ]);
        }
        self.deliver(path_and_query, pairs, true).await;
    }

    /// A task's life from creation to an agent's acceptance.
    pub(super) async fn routed(&self, c: &Conversation, task: &TaskPlan, step: Duration) {
        self.task_event(c, task, "task.created", "pending", &[])
            .await;
        self.task_event(c, task, "task-queue.entered", "pending", &[])
            .await;
        tokio::time::sleep(step).await;
        self.task_event(c, task, "reservation.created", "reserved", &[])
            .await;
        self.task_event(c, task, "reservation.accepted", "assigned", &[])
            .await;
    }

    /// The agent ends the chat as Flex does: the interaction channel closed through Twilio's
    /// API (its tasks wrap up), the conversation's closed webhook, then wrap-up and completion.
    pub(super) async fn end_chat(&self, c: &Conversation, task: &TaskPlan, step: Duration) {
        lock(&self.flex_closes).insert(c.uo.clone());
        let closed = self
            .client
            .post(format!(
                "{}/v1/Interactions/{}/Channels/{}",
                self.standin, c.kd, c.uo
            ))
            .basic_auth(&self.account_sid, Some(&self.token))
            .form(&[("Status", "closed")])
            .send()
            .await;
        if !closed.is_ok_and(|r| r.status().is_success()) {
            lock(&self.failures).push(format!("Flex could not close channel {}", c.uo));
        }
        self.conversations_event(c, "/webhooks/conversations", "onConversationStateUpdated")
            .await;
        self.task_event(c, task, "reservation.wrapup", "wrapping", &[])
            .await;
        self.task_event(c, task, "task.wrapup", "wrapping", &[])
            .await;
        tokio::time::sleep(step).await;
        self.completed(c, task, "Task completed by the agent").await;
    }

    pub(super) async fn completed(&self, c: &Conversation, task: &TaskPlan, reason: &str) {
        let reason = [("TaskCompletedReason", reason.to_owned())];
        self.task_event(c, task, "reservation.completed", "completed", &reason)
            .await;
        self.task_event(c, task, "task.completed", "completed", &reason)
            .await;
    }

    async fn park(&self, task: &TaskPlan) -> Result<String, String> {
        let response = self
            .client
            .post(format!("{}/api/v1/parks", self.target()))
            .bearer_auth(&self.ops_token)
            .json(
                &json!({"task_sid": task.sid, "notes": "waiting for the customer",
                "idempotency_key": format!("bench-park-{}", task.sid)}),
            )
            .send()
            .await
            .map_err(|e| format!("park {}: {e}", task.sid))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match body["park"]["park_id"].as_str() {
            Some(id) if status.is_success() => Ok(id.to_owned()),
            _ => Err(format!("park {}: HTTP {status} {body}", task.sid)),
        }
    }
}

/// One conversation's life from `t0`.
pub(super) async fn play(run: &Run, c: &Conversation, t0: Instant) {
    let span = Duration::from_secs_f64(run.conversation_secs);
    let at = |f: f64| tokio::time::Instant::from_std(t0 + span.mul_f64(f));
    let step = span.mul_f64(0.05);
    let a = &c.a;
    if c.kind == Kind::Canceled {
        // The customer leaves before an agent accepts: offered, then canceled.
        run.task_event(c, a, "task.created", "pending", &[]).await;
        run.task_event(c, a, "task-queue.entered", "pending", &[])
            .await;
        sleep_until(at(0.2)).await;
        run.task_event(c, a, "reservation.created", "reserved", &[])
            .await;
        sleep_until(at(0.5)).await;
        let reason = [("TaskCanceledReason", "Customer left".to_owned())];
        run.task_event(c, a, "reservation.canceled", "canceled", &reason)
            .await;
        run.task_event(c, a, "task.canceled", "canceled", &reason)
            .await;
        return;
    }
    run.routed(c, a, step).await;
    let Some(b) = &c.b else {
        return;
    };
    sleep_until(at(0.3)).await;
    // baton finishes A when B is accepted; A's completion follows (see `react`).
    run.routed(c, b, step).await;
    if c.kind == Kind::Transfer {
        sleep_until(at(0.7)).await;
        run.end_chat(c, b, step).await;
        return;
    }
    sleep_until(at(0.5)).await;
    let park_id = match run.park(b).await {
        Ok(id) => id,
        Err(problem) => {
            lock(&run.failures).push(problem);
            return;
        }
    };
    sleep_until(at(0.65)).await;
    // The customer writes: the park's own conversation webhook.
    run.conversations_event(
        c,
        &format!("/webhooks/conversations?park={park_id}"),
        "onMessageAdded",
    )
    .await;
}
