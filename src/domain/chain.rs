//! Transfer chains: the tasks that served one customer conversation, root → hop → hop.
//!
//! A chain is a *function of the facts*: [`derive_chains`] takes the tasks of a connected
//! component (with their reservations) and returns the chain, and [`decide`] the actions it
//! calls for. Neither looks at the order events arrived in, so duplicated, late and reordered
//! deliveries converge to the same chain (property-tested below), and a decision made twice is
//! the same decision (its idempotency key is a function of the chain).

use super::facts::{ReservationFact, TaskFact};
use super::guard::Guard;
use super::outbound::{create_invite, OperationKind, Procedure, Product, TwilioRequest};
use super::transfer::{
    self, Mode, NativeTransfer, TargetType, TransferMarks, TransferStatus, Vocabulary,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

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

    fn accepted_at(&self) -> Option<i64> {
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

    fn order_key(&self) -> (i64, &str) {
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
    fn accepted_reservation(&self, before_ms: Option<i64>) -> Option<&ReservationNode> {
        self.reservations
            .iter()
            .filter(|r| r.was_accepted())
            .filter(|r| match (before_ms, r.accepted_at()) {
                (Some(limit), Some(at)) => at <= limit,
                _ => true,
            })
            .max_by_key(|r| (r.accepted_at(), r.reservation_sid.clone()))
    }

    fn first_accepted(&self) -> Option<&ReservationNode> {
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

/// Splits `nodes` into connected components (by shared [`links`]) and derives each one's chain.
/// Chains come sorted by id; the result depends only on the set of nodes.
pub fn derive_chains(nodes: &[TaskNode]) -> Vec<Chain> {
    let mut sorted: Vec<&TaskNode> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.task_sid.cmp(&b.task_sid));
    sorted.dedup_by(|a, b| a.task_sid == b.task_sid);
    // Union-find over shared link keys.
    let mut parent: Vec<usize> = (0..sorted.len()).collect();
    fn find(parent: &mut [usize], i: usize) -> usize {
        let mut root = i;
        while parent[root] != root {
            root = parent[root];
        }
        let mut i = i;
        while parent[i] != root {
            let next = parent[i];
            parent[i] = root;
            i = next;
        }
        root
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, node) in sorted.iter().enumerate() {
        for link in links(&node.task_sid, &node.attributes) {
            match owner.get(&link) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    owner.insert(link, i);
                }
            }
        }
    }
    let mut components: BTreeMap<usize, Vec<&TaskNode>> = BTreeMap::new();
    for (i, node) in sorted.iter().enumerate() {
        let root = find(&mut parent, i);
        components.entry(root).or_default().push(node);
    }
    let mut chains: Vec<Chain> = components.into_values().map(chain_of).collect();
    chains.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
    chains
}

fn chain_of(mut tasks: Vec<&TaskNode>) -> Chain {
    tasks.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let root = tasks[0];
    let chain_id = root.insights_id().unwrap_or_else(|| root.task_sid.clone());
    let position: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_sid.as_str(), i))
        .collect();
    let mut hops = Vec::new();
    for (i, to) in tasks.iter().enumerate() {
        // Hops between reservations of one task: voice transfers keep the task.
        hops.extend(same_task_hops(to));
        if i == 0 {
            continue;
        }
        let marks = to.marks();
        let from = marks
            .as_ref()
            .and_then(|m| m.previous_task_sid.as_deref())
            .and_then(|p| position.get(p))
            .filter(|&&p| p != i)
            .map_or(tasks[i - 1], |&p| tasks[p]);
        hops.push(task_hop(from, to, marks.as_ref(), &tasks));
    }
    hops.sort_by(|a, b| {
        (
            a.initiated_ms.unwrap_or(i64::MAX),
            &a.to_task_sid,
            &a.to_reservation_sid,
        )
            .cmp(&(
                b.initiated_ms.unwrap_or(i64::MAX),
                &b.to_task_sid,
                &b.to_reservation_sid,
            ))
    });
    for (i, hop) in hops.iter_mut().enumerate() {
        hop.seq = i as i32 + 1;
    }
    Chain {
        chain_id,
        root_task_sid: root.task_sid.clone(),
        started_ms: root.created_ms,
        tasks: tasks
            .iter()
            .enumerate()
            .map(|(i, t)| ChainTask {
                task_sid: t.task_sid.clone(),
                position: i as i32,
                insights_id: t.insights_id(),
            })
            .collect(),
        hops,
    }
}

/// Why TaskRouter cancels a task by itself (so the transfer *failed*, rather than was withdrawn).
fn system_cancel(reason: Option<&str>) -> bool {
    let Some(reason) = reason else {
        return true;
    };
    let r = reason.to_ascii_lowercase();
    [
        "ttl",
        "timeout",
        "timed out",
        "max assignment",
        "workflow",
        "exceeded",
    ]
    .iter()
    .any(|w| r.contains(w))
}

fn task_hop(
    from: &TaskNode,
    to: &TaskNode,
    marks: Option<&TransferMarks>,
    chain: &[&TaskNode],
) -> Hop {
    let from_reservation = from.accepted_reservation(to.created_ms);
    let to_reservation = to.first_accepted().or_else(|| to.reservations.last());
    let accepted = to.first_accepted();
    let returned = chain.iter().any(|t| {
        t.attributes
            .get("baton")
            .and_then(|b| b.get("returning_from"))
            .and_then(Value::as_str)
            == Some(to.task_sid.as_str())
    });
    let outcome = if accepted.is_some() {
        Some(HopOutcome::Completed)
    } else if to.assignment_status.as_deref() == Some("canceled") {
        Some(if returned {
            HopOutcome::Returned
        } else if system_cancel(to.canceled_reason.as_deref()) {
            HopOutcome::Failed
        } else {
            HopOutcome::Canceled
        })
    } else if to.assignment_status.as_deref() == Some("completed") {
        Some(HopOutcome::Completed)
    } else {
        None
    };
    let finished_ms = match outcome {
        Some(HopOutcome::Completed) => from.finished_ms.or(accepted.and_then(|r| r.accepted_at())),
        Some(_) => to.finished_ms,
        None => None,
    };
    let target_sid = marks
        .and_then(|m| m.target_sid.clone())
        .or_else(|| marks.is_none().then(|| to.task_queue_sid.clone()).flatten());
    let target_type = marks
        .and_then(|m| m.target_type)
        .or_else(|| target_sid.as_deref().and_then(TargetType::from_sid));
    let initiated_by = marks.and_then(|m| m.initiated_by.clone());
    let from_worker = from_reservation
        .and_then(|r| r.worker_sid.clone())
        .or_else(|| initiated_by.clone().filter(|w| w.starts_with("WK")));
    let to_queue_sid = to_queue_sid(to, target_type, target_sid.as_deref());
    Hop {
        seq: 0,
        from_task_sid: from.task_sid.clone(),
        to_task_sid: to.task_sid.clone(),
        from_reservation_sid: from_reservation.map(|r| r.reservation_sid.clone()),
        to_reservation_sid: to_reservation.map(|r| r.reservation_sid.clone()),
        from_worker_sid: from_worker,
        to_worker_sid: to_reservation.and_then(|r| r.worker_sid.clone()),
        target_type,
        target_sid,
        target_name: marks.and_then(|m| m.target_name.clone()),
        mode: marks.and_then(|m| m.mode),
        notes: marks.and_then(|m| m.notes.clone()),
        initiated_by,
        vocabulary: marks.map(|m| m.vocabulary),
        native_transfer_sid: marks.and_then(|m| m.native_transfer_sid.clone()),
        transfer_id: baton_text(to, "transfer_id"),
        initiated_ms: to.created_ms,
        offered_ms: to.reservations.iter().filter_map(|r| r.created_ms).min(),
        accepted_ms: accepted.and_then(|r| r.accepted_at()),
        finished_ms,
        outcome,
        from_queue_sid: from.task_queue_sid.clone(),
        to_queue_sid,
        ended_ms: accepted.map_or(to.finished_ms, |r| r.finished_ms.or(to.finished_ms)),
    }
}

/// The queue a hop went to: where the new task was routed, else the queue it was sent to.
fn to_queue_sid(
    to: &TaskNode,
    target_type: Option<TargetType>,
    target_sid: Option<&str>,
) -> Option<String> {
    to.task_queue_sid.clone().or_else(|| {
        (target_type == Some(TargetType::Queue))
            .then(|| target_sid.map(str::to_owned))
            .flatten()
    })
}

fn baton_text(task: &TaskNode, key: &str) -> Option<String> {
    task.attributes
        .get("baton")
        .and_then(|b| b.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Voice transfers keep the task and give it a new reservation. With the task's
/// `task.transfer-*` events, each transfer is one hop; without them, the offers made while
/// someone held the task are grouped into hops: one transfer's offers run until one is
/// accepted (a queue transfer is offered to several workers in turn; that is one transfer).
fn same_task_hops(task: &TaskNode) -> Vec<Hop> {
    if task.transfers.is_empty() {
        inferred_same_task_hops(task)
    } else {
        native_transfer_hops(task)
    }
}

/// A same-task hop from its holder's reservation to the offers it made.
fn same_task_hop(
    task: &TaskNode,
    holder: Option<&ReservationNode>,
    offers: &[&ReservationNode],
) -> Hop {
    let accepted = offers.iter().copied().find(|r| r.was_accepted());
    let to = accepted.or(offers.last().copied());
    let first_offer = offers.iter().filter_map(|r| r.created_ms).min();
    Hop {
        seq: 0,
        from_task_sid: task.task_sid.clone(),
        to_task_sid: task.task_sid.clone(),
        from_reservation_sid: holder.map(|h| h.reservation_sid.clone()),
        to_reservation_sid: to.map(|r| r.reservation_sid.clone()),
        from_worker_sid: holder.and_then(|h| h.worker_sid.clone()),
        to_worker_sid: to.and_then(|r| r.worker_sid.clone()),
        target_type: Some(TargetType::Worker),
        target_sid: to.and_then(|r| r.worker_sid.clone()),
        target_name: None,
        mode: None,
        notes: None,
        initiated_by: holder.and_then(|h| h.worker_sid.clone()),
        vocabulary: Some(Vocabulary::NativeFlex),
        native_transfer_sid: None,
        transfer_id: None,
        initiated_ms: first_offer,
        offered_ms: first_offer,
        accepted_ms: accepted.and_then(|r| r.accepted_at()),
        finished_ms: accepted.and_then(|r| r.accepted_at()),
        outcome: None,
        // A voice transfer keeps the task, and so its queue.
        from_queue_sid: task.task_queue_sid.clone(),
        to_queue_sid: task.task_queue_sid.clone(),
        ended_ms: accepted.and_then(|r| r.finished_ms),
    }
}

fn inferred_same_task_hops(task: &TaskNode) -> Vec<Hop> {
    let Some(first_accept) = task.first_accepted().and_then(|r| r.accepted_at()) else {
        return Vec::new();
    };
    let mut offers: Vec<&ReservationNode> = task
        .reservations
        .iter()
        .filter(|r| r.created_ms.is_some_and(|c| c > first_accept))
        .collect();
    offers.sort_by_key(|r| (r.created_ms, r.reservation_sid.clone()));
    let mut hops = Vec::new();
    let mut group: Vec<&ReservationNode> = Vec::new();
    let mut holder: Option<&ReservationNode> = None;
    let close = |holder: Option<&ReservationNode>, group: &[&ReservationNode]| {
        let mut hop = same_task_hop(task, holder, group);
        hop.outcome = if hop.accepted_ms.is_some() {
            Some(HopOutcome::Completed)
        } else if group.iter().all(|r| r.finished_ms.is_some()) {
            Some(HopOutcome::Failed)
        } else {
            None
        };
        if hop.outcome == Some(HopOutcome::Failed) {
            hop.finished_ms = group.iter().filter_map(|r| r.finished_ms).max();
        }
        hop
    };
    for offer in offers {
        let Some(current) = task.accepted_reservation(offer.created_ms) else {
            continue;
        };
        if current.reservation_sid == offer.reservation_sid
            || current.worker_sid == offer.worker_sid
        {
            continue;
        }
        if group.is_empty() {
            holder = Some(current);
        }
        group.push(offer);
        if offer.was_accepted() {
            hops.push(close(holder, &group));
            group.clear();
        }
    }
    if !group.is_empty() {
        hops.push(close(holder, &group));
    }
    hops
}

fn native_transfer_hops(task: &TaskNode) -> Vec<Hop> {
    let mut transfers: Vec<&NativeTransfer> = task.transfers.iter().collect();
    transfers.sort_by_key(|t| (t.initiated_ms.unwrap_or(i64::MAX), t.transfer_sid.clone()));
    let starts: Vec<Option<i64>> = transfers.iter().map(|t| t.initiated_ms).collect();
    transfers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let start = t.initiated_ms;
            let end = starts.get(i + 1).copied().flatten();
            let holder = t
                .initiating_reservation_sid
                .as_deref()
                .and_then(|sid| task.reservations.iter().find(|r| r.reservation_sid == sid))
                .or_else(|| task.accepted_reservation(start));
            let mut offers: Vec<&ReservationNode> = task
                .reservations
                .iter()
                .filter(|r| Some(&r.reservation_sid) != holder.map(|h| &h.reservation_sid))
                .filter(|r| match (r.created_ms, start) {
                    (Some(c), Some(s)) => c >= s && end.map_or(true, |e| c < e),
                    _ => false,
                })
                .collect();
            offers.sort_by_key(|r| (r.created_ms, r.reservation_sid.clone()));
            let mut hop = same_task_hop(task, holder, &offers);
            hop.from_worker_sid = t.initiating_worker_sid.clone().or(hop.from_worker_sid);
            hop.initiated_by.clone_from(&hop.from_worker_sid);
            hop.target_type = t.target_type.or(hop.target_type);
            hop.target_sid = t.target_sid.clone().or(hop.target_sid);
            hop.mode = t.mode;
            hop.native_transfer_sid = Some(t.transfer_sid.clone());
            hop.initiated_ms = start.or(hop.initiated_ms);
            if t.target_type == Some(TargetType::Queue) {
                hop.to_queue_sid = t.target_sid.clone();
            }
            hop.outcome = match t.status {
                TransferStatus::Completed => Some(HopOutcome::Completed),
                TransferStatus::Failed => Some(HopOutcome::Failed),
                TransferStatus::Canceled => Some(HopOutcome::Canceled),
                TransferStatus::Initiated => hop.accepted_ms.map(|_| HopOutcome::Completed),
            };
            if matches!(t.status, TransferStatus::Failed | TransferStatus::Canceled) {
                hop.finished_ms = t.status_ms;
            }
            hop.finished_ms = hop.finished_ms.or(t
                .status_ms
                .filter(|_| t.status != TransferStatus::Initiated));
            hop
        })
        .collect()
}

/// When the transferring side is finished (`BATON_COMPLETE_ON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompleteOn {
    /// When the target's reservation is accepted: the original agent keeps the customer until
    /// then, and a failed transfer simply leaves them with it.
    #[default]
    Accepted,
    /// As soon as the transfer task exists; a failed transfer is routed back.
    Created,
}

impl std::str::FromStr for CompleteOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accepted" => Ok(CompleteOn::Accepted),
            "created" => Ok(CompleteOn::Created),
            other => Err(format!("expected `accepted` or `created`, got `{other}`")),
        }
    }
}

/// When the transferring side of a hop may be finished: what the target's task must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Once {
    /// The target took the customer (its task assigned, or done since).
    TargetAccepted,
    /// The target's task exists (baton's own transfers under `BATON_COMPLETE_ON=created`).
    TargetCreated,
}

impl Once {
    fn statuses(self) -> &'static [&'static str] {
        match self {
            Once::TargetAccepted => &["assigned", "wrapping", "completed"],
            Once::TargetCreated => &["pending", "reserved", "assigned", "wrapping", "completed"],
        }
    }
}

/// What a chain calls for. Each has an idempotency key: deciding it again is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Make the task's `conversations.conversation_id` the chain id (before it completes).
    StampInsights { task_sid: String, chain_id: String },
    /// End the transferring agent's side of a hop: close their interaction participant, or
    /// complete their (legacy) task.
    FinishTransferringSide {
        from_task_sid: String,
        to_task_sid: String,
        interaction: Option<(String, String)>,
        /// What the target's task must show at Twilio when the call is sent.
        once: Once,
    },
    /// The transfer goes to a worker who still has this task of the chain in wrap-up: finish the
    /// wrap-up before the offer reaches them.
    CompleteStaleWrapup {
        task_sid: String,
        for_task_sid: String,
    },
    /// A transfer failed after the original agent was released: route the customer back, to
    /// the original worker if known, else the original queue.
    RouteBack {
        failed_task_sid: String,
        original_task_sid: String,
        worker_sid: Option<String>,
        task_queue_sid: Option<String>,
        workflow_sid: Option<String>,
        task_channel: Option<String>,
        interaction: Option<(String, String)>,
        attributes: Value,
    },
}

impl Action {
    pub fn idempotency_key(&self) -> String {
        match self {
            Action::StampInsights { task_sid, chain_id } => format!("stamp:{task_sid}:{chain_id}"),
            Action::FinishTransferringSide {
                from_task_sid,
                to_task_sid,
                ..
            } => format!("complete:{from_task_sid}:{to_task_sid}"),
            Action::CompleteStaleWrapup {
                task_sid,
                for_task_sid,
            } => format!("unwrap:{task_sid}:{for_task_sid}"),
            Action::RouteBack {
                failed_task_sid, ..
            } => format!("return:{failed_task_sid}"),
        }
    }
}

/// An action as an outbound Twilio call (see `store::outbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCall {
    pub idempotency_key: String,
    pub kind: OperationKind,
    pub request: TwilioRequest,
    pub procedure: Option<Procedure>,
    /// The conversation the call is about (an invite keeps it open until its task is seen).
    pub conversation_sid: Option<String>,
    /// What Twilio must confirm when the call is about to be sent (else it is withdrawn).
    pub guard: Option<Guard>,
    /// The idempotency key of a call that must have succeeded first (an ordered step).
    pub after: Option<String>,
}

impl PlannedCall {
    pub fn guarded(mut self, guard: Guard) -> PlannedCall {
        self.guard = Some(guard);
        self
    }

    pub fn after(mut self, key: &str) -> PlannedCall {
        self.after = Some(key.to_owned());
        self
    }
}

fn complete_task(
    workspace_sid: &str,
    task_sid: &str,
    reason: String,
) -> (OperationKind, TwilioRequest) {
    (
        OperationKind::CompleteTask,
        TwilioRequest::post(
            Product::TaskRouter,
            format!("/v1/Workspaces/{workspace_sid}/Tasks/{task_sid}"),
            vec![
                ("AssignmentStatus".into(), "completed".into()),
                ("Reason".into(), reason),
            ],
        ),
    )
}

impl Action {
    /// The Twilio call that carries the action out.
    pub fn plan(&self, workspace_sid: &str) -> PlannedCall {
        let key = self.idempotency_key();
        let (kind, request, procedure) = match self {
            Action::StampInsights { task_sid, chain_id } => (
                OperationKind::StampInsights,
                TwilioRequest::get(
                    Product::TaskRouter,
                    format!("/v1/Workspaces/{workspace_sid}/Tasks/{task_sid}"),
                ),
                Some(Procedure::StampInsights {
                    workspace_sid: workspace_sid.to_owned(),
                    task_sid: task_sid.clone(),
                    chain_id: chain_id.clone(),
                }),
            ),
            Action::FinishTransferringSide {
                from_task_sid,
                to_task_sid,
                interaction: Some((interaction_sid, channel_sid)),
                ..
            } => {
                let _ = to_task_sid;
                (
                    OperationKind::CloseInteractionParticipant,
                    TwilioRequest::get(
                        Product::Flex,
                        format!("/v1/Interactions/{interaction_sid}/Channels/{channel_sid}/Participants"),
                    ),
                    Some(Procedure::CloseAgentParticipant {
                        interaction_sid: interaction_sid.clone(),
                        channel_sid: channel_sid.clone(),
                        task_sid: from_task_sid.clone(),
                    }),
                )
            }
            Action::FinishTransferringSide {
                from_task_sid,
                to_task_sid,
                interaction: None,
                ..
            } => {
                let (kind, request) = complete_task(
                    workspace_sid,
                    from_task_sid,
                    format!("transferred to task {to_task_sid} (baton)"),
                );
                (kind, request, None)
            }
            Action::CompleteStaleWrapup {
                task_sid,
                for_task_sid,
            } => {
                let (kind, request) = complete_task(
                    workspace_sid,
                    task_sid,
                    format!("wrap-up finished by baton: the customer is transferred back (task {for_task_sid})"),
                );
                (kind, request, None)
            }
            Action::RouteBack {
                worker_sid,
                task_queue_sid,
                workflow_sid,
                task_channel,
                interaction,
                attributes,
                ..
            } => {
                let mut attributes = attributes.clone();
                if let Some(baton) = attributes.get_mut("baton").and_then(Value::as_object_mut) {
                    baton.insert("outbox_key".into(), Value::String(key.clone()));
                }
                // Known-agent routing: the workflow offers it to the original worker first, then
                // the queue. An explicit `worker_sid` would cancel the task if they declined,
                // leaving the customer alone again.
                if let Some(obj) = attributes.as_object_mut() {
                    let mut original = serde_json::Map::new();
                    if let Some(queue) = task_queue_sid {
                        original.insert("queueSid".into(), Value::String(queue.clone()));
                    }
                    if let Some(worker) = worker_sid {
                        original.insert("workerSid".into(), Value::String(worker.clone()));
                    }
                    obj.insert("originalRouting".into(), Value::Object(original));
                }
                let channel = task_channel.clone().unwrap_or_else(|| "default".into());
                match interaction {
                    Some((interaction_sid, channel_sid)) => {
                        let mut properties = serde_json::json!({
                            "workspace_sid": workspace_sid,
                            "task_channel_unique_name": channel,
                            "attributes": attributes,
                        });
                        // Back to the original worker by known-agent routing, else to the
                        // original queue, through the original workflow.
                        if let Some(workflow) = workflow_sid {
                            properties["workflow_sid"] = Value::String(workflow.clone());
                        }
                        if let Some(queue) = task_queue_sid {
                            properties["queue_sid"] = Value::String(queue.clone());
                        }
                        let (request, lookup) =
                            create_invite(interaction_sid, channel_sid, properties);
                        (
                            OperationKind::CreateInvite,
                            request,
                            Some(Procedure::CreateOnce {
                                lookup: Some(lookup),
                                marker: key.clone(),
                            }),
                        )
                    }
                    None => {
                        let mut form = vec![
                            ("Attributes".into(), attributes.to_string()),
                            ("TaskChannel".into(), channel),
                        ];
                        if let Some(workflow) = workflow_sid {
                            form.push(("WorkflowSid".into(), workflow.clone()));
                        }
                        (
                            OperationKind::CreateTask,
                            TwilioRequest::post(
                                Product::TaskRouter,
                                format!("/v1/Workspaces/{workspace_sid}/Tasks"),
                                form,
                            ),
                            Some(Procedure::CreateOnce {
                                lookup: None,
                                marker: key.clone(),
                            }),
                        )
                    }
                }
            }
        };
        let conversation_sid = match self {
            Action::RouteBack { attributes, .. } => {
                transfer::conversation_keys(attributes).conversation_sid
            }
            _ => None,
        };
        PlannedCall {
            idempotency_key: key,
            kind,
            request,
            procedure,
            guard: self.guard(workspace_sid, conversation_sid.as_deref()),
            conversation_sid,
            after: None,
        }
    }

    /// What Twilio must confirm before the action's call is sent.
    fn guard(&self, workspace_sid: &str, conversation_sid: Option<&str>) -> Option<Guard> {
        let ws = workspace_sid;
        match self {
            Action::StampInsights { .. } => None,
            // The transferring agent still has the task, and the target's task shows what the
            // decision needed.
            Action::FinishTransferringSide {
                from_task_sid,
                to_task_sid,
                once,
                ..
            } => Some(Guard::All {
                guards: vec![
                    Guard::task_is(ws, from_task_sid, &["assigned"]),
                    Guard::task_is(ws, to_task_sid, once.statuses()),
                ],
            }),
            // Only a wrap-up (never a live task), and only while the offer still waits.
            Action::CompleteStaleWrapup {
                task_sid,
                for_task_sid,
            } => Some(Guard::All {
                guards: vec![
                    Guard::task_is(ws, task_sid, &["wrapping"]),
                    Guard::task_is(ws, for_task_sid, &["pending", "reserved"]),
                ],
            }),
            // Nobody is left with the customer and nothing else could serve them.
            Action::RouteBack {
                failed_task_sid,
                original_task_sid,
                interaction,
                ..
            } => Some(match conversation_sid {
                Some(ch) => Guard::Unattended {
                    workspace_sid: ws.to_owned(),
                    conversation_sid: ch.to_owned(),
                    interaction: interaction.clone(),
                    except_tasks: vec![failed_task_sid.clone()],
                    own_park: None,
                },
                None => Guard::All {
                    guards: vec![
                        Guard::task_is(ws, failed_task_sid, &["canceled", "completed"]),
                        Guard::task_is(ws, original_task_sid, &["wrapping", "completed"]),
                    ],
                },
            }),
        }
    }
}

/// The actions a chain calls for now. Pure; deciding twice yields the same keys.
pub fn decide(
    chain: &Chain,
    nodes: &BTreeMap<&str, &TaskNode>,
    complete_on: CompleteOn,
) -> Vec<Action> {
    let mut actions = Vec::new();
    if chain.tasks.len() < 2 {
        return actions;
    }
    // Insights linkage: every live task carries the chain id (the root carries it by definition
    // when it has none: Insights falls back to the task SID).
    for t in &chain.tasks {
        let Some(node) = nodes.get(t.task_sid.as_str()) else {
            continue;
        };
        let linked = crate::domain::insights::is_linked(
            &t.task_sid,
            t.insights_id.as_deref(),
            &chain.chain_id,
        );
        if !linked && !node.is_terminal() && node.assignment_status.is_some() {
            actions.push(Action::StampInsights {
                task_sid: t.task_sid.clone(),
                chain_id: chain.chain_id.clone(),
            });
        }
    }
    for hop in &chain.hops {
        if hop.from_task_sid == hop.to_task_sid || hop.vocabulary.is_none() {
            continue;
        }
        let (Some(from), Some(to)) = (
            nodes.get(hop.from_task_sid.as_str()),
            nodes.get(hop.to_task_sid.as_str()),
        ) else {
            continue;
        };
        if hop.outcome.is_none() {
            actions.extend(stale_wrapups(chain, nodes, hop, to));
        }
        let from_live = matches!(
            from.assignment_status.as_deref(),
            Some("assigned" | "reserved")
        );
        // Whose transfer it is decides what baton may finish. Its own (`POST
        // /api/v1/transfers`): the transferring side, by `BATON_COMPLETE_ON`, unless warm.
        // Another tool's: only what a transfer that is provably cold left undone once the
        // target took the customer (flex-project-template writes no mode, and its warm and
        // cold invites look alike: not provably cold, so never).
        let finish = if hop.vocabulary == Some(Vocabulary::Baton) {
            let due = match complete_on {
                CompleteOn::Accepted => hop.outcome == Some(HopOutcome::Completed),
                CompleteOn::Created => true,
            };
            (hop.mode != Some(Mode::Warm) && due && hop.outcome != Some(HopOutcome::Failed))
                .then_some(match complete_on {
                    CompleteOn::Accepted => Once::TargetAccepted,
                    CompleteOn::Created => Once::TargetCreated,
                })
        } else {
            (hop.mode == Some(Mode::Cold) && hop.outcome == Some(HopOutcome::Completed))
                .then_some(Once::TargetAccepted)
        };
        if let (Some(once), true) = (finish, from_live) {
            actions.push(Action::FinishTransferringSide {
                from_task_sid: from.task_sid.clone(),
                to_task_sid: to.task_sid.clone(),
                interaction: from.interaction(),
                once,
            });
        }
        // A transfer that failed or was withdrawn, whoever made it, with the original agent
        // gone: route the customer back (Twilio confirms nobody is left when it is sent).
        let failed = matches!(hop.outcome, Some(HopOutcome::Failed | HopOutcome::Canceled));
        if failed && !from_live && !superseded(chain, nodes, from, to) && !is_rescue(to) {
            actions.push(route_back(chain, hop, from, to));
        }
    }
    actions
}

/// Whether another task of the chain serves (or served, after the failed one) the customer:
/// then routing back would put them in two places.
fn superseded(
    chain: &Chain,
    nodes: &BTreeMap<&str, &TaskNode>,
    from: &TaskNode,
    to: &TaskNode,
) -> bool {
    chain.tasks.iter().any(|t| {
        if t.task_sid == from.task_sid || t.task_sid == to.task_sid {
            return false;
        }
        let Some(other) = nodes.get(t.task_sid.as_str()) else {
            return false;
        };
        let later = other.order_key() > to.order_key();
        !other.is_terminal() || (later && other.first_accepted().is_some())
    })
}

/// A task baton created to rescue a customer (a route-back, a timeout fallback): if it fails
/// too, baton does not loop.
pub fn is_rescue(task: &TaskNode) -> bool {
    task.attributes.get("baton").is_some_and(|b| {
        b.get("returning_from").is_some() || b.get("fallback_from_task_sid").is_some()
    })
}

/// The route back of a failed hop: the original task's attributes, marked as a return.
fn route_back(chain: &Chain, hop: &Hop, from: &TaskNode, to: &TaskNode) -> Action {
    let mut attributes = from.attributes.clone();
    if let Some(obj) = attributes.as_object_mut() {
        obj.insert(
            "baton".into(),
            serde_json::json!({
                "previous_task_sid": to.task_sid,
                "returning_from": to.task_sid,
                "target_sid": hop.from_worker_sid.clone().or(from.task_queue_sid.clone()),
                "mode": "cold",
                "notes": "transfer failed; routed back",
                "initiated_by": "baton:return",
            }),
        );
        let conversations = obj
            .entry("conversations")
            .or_insert_with(|| Value::Object(Default::default()));
        if !conversations.is_object() {
            *conversations = Value::Object(Default::default());
        }
        if let Some(c) = conversations.as_object_mut() {
            c.insert(
                "conversation_id".into(),
                Value::String(chain.chain_id.clone()),
            );
        }
    }
    Action::RouteBack {
        failed_task_sid: to.task_sid.clone(),
        original_task_sid: from.task_sid.clone(),
        worker_sid: hop.from_worker_sid.clone(),
        task_queue_sid: from.task_queue_sid.clone(),
        workflow_sid: from.workflow_sid.clone(),
        task_channel: from.task_channel.clone(),
        interaction: from.interaction(),
        attributes,
    }
}

/// A transfer offered to a worker who still wraps up an earlier task of the chain, whatever
/// the vocabulary: to a worker by name, or to a queue whose offer reached them. Their wrap-up
/// is finished before they can take the customer back.
fn stale_wrapups(
    chain: &Chain,
    nodes: &BTreeMap<&str, &TaskNode>,
    hop: &Hop,
    to: &TaskNode,
) -> Vec<Action> {
    let mut offered: Vec<&str> = to
        .reservations
        .iter()
        .filter(|r| r.status.as_deref() == Some("pending"))
        .filter_map(|r| r.worker_sid.as_deref())
        .collect();
    if hop.target_type == Some(TargetType::Worker) {
        offered.extend(hop.target_sid.as_deref());
    }
    let mut actions = Vec::new();
    for t in &chain.tasks {
        let Some(earlier) = nodes.get(t.task_sid.as_str()) else {
            continue;
        };
        if earlier.task_sid == to.task_sid
            || earlier.assignment_status.as_deref() != Some("wrapping")
        {
            continue;
        }
        let holder = earlier
            .accepted_reservation(None)
            .and_then(|r| r.worker_sid.as_deref());
        if holder.is_some_and(|w| offered.contains(&w)) {
            let action = Action::CompleteStaleWrapup {
                task_sid: earlier.task_sid.clone(),
                for_task_sid: to.task_sid.clone(),
            };
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{
        EventTime, TaskRouterEvent, TaskRouterEventType, TaskSnapshot, WorkerSnapshot,
    };
    use crate::domain::facts::{merge_reservation, merge_task, Observation};
    use proptest::prelude::*;
    use serde_json::json;

    const A: &str = "WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "WTbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "WTcccccccccccccccccccccccccccccccc";
    const ALICE: &str = "WK00000000000000000000000000000001";
    const BOB: &str = "WK00000000000000000000000000000002";
    const CAROL: &str = "WK00000000000000000000000000000003";
    const SALES: &str = "WQ00000000000000000000000000000001";

    #[derive(Clone)]
    struct Ev {
        kind: &'static str,
        task: &'static str,
        status: &'static str,
        ms: i64,
        attrs: Value,
        reservation: Option<(&'static str, &'static str)>,
        reason: Option<&'static str>,
    }

    fn ev(
        kind: &'static str,
        task: &'static str,
        status: &'static str,
        ms: i64,
        attrs: &Value,
    ) -> Ev {
        Ev {
            kind,
            task,
            status,
            ms,
            attrs: attrs.clone(),
            reservation: None,
            reason: None,
        }
    }

    fn rev(
        kind: &'static str,
        task: &'static str,
        status: &'static str,
        ms: i64,
        attrs: &Value,
        reservation: &'static str,
        worker: &'static str,
    ) -> Ev {
        Ev {
            reservation: Some((reservation, worker)),
            ..ev(kind, task, status, ms, attrs)
        }
    }

    fn to_event(e: &Ev) -> TaskRouterEvent {
        TaskRouterEvent {
            event_type: TaskRouterEventType::parse(e.kind),
            event_sid: None,
            account_sid: None,
            workspace_sid: Some("WS1".into()),
            resource_type: None,
            resource_sid: None,
            time: Some(EventTime {
                ms: e.ms,
                millisecond_precision: true,
            }),
            task: Some(TaskSnapshot {
                task_sid: e.task.into(),
                assignment_status: Some(e.status.into()),
                attributes: Some(e.attrs.clone()),
                canceled_reason: e.reason.map(str::to_owned),
                ..Default::default()
            }),
            reservation_sid: e.reservation.map(|(r, _)| r.to_owned()),
            worker: e.reservation.map(|(_, w)| WorkerSnapshot {
                worker_sid: w.into(),
                ..Default::default()
            }),
            task_queue_sid: Some(SALES.into()),
            task_queue_name: None,
            workflow_sid: Some("WW1".into()),
            reason: None,
            transfer: None,
        }
    }

    /// Folds events (in the order given) into facts, then into task nodes.
    fn nodes(events: &[Ev]) -> Vec<TaskNode> {
        let mut tasks: BTreeMap<String, TaskFact> = BTreeMap::new();
        let mut reservations: BTreeMap<String, ReservationFact> = BTreeMap::new();
        for e in events {
            let event = to_event(e);
            // The event's identity: a redelivery is the same event.
            let key = format!("{}:{}:{}", e.kind, e.task, e.ms);
            let obs = Observation {
                event: &event,
                event_key: &key,
                ms: e.ms,
            };
            merge_task(
                tasks
                    .entry(e.task.to_owned())
                    .or_insert_with(|| TaskFact::new(e.task)),
                &obs,
            );
            if let Some((r, _)) = e.reservation {
                merge_reservation(
                    reservations
                        .entry(r.to_owned())
                        .or_insert_with(|| ReservationFact::new(r)),
                    &obs,
                );
            }
        }
        tasks
            .values()
            .map(|t| {
                let rs: Vec<&ReservationFact> = reservations
                    .values()
                    .filter(|r| r.task_sid.as_deref() == Some(t.task_sid.as_str()))
                    .collect();
                TaskNode::from_facts(t, t.attributes.as_ref(), &rs)
            })
            .collect()
    }

    /// A→B→C: a customer with Alice, transferred (project-template style) to the Sales queue
    /// where Bob takes it, then by Bob to Carol (baton style).
    fn three_hops() -> Vec<Ev> {
        let a = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1"});
        let b = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
            "transferTargetSid": SALES, "transferTargetType": "queue", "transferQueueName": "Sales",
            "workerSidsInConversation": [ALICE], "conversations": {"conversation_id": A}});
        let c = json!({"conversationSid": "CH1", "flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
            "baton": {"previous_task_sid": B, "target_sid": CAROL, "mode": "cold", "notes": "VIP",
                "initiated_by": BOB, "transfer_id": "TR1"}, "conversations": {"conversation_id": A}});
        vec![
            ev("task.created", A, "pending", 1000, &a),
            rev("reservation.created", A, "reserved", 1100, &a, "WRa", ALICE),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WRa",
                ALICE,
            ),
            ev("task.created", B, "pending", 2000, &b),
            rev("reservation.created", B, "reserved", 2100, &b, "WRb", BOB),
            rev("reservation.accepted", B, "assigned", 2200, &b, "WRb", BOB),
            ev("task.completed", A, "completed", 2300, &a),
            ev("task.created", C, "pending", 3000, &c),
            rev("reservation.created", C, "reserved", 3100, &c, "WRc", CAROL),
            rev(
                "reservation.accepted",
                C,
                "assigned",
                3200,
                &c,
                "WRc",
                CAROL,
            ),
        ]
    }

    #[test]
    fn hops_record_their_queues_and_when_the_target_let_the_customer_go() {
        let mut events = three_hops();
        // Bob's task ends once Carol has the customer.
        let b = events[3].attrs.clone();
        events.push(ev("task.completed", B, "completed", 3300, &b));
        let chain = &derive_chains(&nodes(&events))[0];
        let (h1, h2) = (&chain.hops[0], &chain.hops[1]);
        assert_eq!(h1.from_queue_sid.as_deref(), Some(SALES));
        assert_eq!(h1.to_queue_sid.as_deref(), Some(SALES));
        assert_eq!((h1.accepted_ms, h1.ended_ms), (Some(2200), Some(3300)));
        // Carol still has the customer.
        assert_eq!((h2.accepted_ms, h2.ended_ms), (Some(3200), None));
    }

    #[test]
    fn a_three_hop_chain_has_its_root_and_two_ordered_hops() {
        let chains = derive_chains(&nodes(&three_hops()));
        assert_eq!(chains.len(), 1);
        let chain = &chains[0];
        assert_eq!(chain.chain_id, A);
        assert_eq!(chain.root_task_sid, A);
        let order: Vec<&str> = chain.tasks.iter().map(|t| t.task_sid.as_str()).collect();
        assert_eq!(order, vec![A, B, C]);
        assert_eq!(chain.hops.len(), 2);
        let h1 = &chain.hops[0];
        assert_eq!(
            (h1.seq, h1.from_task_sid.as_str(), h1.to_task_sid.as_str()),
            (1, A, B)
        );
        assert_eq!(h1.target_type, Some(TargetType::Queue));
        assert_eq!(h1.target_sid.as_deref(), Some(SALES));
        assert_eq!(h1.target_name.as_deref(), Some("Sales"));
        assert_eq!(h1.from_worker_sid.as_deref(), Some(ALICE));
        assert_eq!(h1.to_worker_sid.as_deref(), Some(BOB));
        assert_eq!(h1.vocabulary, Some(Vocabulary::ProjectTemplate));
        assert_eq!(
            (
                h1.initiated_ms,
                h1.offered_ms,
                h1.accepted_ms,
                h1.finished_ms
            ),
            (Some(2000), Some(2100), Some(2200), Some(2300))
        );
        assert_eq!(h1.outcome, Some(HopOutcome::Completed));
        let h2 = &chain.hops[1];
        assert_eq!(
            (h2.seq, h2.from_task_sid.as_str(), h2.to_task_sid.as_str()),
            (2, B, C)
        );
        assert_eq!(h2.target_type, Some(TargetType::Worker));
        assert_eq!(h2.notes.as_deref(), Some("VIP"));
        assert_eq!(h2.transfer_id.as_deref(), Some("TR1"));
        assert_eq!(h2.from_reservation_sid.as_deref(), Some("WRb"));
        assert_eq!(h2.outcome, Some(HopOutcome::Completed));
        assert_eq!(
            h2.finished_ms,
            Some(3200),
            "B is still assigned: finished when Carol took it"
        );
    }

    #[test]
    fn accepted_policy_finishes_the_transferring_side_only_after_acceptance() {
        let all = three_hops();
        let before_accept: Vec<Ev> = all
            .into_iter()
            .filter(|e| !(e.task == C && e.kind == "reservation.accepted"))
            .collect();
        let ns = nodes(&before_accept);
        let chain = &derive_chains(&ns)[0];
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        let actions = decide(chain, &by_sid, CompleteOn::Accepted);
        assert!(!actions.iter().any(|a| matches!(a, Action::FinishTransferringSide { from_task_sid, .. } if from_task_sid == B)), "{actions:?}");
        let created = decide(chain, &by_sid, CompleteOn::Created);
        assert!(
            created.contains(&Action::FinishTransferringSide {
                from_task_sid: B.into(),
                to_task_sid: C.into(),
                interaction: Some(("KD1".into(), "UO1".into())),
                once: Once::TargetCreated,
            }),
            "{created:?}"
        );

        let ns = nodes(&three_hops());
        let chain = &derive_chains(&ns)[0];
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        let actions = decide(chain, &by_sid, CompleteOn::Accepted);
        assert_eq!(
            actions,
            vec![Action::FinishTransferringSide {
                from_task_sid: B.into(),
                to_task_sid: C.into(),
                interaction: Some(("KD1".into(), "UO1".into())),
                once: Once::TargetAccepted,
            }],
            "A is completed already; B and C carry the chain id"
        );
    }

    #[test]
    fn unlinked_live_tasks_are_stamped_with_the_chain_id() {
        // plugin-chat-sms-transfer's guard: the task had a `conversations` object, so the
        // plugin left conversation_id out.
        let a = json!({"channelSid": "CH9", "conversations": {"communication_channel": "chat"}});
        let b = json!({"channelSid": "CH9", "targetSid": BOB, "ignoreAgent": "alice",
            "conversations": {"communication_channel": "chat"}});
        let events = vec![
            ev("task.created", A, "pending", 1000, &a),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WRa",
                ALICE,
            ),
            ev("task.created", B, "pending", 2000, &b),
        ];
        let ns = nodes(&events);
        let chain = &derive_chains(&ns)[0];
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        let actions = decide(chain, &by_sid, CompleteOn::Accepted);
        assert_eq!(
            actions,
            vec![Action::StampInsights {
                task_sid: B.into(),
                chain_id: A.into()
            }]
        );
        assert_eq!(actions[0].idempotency_key(), format!("stamp:{B}:{A}"));
    }

    #[test]
    fn a_failed_transfer_is_failed_or_returned_by_policy() {
        let a = json!({"flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1"});
        let b = json!({"flexInteractionSid": "KD1", "flexInteractionChannelSid": "UO1",
            "baton": {"previous_task_sid": A, "target_sid": BOB}});
        let mut events = vec![
            ev("task.created", A, "pending", 1000, &a),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WRa",
                ALICE,
            ),
            ev("task.created", B, "pending", 2000, &b),
            rev("reservation.created", B, "reserved", 2100, &b, "WRb", BOB),
            rev("reservation.rejected", B, "pending", 2200, &b, "WRb", BOB),
        ];
        events.push(Ev {
            reason: Some("Task TTL Exceeded"),
            ..ev("task.canceled", B, "canceled", 2900, &b)
        });
        let ns = nodes(&events);
        let chain = &derive_chains(&ns)[0];
        assert_eq!(chain.hops[0].outcome, Some(HopOutcome::Failed));
        assert_eq!(chain.hops[0].finished_ms, Some(2900));
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        assert_eq!(
            decide(chain, &by_sid, CompleteOn::Accepted),
            vec![],
            "Alice keeps the customer"
        );
        // With `created`, Alice was released when B was created; once she is gone, route back.
        let mut released = events;
        released.push(ev("task.completed", A, "completed", 2050, &a));
        let ns = nodes(&released);
        let chain = &derive_chains(&ns)[0];
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        let actions = decide(chain, &by_sid, CompleteOn::Created);
        assert_eq!(actions.len(), 1, "{actions:?}");
        let Action::RouteBack {
            worker_sid,
            failed_task_sid,
            attributes,
            ..
        } = &actions[0]
        else {
            panic!("{actions:?}");
        };
        assert_eq!(worker_sid.as_deref(), Some(ALICE));
        assert_eq!(failed_task_sid, B);
        assert_eq!(attributes["baton"]["returning_from"], B);
        assert_eq!(attributes["conversations"]["conversation_id"], A);
    }

    #[test]
    fn a_transfer_back_to_a_worker_in_wrap_up_finishes_that_wrap_up() {
        let a = json!({"conversationSid": "CH1"});
        let b = json!({"conversationSid": "CH1", "targetSid": BOB, "conversations": {"conversation_id": A}});
        let c = json!({"conversationSid": "CH1", "targetSid": ALICE, "conversations": {"conversation_id": A}});
        let events = vec![
            ev("task.created", A, "pending", 1000, &a),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WRa",
                ALICE,
            ),
            ev("task.created", B, "pending", 2000, &b),
            rev("reservation.accepted", B, "assigned", 2200, &b, "WRb", BOB),
            ev("task.wrapup", A, "wrapping", 2300, &a),
            ev("task.created", C, "pending", 3000, &c),
        ];
        let ns = nodes(&events);
        let chain = &derive_chains(&ns)[0];
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        let actions = decide(chain, &by_sid, CompleteOn::Accepted);
        assert!(
            actions.contains(&Action::CompleteStaleWrapup {
                task_sid: A.into(),
                for_task_sid: C.into()
            }),
            "{actions:?}"
        );
    }

    #[test]
    fn voice_transfers_are_hops_between_reservations_of_one_task() {
        let a = json!({"call_sid": "CA1"});
        let events = vec![
            ev("task.created", A, "pending", 1000, &a),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WR1",
                ALICE,
            ),
            rev("reservation.created", A, "assigned", 2000, &a, "WR2", BOB),
            rev("reservation.accepted", A, "assigned", 2100, &a, "WR2", BOB),
        ];
        let chain = &derive_chains(&nodes(&events))[0];
        assert_eq!(chain.hops.len(), 1);
        let hop = &chain.hops[0];
        assert_eq!(
            (hop.from_task_sid.as_str(), hop.to_task_sid.as_str()),
            (A, A)
        );
        assert_eq!(hop.from_worker_sid.as_deref(), Some(ALICE));
        assert_eq!(hop.to_worker_sid.as_deref(), Some(BOB));
        assert_eq!(hop.accepted_ms, Some(2100));
    }

    #[test]
    fn offers_without_transfer_events_are_one_hop_until_one_is_accepted() {
        // A queue transfer offered to Bob, who declines, then to Carol: one transfer, in
        // flight, not a failed one and another.
        let a = json!({"call_sid": "CA1"});
        let mut events = vec![
            ev("task.created", A, "pending", 1000, &a),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WR1",
                ALICE,
            ),
            rev("reservation.created", A, "assigned", 2000, &a, "WR2", BOB),
            rev("reservation.rejected", A, "assigned", 2100, &a, "WR2", BOB),
            rev("reservation.created", A, "assigned", 3000, &a, "WR3", CAROL),
        ];
        let summary = |events: &[Ev]| -> Vec<_> {
            derive_chains(&nodes(events))[0]
                .hops
                .iter()
                .map(|h| {
                    (
                        h.from_worker_sid.clone(),
                        h.to_worker_sid.clone(),
                        h.outcome,
                        h.offered_ms,
                    )
                })
                .collect()
        };
        assert_eq!(
            summary(&events),
            vec![(Some(ALICE.into()), Some(CAROL.into()), None, Some(2000))]
        );
        // Carol too declines, and nobody else is offered it: the transfer failed.
        events.push(rev(
            "reservation.rejected",
            A,
            "assigned",
            3100,
            &a,
            "WR3",
            CAROL,
        ));
        assert_eq!(
            summary(&events),
            vec![(
                Some(ALICE.into()),
                Some(CAROL.into()),
                Some(HopOutcome::Failed),
                Some(2000)
            )]
        );
    }

    #[test]
    fn native_transfer_events_make_one_hop_each_with_their_mode_and_outcome() {
        let a = json!({"call_sid": "CA1"});
        let events = vec![
            ev("task.created", A, "pending", 1000, &a),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                1200,
                &a,
                "WR1",
                ALICE,
            ),
            // TT1: to Sales, warm; Bob declines, Carol takes it.
            rev("reservation.created", A, "assigned", 2000, &a, "WR2", BOB),
            rev("reservation.rejected", A, "assigned", 2100, &a, "WR2", BOB),
            rev("reservation.created", A, "assigned", 2200, &a, "WR3", CAROL),
            rev(
                "reservation.accepted",
                A,
                "assigned",
                2300,
                &a,
                "WR3",
                CAROL,
            ),
            // TT2: Carol to Bob, cold; it fails.
            rev("reservation.created", A, "assigned", 4000, &a, "WR4", BOB),
            rev("reservation.timeout", A, "assigned", 4500, &a, "WR4", BOB),
        ];
        let mut ns = nodes(&events);
        ns[0].transfers = vec![
            NativeTransfer {
                transfer_sid: "TT1".into(),
                mode: Some(Mode::Warm),
                target_sid: Some(SALES.into()),
                target_type: Some(TargetType::Queue),
                initiating_worker_sid: Some(ALICE.into()),
                initiating_reservation_sid: Some("WR1".into()),
                status: TransferStatus::Completed,
                status_ms: Some(2300),
                initiated_ms: Some(1900),
            },
            NativeTransfer {
                transfer_sid: "TT2".into(),
                mode: Some(Mode::Cold),
                target_sid: Some(BOB.into()),
                target_type: Some(TargetType::Worker),
                initiating_worker_sid: Some(CAROL.into()),
                initiating_reservation_sid: Some("WR3".into()),
                status: TransferStatus::Failed,
                status_ms: Some(4600),
                initiated_ms: Some(3900),
            },
        ];
        let chain = &derive_chains(&ns)[0];
        let summary: Vec<_> = chain
            .hops
            .iter()
            .map(|h| {
                (
                    h.native_transfer_sid.as_deref(),
                    h.from_worker_sid.as_deref(),
                    h.to_worker_sid.as_deref(),
                    h.mode,
                    h.target_type,
                    h.outcome,
                    h.offered_ms,
                    h.finished_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    Some("TT1"),
                    Some(ALICE),
                    Some(CAROL),
                    Some(Mode::Warm),
                    Some(TargetType::Queue),
                    Some(HopOutcome::Completed),
                    Some(2000),
                    Some(2300)
                ),
                (
                    Some("TT2"),
                    Some(CAROL),
                    Some(BOB),
                    Some(Mode::Cold),
                    Some(TargetType::Worker),
                    Some(HopOutcome::Failed),
                    Some(4000),
                    Some(4600)
                ),
            ]
        );
        assert_eq!(chain.hops[0].to_queue_sid.as_deref(), Some(SALES));
        let by_sid: BTreeMap<&str, &TaskNode> =
            ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
        assert_eq!(
            decide(chain, &by_sid, CompleteOn::Accepted),
            vec![],
            "Flex's own voice transfers are Flex's to finish"
        );
    }

    #[test]
    fn unrelated_tasks_are_separate_chains() {
        let events = vec![
            ev(
                "task.created",
                A,
                "pending",
                1000,
                &json!({"conversationSid": "CH1"}),
            ),
            ev(
                "task.created",
                B,
                "pending",
                1000,
                &json!({"conversationSid": "CH2"}),
            ),
        ];
        let chains = derive_chains(&nodes(&events));
        assert_eq!(chains.len(), 2);
        assert!(chains.iter().all(|c| c.hops.is_empty()));
    }

    #[test]
    fn links_cover_every_vocabulary() {
        let l = links(
            B,
            &json!({"previous_task_sid": A, "conversationSid": "CH1",
            "flexInteractionChannelSid": "UO1", "channelSid": "CH2", "conversations": {"conversation_id": C}}),
        );
        let expected: BTreeSet<String> = [
            format!("id:{B}"),
            format!("id:{A}"),
            format!("id:{C}"),
            "conv:CH1".into(),
            "conv:CH2".into(),
            "uo:UO1".into(),
        ]
        .into_iter()
        .collect();
        assert_eq!(l, expected);
    }

    proptest! {
        /// Invariant: any order (and duplication) of the same deliveries gives the same chain and
        /// the same decisions.
        #[test]
        fn any_order_of_deliveries_converges(
            perm in Just((0..three_hops().len()).collect::<Vec<_>>()).prop_shuffle(),
            dups in proptest::collection::vec(0..10usize, 0..4),
        ) {
            let base = three_hops();
            let expected = derive_chains(&nodes(&base));
            let mut order: Vec<usize> = perm;
            order.extend(dups);
            let shuffled: Vec<Ev> = order.iter().map(|&i| base[i].clone()).collect();
            let ns = nodes(&shuffled);
            let got = derive_chains(&ns);
            prop_assert_eq!(&got, &expected);
            let by_sid: BTreeMap<&str, &TaskNode> = ns.iter().map(|n| (n.task_sid.as_str(), n)).collect();
            let exp_nodes = nodes(&base);
            let exp_by_sid: BTreeMap<&str, &TaskNode> = exp_nodes.iter().map(|n| (n.task_sid.as_str(), n)).collect();
            prop_assert_eq!(
                decide(&got[0], &by_sid, CompleteOn::Accepted),
                decide(&expected[0], &exp_by_sid, CompleteOn::Accepted)
            );
        }
    }
}
