//! TaskRouter v1 (`taskrouter.twilio.com/v1/Workspaces/{WorkspaceSid}/…`).

use crate::ctx::{Ctx, Reply};
use crate::effects::Effect;
use crate::error::{ApiError, CODE_PRECONDITION_FAILED};
use crate::model::*;
use crate::paging::{list_body, offset_page, page_request};
use crate::state::{fmt_date, opt_date, State};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

// ---- rendering ----

pub(crate) fn task_json(state: &State, task: &TaskState, base: &str, now: DateTime<Utc>) -> Value {
    let ws = state.ws_url(base);
    let queue = task
        .task_queue_sid
        .as_deref()
        .and_then(|q| state.queues.get(q));
    let workflow = task.workflow_sid.as_deref().and_then(|w| state.workflow(w));
    let url = format!("{ws}/Tasks/{}", task.sid);
    let mut links = serde_json::Map::new();
    if let Some(q) = &task.task_queue_sid {
        links.insert("task_queue".into(), json!(format!("{ws}/TaskQueues/{q}")));
    }
    if let Some(w) = &task.workflow_sid {
        links.insert("workflow".into(), json!(format!("{ws}/Workflows/{w}")));
    }
    links.insert("workspace".into(), json!(ws));
    links.insert("reservations".into(), json!(format!("{url}/Reservations")));
    json!({
        "account_sid": state.settings.account_sid,
        "age": (now - task.date_created).num_seconds().max(0),
        "assignment_status": task.assignment_status.as_str(),
        "attributes": task.attributes,
        "addons": "{}",
        "date_created": fmt_date(task.date_created),
        "date_updated": fmt_date(task.date_updated),
        "task_queue_entered_date": opt_date(task.task_queue_entered_date),
        "priority": task.priority,
        "reason": task.reason,
        "sid": task.sid,
        "task_queue_sid": task.task_queue_sid,
        "task_queue_friendly_name": queue.map(|q| q.friendly_name.clone()),
        "task_channel_sid": task.task_channel_sid,
        "task_channel_unique_name": task.task_channel_unique_name,
        "timeout": task.timeout,
        "workflow_sid": task.workflow_sid,
        "workflow_friendly_name": workflow.map(|w| w.friendly_name.clone()),
        "workspace_sid": state.settings.workspace_sid,
        "url": url,
        "links": links,
        "virtual_start_time": fmt_date(task.virtual_start_time),
        "ignore_capacity": task.ignore_capacity,
        "routing_target": task.routing_target,
    })
}

fn reservation_json(state: &State, reservation: &ReservationState, base: &str) -> Value {
    let ws = state.ws_url(base);
    let worker_name = state
        .workers
        .get(&reservation.worker_sid)
        .map(|w| w.friendly_name.clone());
    json!({
        "account_sid": state.settings.account_sid,
        "date_created": fmt_date(reservation.date_created),
        "date_updated": fmt_date(reservation.date_updated),
        "reservation_status": reservation.status.as_str(),
        "sid": reservation.sid,
        "task_sid": reservation.task_sid,
        "worker_name": worker_name,
        "worker_sid": reservation.worker_sid,
        "workspace_sid": state.settings.workspace_sid,
        "url": format!("{ws}/Tasks/{}/Reservations/{}", reservation.task_sid, reservation.sid),
        "links": {
            "task": format!("{ws}/Tasks/{}", reservation.task_sid),
            "worker": format!("{ws}/Workers/{}", reservation.worker_sid),
            "workspace": ws,
        },
    })
}

fn worker_json(state: &State, worker: &WorkerState, base: &str) -> Value {
    let ws = state.ws_url(base);
    let activity = state.activity(&worker.activity_sid);
    let url = format!("{ws}/Workers/{}", worker.sid);
    json!({
        "account_sid": state.settings.account_sid,
        "activity_name": activity.map(|a| a.friendly_name.clone()),
        "activity_sid": worker.activity_sid,
        "attributes": worker.attributes,
        "available": activity.map(|a| a.available).unwrap_or(false),
        "date_created": fmt_date(worker.date_created),
        "date_status_changed": fmt_date(worker.date_status_changed),
        "date_updated": fmt_date(worker.date_updated),
        "friendly_name": worker.friendly_name,
        "sid": worker.sid,
        "workspace_sid": state.settings.workspace_sid,
        "url": url,
        "links": {
            "channels": format!("{url}/Channels"),
            "reservations": format!("{url}/Reservations"),
            "activity": format!("{ws}/Activities/{}", worker.activity_sid),
            "workspace": ws,
        },
    })
}

fn activity_json(state: &State, activity: &ActivityState, base: &str) -> Value {
    let ws = state.ws_url(base);
    json!({
        "account_sid": state.settings.account_sid,
        "available": activity.available,
        "date_created": fmt_date(activity.date_created),
        "date_updated": fmt_date(activity.date_created),
        "friendly_name": activity.friendly_name,
        "sid": activity.sid,
        "workspace_sid": state.settings.workspace_sid,
        "url": format!("{ws}/Activities/{}", activity.sid),
        "links": { "workspace": ws },
    })
}

// ---- the Workspace ----

pub(crate) fn fetch_workspace(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let state = &*ctx.state;
    if sid != state.settings.workspace_sid {
        return Err(ctx.not_found());
    }
    let ws = state.ws_url(ctx.base);
    let name_of = |wa: &str| state.activity(wa).map(|a| a.friendly_name.clone());
    let mut links = serde_json::Map::new();
    for (key, path) in [
        ("activities", "Activities"),
        ("statistics", "Statistics"),
        ("real_time_statistics", "RealTimeStatistics"),
        ("cumulative_statistics", "CumulativeStatistics"),
        ("task_queues", "TaskQueues"),
        ("tasks", "Tasks"),
        ("workers", "Workers"),
        ("workflows", "Workflows"),
        ("task_channels", "TaskChannels"),
        ("events", "Events"),
    ] {
        links.insert(key.into(), json!(format!("{ws}/{path}")));
    }
    let body = json!({
        "account_sid": state.settings.account_sid,
        "date_created": fmt_date(state.workspace_date_created),
        "date_updated": fmt_date(state.workspace_date_created),
        "default_activity_name": name_of(&state.default_activity_sid),
        "default_activity_sid": state.default_activity_sid,
        "event_callback_url": state.callbacks.url(),
        "events_filter": null,
        "friendly_name": state.settings.workspace_name,
        "multi_task_enabled": true,
        "sid": state.settings.workspace_sid,
        "timeout_activity_name": name_of(&state.timeout_activity_sid),
        "timeout_activity_sid": state.timeout_activity_sid,
        "prioritize_queue_order": "FIFO",
        "url": ws,
        "links": links,
    });
    Ok(Reply::json(200, body))
}

// ---- helpers ----

fn workspace_error(ctx: &Ctx<'_>, what: &str, value: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid {what}: {value} does not exist in workspace {}",
        ctx.state.settings.workspace_sid
    ))
}

/// `If-Match` against the task's version: quotes and a weak prefix are tolerated.
fn check_if_match(ctx: &Ctx<'_>, task: &TaskState) -> Result<(), ApiError> {
    let Some(raw) = ctx.header("If-Match")? else {
        return Ok(());
    };
    let wanted = raw.trim().trim_start_matches("W/").trim_matches('"');
    if wanted == "*" || wanted == task.version.to_string() {
        return Ok(());
    }
    Err(ApiError::new(
        412,
        CODE_PRECONDITION_FAILED,
        format!(
            "Precondition failed: If-Match '{raw}' does not match the current ETag of Task {}",
            task.sid
        ),
    ))
}

fn state_error(ctx: &Ctx<'_>, sid: &str, to: TaskStatus, from: TaskStatus) -> ApiError {
    let ws = &ctx.state.settings.workspace_sid;
    let ac = &ctx.state.settings.account_sid;
    let message = match to {
        TaskStatus::Canceled => format!(
            "Cannot cancel task {sid} in workspace {ws} for account {ac} because it is not pending or reserved; it is not in a state that allows this change (assignment_status is {from})."
        ),
        TaskStatus::Wrapping => format!(
            "Cannot wrap up a task {sid} in workspace {ws} for account {ac} because it is not currently assigned; it is not in a state that allows this change (assignment_status is {from})."
        ),
        TaskStatus::Completed => format!(
            "Cannot complete task {sid} in workspace {ws} for account {ac} because it is not in a state that allows completion (assignment_status is {from}, not assigned or wrapping)."
        ),
        other => format!(
            "Cannot set AssignmentStatus to {other} on task {sid}: it is not in a state that allows this change (assignment_status is {from}); only canceled, wrapping and completed can be set"
        ),
    };
    ApiError::invalid(message)
}

fn allowed(from: TaskStatus, to: TaskStatus) -> bool {
    match to {
        TaskStatus::Canceled => matches!(from, TaskStatus::Pending | TaskStatus::Reserved),
        TaskStatus::Wrapping => from == TaskStatus::Assigned,
        TaskStatus::Completed => matches!(from, TaskStatus::Assigned | TaskStatus::Wrapping),
        _ => false,
    }
}

/// Creates a task record (API or invite). Returns its SID.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_task(
    state: &mut State,
    attributes: String,
    workflow_sid: Option<String>,
    task_queue_sid: Option<String>,
    channel: TaskChannelState,
    priority: i64,
    timeout: i64,
    routing_target: Option<String>,
    ignore_capacity: bool,
    now: DateTime<Utc>,
) -> String {
    let sid = state.sid("WT");
    state.tasks.insert(
        sid.clone(),
        TaskState {
            sid: sid.clone(),
            assignment_status: TaskStatus::Pending,
            attributes,
            priority,
            reason: None,
            task_queue_sid,
            workflow_sid,
            task_channel_sid: channel.sid,
            task_channel_unique_name: channel.unique_name,
            timeout,
            routing_target,
            ignore_capacity,
            version: 0,
            date_created: now,
            date_updated: now,
            task_queue_entered_date: Some(now),
            virtual_start_time: now,
            reservations: Vec::new(),
        },
    );
    state.index_task(&sid);
    sid
}

/// The workflow a new task uses: the one named, or the only one.
pub(crate) fn resolve_workflow(
    ctx: &Ctx<'_>,
    named: Option<&str>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match named {
        Some(ww) => {
            if ctx.state.workflow(ww).is_none() {
                return Err(workspace_error(ctx, name, ww));
            }
            Ok(Some(ww.to_owned()))
        }
        None if ctx.state.workflows.len() == 1 => {
            Ok(ctx.state.workflows.first().map(|w| w.sid.clone()))
        }
        None => Ok(None),
    }
}

// ---- Tasks ----

pub(crate) fn create_task(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let p = ctx.params;
    let queue = p.str("TaskQueueSid")?.map(str::to_owned);
    let routing_target = p.str("RoutingTarget")?.map(str::to_owned);
    let workflow = resolve_workflow(ctx, p.str("WorkflowSid")?, "WorkflowSid")?;
    if workflow.is_none() && queue.is_none() && routing_target.is_none() {
        return Err(ApiError::invalid(
            "Missing required parameter WorkflowSid in the post body: the workspace has more than one Workflow",
        ));
    }
    if let Some(q) = &queue {
        if !ctx.state.queues.contains_key(q) {
            return Err(workspace_error(ctx, "TaskQueueSid", q));
        }
    }
    let channel_key = p.str("TaskChannel")?.unwrap_or("default");
    let channel = ctx
        .state
        .task_channel(channel_key)
        .cloned()
        .ok_or_else(|| workspace_error(ctx, "TaskChannel", channel_key))?;
    let queue = queue.or_else(|| {
        workflow
            .as_deref()
            .and_then(|w| ctx.state.workflow(w))
            .map(|w| w.default_task_queue_sid.clone())
    });
    let ignore_capacity = p
        .str("IgnoreCapacity")?
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let now = ctx.now;
    let sid = insert_task(
        ctx.state,
        p.str("Attributes")?.unwrap_or("{}").to_owned(),
        workflow,
        queue,
        channel,
        p.int("Priority")?.unwrap_or(0),
        p.int("Timeout")?.unwrap_or(86_400),
        routing_target,
        ignore_capacity,
        now,
    );
    if let Some(start) = p.datetime("VirtualStartTime")? {
        if let Some(task) = ctx.state.tasks.get_mut(&sid) {
            task.virtual_start_time = start;
        }
    }
    ctx.state.effect(Effect::TaskCreated {
        task_sid: sid.clone(),
        invite_sid: None,
    });
    let offer = crate::task_routing::task_created(ctx.state, &sid, now);
    let task = ctx
        .state
        .tasks
        .get(&sid)
        .ok_or_else(|| ApiError::bug("created task vanished"))?;
    let reply = Reply::json(201, task_json(ctx.state, task, ctx.base, now)).with_etag(task.version);
    if let Some(offer) = offer {
        offer.make(ctx.state, now);
    }
    Ok(reply)
}

fn find_task<'s>(ctx: &'s Ctx<'_>, sid: &str) -> Result<&'s TaskState, ApiError> {
    ctx.state.tasks.get(sid).ok_or_else(|| ctx.not_found())
}

pub(crate) fn fetch_task(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let task = find_task(ctx, &sid)?;
    Ok(Reply::json(200, task_json(ctx.state, task, ctx.base, ctx.now)).with_etag(task.version))
}

pub(crate) fn update_task(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let p = ctx.params;
    let now = ctx.now;
    let task = find_task(ctx, &sid)?.clone();
    check_if_match(ctx, &task)?;

    // Validate everything before changing anything.
    let status = match p.str("AssignmentStatus")? {
        Some(raw) => {
            let to = TaskStatus::parse(raw)
                .ok_or_else(|| ApiError::invalid(format!("Invalid AssignmentStatus '{raw}'")))?;
            if !allowed(task.assignment_status, to) {
                return Err(state_error(ctx, &sid, to, task.assignment_status));
            }
            Some(to)
        }
        None => None,
    };
    let channel = match p.str("TaskChannel")? {
        Some(key) => Some(
            ctx.state
                .task_channel(key)
                .cloned()
                .ok_or_else(|| workspace_error(ctx, "TaskChannel", key))?,
        ),
        None => None,
    };
    let attributes = p.str("Attributes")?.map(str::to_owned);
    let priority = p.int("Priority")?;
    let virtual_start = p.datetime("VirtualStartTime")?;
    let reason = p.str("Reason")?.map(str::to_owned);

    let mut changed = Vec::new();
    if let Some(entry) = ctx.state.tasks.get_mut(&sid) {
        if let Some(attributes) = attributes {
            if entry.attributes != attributes {
                entry.attributes = attributes;
                changed.push("Attributes".to_owned());
            }
        }
        if let Some(priority) = priority {
            if entry.priority != priority {
                entry.priority = priority;
                changed.push("Priority".to_owned());
            }
        }
        if let Some(channel) = channel {
            if entry.task_channel_sid != channel.sid {
                entry.task_channel_sid = channel.sid;
                entry.task_channel_unique_name = channel.unique_name;
                changed.push("TaskChannel".to_owned());
            }
        }
        if let Some(start) = virtual_start {
            if entry.virtual_start_time != start {
                entry.virtual_start_time = start;
                changed.push("VirtualStartTime".to_owned());
            }
        }
        if !changed.is_empty() {
            entry.version += 1;
            entry.date_updated = now;
        }
    }
    if !changed.is_empty() {
        let attributes_changed = changed.iter().any(|c| c == "Attributes");
        if attributes_changed {
            ctx.state.index_task(&sid);
        }
        ctx.state.effect(Effect::TaskUpdated {
            task_sid: sid.clone(),
            changed,
        });
        if attributes_changed {
            ctx.state.emit_task(now, "task.updated", &sid);
        }
    }
    if let Some(to) = status {
        ctx.state.move_task(&sid, to, reason, now);
    }
    let task = find_task(ctx, &sid)?;
    Ok(Reply::json(200, task_json(ctx.state, task, ctx.base, now)).with_etag(task.version))
}

pub(crate) fn delete_task(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let task = find_task(ctx, &sid)?.clone();
    check_if_match(ctx, &task)?;
    ctx.state.emit_task(ctx.now, "task.deleted", &sid);
    ctx.state.tasks.remove(&sid);
    for wr in &task.reservations {
        ctx.state.reservations.remove(wr);
    }
    ctx.state.effect(Effect::TaskDeleted { task_sid: sid });
    Ok(Reply::no_content())
}

// ---- Reservations ----

pub(crate) fn list_task_reservations(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let task_sid = ctx.path("TaskSid")?;
    let task = find_task(ctx, &task_sid)?;
    let status = ctx.params.str("ReservationStatus")?;
    let worker = ctx.params.str("WorkerSid")?;
    let items: Vec<Value> = task
        .reservations
        .iter()
        .filter_map(|wr| ctx.state.reservations.get(wr))
        .filter(|r| status.map_or(true, |s| r.status.as_str() == s))
        .filter(|r| worker.map_or(true, |w| r.worker_sid == w))
        .map(|r| reservation_json(ctx.state, r, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "reservations", items)?))
}

/// The reservation at this path (under its Task or its Worker), or 404.
fn find_reservation(ctx: &Ctx<'_>) -> Result<ReservationState, ApiError> {
    let sid = ctx.path("Sid")?;
    let reservation = ctx
        .state
        .reservations
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?;
    let parent_ok = if ctx.route.path.contains("{TaskSid}") {
        reservation.task_sid == ctx.path("TaskSid")?
    } else {
        reservation.worker_sid == ctx.path("WorkerSid")?
    };
    if !parent_ok {
        return Err(ctx.not_found());
    }
    Ok(reservation.clone())
}

pub(crate) fn fetch_reservation(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let reservation = find_reservation(ctx)?;
    Ok(Reply::json(
        200,
        reservation_json(ctx.state, &reservation, ctx.base),
    ))
}

pub(crate) fn update_reservation(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let reservation = find_reservation(ctx)?;
    let now = ctx.now;
    let to = ctx
        .params
        .str("ReservationStatus")?
        .and_then(ReservationStatus::parse);
    let activity = ctx.params.str("WorkerActivitySid")?.map(str::to_owned);
    if let Some(wa) = &activity {
        if ctx.state.activity(wa).is_none() {
            return Err(workspace_error(ctx, "WorkerActivitySid", wa));
        }
    }
    if let Some(to) = to {
        if !ctx.state.tasks.contains_key(&reservation.task_sid) {
            return Err(ctx.not_found());
        }
        ctx.state.change_reservation(&reservation.sid, to, now)?;
    }
    if let Some(wa) = activity {
        ctx.state
            .set_worker_activity(&reservation.worker_sid, &wa, now);
    }
    let reservation = ctx
        .state
        .reservations
        .get(&reservation.sid)
        .ok_or_else(|| ApiError::bug("reservation vanished"))?;
    Ok(Reply::json(
        200,
        reservation_json(ctx.state, reservation, ctx.base),
    ))
}

// ---- Workers, queues, workflows, activities ----

pub(crate) fn fetch_worker(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let worker = ctx.state.workers.get(&sid).ok_or_else(|| ctx.not_found())?;
    Ok(Reply::json(200, worker_json(ctx.state, worker, ctx.base)))
}

pub(crate) fn update_worker(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let now = ctx.now;
    if !ctx.state.workers.contains_key(&sid) {
        return Err(ctx.not_found());
    }
    let p = ctx.params;
    let activity = p.str("ActivitySid")?.map(str::to_owned);
    let available = match &activity {
        Some(wa) => Some(
            ctx.state
                .activity(wa)
                .map(|a| a.available)
                .ok_or_else(|| workspace_error(ctx, "ActivitySid", wa))?,
        ),
        None => None,
    };
    let mut changed = Vec::new();
    if let Some(worker) = ctx.state.workers.get_mut(&sid) {
        if let Some(attributes) = p.str("Attributes")? {
            if worker.attributes != attributes {
                worker.attributes = attributes.to_owned();
                changed.push("Attributes".to_owned());
            }
        }
        if let Some(name) = p.str("FriendlyName")? {
            if worker.friendly_name != name {
                worker.friendly_name = name.to_owned();
                changed.push("FriendlyName".to_owned());
            }
        }
        if !changed.is_empty() {
            worker.date_updated = now;
        }
    }
    if !changed.is_empty() {
        let attributes_changed = changed.iter().any(|c| c == "Attributes");
        ctx.state.effect(Effect::WorkerUpdated {
            worker_sid: sid.clone(),
            changed,
        });
        if attributes_changed {
            ctx.state.emit_worker_attributes(now, &sid);
        }
    }
    if let Some(wa) = &activity {
        ctx.state.set_worker_activity(&sid, wa, now);
        if available == Some(false) && p.bool("RejectPendingReservations")? == Some(true) {
            let pending: Vec<(String, String)> = ctx
                .state
                .reservations
                .values()
                .filter(|r| r.worker_sid == sid && r.status == ReservationStatus::Pending)
                .map(|r| (r.sid.clone(), r.task_sid.clone()))
                .collect();
            for (wr, task) in pending {
                ctx.state
                    .set_reservation_status(&wr, ReservationStatus::Rejected, now);
                ctx.state.release_task(&task, now);
            }
        }
    }
    let worker = ctx
        .state
        .workers
        .get(&sid)
        .ok_or_else(|| ApiError::bug("worker vanished"))?;
    Ok(Reply::json(200, worker_json(ctx.state, worker, ctx.base)))
}

pub(crate) fn fetch_task_queue(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let queue = ctx.state.queues.get(&sid).ok_or_else(|| ctx.not_found())?;
    let ws = ctx.state.ws_url(ctx.base);
    let url = format!("{ws}/TaskQueues/{}", queue.sid);
    let body = json!({
        "account_sid": ctx.state.settings.account_sid,
        "assignment_activity_sid": null,
        "assignment_activity_name": null,
        "date_created": fmt_date(queue.date_created),
        "date_updated": fmt_date(queue.date_created),
        "friendly_name": queue.friendly_name,
        "max_reserved_workers": queue.max_reserved_workers,
        "reservation_activity_sid": null,
        "reservation_activity_name": null,
        "sid": queue.sid,
        "target_workers": queue.target_workers,
        "task_order": queue.task_order,
        "url": url,
        "workspace_sid": ctx.state.settings.workspace_sid,
        "links": {
            "assignment_activity": null,
            "reservation_activity": null,
            "workspace": ws,
            "statistics": format!("{url}/Statistics"),
            "real_time_statistics": format!("{url}/RealTimeStatistics"),
            "cumulative_statistics": format!("{url}/CumulativeStatistics"),
            "list_statistics": format!("{ws}/TaskQueues/Statistics"),
        },
    });
    Ok(Reply::json(200, body))
}

/// `UpdateWorkflow`: the configuration (a JSON object with `task_routing`), name, callback URL
/// and reservation timeout change; tasks already routed are not re-evaluated.
pub(crate) fn update_workflow(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    if ctx.state.workflow(&sid).is_none() {
        return Err(ctx.not_found());
    }
    let p = ctx.params;
    let configuration = match p.object("Configuration")? {
        Some(config) if !config.contains_key("task_routing") => {
            return Err(ApiError::invalid(
                "Invalid Configuration: task_routing is required".to_owned(),
            ))
        }
        Some(config) => Some(Value::Object(config).to_string()),
        None => None,
    };
    let name = p.str("FriendlyName")?.map(str::to_owned);
    let callback = p.str("AssignmentCallbackUrl")?.map(str::to_owned);
    let timeout = p.int("TaskReservationTimeout")?;
    if let Some(workflow) = ctx.state.workflows.iter_mut().find(|w| w.sid == sid) {
        if let Some(configuration) = configuration {
            workflow.configuration = configuration;
        }
        if let Some(name) = name {
            workflow.friendly_name = name;
        }
        if let Some(callback) = callback {
            workflow.assignment_callback_url = Some(callback);
        }
        if let Some(timeout) = timeout {
            workflow.task_reservation_timeout = timeout;
        }
    }
    fetch_workflow(ctx)
}

pub(crate) fn fetch_workflow(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let workflow = ctx.state.workflow(&sid).ok_or_else(|| ctx.not_found())?;
    let ws = ctx.state.ws_url(ctx.base);
    let url = format!("{ws}/Workflows/{}", workflow.sid);
    let body = json!({
        "account_sid": ctx.state.settings.account_sid,
        "assignment_callback_url": workflow.assignment_callback_url,
        "configuration": workflow.configuration,
        "date_created": fmt_date(workflow.date_created),
        "date_updated": fmt_date(workflow.date_created),
        "document_content_type": "application/json",
        "fallback_assignment_callback_url": null,
        "friendly_name": workflow.friendly_name,
        "sid": workflow.sid,
        "task_reservation_timeout": workflow.task_reservation_timeout,
        "workspace_sid": ctx.state.settings.workspace_sid,
        "url": url,
        "links": {
            "statistics": format!("{url}/Statistics"),
            "real_time_statistics": format!("{url}/RealTimeStatistics"),
            "cumulative_statistics": format!("{url}/CumulativeStatistics"),
        },
    });
    Ok(Reply::json(200, body))
}

pub(crate) fn list_activities(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let name = ctx.params.str("FriendlyName")?;
    let available = ctx
        .params
        .str("Available")?
        .map(|a| matches!(a.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let items: Vec<Value> = ctx
        .state
        .activities
        .iter()
        .filter(|a| name.map_or(true, |n| a.friendly_name == n))
        .filter(|a| available.map_or(true, |v| a.available == v))
        .map(|a| activity_json(ctx.state, a, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "activities", items)?))
}

pub(crate) fn fetch_activity(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let activity = ctx.state.activity(&sid).ok_or_else(|| ctx.not_found())?;
    Ok(Reply::json(
        200,
        activity_json(ctx.state, activity, ctx.base),
    ))
}

// ---- Events ----

/// Whether an event concerns `sid` through its resource or its `event_data.<key>`.
fn concerns(event: &Value, key: &str, sid: &str) -> bool {
    event.get("resource_sid").and_then(Value::as_str) == Some(sid)
        || event
            .get("event_data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            == Some(sid)
}

/// Cursor positions in the events order (newest first): `(event_date_ms, seq)`.
fn parse_cursor(token: &str) -> Option<(bool, i64, u64)> {
    let (forward, rest) = if let Some(rest) = token.strip_prefix("PT") {
        (true, rest)
    } else {
        (false, token.strip_prefix("PB")?)
    };
    let (ms, seq) = rest.split_once('_')?;
    Some((forward, ms.parse().ok()?, seq.parse().ok()?))
}

pub(crate) fn list_events(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let p = ctx.params;
    let start = match p.datetime("StartDate")? {
        Some(start) => start,
        None => {
            let minutes = p.int("Minutes")?.unwrap_or(15);
            Duration::try_minutes(minutes)
                .and_then(|span| ctx.now.checked_sub_signed(span))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        }
    };
    let end = p.datetime("EndDate")?;
    let event_type = p.str("EventType")?;
    let sid = p.str("Sid")?;
    let by_data = [
        ("TaskSid", "task_sid"),
        ("WorkerSid", "worker_sid"),
        ("ReservationSid", "reservation_sid"),
        ("TaskQueueSid", "task_queue_sid"),
        ("WorkflowSid", "workflow_sid"),
    ];
    let mut wanted = Vec::new();
    for (param, key) in by_data {
        if let Some(value) = p.str(param)? {
            wanted.push((key, value));
        }
    }
    let channel = p.str("TaskChannel")?;
    let (start_ms, end_ms) = (start.timestamp_millis(), end.map(|e| e.timestamp_millis()));

    let mut matching: Vec<_> = ctx
        .state
        .events
        .iter()
        .filter(|e| e.date_ms >= start_ms && end_ms.map_or(true, |end| e.date_ms <= end))
        .filter(|e| {
            event_type.map_or(true, |t| {
                e.value.get("event_type").and_then(Value::as_str) == Some(t)
            })
        })
        .filter(|e| {
            sid.map_or(true, |s| {
                e.value.get("sid").and_then(Value::as_str) == Some(s)
            })
        })
        .filter(|e| {
            wanted
                .iter()
                .all(|(key, value)| concerns(&e.value, key, value))
        })
        .filter(|e| {
            channel.map_or(true, |c| {
                concerns(&e.value, "task_channel_unique_name", c)
                    || concerns(&e.value, "task_channel_sid", c)
            })
        })
        .collect();
    // Newest first; ties by arrival (later first).
    matching.sort_by(|a, b| b.date_ms.cmp(&a.date_ms).then(b.seq.cmp(&a.seq)));

    let request = page_request(ctx)?;
    let position = |e: &&crate::state::EventRecord| (e.date_ms, e.seq);
    let (from, to) = match request.token.as_deref() {
        Some(token) => {
            let (forward, ms, seq) = parse_cursor(token)
                .ok_or_else(|| ApiError::invalid(format!("Invalid PageToken '{token}'")))?;
            // Index of the first event after the cursor in newest-first order.
            let after = matching
                .iter()
                .position(|e| position(e) < (ms, seq))
                .unwrap_or(matching.len());
            if forward {
                (after, (after + request.size).min(matching.len()))
            } else {
                let before = matching
                    .iter()
                    .position(|e| position(e) <= (ms, seq))
                    .unwrap_or(matching.len());
                (before.saturating_sub(request.size), before)
            }
        }
        None => {
            let offset = usize::try_from(request.page)
                .unwrap_or(0)
                .saturating_mul(request.size)
                .min(matching.len());
            (offset, (offset + request.size).min(matching.len()))
        }
    };
    let page = &matching[from..to];
    let next = (to < matching.len())
        .then(|| page.last().map(|e| format!("PT{}_{}", e.date_ms, e.seq)))
        .flatten();
    let previous = (from > 0)
        .then(|| page.first().map(|e| format!("PB{}_{}", e.date_ms, e.seq)))
        .flatten();
    let items: Vec<Value> = page.iter().map(|e| e.value.clone()).collect();
    Ok(Reply::json(
        200,
        list_body(ctx, "events", items, &request, next, previous)?,
    ))
}

pub(crate) fn fetch_event(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let event = ctx
        .state
        .events
        .iter()
        .find(|e| e.value.get("sid").and_then(Value::as_str) == Some(sid.as_str()))
        .ok_or_else(|| ctx.not_found())?;
    Ok(Reply::json(200, event.value.clone()))
}
