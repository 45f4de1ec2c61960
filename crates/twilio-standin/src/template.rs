//! Playing flex-project-template (FPT): its `conversation-transfer` and `park-interaction`
//! features, as its serverless functions and its Flex UI client run them. Each play makes the
//! REST calls the template makes, in its order, through the stand-in's own routes
//! ([`crate::internal`]), so it records the same effects and produces the same TaskRouter
//! events and Conversations webhooks as those calls would. What the template's client reads
//! from the Flex UI (who is in the conversation, a worker's name) is read from the state.
//!
//! A play the template would fail (a task that is not a Flex Conversations task, an agent who
//! is not in the channel, a call Twilio refuses) panics: a broken test. The template's
//! client-side guards (no transfer while invites are outstanding, no park with two agents in
//! the conversation) are not played: a test may cross them on purpose.

use crate::internal::{object_in, text, Rest};
use crate::model::ReservationStatus;
use crate::state::State;
use crate::StandIn;
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};

/// What a Flex Conversations task's attributes name.
struct FlexTask {
    sid: String,
    /// The task as `GET …/Tasks/{sid}` answered it.
    json: Value,
    attributes: Map<String, Value>,
    conversation: String,
    interaction: String,
    channel: String,
}

/// `GET …/Tasks/{sid}`; the task must carry `conversationSid`, `flexInteractionSid` and
/// `flexInteractionChannelSid`.
fn flex_task(rest: &mut Rest<'_>, task_sid: &str) -> Result<FlexTask, String> {
    let json = rest.get(&format!("{}/Tasks/{task_sid}", rest.workspace()))?;
    let attributes = object_in(json.get("attributes").and_then(Value::as_str));
    let named = |key: &str| {
        text(&attributes, key).map(str::to_owned).ok_or_else(|| {
            format!(
                "task {task_sid} is not a Flex Conversations task: its attributes have no {key}"
            )
        })
    };
    let (conversation, interaction, channel) = (
        named("conversationSid")?,
        named("flexInteractionSid")?,
        named("flexInteractionChannelSid")?,
    );
    Ok(FlexTask {
        sid: task_sid.to_owned(),
        json,
        attributes,
        conversation,
        interaction,
        channel,
    })
}

/// The channel's agents still in it: `(UT…, task SID, worker SID)`.
fn agents(state: &State, channel_sid: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let Some(channel) = state.channels.get(channel_sid) else {
        return Vec::new();
    };
    channel
        .participants
        .iter()
        .filter(|p| p.participant_type == "agent" && p.status.is_none())
        .map(|p| {
            let worker = p
                .routing_properties
                .as_ref()
                .and_then(|r| r.get("worker_sid"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            (p.sid.clone(), p.task_sid().map(str::to_owned), worker)
        })
        .collect()
}

/// The agent participant (`UT…`) working `task` in its channel, and their worker SID.
fn caller(state: &State, task: &FlexTask) -> Result<(String, Option<String>), String> {
    agents(state, &task.channel)
        .into_iter()
        .find(|(_, t, _)| t.as_deref() == Some(task.sid.as_str()))
        .map(|(ut, _, worker)| (ut, worker))
        .ok_or_else(|| {
            format!(
                "no agent working task {} is in interaction channel {}",
                task.sid, task.channel
            )
        })
}

fn channel_path(interaction: &str, channel: &str) -> String {
    format!("/v1/Interactions/{interaction}/Channels/{channel}")
}

/// `routing.properties.sid` of an Invite: the task it created.
fn invite_task(invite: &Value) -> Result<String, String> {
    invite
        .pointer("/routing/properties/sid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the invite has no routing.properties.sid: {invite}"))
}

/// `GET /v1/Conversations/{CH}`: its attributes.
fn conversation_attributes(
    rest: &mut Rest<'_>,
    conversation: &str,
) -> Result<Map<String, Value>, String> {
    let json = rest.get(&format!("/v1/Conversations/{conversation}"))?;
    Ok(object_in(json.get("attributes").and_then(Value::as_str)))
}

/// `POST /v1/Conversations/{CH}` with `Attributes`.
fn write_conversation_attributes(
    rest: &mut Rest<'_>,
    conversation: &str,
    attributes: Map<String, Value>,
) -> Result<(), String> {
    let attributes = Value::Object(attributes).to_string();
    rest.post(
        &format!("/v1/Conversations/{conversation}"),
        &[("Attributes", attributes.as_str())],
    )?;
    Ok(())
}

/// Removes `invites[<task SID>]` from the conversation's attributes, when it is there.
fn remove_invite(rest: &mut Rest<'_>, conversation: &str, invite_task: &str) -> Result<(), String> {
    let mut attributes = conversation_attributes(rest, conversation)?;
    let removed = attributes
        .get_mut("invites")
        .and_then(Value::as_object_mut)
        .and_then(|invites| invites.remove(invite_task));
    if removed.is_some() {
        write_conversation_attributes(rest, conversation, attributes)?;
    }
    Ok(())
}

/// The workflow a transfer invite uses: the first whose name starts with `Chat Transfer` (what
/// the template's setup scripts look for), else the workspace's default one.
fn transfer_workflow(state: &State) -> String {
    state
        .workflows
        .iter()
        .find(|w| w.friendly_name.starts_with("Chat Transfer"))
        .map(|w| w.sid.clone())
        .unwrap_or_else(|| state.default_workflow_sid.clone())
}

/// A transfer target's kind (`worker` / `queue`) and display name (a worker's `full_name`
/// attribute or friendly name; a queue's friendly name).
fn target(state: &State, target_sid: &str) -> Result<(&'static str, String), String> {
    if target_sid.starts_with("WK") {
        let worker = state
            .workers
            .get(target_sid)
            .ok_or_else(|| format!("worker {target_sid} does not exist"))?;
        let attributes = object_in(Some(&worker.attributes));
        let name = text(&attributes, "full_name").unwrap_or(&worker.friendly_name);
        Ok(("worker", name.to_owned()))
    } else {
        let queue = state
            .queues
            .get(target_sid)
            .ok_or_else(|| format!("{target_sid} is neither a worker nor a task queue"))?;
        Ok(("queue", queue.friendly_name.clone()))
    }
}

impl StandIn {
    /// flex-project-template's `conversation-transfer` of a Flex Conversations task (attributes
    /// with `conversationSid`, `flexInteractionSid`, `flexInteractionChannelSid`) to a worker
    /// (`WK…`) or a queue (`WQ…`). The new task's attributes are the original ones plus
    /// `workerSidsInConversation` (the worker SIDs of the agents in the channel),
    /// `transferTargetSid`, `transferQueueName` (the queue's name, or `""` for a worker),
    /// `transferTargetType` (`worker` / `queue`) and `conversations.conversation_id` (kept, else
    /// the original task's SID); no `transferMode`. The calls, in order:
    ///
    /// 1. `GET …/Tasks/{task}`;
    /// 2. `POST /v1/Interactions/{KD}/Channels/{UO}/Invites` with those attributes on the
    ///    workflow named `Chat Transfer…` (else the default one) and the task's channel:
    ///    `task.created`, `task-queue.entered` for the invite task;
    /// 3. cold: `POST …/Participants/{UT}` `Status=closed` for the caller's participant (their
    ///    task completes: `reservation.completed`, `task.completed`; they leave the
    ///    conversation); warm: `GET /v1/Conversations/{CH}`, then `POST` its `Attributes` with
    ///    `invites[<new task SID>] = {invitesTaskSid, targetSid, timestampCreated, targetName,
    ///    inviteTargetType: "Worker" | "Queue"}` merged in, the agent staying.
    ///
    /// Returns the invite task's SID (`routing.properties.sid`). Panics if the task is not a
    /// Flex Conversations task, the target does not exist, the cold caller is not in the
    /// channel, or a call fails (a failed invite changes nothing, as in the template).
    pub fn fpt_transfer(&self, task_sid: &str, target_sid: &str, warm: bool) -> String {
        let base = self.base_url();
        self.play("fpt_transfer", |state, now| {
            let mut rest = Rest::new(state, &base, now);
            let task = flex_task(&mut rest, task_sid)?;
            let state = rest.state();
            let (target_type, target_name) = target(state, target_sid)?;
            let leaving = if warm {
                None
            } else {
                Some(caller(state, &task)?.0)
            };
            let in_conversation: Vec<Value> = agents(state, &task.channel)
                .into_iter()
                .filter_map(|(_, _, worker)| worker.map(Value::String))
                .collect();
            let workflow = transfer_workflow(state);
            let workspace = state.settings.workspace_sid.clone();

            let mut attributes = task.attributes.clone();
            let mut conversations = match attributes.get("conversations") {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            let conversation_id = match conversations.get("conversation_id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                _ => task.sid.clone(),
            };
            conversations.insert("conversation_id".into(), json!(conversation_id));
            let queue_name = if target_type == "queue" {
                target_name.as_str()
            } else {
                ""
            };
            attributes.insert("workerSidsInConversation".into(), json!(in_conversation));
            attributes.insert("transferTargetSid".into(), json!(target_sid));
            attributes.insert("transferQueueName".into(), json!(queue_name));
            attributes.insert("transferTargetType".into(), json!(target_type));
            attributes.insert("conversations".into(), Value::Object(conversations));
            let routing = json!({"properties": {
                "task_channel_unique_name": task.json["task_channel_unique_name"],
                "workspace_sid": workspace,
                "workflow_sid": workflow,
                "attributes": attributes,
            }})
            .to_string();
            let channel = channel_path(&task.interaction, &task.channel);
            let invite = rest.post(
                &format!("{channel}/Invites"),
                &[("Routing", routing.as_str())],
            )?;
            let new_task = invite_task(&invite)?;
            match leaving {
                Some(participant) => {
                    rest.post(
                        &format!("{channel}/Participants/{participant}"),
                        &[("Status", "closed")],
                    )?;
                }
                None => {
                    let mut conversation = conversation_attributes(&mut rest, &task.conversation)?;
                    let mut invites = match conversation.remove("invites") {
                        Some(Value::Object(map)) => map,
                        _ => Map::new(),
                    };
                    let kind = if target_type == "worker" {
                        "Worker"
                    } else {
                        "Queue"
                    };
                    invites.insert(
                        new_task.clone(),
                        json!({
                            "invitesTaskSid": new_task,
                            "targetSid": target_sid,
                            "timestampCreated": now.to_rfc3339_opts(SecondsFormat::Millis, true),
                            "targetName": target_name,
                            "inviteTargetType": kind,
                        }),
                    );
                    conversation.insert("invites".into(), Value::Object(invites));
                    write_conversation_attributes(&mut rest, &task.conversation, conversation)?;
                }
            }
            Ok(new_task)
        })
    }

    /// What the template's client does on `conversationJoined` after a warm transfer: `GET`
    /// the conversation and, if its attributes hold `invites[<invite task SID>]`, `POST` them
    /// without it (`invites` stays, maybe empty). Nothing happens when the entry is not there.
    /// Panics if the conversation does not exist.
    pub fn fpt_invite_joined(&self, conversation_sid: &str, invite_task_sid: &str) {
        let base = self.base_url();
        self.play("fpt_invite_joined", |state, now| {
            let mut rest = Rest::new(state, &base, now);
            remove_invite(&mut rest, conversation_sid, invite_task_sid)
        });
    }

    /// The template's cancel of an outstanding warm-transfer invite: `POST …/Tasks/{invite
    /// task}` `AssignmentStatus=canceled`, `Reason=canceled by agent` (its pending
    /// reservations `reservation.canceled`, then `task.canceled`), then the `invites` entry is
    /// removed as [`StandIn::fpt_invite_joined`] removes it. Panics if the task cannot be
    /// canceled (it is assigned, or gone): the entry then stays.
    pub fn fpt_cancel_invite(&self, conversation_sid: &str, invite_task_sid: &str) {
        let base = self.base_url();
        self.play("fpt_cancel_invite", |state, now| {
            let mut rest = Rest::new(state, &base, now);
            let path = format!("{}/Tasks/{invite_task_sid}", rest.workspace());
            rest.post(
                &path,
                &[
                    ("AssignmentStatus", "canceled"),
                    ("Reason", "canceled by agent"),
                ],
            )?;
            remove_invite(&mut rest, conversation_sid, invite_task_sid)
        });
    }

    /// flex-project-template's `park-interaction` of a Flex Conversations task whose agent is
    /// in the channel. The calls, in order:
    ///
    /// 1. `GET …/Tasks/{task}`;
    /// 2. `POST /v1/Conversations/{CH}/Webhooks` `Target=webhook`, `Configuration.Method=POST`,
    ///    `Configuration.Filters=onMessageAdded`, `Configuration.Url=<unpark_url>`: the
    ///    customer's next message goes there;
    /// 3. `POST …/Participants/{UT}` `Status=closed` for the agent (their task completes;
    ///    they leave the conversation);
    /// 4. `POST /v1/Conversations/{CH}` `Attributes` = `{interactionSid, channelSid,
    ///    participantSid, taskSid, workflowSid, taskChannelUniqueName, queueName, queueSid,
    ///    workerSid, taskAttributes, webhookSid}` (`taskAttributes` the task's attributes
    ///    object): this replaces the attributes (any `invites` are lost, as in the template).
    ///
    /// (The template's optional Sync list of parked interactions is not played.) Returns the
    /// webhook's `WH…` SID. Panics if the task is not a Flex Conversations task, its agent is
    /// not in the channel, or a call fails.
    pub fn fpt_park(&self, task_sid: &str, unpark_url: &str) -> String {
        let base = self.base_url();
        self.play("fpt_park", |state, now| {
            let mut rest = Rest::new(state, &base, now);
            let task = flex_task(&mut rest, task_sid)?;
            let state = rest.state();
            let (participant, participant_worker) = caller(state, &task)?;
            let worker = participant_worker.or_else(|| {
                state.tasks.get(task_sid).and_then(|t| {
                    t.reservations
                        .iter()
                        .filter_map(|wr| state.reservations.get(wr))
                        .find(|r| r.status == ReservationStatus::Accepted)
                        .map(|r| r.worker_sid.clone())
                })
            });
            let webhook = rest.post(
                &format!("/v1/Conversations/{}/Webhooks", task.conversation),
                &[
                    ("Target", "webhook"),
                    ("Configuration.Method", "POST"),
                    ("Configuration.Filters", "onMessageAdded"),
                    ("Configuration.Url", unpark_url),
                ],
            )?;
            let webhook_sid = webhook
                .get("sid")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the webhook has no sid: {webhook}"))?;
            let channel = channel_path(&task.interaction, &task.channel);
            rest.post(
                &format!("{channel}/Participants/{participant}"),
                &[("Status", "closed")],
            )?;
            let parked = json!({
                "interactionSid": task.interaction,
                "channelSid": task.channel,
                "participantSid": participant,
                "taskSid": task.sid,
                "workflowSid": task.json["workflow_sid"],
                "taskChannelUniqueName": task.json["task_channel_unique_name"],
                "queueName": task.json["task_queue_friendly_name"],
                "queueSid": task.json["task_queue_sid"],
                "workerSid": worker,
                "taskAttributes": task.attributes,
                "webhookSid": webhook_sid,
            });
            let Value::Object(parked) = parked else {
                return Err("the park attributes are not an object".into());
            };
            write_conversation_attributes(&mut rest, &task.conversation, parked)?;
            Ok(webhook_sid)
        })
    }

    /// flex-project-template's `unpark-interaction` of a conversation [`StandIn::fpt_park`]
    /// parked (the customer wrote, or the worker unparked it from their list when
    /// `route_to_same_worker`). The calls, in order:
    ///
    /// 1. `DELETE /v1/Conversations/{CH}/Webhooks/{webhookSid}` (the park's webhook; if it is
    ///    gone the unpark stops there, which is how the template ignores a second message);
    /// 2. `GET /v1/Conversations/{CH}` for the stored attributes (never cleared afterwards);
    /// 3. `POST /v1/Interactions/{interactionSid}/Channels/{channelSid}/Invites` with
    ///    `Routing.properties = {workspace_sid, workflow_sid (the original), task_channel_unique_name,
    ///    attributes: {...taskAttributes, originalRouting: {queueName, queueSid, workerSid}}}`,
    ///    plus `queue_sid` and `worker_sid` when `route_to_same_worker`.
    ///
    /// Returns the new task's SID. Panics if the conversation is not parked (no `webhookSid`
    /// in its attributes) or a call fails.
    pub fn fpt_unpark(&self, conversation_sid: &str, route_to_same_worker: bool) -> String {
        let base = self.base_url();
        self.play("fpt_unpark", |state, now| {
            let mut rest = Rest::new(state, &base, now);
            let stored = rest
                .state()
                .conversation_sid(conversation_sid)
                .and_then(|ch| rest.state().conversations.get(&ch))
                .map(|c| object_in(Some(&c.attributes)))
                .ok_or_else(|| format!("conversation {conversation_sid} does not exist"))?;
            let webhook = text(&stored, "webhookSid")
                .ok_or_else(|| format!("conversation {conversation_sid} is not parked"))?
                .to_owned();
            rest.delete(&format!(
                "/v1/Conversations/{conversation_sid}/Webhooks/{webhook}"
            ))?;
            let parked = conversation_attributes(&mut rest, conversation_sid)?;
            let field = |key: &str| parked.get(key).cloned().unwrap_or(Value::Null);
            let mut attributes = match parked.get("taskAttributes") {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            attributes.insert(
                "originalRouting".into(),
                json!({
                    "queueName": field("queueName"),
                    "queueSid": field("queueSid"),
                    "workerSid": field("workerSid"),
                }),
            );
            let mut properties = Map::new();
            properties.insert(
                "workspace_sid".into(),
                json!(rest.state().settings.workspace_sid),
            );
            properties.insert("workflow_sid".into(), field("workflowSid"));
            properties.insert(
                "task_channel_unique_name".into(),
                field("taskChannelUniqueName"),
            );
            properties.insert("attributes".into(), Value::Object(attributes));
            if route_to_same_worker {
                properties.insert("queue_sid".into(), field("queueSid"));
                properties.insert("worker_sid".into(), field("workerSid"));
            }
            let routing = json!({ "properties": properties }).to_string();
            let (interaction, channel) = (
                text(&parked, "interactionSid").unwrap_or_default(),
                text(&parked, "channelSid").unwrap_or_default(),
            );
            let invite = rest.post(
                &format!("{}/Invites", channel_path(interaction, channel)),
                &[("Routing", routing.as_str())],
            )?;
            invite_task(&invite)
        })
    }
}
