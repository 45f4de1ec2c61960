//! The inbox processor: claims stored events, hands them to the domain, and writes the results
//! back — all effects of an event commit together with its `processed_at`, so each event is
//! applied exactly once however many processes run.

use crate::domain::chain::{self, CompleteOn};
use crate::domain::event::{ConversationsEventType, TaskRouterEventType, TwilioEvent};
use crate::domain::facts::{self, Observation, ReservationFact, TaskFact, WorkerFact};
use crate::domain::orphan::{self, ConversationRef};
use crate::domain::park::{self, ParkEnd, ResumeRoute};
use crate::domain::transfer::TransferSnapshotAt;
use crate::store::{self, inbox::ClaimedEvent, StoreError};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Most rows claimed at once.
    pub batch_size: i64,
    /// How long a claim is held before another processor may take the rows.
    pub lease: Duration,
    /// How long to sleep when the inbox is empty (a local delivery wakes it at once).
    pub idle_poll: Duration,
    /// After a partial batch, how long to let events accumulate before claiming again: per-batch
    /// costs (two transactions, six statements) then spread over more events. Bounds the lag
    /// this adds.
    pub batch_window: Duration,
    /// Attempts before an event that keeps failing is dead-lettered.
    pub max_attempts: i32,
    /// The workspace outbound TaskRouter calls go to (set from `TWILIO_WORKSPACE_SID`).
    pub workspace_sid: String,
    /// When a transfer's transferring side is finished (`BATON_COMPLETE_ON`).
    pub complete_on: CompleteOn,
    /// How long after its last task ended a conversation is looked at for closing
    /// (`BATON_ORPHAN_GRACE`).
    pub orphan_grace: Duration,
    /// `workflow.timeout` of a conversation task: invite the customer again through this
    /// workflow instead of closing (`BATON_TIMEOUT_FALLBACK_WORKFLOW_SID`).
    pub fallback_workflow_sid: Option<String>,
    /// How long a voice park may last before baton un-parks it (`BATON_PARK_TTL`).
    pub voice_park_ttl: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            batch_size: 500,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(100),
            batch_window: Duration::from_millis(50),
            max_attempts: 10,
            workspace_sid: String::new(),
            complete_on: CompleteOn::default(),
            orphan_grace: Duration::from_secs(30),
            fallback_workflow_sid: None,
            voice_park_ttl: Duration::from_secs(600),
        }
    }
}

/// The tasks a batch locked before anything else, and those of them it found sharing a link.
struct Reachable {
    locked: BTreeSet<String>,
    shared: Vec<String>,
}

pub struct Processor {
    pool: PgPool,
    id: Uuid,
    config: ProcessorConfig,
    wake: Arc<Notify>,
    /// Wakes the outbox dispatcher after a batch enqueued calls.
    outbox_wake: Arc<Notify>,
    decided: std::sync::atomic::AtomicBool,
}

impl Processor {
    pub fn new(pool: PgPool, config: ProcessorConfig, wake: Arc<Notify>) -> Processor {
        Processor {
            pool,
            id: Uuid::new_v4(),
            config,
            wake,
            outbox_wake: Arc::new(Notify::new()),
            decided: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Wakes this dispatcher when a batch enqueues outbound calls.
    pub fn with_outbox_wake(mut self, outbox_wake: Arc<Notify>) -> Processor {
        self.outbox_wake = outbox_wake;
        self
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Runs until `shutdown` is cancelled, then finishes the batch in hand and gives back its
    /// leases.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(processor = %self.id, "inbox processor started");
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            match self.run_once().await {
                Ok(n) => {
                    failures = 0;
                    if n > 0 && (n as i64) < self.config.batch_size {
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(self.config.batch_window) => {}
                        }
                    } else if n == 0 {
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = self.wake.notified() => {}
                            _ = tokio::time::sleep(self.config.idle_poll) => {}
                        }
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    tracing::warn!(processor = %self.id, error = %e, ?backoff, "inbox processing failed; backing off");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
        match store::inbox::release_leases(&self.pool, self.id).await {
            Ok(n) => tracing::info!(processor = %self.id, released = n, "inbox processor stopped"),
            Err(e) => {
                tracing::warn!(processor = %self.id, error = %e, "could not release leases; they expire by themselves")
            }
        }
    }

    /// Claims one batch and processes it. Returns how many rows were claimed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let claimed = store::inbox::claim(
            &self.pool,
            self.id,
            self.config.lease,
            self.config.batch_size,
        )
        .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let n = claimed.len();
        let mut attempt = 0;
        loop {
            match self.apply(&claimed).await {
                Ok(()) => return Ok(n),
                Err(StoreError::Conflict(e)) if attempt < 3 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "batch lost a lock race; retrying");
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    // One bad event must not hold up the others: retry them one by one and
                    // record the failure on the one that fails.
                    tracing::warn!(error = %e, rows = n, "batch failed; processing its events one by one");
                    for event in &claimed {
                        if let Err(e) = self.apply(std::slice::from_ref(event)).await {
                            if e.is_transient() {
                                return Err(e);
                            }
                            let retry_after =
                                Duration::from_secs(2u64.pow(event.attempts.clamp(0, 10) as u32));
                            tracing::error!(event_id = event.id, event_key = %event.event_key, error = %e, "event processing failed");
                            store::inbox::mark_failed(
                                &self.pool,
                                self.id,
                                event.id,
                                &e.to_string(),
                                retry_after,
                                self.config.max_attempts,
                            )
                            .await?;
                        }
                    }
                    return Ok(n);
                }
            }
        }
    }

    /// Re-derives the chains of the touched tasks' components, stores them, and enqueues what
    /// they call for, all in the event's transaction.
    async fn update_chains(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        touched: &[String],
        locked: &BTreeSet<String>,
        transferred: bool,
        caused_by_event: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut touched: Vec<String> = touched.to_vec();
        touched.sort();
        touched.dedup();
        let component = store::chains::component(tx, &touched).await?;
        // The component is just the touched tasks: unless they are linked among themselves (all
        // of a chain's first events in one batch, as a backfill page brings them) or already in
        // a chain, each is alone, and chains of one are not stored and call for nothing.
        if component.len() == touched.len()
            && !transferred
            && !store::chains::any_chained_or_linked(tx, &touched).await?
        {
            return Ok(());
        }
        let sids: Vec<String> = component.into_iter().collect();
        // Locked with the batch's other tasks, unless a link stored meanwhile by another
        // processor grew the component (then all again, in order: held locks cost nothing).
        if sids.iter().any(|sid| !locked.contains(sid)) {
            store::chains::lock_tasks(tx, &sids).await?;
        }
        let nodes = store::chains::load_nodes(tx, &sids).await?;
        let chains = chain::derive_chains(&nodes);
        store::chains::save(tx, &sids, &chains).await?;
        let by_sid: BTreeMap<&str, &chain::TaskNode> =
            nodes.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        for c in &chains {
            for action in chain::decide(c, &by_sid, self.config.complete_on) {
                let call = store::outbox::NewCall::planned(
                    action.plan(&self.config.workspace_sid),
                    caused_by_event,
                );
                if store::outbox::enqueue(tx, &call).await? {
                    tracing::info!(chain_id = %c.chain_id, key = %call.idempotency_key, "chain decision enqueued");
                    self.decided
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Conversations: their reported state, orphan checks for those whose task ended, and the
    /// fallback invite of a task whose workflow timed out.
    async fn update_conversations(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        events: &[(&ClaimedEvent, TwilioEvent, i64)],
    ) -> Result<(), StoreError> {
        let mut ended: Vec<(String, String)> = Vec::new();
        let mut left: Vec<(String, String)> = Vec::new();
        for (row, event, ms) in events {
            match event {
                TwilioEvent::Taskrouter(tr) if orphan::ends_task(&tr.event_type) => {
                    let Some(task) = &tr.task else { continue };
                    ended.push((task.task_sid.clone(), tr.event_type.as_str().to_owned()));
                    let fallback = self.config.fallback_workflow_sid.as_deref();
                    if let (Some(workflow), TaskRouterEventType::WorkflowTimeout) =
                        (fallback, &tr.event_type)
                    {
                        let call = task
                            .attributes
                            .as_ref()
                            .and_then(|a| Some((a, ConversationRef::from_attributes(a)?)))
                            .and_then(|(attrs, conversation)| {
                                orphan::fallback_invite(
                                    &task.task_sid,
                                    &conversation,
                                    attrs,
                                    &self.config.workspace_sid,
                                    workflow,
                                    task.task_channel_unique_name.as_deref(),
                                )
                            });
                        if let Some(call) = call {
                            let call = store::outbox::NewCall::planned(call, Some(row.id));
                            if store::outbox::enqueue(tx, &call).await? {
                                tracing::info!(task_sid = %task.task_sid, key = %call.idempotency_key, "workflow timed out: customer invited again through the fallback workflow");
                                self.decided
                                    .store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                }
                TwilioEvent::Conversations(c) => {
                    let Some(sid) = c.conversation_sid.as_deref() else {
                        continue;
                    };
                    if c.event_type == ConversationsEventType::ParticipantRemoved {
                        // An agent (or the customer) left: the conversation may be orphaned now,
                        // whether or not a task event says so.
                        left.push((sid.to_owned(), c.event_type.as_str().to_owned()));
                        continue;
                    }
                    let removed = c.event_type == ConversationsEventType::ConversationRemoved;
                    let state = match c.event_type {
                        ConversationsEventType::ConversationStateUpdated => c.state_to.as_deref(),
                        ConversationsEventType::ConversationRemoved => Some("closed"),
                        _ => continue,
                    };
                    store::conversations::apply_state(
                        tx,
                        sid,
                        state,
                        removed,
                        *ms,
                        c.reason.as_deref(),
                    )
                    .await?;
                }
                _ => {}
            }
        }
        store::conversations::schedule_checks(tx, &ended, self.config.orphan_grace).await?;
        store::conversations::schedule_checks_for(tx, &left, self.config.orphan_grace).await?;
        Ok(())
    }

    /// Parks: a parked customer who wrote is resumed, a conversation closed while parked ends
    /// its park, a resumed task is recorded; voice parks are observed and followed.
    async fn update_parks(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        events: &[(&ClaimedEvent, TwilioEvent, i64)],
        task_sids: &[String],
    ) -> Result<(), StoreError> {
        let mut resumed = Vec::new();

        for (_, event, ms) in events {
            match event {
                TwilioEvent::Conversations(c) => {
                    let Some(ch) = c.conversation_sid.as_deref() else {
                        continue;
                    };
                    match c.event_type {
                        ConversationsEventType::MessageAdded => {
                            if let Some(p) = store::parks::lock_parked_conversation(tx, ch).await? {
                                if crate::services::parks::end_park(
                                    tx,
                                    &p,
                                    ParkEnd::CustomerMessage,
                                    ResumeRoute::SameWorker,
                                    &self.config.workspace_sid,
                                )
                                .await?
                                {
                                    self.decided
                                        .store(true, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                        }
                        ConversationsEventType::ConversationRemoved => {
                            store::parks::end_for_closed_conversation(tx, ch).await?;
                        }
                        ConversationsEventType::ConversationStateUpdated
                            if c.state_to.as_deref() == Some("closed") =>
                        {
                            store::parks::end_for_closed_conversation(tx, ch).await?;
                        }
                        _ => {}
                    }
                }
                TwilioEvent::Taskrouter(tr) => {
                    let Some((task, attrs)) = tr
                        .task
                        .as_ref()
                        .and_then(|t| Some((t, t.attributes.as_ref()?)))
                    else {
                        continue;
                    };
                    if let Some(park_id) = attrs
                        .get("baton")
                        .and_then(|b| b.get("park_id"))
                        .and_then(|p| p.as_str())
                    {
                        resumed.push((park_id.to_owned(), task.task_sid.clone()));
                    }
                    if let Some(marks) = park::voice_park_marks(attrs) {
                        let worker = marks
                            .target_worker
                            .clone()
                            .or_else(|| tr.worker.as_ref().map(|w| w.worker_sid.clone()));
                        store::parks::observe_voice(
                            tx,
                            &format!("PA{}", Uuid::new_v4().simple()),
                            &task.task_sid,
                            worker.as_deref(),
                            marks.vocabulary,
                            *ms,
                            self.config.voice_park_ttl.as_secs() as i64,
                            (tr.event_type == TaskRouterEventType::ReservationCreated)
                                .then_some(tr.reservation_sid.as_deref())
                                .flatten(),
                        )
                        .await?;
                    }
                }
                _ => {}
            }
        }
        store::parks::record_resumed_tasks(tx, &resumed).await?;
        let open = store::parks::open_voice_parks(tx, task_sids).await?;
        for (locked, parked_ms, task_status, reservations) in open {
            for step in park::voice_park_steps(parked_ms, task_status.as_deref(), &reservations) {
                let call = match step {
                    park::VoiceParkStep::FinishLeftBehind(wr) => {
                        park::finish_left_behind(&self.config.workspace_sid, &locked.task_sid, &wr)
                    }
                    park::VoiceParkStep::RestoreActivity {
                        reservation_sid,
                        worker_sid,
                    } => park::restore_activity(
                        &self.config.workspace_sid,
                        &worker_sid,
                        &reservation_sid,
                    ),
                    park::VoiceParkStep::End(end) => {
                        crate::services::parks::end_park(
                            tx,
                            &locked,
                            end,
                            ResumeRoute::SameWorker,
                            &self.config.workspace_sid,
                        )
                        .await?;
                        continue;
                    }
                };
                if store::outbox::enqueue(tx, &store::outbox::NewCall::planned(call, None)).await? {
                    self.decided
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Locks, in one ordered statement before anything else, every stored task the batch may
    /// write: the tasks its events are about and all their chains can reach, through stored
    /// links and the links the batch brings. Locked piecemeal (the tasks first, their chains
    /// later), two processors each holding part of the other's set deadlock, and Postgres
    /// breaks the tie only after `deadlock_timeout` (1 s) — the second processor slowed both.
    async fn lock_reachable_tasks(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        events: &[(&ClaimedEvent, TwilioEvent, i64)],
        task_sids: &[String],
    ) -> Result<Reachable, StoreError> {
        // Each link the batch's attributes carry, with every task known to hold it: the
        // batch's own and the stored holders.
        let mut carried: BTreeSet<(String, String)> = BTreeSet::new();
        for (_, event, _) in events {
            if let TwilioEvent::Taskrouter(tr) = event {
                if let Some((t, attrs)) = tr
                    .task
                    .as_ref()
                    .and_then(|t| Some((t, t.attributes.as_ref()?)))
                {
                    for link in chain::links(&t.task_sid, attrs) {
                        carried.insert((t.task_sid.clone(), link));
                    }
                }
            }
        }
        let batch_links: Vec<String> = carried
            .iter()
            .map(|(_, link)| link.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut stored: BTreeSet<(String, String)> =
            store::chains::holders_of_links(tx, &batch_links)
                .await?
                .into_iter()
                .collect();
        // The links this batch may store: carried by a task not yet holding them. Once no
        // other batch is storing one of them (the wait), their holders are read again: those
        // are all there will be until this batch commits, so the tasks found sharing a link
        // are exactly those that do.
        let new_links: Vec<String> = carried
            .difference(&stored)
            .map(|(_, link)| link.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !new_links.is_empty() {
            store::chains::lock_new_links(tx, &new_links).await?;
            stored.extend(store::chains::holders_of_links(tx, &new_links).await?);
        }
        let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (task, link) in carried.into_iter().chain(stored) {
            holders.entry(link).or_default().insert(task);
        }
        let mut seeds = task_sids.to_vec();
        let mut shared: BTreeSet<String> = BTreeSet::new();
        for tasks in holders.into_values() {
            if tasks.len() > 1 {
                shared.extend(tasks.iter().cloned());
            }
            seeds.extend(tasks);
        }
        seeds.sort();
        seeds.dedup();
        let locked = store::chains::component(tx, &seeds).await?;
        let sids: Vec<String> = locked.iter().cloned().collect();
        store::chains::lock_tasks(tx, &sids).await?;
        Ok(Reachable {
            locked,
            shared: shared.into_iter().collect(),
        })
    }

    /// Applies claimed events in one transaction.
    async fn apply(&self, claimed: &[ClaimedEvent]) -> Result<(), StoreError> {
        let mut tx = store::begin_keyed(&self.pool).await?;
        let ids: Vec<i64> = claimed.iter().map(|e| e.id).collect();
        let owned = store::inbox::lock_owned(&mut tx, self.id, &ids).await?;
        let mut events = Vec::with_capacity(owned.len());
        for row in claimed.iter().filter(|r| owned.contains(&r.id)) {
            let decode =
                |e: serde_json::Error| StoreError::Decode(format!("inbox event {}: {e}", row.id));
            let mut event: TwilioEvent = serde_json::from_str(&row.event).map_err(decode)?;
            if let TwilioEvent::Taskrouter(tr) = &mut event {
                if let Some(task) = tr.task.as_mut() {
                    task.attributes = row
                        .task_attributes
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(decode)?;
                }
            }
            let ms = row
                .event_time_ms
                .unwrap_or_else(|| row.received_at.timestamp_millis());
            events.push((row, event, ms));
        }
        // Event-time order; the merge does not depend on it, but later state machines read better so.
        events.sort_by_key(|(row, _, ms)| (*ms, row.id));

        let mut task_sids = Vec::new();
        let mut reservation_sids = Vec::new();
        let mut worker_sids = Vec::new();
        for (_, event, _) in &events {
            if let TwilioEvent::Taskrouter(tr) = event {
                if let Some(t) = &tr.task {
                    task_sids.push(t.task_sid.clone());
                }
                if let (Some(r), Some(_)) = (
                    &tr.reservation_sid,
                    facts::reservation_status(&tr.event_type),
                ) {
                    reservation_sids.push(r.clone());
                }
                if let Some(w) = &tr.worker {
                    worker_sids.push(w.worker_sid.clone());
                }
            }
        }
        let Reachable { locked, shared } = self
            .lock_reachable_tasks(&mut tx, &events, &task_sids)
            .await?;
        let mut tasks: BTreeMap<String, TaskFact> =
            store::facts::lock_and_load(&mut tx, &task_sids).await?;
        // Now that the batch's new tasks have rows, locked like the stored holders above.
        store::chains::mark_linked(&mut tx, &shared).await?;
        // Every version of a task's attributes links it to its conversation (grow-only). The
        // stored version's links went in with it, so most events (which repeat the attributes)
        // add nothing.
        let mut links: BTreeSet<(String, String)> = BTreeSet::new();
        let mut conversations: Vec<ConversationRef> = Vec::new();
        for (_, event, _) in &events {
            let TwilioEvent::Taskrouter(tr) = event else {
                continue;
            };
            let Some((t, attrs)) = tr
                .task
                .as_ref()
                .and_then(|t| Some((t, t.attributes.as_ref()?)))
            else {
                continue;
            };
            let stored = tasks.get(&t.task_sid).and_then(|f| f.attributes_hash);
            if stored.is_some() && stored == Some(store::facts::attributes_hash(attrs)) {
                continue;
            }
            for link in chain::links(&t.task_sid, attrs) {
                links.insert((t.task_sid.clone(), link));
            }
            conversations.extend(ConversationRef::from_attributes(attrs));
        }
        let mut reservations: BTreeMap<String, ReservationFact> =
            store::facts::lock_and_load(&mut tx, &reservation_sids).await?;
        let mut workers: BTreeMap<String, WorkerFact> =
            store::facts::lock_and_load(&mut tx, &worker_sids).await?;

        for (row, event, ms) in &events {
            let TwilioEvent::Taskrouter(tr) = event else {
                continue;
            };
            let obs = Observation {
                event: tr,
                event_key: &row.event_key,
                ms: *ms,
            };
            if let Some(fact) = tr.task.as_ref().and_then(|t| tasks.get_mut(&t.task_sid)) {
                facts::merge_task(fact, &obs);
            }
            if let Some(fact) = tr
                .reservation_sid
                .as_ref()
                .and_then(|r| reservations.get_mut(r))
            {
                facts::merge_reservation(fact, &obs);
            }
            if let Some(fact) = tr
                .worker
                .as_ref()
                .and_then(|w| workers.get_mut(&w.worker_sid))
            {
                facts::merge_worker(fact, &obs);
            }
        }
        store::facts::save_task_attributes(&mut tx, tasks.values_mut()).await?;
        store::facts::save(&mut tx, tasks.values()).await?;
        store::facts::save(&mut tx, reservations.values()).await?;
        store::facts::save(&mut tx, workers.values()).await?;
        store::chains::add_links(&mut tx, &links).await?;
        // Flex's native transfers, from their `task.transfer-*` events.
        let transfers: Vec<(String, TransferSnapshotAt)> = events
            .iter()
            .filter_map(|(_, event, ms)| {
                let TwilioEvent::Taskrouter(tr) = event else {
                    return None;
                };
                let task = tr.task.as_ref()?;
                let read = TransferSnapshotAt::read(&tr.event_type, tr.transfer.as_ref()?, *ms)?;
                Some((task.task_sid.clone(), read))
            })
            .collect();
        store::chains::record_transfers(&mut tx, &transfers).await?;
        let first_event = events.first().map(|(row, _, _)| row.id);
        self.update_chains(
            &mut tx,
            &task_sids,
            &locked,
            !transfers.is_empty(),
            first_event,
        )
        .await?;
        store::conversations::upsert(&mut tx, &conversations).await?;
        self.update_conversations(&mut tx, &events).await?;
        self.update_parks(&mut tx, &events, &task_sids).await?;

        let owned_ids: Vec<i64> = events.iter().map(|(row, _, _)| row.id).collect();
        let lags = store::inbox::mark_processed(&mut tx, self.id, &owned_ids).await?;
        tx.commit().await?;
        metrics::counter!("baton_inbox_processed_total").increment(lags.len() as u64);
        if self
            .decided
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.outbox_wake.notify_one();
        }
        let lag_histogram = metrics::histogram!("baton_processing_lag_seconds");
        for lag in lags {
            lag_histogram.record(lag);
        }
        Ok(())
    }
}
