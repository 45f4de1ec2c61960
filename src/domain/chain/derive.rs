//! The chain of a set of tasks: connected components by shared links, ordered by creation, and
//! the hops between them (and, for voice, between reservations of one task).

use super::model::{links, Chain, ChainTask, Hop, HopOutcome, ReservationNode, TaskNode};
use crate::domain::transfer::{
    Mode, NativeTransfer, TargetType, TransferMarks, TransferStatus, Vocabulary,
};
use serde_json::Value;
use std::collections::BTreeMap;

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
        mode: marks
            .and_then(|m| m.mode)
            .or_else(|| inferred_mode(from, marks, accepted)),
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

/// flex-project-template writes no mode, and its warm and cold invites carry the same
/// attributes; what tells them apart is whether the transferring agent was still there when
/// the target accepted (a cold transfer removes them at once). For history only: a mode read
/// so never makes baton act.
fn inferred_mode(
    from: &TaskNode,
    marks: Option<&TransferMarks>,
    accepted: Option<&ReservationNode>,
) -> Option<Mode> {
    if marks.map(|m| m.vocabulary) != Some(Vocabulary::ProjectTemplate) {
        return None;
    }
    let accepted_at = accepted?.accepted_at()?;
    Some(match from.finished_ms {
        Some(left) if left <= accepted_at => Mode::Cold,
        _ => Mode::Warm,
    })
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
