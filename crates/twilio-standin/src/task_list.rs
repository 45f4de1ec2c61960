//! TaskRouter's task list, `GET /v1/Workspaces/{WorkspaceSid}/Tasks` (`ListTask`): filters,
//! `EvaluateTaskAttributes`, `Ordering` and paging.

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::expression::TaskExpression;
use crate::model::{TaskState, TaskStatus};
use crate::paging::offset_page;
use crate::taskrouter::task_json;
use serde_json::Value;
use std::cmp::Ordering;

/// One `Attribute:Order` pair of `Ordering`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    DateCreated,
    Priority,
    VirtualStartTime,
}

fn invalid(name: &str, value: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value '{value}' for parameter {name}: {why}"
    ))
}

/// `Ordering`: comma-separated `Attribute:Order` pairs (`DateCreated`, `Priority` or
/// `VirtualStartTime`; `asc` or `desc`); DateCreated and VirtualStartTime may not be paired.
fn parse_ordering(raw: &str) -> Result<Vec<(Key, bool)>, ApiError> {
    let mut keys: Vec<(Key, bool)> = Vec::new();
    for pair in raw.split(',') {
        let (attribute, order) = pair.trim().split_once(':').ok_or_else(|| {
            invalid(
                "Ordering",
                raw,
                "expected Attribute:Order pairs such as DateCreated:asc",
            )
        })?;
        let key = match attribute.trim() {
            "DateCreated" => Key::DateCreated,
            "Priority" => Key::Priority,
            "VirtualStartTime" => Key::VirtualStartTime,
            other => {
                return Err(invalid(
                    "Ordering",
                    raw,
                    format!("{other} is not DateCreated, Priority or VirtualStartTime"),
                ))
            }
        };
        let descending = match order.trim() {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(invalid(
                    "Ordering",
                    raw,
                    format!("{other} is not asc or desc"),
                ))
            }
        };
        if keys.iter().any(|(k, _)| *k == key) {
            return Err(invalid("Ordering", raw, "an attribute is named twice"));
        }
        keys.push((key, descending));
    }
    let has = |key| keys.iter().any(|(k, _)| *k == key);
    if has(Key::DateCreated) && has(Key::VirtualStartTime) {
        return Err(invalid(
            "Ordering",
            raw,
            "DateCreated and VirtualStartTime cannot be paired",
        ));
    }
    Ok(keys)
}

fn compare(a: &TaskState, b: &TaskState, keys: &[(Key, bool)]) -> Ordering {
    for (key, descending) in keys {
        let ordering = match key {
            Key::DateCreated => a.date_created.cmp(&b.date_created),
            Key::Priority => a.priority.cmp(&b.priority),
            Key::VirtualStartTime => a.virtual_start_time.cmp(&b.virtual_start_time),
        };
        let ordering = if *descending {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    // Twilio's default order (ascending DateCreated), then the SID, so the order is stable.
    a.date_created
        .cmp(&b.date_created)
        .then_with(|| a.sid.cmp(&b.sid))
}

/// `AssignmentStatus`, repeated or comma-separated (`pending,reserved`).
fn statuses(ctx: &Ctx<'_>) -> Result<Vec<TaskStatus>, ApiError> {
    let mut wanted = Vec::new();
    for value in ctx.params.list("AssignmentStatus")? {
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let status = TaskStatus::parse(part).ok_or_else(|| {
                invalid(
                    "AssignmentStatus",
                    &value,
                    "expected pending, reserved, assigned, canceled, completed or wrapping",
                )
            })?;
            wanted.push(status);
        }
    }
    Ok(wanted)
}

pub(crate) fn list_tasks(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let p = ctx.params;
    let statuses = statuses(ctx)?;
    let expression = match p.str("EvaluateTaskAttributes")? {
        Some(raw) => Some(
            TaskExpression::parse(raw).map_err(|e| invalid("EvaluateTaskAttributes", raw, e))?,
        ),
        None => None,
    };
    let ordering = match p.str("Ordering")? {
        Some(raw) => parse_ordering(raw)?,
        None => Vec::new(),
    };
    let workflow = p.str("WorkflowSid")?;
    let workflow_name = p.str("WorkflowName")?;
    let queue = p.str("TaskQueueSid")?;
    let queue_name = p.str("TaskQueueName")?;
    let priority = p.int("Priority")?;
    let routing_target = p.str("RoutingTarget")?;

    let state = &*ctx.state;
    let workflow_named = |sid: &Option<String>, name: &str| {
        sid.as_deref()
            .and_then(|w| state.workflow(w))
            .is_some_and(|w| w.friendly_name == name)
    };
    let queue_named = |sid: &Option<String>, name: &str| {
        sid.as_deref()
            .and_then(|q| state.queues.get(q))
            .is_some_and(|q| q.friendly_name == name)
    };
    let mut tasks: Vec<&TaskState> = state
        .tasks
        .values()
        .filter(|t| statuses.is_empty() || statuses.contains(&t.assignment_status))
        .filter(|t| workflow.map_or(true, |w| t.workflow_sid.as_deref() == Some(w)))
        .filter(|t| workflow_name.map_or(true, |n| workflow_named(&t.workflow_sid, n)))
        .filter(|t| queue.map_or(true, |q| t.task_queue_sid.as_deref() == Some(q)))
        .filter(|t| queue_name.map_or(true, |n| queue_named(&t.task_queue_sid, n)))
        .filter(|t| priority.map_or(true, |n| t.priority == n))
        .filter(|t| routing_target.map_or(true, |r| t.routing_target.as_deref() == Some(r)))
        .filter(|t| {
            expression.as_ref().map_or(true, |e| {
                serde_json::from_str::<Value>(&t.attributes).is_ok_and(|a| e.matches(&a))
            })
        })
        .collect();
    tasks.sort_by(|a, b| compare(a, b, &ordering));
    let items: Vec<Value> = tasks
        .into_iter()
        .map(|t| task_json(state, t, ctx.base, ctx.now))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "tasks", items)?))
}
