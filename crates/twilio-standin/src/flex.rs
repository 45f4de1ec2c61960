//! Flex v1 Interactions (`flex-api.twilio.com/v1/Interactions/…`).

use crate::ctx::{Ctx, Reply};
use crate::effects::Effect;
use crate::error::{ApiError, CODE_INTERACTION_NOT_OPEN};
use crate::model::*;
use crate::paging::offset_page;
use crate::state::{RecloseChannel, State};
use crate::taskrouter::{insert_task, resolve_workflow};
use crate::webhooks::{Origin, StateReason};
use serde_json::{json, Map, Value};

// ---- rendering ----

fn interaction_url(base: &str, sid: &str) -> String {
    format!("{base}/v1/Interactions/{sid}")
}

fn channel_url(base: &str, interaction_sid: &str, channel_sid: &str) -> String {
    format!(
        "{}/Channels/{channel_sid}",
        interaction_url(base, interaction_sid)
    )
}

fn channel_json(channel: &ChannelState, base: &str) -> Value {
    let url = channel_url(base, &channel.interaction_sid, &channel.sid);
    json!({
        "sid": channel.sid,
        "interaction_sid": channel.interaction_sid,
        "type": channel.channel_type,
        "status": channel.status.as_str(),
        "error_code": null,
        "error_message": null,
        "url": url,
        "links": {
            "participants": format!("{url}/Participants"),
            "invites": format!("{url}/Invites"),
            "transfers": format!("{url}/Transfers"),
        },
    })
}

fn invite_json(channel: &ChannelState, invite: &InviteState, base: &str) -> Value {
    json!({
        "sid": invite.sid,
        "interaction_sid": channel.interaction_sid,
        "channel_sid": channel.sid,
        "routing": invite.routing,
        "url": format!(
            "{}/Invites/{}",
            channel_url(base, &channel.interaction_sid, &channel.sid),
            invite.sid
        ),
    })
}

fn participant_json(channel: &ChannelState, p: &InteractionParticipantState, base: &str) -> Value {
    json!({
        "sid": p.sid,
        "type": p.participant_type,
        "interaction_sid": channel.interaction_sid,
        "channel_sid": channel.sid,
        "url": format!(
            "{}/Participants/{}",
            channel_url(base, &channel.interaction_sid, &channel.sid),
            p.sid
        ),
        "routing_properties": p.routing_properties,
    })
}

// ---- helpers ----

/// The channel at this path (`param` names its SID), checked against its interaction.
fn find_channel(ctx: &Ctx<'_>, param: &str) -> Result<ChannelState, ApiError> {
    let interaction = ctx.path("InteractionSid")?;
    let sid = ctx.path(param)?;
    ctx.state
        .channels
        .get(&sid)
        .filter(|c| c.interaction_sid == interaction)
        .cloned()
        .ok_or_else(|| ctx.not_found())
}

fn not_open(channel: &ChannelState) -> ApiError {
    ApiError::new(
        400,
        CODE_INTERACTION_NOT_OPEN,
        format!(
            "Interaction not open: channel {} of interaction {} is {}",
            channel.sid, channel.interaction_sid, channel.status
        ),
    )
}

/// Tasks that belong to a channel: its participants' `routing_properties.task_sid`, its
/// invites' tasks, and tasks whose attributes name it (`flexInteractionChannelSid`).
fn channel_tasks(state: &State, channel: &ChannelState) -> Vec<String> {
    let mut tasks: Vec<String> = Vec::new();
    let mut add = |sid: &str| {
        if !tasks.iter().any(|t| t == sid) {
            tasks.push(sid.to_owned());
        }
    };
    for participant in &channel.participants {
        if let Some(task) = participant.task_sid() {
            add(task);
        }
    }
    for invite in &channel.invites {
        add(&invite.task_sid);
    }
    for task in state.tasks_naming_channel(&channel.sid) {
        add(&task);
    }
    tasks
}

// ---- Interactions and channels ----

pub(crate) fn fetch_interaction(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("Sid")?;
    let interaction = ctx
        .state
        .interactions
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?;
    let url = interaction_url(ctx.base, &sid);
    Ok(Reply::json(
        200,
        json!({
            "sid": interaction.sid,
            "channel": interaction.channel,
            "routing": interaction.routing,
            "url": url,
            "links": { "channels": format!("{url}/Channels") },
            "interaction_context_sid": interaction.interaction_context_sid,
            "webhook_ttid": interaction.webhook_ttid,
        }),
    ))
}

pub(crate) fn list_channels(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = ctx.path("InteractionSid")?;
    let interaction = ctx
        .state
        .interactions
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?;
    let items: Vec<Value> = interaction
        .channels
        .iter()
        .filter_map(|uo| ctx.state.channels.get(uo))
        .map(|c| channel_json(c, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "channels", items)?))
}

pub(crate) fn fetch_channel(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let channel = find_channel(ctx, "Sid")?;
    Ok(Reply::json(200, channel_json(&channel, ctx.base)))
}

pub(crate) fn update_channel(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let channel = find_channel(ctx, "Sid")?;
    let now = ctx.now;
    let status = ctx.params.required("Status")?;
    let to = match status {
        "closed" => ChannelStatus::Closed,
        _ => ChannelStatus::Inactive,
    };
    let routing = ctx.params.object("Routing")?;
    let routing_status = match routing.as_ref().and_then(|r| r.get("status")) {
        None => None,
        Some(Value::String(s)) if s == "closed" => Some("closed".to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid value for parameter Routing: status must be \"closed\", got {other}"
            )))
        }
    };
    if to == ChannelStatus::Inactive && routing_status.is_none() {
        return Err(ApiError::invalid(
            "Invalid value for parameter Routing: {\"status\":\"closed\"} is required when Status is inactive",
        ));
    }
    if channel.status == ChannelStatus::Closed {
        return match ctx.state.settings.reclose_channel {
            RecloseChannel::Ok => Ok(Reply::json(200, channel_json(&channel, ctx.base))
                .with_warning(CODE_INTERACTION_NOT_OPEN)),
            RecloseChannel::Reject => Err(not_open(&channel)),
        };
    }
    if channel.status == to {
        return Ok(Reply::json(200, channel_json(&channel, ctx.base)));
    }
    let complete = routing_status.is_some();
    let reason = format!("Interaction channel {}", to.as_str());
    for task in channel_tasks(ctx.state, &channel) {
        ctx.state.end_task(&task, complete, &reason, now);
    }
    if let Some(c) = ctx.state.channels.get_mut(&channel.sid) {
        c.status = to;
    }
    ctx.state.effect(Effect::ChannelStatusChanged {
        interaction_sid: channel.interaction_sid.clone(),
        channel_sid: channel.sid.clone(),
        from: channel.status.as_str().into(),
        to: to.as_str().into(),
        routing_status,
    });
    if to == ChannelStatus::Closed {
        // Closing the channel closes the media channel (the Conversation) too.
        if let Some(ch) = &channel.conversation_sid {
            // Twilio's own change: onConversationStateUpdated fires (Reason=API).
            ctx.state.change_conversation_state(
                ch,
                ConversationStatus::Closed,
                Some((StateReason::Api, Origin::Api)),
                now,
            );
        }
    }
    let channel = ctx
        .state
        .channels
        .get(&channel.sid)
        .ok_or_else(|| ApiError::bug("channel vanished"))?;
    Ok(Reply::json(200, channel_json(channel, ctx.base)))
}

// ---- Invites ----

fn routing_error(message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("Invalid value for parameter Routing: {message}"))
}

fn prop_str<'m>(
    properties: &'m Map<String, Value>,
    key: &str,
) -> Result<Option<&'m str>, ApiError> {
    match properties.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(routing_error(format!("properties.{key} must be a string"))),
    }
}

fn prop_int(properties: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match properties.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(Some)
            .ok_or_else(|| routing_error(format!("properties.{key} must be an integer"))),
    }
}

pub(crate) fn create_invite(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let channel = find_channel(ctx, "ChannelSid")?;
    let now = ctx.now;
    if channel.status == ChannelStatus::Closed {
        return Err(not_open(&channel));
    }
    let routing = ctx
        .params
        .object("Routing")?
        .ok_or_else(|| ApiError::invalid("Missing required parameter Routing in the post body"))?;
    let Some(Value::Object(properties)) = routing.get("properties") else {
        return Err(routing_error("expected {\"properties\": {...}}"));
    };
    let workspace = ctx.state.settings.workspace_sid.clone();
    match prop_str(properties, "workspace_sid")? {
        Some(ws) if ws == workspace => {}
        Some(ws) => {
            return Err(routing_error(format!(
                "properties.workspace_sid {ws} is not workspace {workspace}"
            )))
        }
        None => return Err(routing_error("properties.workspace_sid is required")),
    }
    let workflow = resolve_workflow(
        ctx,
        prop_str(properties, "workflow_sid")?,
        "Routing properties.workflow_sid",
    )?
    .ok_or_else(|| routing_error("properties.workflow_sid is required"))?;
    let queue = match prop_str(properties, "queue_sid")? {
        Some(q) if ctx.state.queues.contains_key(q) => Some(q.to_owned()),
        Some(q) => {
            return Err(routing_error(format!(
                "properties.queue_sid {q} does not exist"
            )))
        }
        None => ctx
            .state
            .workflow(&workflow)
            .map(|w| w.default_task_queue_sid.clone()),
    };
    let worker = match prop_str(properties, "worker_sid")? {
        Some(w) if ctx.state.workers.contains_key(w) => Some(w.to_owned()),
        Some(w) => {
            return Err(routing_error(format!(
                "properties.worker_sid {w} does not exist"
            )))
        }
        None => None,
    };
    let channel_name = prop_str(properties, "task_channel_unique_name")?.unwrap_or("default");
    let task_channel = ctx
        .state
        .task_channel(channel_name)
        .cloned()
        .ok_or_else(|| {
            routing_error(format!(
                "properties.task_channel_unique_name {channel_name} does not exist"
            ))
        })?;
    let mut attributes = match properties.get("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => return Err(routing_error("properties.attributes must be a JSON object")),
        },
        Some(_) => return Err(routing_error("properties.attributes must be a JSON object")),
    };
    let priority = prop_int(properties, "priority")?.unwrap_or(0);
    let timeout = prop_int(properties, "timeout")?.unwrap_or(86_400);

    let invite_sid = ctx.state.sid("KG");
    attributes.insert("flexInteractionSid".into(), json!(channel.interaction_sid));
    attributes.insert("flexInteractionChannelSid".into(), json!(channel.sid));
    attributes.insert("flexChannelInviteSid".into(), json!(invite_sid));
    if let Some(ch) = &channel.conversation_sid {
        attributes.insert("conversationSid".into(), json!(ch));
    }
    let attributes = Value::Object(attributes).to_string();
    let task_sid = insert_task(
        ctx.state,
        attributes.clone(),
        Some(workflow.clone()),
        queue.clone(),
        task_channel.clone(),
        priority,
        timeout,
        worker.clone(),
        false,
        now,
    );
    ctx.state.effect(Effect::TaskCreated {
        task_sid: task_sid.clone(),
        invite_sid: Some(invite_sid.clone()),
    });
    let offer = crate::task_routing::task_created(ctx.state, &task_sid, now);

    let epoch = now.timestamp();
    let routing_out = json!({
        "reservation": null,
        "properties": {
            "account_sid": ctx.state.settings.account_sid,
            "workspace_sid": workspace,
            "sid": task_sid,
            "date_created": epoch,
            "date_updated": epoch,
            "attributes": attributes,
            "assignment_status": "pending",
            "workflow_sid": workflow,
            "workflow_name": ctx.state.workflow(&workflow).map(|w| w.friendly_name.clone()),
            "queue_sid": queue,
            "queue_name": queue.as_deref().and_then(|q| ctx.state.queues.get(q)).map(|q| q.friendly_name.clone()),
            "priority": priority,
            "age": 0,
            "reason": "",
            "timeout": timeout,
            "assignmentCounter": 0,
            "task_channel_sid": task_channel.sid,
            "task_channel_unique_name": task_channel.unique_name,
            "routing_target": worker,
            "task_queue_entered_date": epoch,
            "age_in_queue": 0,
            "addons": "{}",
        },
    });
    let invite = InviteState {
        sid: invite_sid.clone(),
        routing: routing_out,
        task_sid: task_sid.clone(),
    };
    let body = invite_json(&channel, &invite, ctx.base);
    if let Some(c) = ctx.state.channels.get_mut(&channel.sid) {
        c.invites.push(invite);
    }
    ctx.state.effect(Effect::InviteCreated {
        interaction_sid: channel.interaction_sid.clone(),
        channel_sid: channel.sid.clone(),
        invite_sid,
        task_sid,
    });
    if let Some(offer) = offer {
        offer.make(ctx.state, now);
    }
    Ok(Reply::json(200, body))
}

pub(crate) fn list_invites(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let channel = find_channel(ctx, "ChannelSid")?;
    let items: Vec<Value> = channel
        .invites
        .iter()
        .map(|i| invite_json(&channel, i, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "invites", items)?))
}

// ---- Participants ----

pub(crate) fn list_participants(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let channel = find_channel(ctx, "ChannelSid")?;
    let items: Vec<Value> = channel
        .participants
        .iter()
        .map(|p| participant_json(&channel, p, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "participants", items)?))
}

pub(crate) fn update_participant(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let channel = find_channel(ctx, "ChannelSid")?;
    let sid = ctx.path("Sid")?;
    let now = ctx.now;
    let participant = channel
        .participants
        .iter()
        .find(|p| p.sid == sid)
        .cloned()
        .ok_or_else(|| ctx.not_found())?;
    let to = match ctx.params.required("Status")? {
        "closed" => ParticipantStatus::Closed,
        _ => ParticipantStatus::Wrapup,
    };
    if channel.status == ChannelStatus::Closed {
        return match ctx.state.settings.reclose_channel {
            RecloseChannel::Ok => Ok(Reply::json(
                200,
                participant_json(&channel, &participant, ctx.base),
            )
            .with_warning(CODE_INTERACTION_NOT_OPEN)),
            RecloseChannel::Reject => Err(not_open(&channel)),
        };
    }
    if participant.status == Some(to) {
        return Ok(Reply::json(
            200,
            participant_json(&channel, &participant, ctx.base),
        ));
    }
    if participant.status == Some(ParticipantStatus::Closed) {
        return Err(ApiError::invalid(format!(
            "Participant {sid} is closed; it is not in a state that allows Status={to}"
        )));
    }
    if let Some(c) = ctx.state.channels.get_mut(&channel.sid) {
        if let Some(p) = c.participants.iter_mut().find(|p| p.sid == sid) {
            p.status = Some(to);
        }
    }
    ctx.state
        .effect(Effect::InteractionParticipantStatusChanged {
            interaction_sid: channel.interaction_sid.clone(),
            channel_sid: channel.sid.clone(),
            participant_sid: sid.clone(),
            from: participant.status.map(|s| s.as_str().to_owned()),
            to: to.as_str().into(),
        });
    if let Some(task) = participant.task_sid() {
        match to {
            // "the associated task is completed but the channel … remains active"
            ParticipantStatus::Closed => {
                ctx.state
                    .end_task(task, true, "Interaction participant closed", now)
            }
            ParticipantStatus::Wrapup => {
                let assigned = ctx
                    .state
                    .tasks
                    .get(task)
                    .is_some_and(|t| t.assignment_status == TaskStatus::Assigned);
                if assigned {
                    ctx.state.move_task(task, TaskStatus::Wrapping, None, now);
                }
            }
        }
    }
    if to == ParticipantStatus::Closed {
        if let (Some(ch), Some(mb)) = (
            &channel.conversation_sid,
            &participant.conversation_participant_sid,
        ) {
            // Twilio's own change: `onParticipantRemoved` always fires.
            ctx.state.remove_conversation_participant(ch, mb, true, now);
        }
    }
    let participant = ctx
        .state
        .channels
        .get(&channel.sid)
        .and_then(|c| c.participants.iter().find(|p| p.sid == sid))
        .cloned()
        .ok_or_else(|| ApiError::bug("participant vanished"))?;
    Ok(Reply::json(
        200,
        participant_json(&channel, &participant, ctx.base),
    ))
}
