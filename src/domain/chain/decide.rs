//! What a chain calls for: Insights linkage, finishing what a transfer left undone, routing a
//! stranded customer back, finishing a stale wrap-up — each with its idempotency key, its Twilio
//! call and what Twilio must confirm before it is sent.

use super::model::{Chain, Hop, HopOutcome, TaskNode};
use crate::domain::guard::Guard;
use crate::domain::outbound::{create_invite, OperationKind, Procedure, Product, TwilioRequest};
use crate::domain::paths;
use crate::domain::planned::PlannedCall;
use crate::domain::transfer::{self, Mode, TargetType, Vocabulary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

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

fn complete_task(
    workspace_sid: &str,
    task_sid: &str,
    reason: String,
) -> (OperationKind, TwilioRequest) {
    (
        OperationKind::CompleteTask,
        TwilioRequest::post(
            Product::TaskRouter,
            paths::task(workspace_sid, task_sid),
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
                TwilioRequest::get(Product::TaskRouter, paths::task(workspace_sid, task_sid)),
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
                        paths::interaction_channel_participants(interaction_sid, channel_sid),
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
                                paths::tasks(workspace_sid),
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
