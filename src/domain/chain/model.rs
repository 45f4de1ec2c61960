//! What a chain is made of: its tasks and reservations as the chain sees them, the keys that
//! link tasks, and the chain and its hops.

use crate::domain::facts::{ReservationFact, TaskFact};
use crate::domain::transfer::{self, Mode, NativeTransfer, TargetType, TransferMarks, Vocabulary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// A reservation as the chain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationNode {
    pub reservation_sid: String,
    pub worker_sid: Option<String>,
    pub status: Option<String>,
    pub created_ms: Option<i64>,
    pub accepted_ms: Option<i64>,
    /// When it reached a terminal status (completed, rejected, timeout, canceled…).
    pub finished_ms: Option<i64>,
}

impl ReservationNode {
    pub fn from_fact(fact: &ReservationFact) -> ReservationNode {
        ReservationNode {
            reservation_sid: fact.reservation_sid.clone(),
            worker_sid: fact.worker_sid.clone(),
            status: fact.status.clone(),
            created_ms: fact.first_event_ms,
            accepted_ms: fact.accepted_ms,
            finished_ms: fact
                .versions
                .get("status")
                .filter(|s| s.terminal)
                .map(|s| s.ms),
        }
    }

    /// Whether the worker took the task (a reservation that was accepted, even if its
    /// `reservation.accepted` event was never seen).
    pub fn was_accepted(&self) -> bool {
        self.accepted_ms.is_some()
            || matches!(
                self.status.as_deref(),
                Some("accepted" | "wrapping" | "completed")
            )
    }

    pub(crate) fn accepted_at(&self) -> Option<i64> {
        self.accepted_ms
            .or_else(|| self.was_accepted().then_some(self.created_ms).flatten())
    }
}

/// A task as the chain sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskNode {
    pub task_sid: String,
    /// Latest known attributes (`Value::Null` when none were seen).
    pub attributes: Value,
    pub assignment_status: Option<String>,
    pub task_queue_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub task_channel: Option<String>,
    pub canceled_reason: Option<String>,
    /// The earliest event seen for the task: when it was created, as far as baton knows.
    pub created_ms: Option<i64>,
    /// When it reached `completed` or `canceled`.
    pub finished_ms: Option<i64>,
    pub reservations: Vec<ReservationNode>,
    /// Flex's native transfers of the task (voice), from its `task.transfer-*` events.
    pub transfers: Vec<NativeTransfer>,
}

impl TaskNode {
    pub fn from_facts(
        fact: &TaskFact,
        attributes: Option<&Value>,
        reservations: &[&ReservationFact],
    ) -> TaskNode {
        let finished_ms = fact
            .versions
            .get("assignment_status")
            .filter(|s| s.terminal)
            .map(|s| s.ms);
        let mut reservations: Vec<ReservationNode> = reservations
            .iter()
            .map(|r| ReservationNode::from_fact(r))
            .collect();
        reservations.sort_by(|a, b| {
            (a.created_ms, &a.reservation_sid).cmp(&(b.created_ms, &b.reservation_sid))
        });
        TaskNode {
            task_sid: fact.task_sid.clone(),
            attributes: attributes.cloned().unwrap_or(Value::Null),
            assignment_status: fact.assignment_status.clone(),
            task_queue_sid: fact.task_queue_sid.clone(),
            workflow_sid: fact.workflow_sid.clone(),
            task_channel: fact.task_channel.clone(),
            canceled_reason: fact.canceled_reason.clone(),
            created_ms: fact.first_event_ms,
            finished_ms,
            reservations,
            transfers: Vec::new(),
        }
    }

    pub(crate) fn order_key(&self) -> (i64, &str) {
        (self.created_ms.unwrap_or(i64::MAX), &self.task_sid)
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self.assignment_status.as_deref(),
            Some("completed" | "canceled")
        )
    }

    pub fn marks(&self) -> Option<TransferMarks> {
        transfer::transfer_marks(&self.attributes)
    }

    /// `conversations.conversation_id`, what Flex Insights groups segments by.
    pub fn insights_id(&self) -> Option<String> {
        transfer::conversation_keys(&self.attributes).insights_conversation_id
    }

    /// The interaction (KD) and channel (UO) of a Flex Conversations task.
    pub fn interaction(&self) -> Option<(String, String)> {
        let keys = transfer::conversation_keys(&self.attributes);
        Some((keys.interaction_sid?, keys.interaction_channel_sid?))
    }

    /// The reservation that took the task most recently before `before_ms` (any, if `None`).
    pub(crate) fn accepted_reservation(&self, before_ms: Option<i64>) -> Option<&ReservationNode> {
        self.reservations
            .iter()
            .filter(|r| r.was_accepted())
            .filter(|r| match (before_ms, r.accepted_at()) {
                (Some(limit), Some(at)) => at <= limit,
                _ => true,
            })
            .max_by_key(|r| (r.accepted_at(), r.reservation_sid.clone()))
    }

    pub(crate) fn first_accepted(&self) -> Option<&ReservationNode> {
        self.reservations
            .iter()
            .filter(|r| r.was_accepted())
            .min_by_key(|r| (r.accepted_at(), r.reservation_sid.clone()))
    }
}

/// The keys that link a task to others of its customer conversation (see the `task_links`
/// table). Two tasks sharing any key are in one chain.
pub fn links(task_sid: &str, attributes: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.insert(format!("id:{task_sid}"));
    if let Some(previous) = transfer::transfer_marks(attributes).and_then(|m| m.previous_task_sid) {
        out.insert(format!("id:{previous}"));
    }
    let keys = transfer::conversation_keys(attributes);
    if let Some(id) = keys.insights_conversation_id {
        out.insert(format!("id:{id}"));
    }
    for conversation in [keys.conversation_sid, keys.chat_channel_sid]
        .into_iter()
        .flatten()
    {
        out.insert(format!("conv:{conversation}"));
    }
    if let Some(channel) = keys.interaction_channel_sid {
        out.insert(format!("uo:{channel}"));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopOutcome {
    /// The target took the customer.
    Completed,
    /// The transfer task ended without anyone taking it (timeout, workflow end, rejections).
    Failed,
    /// Someone withdrew the transfer.
    Canceled,
    /// It failed and baton routed the customer back.
    Returned,
}

impl HopOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            HopOutcome::Completed => "completed",
            HopOutcome::Failed => "failed",
            HopOutcome::Canceled => "canceled",
            HopOutcome::Returned => "returned",
        }
    }
}

/// One transfer: from a task (and the reservation/worker that had it) to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub seq: i32,
    pub from_task_sid: String,
    pub to_task_sid: String,
    pub from_reservation_sid: Option<String>,
    pub to_reservation_sid: Option<String>,
    pub from_worker_sid: Option<String>,
    pub to_worker_sid: Option<String>,
    pub target_type: Option<TargetType>,
    pub target_sid: Option<String>,
    pub target_name: Option<String>,
    pub mode: Option<Mode>,
    pub notes: Option<String>,
    pub initiated_by: Option<String>,
    pub vocabulary: Option<Vocabulary>,
    pub native_transfer_sid: Option<String>,
    pub transfer_id: Option<String>,
    pub initiated_ms: Option<i64>,
    pub offered_ms: Option<i64>,
    pub accepted_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub outcome: Option<HopOutcome>,
    /// The queue of the task the customer came from, and the queue the hop went to (the
    /// target's queue, or the one the new task was routed to), for history by queue.
    pub from_queue_sid: Option<String>,
    pub to_queue_sid: Option<String>,
    /// When the target's side ended: the accepted reservation (or, without one, the task) reached
    /// a terminal status, wrap-up included. `accepted_ms` → `ended_ms` is the time in the hop.
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTask {
    pub task_sid: String,
    pub position: i32,
    /// Its `conversations.conversation_id` now.
    pub insights_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub chain_id: String,
    pub root_task_sid: String,
    pub started_ms: Option<i64>,
    pub tasks: Vec<ChainTask>,
    pub hops: Vec<Hop>,
}
