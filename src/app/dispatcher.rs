//! The outbox dispatcher: sends due calls to Twilio under a concurrency limit, and moves each to
//! `done`, a later retry (exponential backoff with full jitter, `Retry-After` honoured), or
//! `dead` (shown to ops) — never silently dropped.

use super::confirm::{confirm, Confirmed};
use crate::domain::guard::{self, Guard, Verdict};
use crate::domain::invites;
use crate::domain::orphan;
use crate::domain::outbound::{
    agent_participant, stamp_attributes, Procedure, Product, TwilioRequest,
};
use crate::domain::park::unparked_attributes;
use crate::domain::paths;
use crate::domain::retry::{Decision, Outcome, RetryPolicy};
use crate::store::outbox::{self, AttemptRecord, ClaimedCall, Next, Prerequisite};
use crate::store::StoreError;
use crate::store::{self, chains, conversations};
use crate::twilio::tasks::merge_task_attributes;
use crate::twilio::{Response, TransportError, TwilioClient};
use rand::Rng;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Calls in flight to Twilio at once (Twilio limits concurrent requests per account).
    pub concurrency: usize,
    /// How long a claimed call is ours before another dispatcher may take it. Longer than the
    /// HTTP timeout, so a slow call is not sent twice.
    pub lease: Duration,
    /// How often to look for due calls when nothing wakes the dispatcher.
    pub poll: Duration,
    pub policy: RetryPolicy,
    /// How long after an invite was sent it still holds its conversation open (its task may
    /// not have been reported yet): the orphan grace period.
    pub invite_window: Duration,
    /// The workspace whose tasks confirm a close decided before closes carried their guard.
    pub workspace_sid: String,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            concurrency: 16,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(200),
            policy: RetryPolicy::default(),
            invite_window: Duration::from_secs(30),
            workspace_sid: String::new(),
        }
    }
}

/// What one attempt of a call did.
enum Executed {
    /// Twilio answered the deciding request.
    Answered(Response, Note),
    /// The call was not needed any more (checked at send time); nothing was written.
    Withdrawn(String),
    /// The call it waits for is dead: it is not sent, and dies too.
    Blocked(String),
}

/// What a procedure learned, recorded after the attempt.
enum Note {
    None,
    /// An Insights stamp is in place; whether the task already carried it.
    Stamped {
        already_linked: bool,
    },
    /// What a close or an invite clearing did, recorded with its conversation (`closed`,
    /// `cleared`).
    Result(&'static str),
}

#[derive(Clone)]
pub struct Dispatcher {
    pool: PgPool,
    client: TwilioClient,
    config: DispatcherConfig,
    id: Uuid,
    permits: Arc<Semaphore>,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        client: TwilioClient,
        config: DispatcherConfig,
        wake: Arc<Notify>,
    ) -> Dispatcher {
        Dispatcher {
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            pool,
            client,
            config,
            id: Uuid::new_v4(),
            wake,
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Runs until `shutdown`, then waits for the calls in flight and gives back its leases.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(dispatcher = %self.id, "outbox dispatcher started");
        while !shutdown.is_cancelled() {
            let sent = match self.dispatch_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox dispatch failed; backing off");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll) => {}
                }
            }
        }
        // Wait for in-flight calls: their outcome must be recorded, not lost.
        let _ = self
            .permits
            .acquire_many(self.config.concurrency.max(1) as u32)
            .await;
        if let Err(e) = outbox::release_leases(&self.pool, self.id).await {
            tracing::warn!(error = %e, "could not release outbox leases; they expire by themselves");
        }
        tracing::info!(dispatcher = %self.id, "outbox dispatcher stopped");
    }

    /// Claims as many due calls as there are free permits and starts sending them. Returns how
    /// many were started.
    pub async fn dispatch_once(&self) -> Result<usize, StoreError> {
        let free = self.permits.available_permits();
        if free == 0 {
            // Wait for a slot rather than spin.
            let _ = self.permits.acquire().await.map(drop);
            return Ok(0);
        }
        let calls = outbox::claim_due(&self.pool, self.id, self.config.lease, free as i64).await?;
        let n = calls.len();
        for call in calls {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            let this = self.clone();
            tokio::spawn(async move {
                this.attempt(call).await;
                drop(permit);
            });
        }
        Ok(n)
    }

    /// Sends every due call and waits for the outcomes (tests, CLI).
    pub async fn drain_due(&self) -> Result<usize, StoreError> {
        let calls = outbox::claim_due(&self.pool, self.id, self.config.lease, 1000).await?;
        let n = calls.len();
        let mut handles = Vec::with_capacity(n);
        for call in calls {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                break;
            };
            let this = self.clone();
            handles.push(tokio::spawn(async move {
                this.attempt(call).await;
                drop(permit);
            }));
        }
        for h in handles {
            let _ = h.await;
        }
        Ok(n)
    }

    /// Runs one attempt of a call: a single request, or a procedure's reads and write. Returns
    /// the answer that decides the outcome, and for an Insights stamp whether the task was
    /// already linked (`Some` only when the stamp is in place).
    async fn execute(&self, call: &ClaimedCall) -> Result<Executed, TransportError> {
        if let Some(Procedure::CloseOrphan {
            conversation_sid, ..
        }) = &call.procedure
        {
            // baton's own view first (cheap): a task, invite, transfer or park may have appeared
            // since the close was decided.
            let mut occupancy = {
                let mut conn = match self.pool.acquire().await {
                    Ok(conn) => conn,
                    Err(e) => return Err(TransportError(format!("database: {e}"))),
                };
                conversations::occupancy(&mut conn, conversation_sid, self.config.invite_window)
                    .await
                    .map_err(|e| TransportError(format!("database: {e}")))?
            };
            occupancy.close_decided = false;
            if let Err(keep) = occupancy.verdict() {
                if keep == orphan::Keep::AlreadyClosed || keep == orphan::Keep::Removed {
                    return Ok(Executed::Withdrawn("already_closed".into()));
                }
                return Ok(Executed::Withdrawn(format!("kept: {keep}")));
            }
        }
        if let Some(guard) = self.guard_of(call) {
            match confirm(&self.client, &guard).await? {
                Confirmed::Verdict(Verdict::Proceed) => {}
                Confirmed::Verdict(Verdict::Keep(why)) => {
                    return Ok(Executed::Withdrawn(format!("kept: {why}")))
                }
                Confirmed::Verdict(Verdict::Gone(why)) => return Ok(Executed::Withdrawn(why)),
                Confirmed::Unanswered(refused) => {
                    return Ok(Executed::Answered(refused, Note::None))
                }
            }
        }
        match &call.procedure {
            None => Ok(Executed::Answered(
                self.client.send(&call.request).await?,
                Note::None,
            )),
            Some(Procedure::StampInsights {
                workspace_sid,
                task_sid,
                chain_id,
            }) => {
                let merged = merge_task_attributes(&self.client, workspace_sid, task_sid, |task| {
                    stamp_attributes(&task.attributes, chain_id)
                })
                .await?;
                let note = match merged.unchanged {
                    Some(already_linked) => Note::Stamped { already_linked },
                    None => Note::None,
                };
                Ok(Executed::Answered(merged.response, note))
            }
            Some(Procedure::UnparkTask {
                workspace_sid,
                task_sid,
                park_id,
            }) => {
                let merged = merge_task_attributes(&self.client, workspace_sid, task_sid, |task| {
                    let attributes = &task.attributes;
                    let already = attributes.get("baton_unparked").and_then(|v| v.as_str())
                        == Some(park_id.as_str());
                    (!already).then(|| unparked_attributes(attributes, park_id))
                })
                .await?;
                Ok(Executed::Answered(merged.response, Note::None))
            }
            Some(Procedure::CloseAgentParticipant {
                interaction_sid,
                channel_sid,
                task_sid,
            }) => {
                let base = paths::interaction_channel_participants(interaction_sid, channel_sid);
                let list = self
                    .client
                    .send(&TwilioRequest::get(Product::Flex, base.as_str()))
                    .await?;
                if !(200..300).contains(&list.status) {
                    return Ok(Executed::Answered(list, Note::None));
                }
                let body: serde_json::Value =
                    serde_json::from_str(&list.body).unwrap_or(serde_json::Value::Null);
                let Some(participant) = agent_participant(&body, task_sid) else {
                    // The agent already left: nothing to close.
                    return Ok(Executed::Answered(list, Note::None));
                };
                let close = TwilioRequest::post(
                    Product::Flex,
                    paths::interaction_channel_participant(
                        interaction_sid,
                        channel_sid,
                        &participant,
                    ),
                    vec![("Status".into(), "closed".into())],
                );
                Ok(Executed::Answered(
                    self.client.send(&close).await?,
                    Note::None,
                ))
            }
            Some(Procedure::CreateOnce { lookup, marker }) => {
                // Only after an attempt whose fate is unknown could the resource exist already.
                if let (Some(lookup), true) = (lookup, call.attempt > 1) {
                    let found = self.client.send(lookup).await?;
                    if (200..300).contains(&found.status) && found.body.contains(marker.as_str()) {
                        tracing::info!(outbox_id = call.id, %marker, "an earlier attempt already created it");
                        return Ok(Executed::Answered(found, Note::None));
                    }
                }
                Ok(Executed::Answered(
                    self.client.send(&call.request).await?,
                    Note::None,
                ))
            }
            Some(Procedure::RestoreWorkerActivity {
                workspace_sid,
                worker_sid,
            }) => {
                let workspace = self
                    .client
                    .send(&TwilioRequest::get(
                        Product::TaskRouter,
                        paths::workspace(workspace_sid),
                    ))
                    .await?;
                if !(200..300).contains(&workspace.status) {
                    return Ok(Executed::Answered(workspace, Note::None));
                }
                let worker_path = paths::worker(workspace_sid, worker_sid);
                let worker = self
                    .client
                    .send(&TwilioRequest::get(
                        Product::TaskRouter,
                        worker_path.as_str(),
                    ))
                    .await?;
                if !(200..300).contains(&worker.status) {
                    return Ok(Executed::Answered(worker, Note::None));
                }
                let field = |body: &str, key: &str| {
                    serde_json::from_str::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| v[key].as_str().map(str::to_owned))
                };
                let timeout_activity = field(&workspace.body, "timeout_activity_sid");
                let current = field(&worker.body, "activity_sid");
                if timeout_activity.is_none() || current != timeout_activity {
                    return Ok(Executed::Withdrawn(
                        "the worker is not in the timeout activity".into(),
                    ));
                }
                let known = store::facts::worker_activities(&self.pool, worker_sid)
                    .await
                    .map_err(|e| TransportError(format!("database: {e}")))?;
                let previous = match known {
                    Some((activity, Some(previous)))
                        if activity == timeout_activity
                            && Some(&previous) != timeout_activity.as_ref() =>
                    {
                        previous
                    }
                    // The move's worker.activity.update is not processed yet: try again later.
                    _ => {
                        return Err(TransportError(
                            "the worker's previous activity is not known yet".into(),
                        ))
                    }
                };
                let restore = TwilioRequest::post(
                    Product::TaskRouter,
                    worker_path,
                    vec![("ActivitySid".into(), previous)],
                );
                Ok(Executed::Answered(
                    self.client.send(&restore).await?,
                    Note::None,
                ))
            }
            Some(Procedure::RemoveWebhooks {
                conversation_sid,
                marker,
            }) => {
                let list = self.client.send(&call.request).await?;
                if !(200..300).contains(&list.status) {
                    return Ok(Executed::Answered(list, Note::None));
                }
                let body: serde_json::Value =
                    serde_json::from_str(&list.body).unwrap_or(serde_json::Value::Null);
                let doomed: Vec<String> = body["webhooks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|w| {
                        w["configuration"]["url"]
                            .as_str()
                            .is_some_and(|u| u.contains(marker.as_str()))
                    })
                    .filter_map(|w| w["sid"].as_str().map(str::to_owned))
                    .collect();
                let mut last = list;
                for sid in doomed {
                    let delete = TwilioRequest {
                        method: "DELETE".into(),
                        ..TwilioRequest::get(
                            Product::Conversations,
                            paths::conversation_webhook(conversation_sid, &sid),
                        )
                    };
                    last = self.client.send(&delete).await?;
                    if !(200..300).contains(&last.status) && last.status != 404 {
                        break;
                    }
                }
                Ok(Executed::Answered(last, Note::None))
            }
            Some(Procedure::ClearStaleInvites {
                conversation_sid,
                task_sids,
            }) => {
                // `request` reads the conversation; the write follows at once (no If-Match in
                // Conversations), carrying every attribute but the stale entries.
                let read = self.client.send(&call.request).await?;
                if !(200..300).contains(&read.status) {
                    return Ok(Executed::Answered(read, Note::None));
                }
                let conversation: serde_json::Value =
                    serde_json::from_str(&read.body).unwrap_or(serde_json::Value::Null);
                let attributes = guard::conversation_attributes(&conversation);
                let Some(cleared) = invites::without_stale_invites(&attributes, task_sids) else {
                    return Ok(Executed::Withdrawn("already_gone".into()));
                };
                let write = TwilioRequest::post(
                    Product::Conversations,
                    paths::conversation(conversation_sid),
                    vec![("Attributes".into(), cleared.to_string())],
                );
                Ok(Executed::Answered(
                    self.client.send(&write).await?,
                    Note::Result("cleared"),
                ))
            }
            Some(Procedure::CloseOrphan { .. }) => Ok(Executed::Answered(
                self.client.send(&call.request).await?,
                Note::Result("closed"),
            )),
        }
    }

    /// The guard a call carries; a close decided before closes carried one gets the one it
    /// would carry now.
    fn guard_of(&self, call: &ClaimedCall) -> Option<Guard> {
        match (&call.guard, &call.procedure) {
            (Some(guard), _) => Some(guard.clone()),
            (
                None,
                Some(Procedure::CloseOrphan {
                    conversation_sid,
                    interaction,
                }),
            ) => Some(Guard::Unattended {
                workspace_sid: self.config.workspace_sid.clone(),
                conversation_sid: conversation_sid.clone(),
                interaction: interaction.clone(),
                except_tasks: Vec::new(),
                own_park: None,
            }),
            _ => None,
        }
    }

    /// Runs one attempt, unless the call it waits for did not succeed.
    async fn attempt_call(&self, call: &ClaimedCall) -> Result<Executed, TransportError> {
        match &call.prerequisite {
            None => self.execute(call).await,
            Some(Prerequisite::Dead { key }) => Ok(Executed::Blocked(format!(
                "prerequisite {key} is dead: not sent"
            ))),
        }
    }

    async fn attempt(&self, call: ClaimedCall) {
        let started_at = chrono::Utc::now();
        let kind = call.kind;
        let mut procedure_result: Option<String> = None;
        let mut blocked: Option<String> = None;
        let (outcome, record) = match self.attempt_call(&call).await {
            Ok(Executed::Blocked(why)) => (
                {
                    blocked = Some(why.clone());
                    Outcome::Success
                },
                AttemptRecord {
                    started_at,
                    http_status: None,
                    twilio_code: None,
                    error: Some(why),
                    response: None,
                    withdrawn: None,
                },
            ),
            Ok(Executed::Withdrawn(why)) => {
                tracing::info!(outbox_id = call.id, kind = kind.as_str(), %why, "outbound call withdrawn at send time");
                procedure_result = Some(why.clone());
                (
                    Outcome::Success,
                    AttemptRecord {
                        started_at,
                        http_status: None,
                        twilio_code: None,
                        error: None,
                        response: Some(serde_json::json!({ "withdrawn": why })),
                        withdrawn: Some(why),
                    },
                )
            }
            Ok(Executed::Answered(response, note)) => {
                match (&note, &call.procedure) {
                    (
                        Note::Stamped { already_linked },
                        Some(Procedure::StampInsights {
                            task_sid, chain_id, ..
                        }),
                    ) => {
                        if let Err(e) =
                            chains::record_stamp(&self.pool, task_sid, chain_id, *already_linked)
                                .await
                        {
                            tracing::warn!(outbox_id = call.id, error = %e, "could not record an Insights stamp");
                        }
                    }
                    (Note::Result(result), _) if (200..300).contains(&response.status) => {
                        procedure_result = Some((*result).to_owned());
                    }
                    _ => {}
                }
                let outcome = response.outcome(|s, c| kind.already_done(s, c));
                if matches!(outcome, Outcome::AlreadyDone { .. }) {
                    match call.procedure {
                        Some(Procedure::CloseOrphan { .. }) => {
                            procedure_result = Some("already_closed".into());
                        }
                        Some(Procedure::ClearStaleInvites { .. }) => {
                            procedure_result = Some("already_gone".into());
                        }
                        _ => {}
                    }
                }
                let error = response.error();
                let record = AttemptRecord {
                    started_at,
                    http_status: Some(response.status),
                    twilio_code: error.as_ref().and_then(|e| e.code),
                    error: error.and_then(|e| e.message),
                    response: serde_json::from_str(&response.body).ok(),
                    withdrawn: None,
                };
                (outcome, record)
            }
            Err(e) => (
                e.outcome(),
                AttemptRecord {
                    started_at,
                    http_status: None,
                    twilio_code: None,
                    error: Some(e.to_string()),
                    response: None,
                    withdrawn: None,
                },
            ),
        };
        let jitter: f64 = rand::thread_rng().gen();
        let decision = match blocked {
            Some(why) => Decision::Dead(why),
            None => self
                .config
                .policy
                .decide(call.budget_attempt.max(1) as u32, &outcome, jitter),
        };
        let next = match &decision {
            Decision::Done => Next::Done,
            Decision::RetryAfter(d) => Next::RetryAfter(*d),
            Decision::Dead(reason) => Next::Dead(reason.clone()),
        };
        let label = match (&outcome, &decision) {
            (_, Decision::Done) => "done",
            (_, Decision::Dead(_)) => "dead",
            (Outcome::RateLimited { .. }, _) => "rate_limited",
            _ => "retry",
        };
        metrics::counter!("baton_outbox_attempts_total", "kind" => kind.as_str(), "result" => label).increment(1);
        match &decision {
            Decision::Dead(reason) => {
                tracing::error!(outbox_id = call.id, kind = kind.as_str(), path = %call.request.path, %reason, "outbound Twilio call dead-lettered")
            }
            Decision::RetryAfter(d) => {
                tracing::info!(outbox_id = call.id, kind = kind.as_str(), attempt = call.attempt, retry_in = ?d, ?outcome, "outbound Twilio call will be retried")
            }
            Decision::Done => {}
        }
        let recorded = match (&procedure_result, &call.procedure) {
            (
                Some(result),
                Some(Procedure::CloseOrphan {
                    conversation_sid, ..
                }),
            ) => {
                let found = match result.as_str() {
                    "closed" => orphan::CloseResult::Closed,
                    other => orphan::CloseResult::withdrawn(other),
                };
                conversations::record_close_result(&self.pool, conversation_sid, &found).await
            }
            (
                Some(result),
                Some(Procedure::ClearStaleInvites {
                    conversation_sid,
                    task_sids,
                }),
            ) => {
                conversations::record_invite_result(&self.pool, conversation_sid, task_sids, result)
                    .await
            }
            _ => Ok(()),
        };
        if let Err(e) = recorded {
            tracing::warn!(outbox_id = call.id, error = %e, "could not record a conversation call's result");
        }
        if let Err(e) = outbox::finish_attempt(&self.pool, self.id, &call, &record, &next).await {
            // The lease will expire and the call be retried; Twilio-side idempotency covers it.
            tracing::warn!(outbox_id = call.id, error = %e, "could not record an outbox attempt");
        }
    }
}
