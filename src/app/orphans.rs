//! Timers: parks whose TTL ran out, and orphan cleanup — the due orphan checks (a conversation whose last task ended, after the
//! grace period) and the periodic sweep that finds idle open conversations and confirms them
//! with Twilio. Every close is an outbox call (`close:{CH}:{generation}`), checked once more when
//! it is sent.

use super::confirm::{confirm, Confirmed};
use crate::domain::guard::{self, Guard, Verdict};
use crate::domain::invites;
use crate::domain::orphan::{self, CloseReason, ConversationRef, Keep};
use crate::domain::outbound::{Product, TwilioRequest};
use crate::domain::paths;
use crate::store::{self, conversations, StoreError};
use crate::twilio::TwilioClient;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct OrphanConfig {
    /// `BATON_ORPHAN_GRACE`: also how long a sent invite holds its conversation open.
    pub grace: Duration,
    /// How often due checks are looked for.
    pub poll: Duration,
    /// `BATON_SWEEP_INTERVAL` (`None`: no periodic sweep).
    pub sweep_interval: Option<Duration>,
    /// `BATON_SWEEP_OLDER_THAN`.
    pub sweep_older_than: Duration,
    /// Where calls of expired parks go.
    pub workspace_sid: String,
}

impl Default for OrphanConfig {
    fn default() -> Self {
        OrphanConfig {
            grace: Duration::from_secs(30),
            poll: Duration::from_millis(250),
            sweep_interval: Some(Duration::from_secs(300)),
            sweep_older_than: Duration::from_secs(3600),
            workspace_sid: String::new(),
        }
    }
}

/// What one sweep did (or, dry, would do) with one conversation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SweepItem {
    pub conversation_sid: String,
    pub interaction_sid: Option<String>,
    pub channel_sid: Option<String>,
    pub idle_since: chrono::DateTime<chrono::Utc>,
    /// `would_close`, `closing`, `kept`, `already_closed`, `unconfirmed`; for stale invites
    /// `would_clear_invites`, `clearing_invites`.
    pub action: String,
    pub detail: Option<String>,
    /// Ended invite tasks whose entries are (to be) removed from the conversation's `invites`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invite_tasks: Vec<String>,
}

#[derive(Clone)]
pub struct OrphanWorker {
    pool: PgPool,
    client: TwilioClient,
    config: OrphanConfig,
    outbox_wake: Arc<Notify>,
}

impl OrphanWorker {
    pub fn new(
        pool: PgPool,
        client: TwilioClient,
        config: OrphanConfig,
        outbox_wake: Arc<Notify>,
    ) -> OrphanWorker {
        OrphanWorker {
            pool,
            client,
            config,
            outbox_wake,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("orphan cleanup started");
        let mut next_sweep = self
            .config
            .sweep_interval
            .map(|i| tokio::time::Instant::now() + i);
        while !shutdown.is_cancelled() {
            match crate::services::parks::expire_due(&self.pool, &self.config.workspace_sid).await {
                Ok(n) if n > 0 => self.outbox_wake.notify_one(),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "park expiry failed; retrying"),
            }
            match self.run_due_checks().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "orphan checks failed; retrying"),
            }
            if let (Some(at), Some(interval)) = (next_sweep, self.config.sweep_interval) {
                if tokio::time::Instant::now() >= at {
                    match self.sweep(false, self.config.sweep_older_than, 500).await {
                        Ok(items) => {
                            let count =
                                |action: &str| items.iter().filter(|i| i.action == action).count();
                            let closing = count("closing");
                            metrics::counter!("baton_sweep_runs_total").increment(1);
                            metrics::counter!("baton_sweep_closes_total").increment(closing as u64);
                            tracing::info!(
                                looked_at = items.len(),
                                closing,
                                clearing_invites = count("clearing_invites"),
                                "orphan sweep finished"
                            );
                        }
                        Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
                    }
                    next_sweep = Some(tokio::time::Instant::now() + interval);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
        tracing::info!("orphan cleanup stopped");
    }

    /// Runs the checks that are due. Returns how many were looked at.
    pub async fn run_due_checks(&self) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let due = conversations::claim_due_checks(&mut tx, 100).await?;
        let mut decided = false;
        for check in &due {
            let ch = check.conversation_sid.as_str();
            let occupancy = conversations::occupancy(&mut tx, ch, self.config.grace).await?;
            match occupancy.verdict() {
                Ok(()) => {
                    let Some(conversation) = conversations::conversation_ref(&mut tx, ch).await?
                    else {
                        conversations::finish_check(&mut tx, ch, None).await?;
                        continue;
                    };
                    decide_close(
                        &mut tx,
                        &self.config.workspace_sid,
                        &conversation,
                        CloseReason::Orphan,
                        check.task_sid.as_deref(),
                        check.event_type.as_deref(),
                        None,
                    )
                    .await?;
                    conversations::finish_check(&mut tx, ch, None).await?;
                    conversations::record_check(&mut tx, ch, "closing").await?;
                    decided = true;
                }
                // Invites and transfers resolve by themselves (a task appears, or the call
                // dies): look again then.
                Err(Keep::PendingInvite(_) | Keep::TransferInFlight(_)) => {
                    tracing::debug!(
                        conversation_sid = ch,
                        "orphan check postponed: invite pending"
                    );
                    conversations::finish_check(&mut tx, ch, Some(self.config.grace)).await?;
                }
                Err(keep) => {
                    tracing::debug!(conversation_sid = ch, %keep, "conversation kept open");
                    conversations::finish_check(&mut tx, ch, None).await?;
                    conversations::record_check(&mut tx, ch, &format!("kept: {keep}")).await?;
                }
            }
        }
        tx.commit().await?;
        if decided {
            self.outbox_wake.notify_one();
        }
        Ok(due.len())
    }

    /// One sweep: idle open conversations, confirmed with Twilio, closed (or, `dry_run`, only
    /// listed).
    pub async fn sweep(
        &self,
        dry_run: bool,
        older_than: Duration,
        limit: i64,
    ) -> Result<Vec<SweepItem>, StoreError> {
        let candidates = conversations::sweep_candidates(&self.pool, older_than, limit).await?;
        let mut items = Vec::with_capacity(candidates.len());
        let mut decided = false;
        for c in candidates {
            let conversation = ConversationRef {
                conversation_sid: c.conversation_sid.clone(),
                interaction: c.interaction_sid.clone().zip(c.channel_sid.clone()),
                channel_type: c.channel_type.clone(),
            };
            let mut item = SweepItem {
                conversation_sid: c.conversation_sid.clone(),
                interaction_sid: c.interaction_sid.clone(),
                channel_sid: c.channel_sid.clone(),
                idle_since: c.idle_since,
                action: String::new(),
                detail: None,
                invite_tasks: Vec::new(),
            };
            let occupancy = {
                let mut conn = self.pool.acquire().await?;
                conversations::occupancy(&mut conn, &c.conversation_sid, self.config.grace).await?
            };
            if let Err(keep) = occupancy.verdict() {
                item.action = "kept".into();
                item.detail = Some(keep.to_string());
                items.push(item);
                continue;
            }
            let guard = Guard::Unattended {
                workspace_sid: self.config.workspace_sid.clone(),
                conversation_sid: c.conversation_sid.clone(),
                interaction: conversation.interaction.clone(),
                except_tasks: Vec::new(),
                own_park: None,
            };
            let view = match confirm(&self.client, &guard).await {
                Ok(Confirmed::Verdict(view)) => view,
                Ok(Confirmed::Unanswered(response)) => {
                    item.action = "unconfirmed".into();
                    item.detail = Some(format!("Twilio answered HTTP {}", response.status));
                    items.push(item);
                    continue;
                }
                Err(e) => {
                    item.action = "unconfirmed".into();
                    item.detail = Some(e.to_string());
                    items.push(item);
                    continue;
                }
            };
            match view {
                Verdict::Gone(_) => {
                    item.action = "already_closed".into();
                    if !dry_run {
                        conversations::mark_closed(&self.pool, &c.conversation_sid).await?;
                    }
                }
                Verdict::Keep(why) => {
                    item.action = "kept".into();
                    item.detail = Some(why);
                }
                Verdict::Proceed if dry_run => item.action = "would_close".into(),
                Verdict::Proceed => {
                    let mut tx = self.pool.begin().await?;
                    // Decided under the same rules as a due check, in one transaction.
                    let occupancy =
                        conversations::occupancy(&mut tx, &c.conversation_sid, self.config.grace)
                            .await?;
                    match occupancy.verdict() {
                        Ok(()) => {
                            let id = decide_close(
                                &mut tx,
                                &self.config.workspace_sid,
                                &conversation,
                                CloseReason::Sweep,
                                None,
                                None,
                                Some(&format!(
                                    "idle since {}; Twilio shows only the customer",
                                    c.idle_since.to_rfc3339()
                                )),
                            )
                            .await?;
                            item.action = "closing".into();
                            item.detail = id.map(|id| format!("outbox {id}"));
                            decided = true;
                        }
                        Err(keep) => {
                            item.action = "kept".into();
                            item.detail = Some(keep.to_string());
                        }
                    }
                    tx.commit().await?;
                }
            }
            items.push(item);
        }
        // Conversations being closed need no invite clearing: looked at after the closes.
        decided |= self
            .sweep_invites(dry_run, older_than, limit, &mut items)
            .await?;
        if decided {
            self.outbox_wake.notify_one();
        }
        Ok(items)
    }

    /// Stale pending invites (`domain::invites`): for open conversations with invite tasks that
    /// were canceled or deleted — at least the grace period ago (or `older_than`, if shorter),
    /// so the transferring side's write of the entry has happened — reads the conversation's
    /// attributes and removes the entries of those tasks through the outbox. Each ended task is
    /// looked at once. Adds an item for each conversation with stale entries (or that could not
    /// be read); returns whether a call was enqueued.
    async fn sweep_invites(
        &self,
        dry_run: bool,
        older_than: Duration,
        limit: i64,
        items: &mut Vec<SweepItem>,
    ) -> Result<bool, StoreError> {
        let min_age = older_than.min(self.config.grace);
        let ended = conversations::ended_invite_tasks(&self.pool, min_age, limit).await?;
        let mut decided = false;
        for e in ended {
            let mut item = SweepItem {
                conversation_sid: e.conversation_sid.clone(),
                interaction_sid: e.interaction_sid.clone(),
                channel_sid: e.channel_sid.clone(),
                idle_since: e.ended_at,
                action: String::new(),
                detail: None,
                invite_tasks: Vec::new(),
            };
            let read = TwilioRequest::get(
                Product::Conversations,
                paths::conversation(&e.conversation_sid),
            );
            let listed = match self.client.send(&read).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                    invites::pending_invite_tasks(&guard::conversation_attributes(&body))
                }
                Ok(r) => {
                    item.action = "unconfirmed".into();
                    item.detail = Some(format!("Twilio answered HTTP {}", r.status));
                    items.push(item);
                    continue;
                }
                Err(err) => {
                    item.action = "unconfirmed".into();
                    item.detail = Some(err.to_string());
                    items.push(item);
                    continue;
                }
            };
            let (stale, absent): (Vec<String>, Vec<String>) =
                e.task_sids.into_iter().partition(|t| listed.contains(t));
            if dry_run {
                if !stale.is_empty() {
                    item.action = "would_clear_invites".into();
                    item.detail = Some(stale.join(", "));
                    item.invite_tasks = stale;
                    items.push(item);
                }
                continue;
            }
            let mut tx = self.pool.begin().await?;
            conversations::record_invite_cleanups(
                &mut tx,
                &e.conversation_sid,
                &absent,
                "absent",
                None,
            )
            .await?;
            if !stale.is_empty() {
                let planned = invites::clear_call(&e.conversation_sid, &stale);
                let key = planned.idempotency_key.clone();
                store::outbox::enqueue(&mut tx, &store::outbox::NewCall::planned(planned, None))
                    .await?;
                conversations::record_invite_cleanups(
                    &mut tx,
                    &e.conversation_sid,
                    &stale,
                    "clearing",
                    Some(&key),
                )
                .await?;
                tracing::info!(conversation_sid = %e.conversation_sid, tasks = ?stale, "stale invites to clear");
                metrics::counter!("baton_invite_clears_total").increment(1);
                item.action = "clearing_invites".into();
                item.detail = Some(stale.join(", "));
                item.invite_tasks = stale;
                items.push(item);
                decided = true;
            }
            tx.commit().await?;
        }
        Ok(decided)
    }
}

/// Enqueues the close and records why. Returns the outbox id.
#[allow(clippy::too_many_arguments)]
async fn decide_close(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    workspace_sid: &str,
    conversation: &ConversationRef,
    reason: CloseReason,
    task_sid: Option<&str>,
    event_type: Option<&str>,
    detail: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let ch = conversation.conversation_sid.as_str();
    let generation = conversations::next_close_generation(tx, ch).await?;
    let planned = orphan::close_call(conversation, generation, workspace_sid);
    let key = planned.idempotency_key.clone();
    store::outbox::enqueue(tx, &store::outbox::NewCall::planned(planned, None)).await?;
    conversations::record_close(
        tx,
        ch,
        generation,
        reason,
        detail,
        task_sid,
        event_type,
        orphan::close_method(conversation),
        &key,
    )
    .await?;
    let id = store::outbox::id_of(tx, &key).await?;
    tracing::info!(conversation_sid = ch, reason = reason.as_str(), key = %key, "conversation close decided");
    metrics::counter!("baton_conversation_closes_total", "reason" => reason.as_str()).increment(1);
    Ok(id)
}
