//! The demo's customers, one kind after another, and the callback weather (late and repeated
//! deliveries). Each scenario plays Flex, the agents and the plugins with the stand-in's plays,
//! says which of baton's calls it leads to, and waits for baton where the story needs baton.

use super::{Agent, Call, Demo, Queue};
use crate::{
    ParticipantStatus, Release, SeedConversation, SeedConversationParticipant, SeedInteraction,
    SeedInteractionParticipant, StandIn, TaskStatus,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long the demo waits for baton to react: its grace period, retries after 429s and 500s,
/// callbacks held back.
const REACTION: Duration = Duration::from_secs(120);

/// The demo's customers, in the order they arrive (then again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    NativeColdToAgent,
    TemplateColdToQueue,
    Declined,
    VoiceTransfers,
    Parked,
    Abandoned,
    TemplateWarm,
    TimedOut,
    VoicePark,
    BackToWrapUp,
    AbandonedRefused,
}

impl Kind {
    pub(super) const ALL: [Kind; 11] = [
        Kind::NativeColdToAgent,
        Kind::TemplateColdToQueue,
        Kind::Declined,
        Kind::VoiceTransfers,
        Kind::Parked,
        Kind::Abandoned,
        Kind::TemplateWarm,
        Kind::TimedOut,
        Kind::VoicePark,
        Kind::BackToWrapUp,
        Kind::AbandonedRefused,
    ];

    pub(super) fn describe(self) -> &'static str {
        match self {
            Kind::NativeColdToAgent => "SMS, Flex's native cold transfer to an agent",
            Kind::TemplateColdToQueue => "web chat, the template's cold transfer to a queue",
            Kind::Declined => "web chat, a template transfer the agent declines",
            Kind::VoiceTransfers => "call, native warm transfer to a queue, then a failed one",
            Kind::Parked => "SMS, parked with baton and resumed when the customer writes",
            Kind::Abandoned => "web chat, the customer leaves before anyone answers",
            Kind::TemplateWarm => "SMS, the template's warm transfer to an agent",
            Kind::TimedOut => "SMS, a template transfer to a queue that times out",
            Kind::VoicePark => "call, parked and picked up with the transfer-park plugin",
            Kind::BackToWrapUp => "web chat, a transfer offered back to an agent in wrap-up",
            Kind::AbandonedRefused => "SMS, abandoned; Twilio refuses the close",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Sms,
    WebChat,
}

/// A customer on a Flex Conversations channel, and the task their first message created.
struct Customer {
    conversation: String,
    interaction: String,
    channel: String,
    task: String,
}

/// Who serves customer `n`: three different agents and a queue.
struct Cast {
    x: Agent,
    y: Agent,
    z: Agent,
    queue: Queue,
}

impl Cast {
    fn of(demo: &Demo, n: usize) -> Cast {
        let agent = |k: usize| demo.agents[(3 * n + k) % demo.agents.len()].clone();
        Cast {
            x: agent(0),
            y: agent(1),
            z: agent(2),
            queue: demo.queues[n % demo.queues.len()].clone(),
        }
    }
}

/// Plays customer `n` of `kind` to its end.
pub(super) async fn play(demo: &Arc<Demo>, n: usize, kind: Kind) -> Result<(), String> {
    let cast = Cast::of(demo, n);
    let (x, y, z, queue) = (&cast.x, &cast.y, &cast.z, &cast.queue);
    let twilio = &*demo.standin;
    match kind {
        Kind::NativeColdToAgent => {
            let c = demo.arrive(n, Media::Sms)?;
            demo.say(&format!("#{n} SMS customer → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(5.0).await;
            let leaving = demo.participant_of(&c, &c.task)?;
            let b = demo.native_transfer(&c, &c.task, &y.sid, "worker", x)?;
            demo.say(&format!(
                "#{n} {} transfers to {} (Flex native, cold)",
                x.name, y.name
            ));
            demo.expect(Call::CloseParticipant {
                participant: leaving.clone(),
            });
            demo.take(&b, y).await;
            demo.wait_for("baton to remove the transferring agent", REACTION, |t| {
                left(t, &c.channel, &leaving).then_some(())
            })
            .await?;
            demo.say(&format!(
                "#{n} {} took it; baton removed {}",
                y.name, x.name
            ));
            demo.pause(6.0).await;
            demo.end_chat(&c, &b).await
        }
        Kind::TemplateColdToQueue => {
            let c = demo.arrive(n, Media::WebChat)?;
            demo.say(&format!("#{n} web chat visitor → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(5.0).await;
            let b = twilio.fpt_transfer(&c.task, &queue.sid, false);
            demo.say(&format!(
                "#{n} {} transfers to {} (template, cold)",
                x.name, queue.name
            ));
            demo.pause(3.0).await;
            demo.take(&b, y).await;
            demo.say(&format!("#{n} {} took it from {}", y.name, queue.name));
            demo.pause(6.0).await;
            demo.end_chat(&c, &b).await
        }
        Kind::Declined => {
            let c = demo.arrive(n, Media::WebChat)?;
            demo.say(&format!("#{n} web chat visitor → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(5.0).await;
            let b = twilio.fpt_transfer(&c.task, &y.sid, false);
            demo.say(&format!(
                "#{n} {} transfers to {} (template, cold)",
                x.name, y.name
            ));
            let offer = twilio.offer(&b, &y.sid);
            demo.pause(2.0).await;
            twilio.reject(&offer);
            demo.say(&format!("#{n} {} declines; nobody else takes it", y.name));
            demo.pause(2.0).await;
            twilio.time_out_task(&b);
            demo.routed_back(n, &c, &b, x).await
        }
        Kind::TimedOut => {
            let c = demo.arrive(n, Media::Sms)?;
            demo.say(&format!("#{n} SMS customer → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(5.0).await;
            let b = twilio.fpt_transfer(&c.task, &queue.sid, false);
            demo.say(&format!(
                "#{n} {} transfers to {} (template, cold)",
                x.name, queue.name
            ));
            demo.pause(1.0).await;
            let offer = twilio.offer(&b, &y.sid);
            demo.pause(3.0).await;
            twilio.time_out_reservation(&offer);
            demo.say(&format!("#{n} {} does not answer and goes offline", y.name));
            demo.pause(1.0).await;
            twilio.set_worker_activity(&y.sid, "Available");
            twilio.time_out_task(&b);
            demo.routed_back(n, &c, &b, x).await
        }
        Kind::TemplateWarm => {
            let c = demo.arrive(n, Media::Sms)?;
            demo.say(&format!("#{n} SMS customer → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(4.0).await;
            let b = twilio.fpt_transfer(&c.task, &y.sid, true);
            demo.say(&format!(
                "#{n} {} consults {} (template, warm)",
                x.name, y.name
            ));
            demo.pause(1.0).await;
            demo.take(&b, y).await;
            twilio.fpt_invite_joined(&c.conversation, &b);
            demo.pause(3.0).await;
            let consulting = demo.participant_of(&c, &c.task)?;
            demo.leave(&c, &consulting)?;
            demo.say(&format!(
                "#{n} {} leaves {} with the customer",
                x.name, y.name
            ));
            demo.pause(5.0).await;
            demo.end_chat(&c, &b).await
        }
        Kind::BackToWrapUp => {
            let c = demo.arrive(n, Media::WebChat)?;
            demo.say(&format!("#{n} web chat visitor → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(4.0).await;
            let b = demo.native_transfer(&c, &c.task, &queue.sid, "queue", x)?;
            let wrapping = demo.participant_of(&c, &c.task)?;
            demo.wrap_up_participant(&c, &wrapping)?;
            demo.say(&format!(
                "#{n} {} transfers to {} (Flex native) and wraps up",
                x.name, queue.name
            ));
            demo.pause(2.0).await;
            // The queue offers the customer back to the agent still in wrap-up.
            demo.expect(Call::CompleteTask {
                task: c.task.clone(),
            });
            let offer = twilio.offer(&b, &x.sid);
            demo.wait_for("baton to finish the stale wrap-up", REACTION, |t| {
                (status(t, &c.task) == Some(TaskStatus::Completed)).then_some(())
            })
            .await?;
            demo.say(&format!(
                "#{n} {} is offered it back; baton finished the wrap-up first",
                x.name
            ));
            twilio.accept(&offer);
            demo.pause(5.0).await;
            demo.end_chat(&c, &b).await
        }
        Kind::Parked => {
            let c = demo.arrive(n, Media::Sms)?;
            demo.say(&format!("#{n} SMS customer → {}", x.name));
            demo.take(&c.task, x).await;
            demo.pause(4.0).await;
            let agent = demo.participant_of(&c, &c.task)?;
            demo.expect(Call::CreateWebhook {
                conversation: c.conversation.clone(),
            });
            demo.expect(Call::CloseParticipant {
                participant: agent.clone(),
            });
            let park = demo.park_with_baton(&c.task).await?;
            demo.wait_for("baton to park the conversation", REACTION, |t| {
                left(t, &c.channel, &agent).then_some(())
            })
            .await?;
            demo.say(&format!(
                "#{n} {} parked the customer with baton ({park})",
                x.name
            ));
            demo.pause(8.0).await;
            demo.expect(Call::Invite {
                channel: c.channel.clone(),
            });
            demo.expect(Call::DeleteWebhook {
                conversation: c.conversation.clone(),
            });
            twilio.customer_writes(&c.conversation, "Hi, I found the order number");
            let resumed = demo
                .wait_for("baton to resume the park", REACTION, |t| {
                    new_task(t, &c.channel, &[&c.task])
                })
                .await?;
            demo.say(&format!("#{n} the customer writes; baton resumes the park"));
            demo.take(&resumed, x).await;
            demo.pause(5.0).await;
            demo.end_chat(&c, &resumed).await
        }
        Kind::Abandoned => {
            let c = demo.arrive(n, Media::WebChat)?;
            demo.say(&format!("#{n} web chat visitor waits…"));
            demo.pause(5.0).await;
            demo.expect(Call::CloseChannel {
                channel: c.channel.clone(),
            });
            twilio.time_out_workflow(&c.task);
            demo.wait_for("baton to close the orphaned conversation", REACTION, |t| {
                t.channel(&c.channel)
                    .is_some_and(|ch| ch.status.as_str() == "closed")
                    .then_some(())
            })
            .await?;
            demo.say(&format!(
                "#{n} the visitor left; baton closed the conversation"
            ));
            Ok(())
        }
        Kind::AbandonedRefused => {
            let c = demo.arrive(n, Media::Sms)?;
            demo.say(&format!("#{n} SMS customer waits…"));
            let close = format!("/v1/Interactions/{}/Channels/{}", c.interaction, c.channel);
            demo.refuse(
                "POST",
                &close,
                Call::CloseChannel {
                    channel: c.channel.clone(),
                },
            );
            demo.pause(5.0).await;
            twilio.time_out_task(&c.task);
            demo.wait_for("baton's refused close", REACTION, |t| {
                t.requests()
                    .iter()
                    .any(|r| r.path == close && r.status == Some(400))
                    .then_some(())
            })
            .await?;
            demo.say(&format!(
                "#{n} the customer left; Twilio refused the close: a dead letter to re-drive"
            ));
            Ok(())
        }
        Kind::VoiceTransfers => {
            let task = demo.call_in(n)?;
            demo.say(&format!("#{n} call → {}", x.name));
            demo.take(&task, x).await;
            demo.pause(5.0).await;
            let warm = twilio.start_transfer(&task, &queue.sid, true);
            demo.pause(1.0).await;
            let first = twilio.offer_transfer(&warm, &y.sid);
            demo.pause(2.0).await;
            twilio.reject(&first);
            let second = twilio.offer_transfer(&warm, &z.sid);
            demo.pause(1.0).await;
            twilio.accept(&second);
            demo.say(&format!(
                "#{n} {} transfers the call to {} (warm): {} declines, {} takes it",
                x.name, queue.name, y.name, z.name
            ));
            demo.pause(5.0).await;
            let cold = twilio.start_transfer(&task, &y.sid, false);
            demo.pause(3.0).await;
            twilio.fail_transfer(&cold, "no answer");
            demo.say(&format!("#{n} {} tries {}: no answer", z.name, y.name));
            demo.pause(4.0).await;
            demo.hang_up(&task).await;
            Ok(())
        }
        Kind::VoicePark => {
            let task = demo.call_in(n)?;
            demo.say(&format!("#{n} call → {}", x.name));
            demo.take(&task, x).await;
            demo.pause(4.0).await;
            let park = twilio.plugin_park_call(&task);
            demo.say(&format!(
                "#{n} {} parks the call (transfer-park plugin)",
                x.name
            ));
            demo.pause(6.0).await;
            twilio.plugin_pickup(&park);
            demo.say(&format!("#{n} {} picks the parked call up", x.name));
            demo.pause(4.0).await;
            demo.hang_up(&task).await;
            Ok(())
        }
    }
}

/// Every so often, what TaskRouter and Conversations do to deliveries: hold them back and
/// send them late (sometimes twice each), or send one again.
pub(super) async fn late_and_repeated_callbacks(demo: Arc<Demo>) {
    let twilio = &*demo.standin;
    for round in 0u64.. {
        demo.pause(9.0).await;
        if round % 2 == 0 {
            twilio.hold_callbacks(true);
            demo.pause(1.5).await;
            let order = if round % 4 == 0 {
                Release::Duplicated
            } else {
                Release::InOrder
            };
            twilio.release_callbacks(order);
        } else if let Some(last) = twilio.callbacks().last() {
            twilio.redeliver(last.event_sid());
        }
    }
}

fn status(twilio: &StandIn, task: &str) -> Option<TaskStatus> {
    twilio.task(task).map(|t| t.assignment_status)
}

/// Whether the agent participant has left the channel (closed).
fn left(twilio: &StandIn, channel: &str, participant: &str) -> bool {
    twilio.channel(channel).is_some_and(|c| {
        c.participants
            .iter()
            .any(|p| p.sid == participant && p.status == Some(ParticipantStatus::Closed))
    })
}

/// A task on the channel other than `known` (an invite baton made).
fn new_task(twilio: &StandIn, channel: &str, known: &[&str]) -> Option<String> {
    twilio
        .tasks()
        .into_iter()
        .filter(|t| !known.contains(&t.sid.as_str()))
        .find(|t| t.attributes_json()["flexInteractionChannelSid"] == channel)
        .map(|t| t.sid)
}

impl Demo {
    /// A customer writes in: their conversation, its interaction channel, and the task Flex's
    /// invite creates on the default workflow (pending).
    fn arrive(&self, n: usize, media: Media) -> Result<Customer, String> {
        let twilio = &*self.standin;
        let (participant, address, channel_type, task_channel, communication) = match media {
            Media::Sms => {
                let address = format!("+1415555{:04}", n % 10_000);
                (
                    SeedConversationParticipant::sms(&address, "+18005550100"),
                    address,
                    "sms",
                    "sms",
                    "sms",
                )
            }
            Media::WebChat => {
                let identity = format!("visitor-{n}");
                (
                    SeedConversationParticipant::identity(&identity),
                    identity,
                    "web",
                    "chat",
                    "chat",
                )
            }
        };
        let conversation = twilio.seed_conversation(
            SeedConversation::new()
                .friendly_name(format!("Customer {n}"))
                .participant(participant),
        );
        let seeded = twilio.seed_interaction(
            SeedInteraction::new()
                .channel_type(channel_type)
                .conversation(&conversation)
                .participant(SeedInteractionParticipant::customer()),
        );
        let attributes = json!({
            "from": address,
            "customerName": format!("Customer {n}"),
            "customerAddress": address,
            "channelType": channel_type,
            "direction": "inbound",
            "conversations": {
                "communication_channel": communication,
                "direction": "inbound",
                "initiated_by": "customer",
            },
        });
        let task = self.invite(
            &seeded.interaction_sid,
            &seeded.channel_sid,
            task_channel,
            attributes,
        )?;
        Ok(Customer {
            conversation,
            interaction: seeded.interaction_sid,
            channel: seeded.channel_sid,
            task,
        })
    }

    /// Flex's invite into the channel through the default workflow: the new task's SID.
    fn invite(
        &self,
        interaction: &str,
        channel: &str,
        task_channel: &str,
        attributes: Value,
    ) -> Result<String, String> {
        let routing = json!({"properties": {
            "workspace_sid": self.standin.workspace_sid(),
            "workflow_sid": self.standin.default_workflow_sid(),
            "task_channel_unique_name": task_channel,
            "attributes": attributes,
        }})
        .to_string();
        let path = format!("/v1/Interactions/{interaction}/Channels/{channel}/Invites");
        let invite = self.flex(|rest| rest.post(&path, &[("Routing", routing.as_str())]))?;
        invite
            .pointer("/routing/properties/sid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the invite created no task: {invite}"))
    }

    /// Flex's native messaging transfer of `task` (cold): a new task on the same channel with
    /// the original attributes, `transfer_sid`, `previous_task_sid` and the target fields, and
    /// no Insights `conversation_id`.
    fn native_transfer(
        &self,
        c: &Customer,
        task: &str,
        target_sid: &str,
        target_type: &str,
        from: &Agent,
    ) -> Result<String, String> {
        let original = self
            .standin
            .task(task)
            .ok_or_else(|| format!("task {task} is gone"))?;
        let mut attributes = match original.attributes_json() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let from_name = self
            .standin
            .worker(&from.sid)
            .map(|w| w.friendly_name)
            .unwrap_or_default();
        attributes.insert(
            "transfer_sid".into(),
            json!(format!("UX{:032x}", rand::random::<u128>())),
        );
        attributes.insert("previous_task_sid".into(), json!(task));
        attributes.insert("transferTargetSid".into(), json!(target_sid));
        attributes.insert("transferTargetType".into(), json!(target_type));
        attributes.insert("workerSidsInConversation".into(), json!([from.sid]));
        attributes.insert(
            "ignoreWorkerContactUri".into(),
            json!(format!("client:{from_name}")),
        );
        self.invite(
            &c.interaction,
            &c.channel,
            &original.task_channel_unique_name,
            Value::Object(attributes),
        )
    }

    /// A voice call comes in: the task Flex's Studio flow creates (pending).
    fn call_in(&self, n: usize) -> Result<String, String> {
        let attributes = json!({
            "call_sid": format!("CA{:032x}", rand::random::<u128>()),
            "from": format!("+1415556{:04}", n % 10_000),
            "to": "+18005550100",
            "direction": "inbound",
            "type": "inbound",
            "name": format!("Caller {n}"),
            "conversations": {"communication_channel": "voice", "direction": "inbound"},
        })
        .to_string();
        let workflow = self.standin.default_workflow_sid();
        let task = self.flex(|rest| {
            let path = format!("{}/Tasks", rest.workspace());
            rest.post(
                &path,
                &[
                    ("Attributes", attributes.as_str()),
                    ("WorkflowSid", workflow.as_str()),
                    ("TaskChannel", "voice"),
                ],
            )
        })?;
        task["sid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the call's task has no sid: {task}"))
    }

    /// The task rings for the agent, who accepts.
    async fn take(&self, task: &str, agent: &Agent) {
        let reservation = self.standin.offer(task, &agent.sid);
        self.pause(1.0).await;
        self.standin.accept(&reservation);
    }

    /// The agent participant working `task` in the customer's channel.
    fn participant_of(&self, c: &Customer, task: &str) -> Result<String, String> {
        self.standin
            .channel(&c.channel)
            .and_then(|ch| {
                ch.participants
                    .into_iter()
                    .find(|p| p.participant_type == "agent" && p.task_sid() == Some(task))
            })
            .map(|p| p.sid)
            .ok_or_else(|| format!("no agent works task {task} in channel {}", c.channel))
    }

    /// The agent leaves the conversation (the template's remove-participant): their task
    /// completes, the conversation goes on.
    fn leave(&self, c: &Customer, participant: &str) -> Result<(), String> {
        self.participant_status(c, participant, "closed")
    }

    /// Flex puts the agent's participant in wrap-up (their task wraps up).
    fn wrap_up_participant(&self, c: &Customer, participant: &str) -> Result<(), String> {
        self.participant_status(c, participant, "wrapup")
    }

    fn participant_status(&self, c: &Customer, participant: &str, to: &str) -> Result<(), String> {
        let path = format!(
            "/v1/Interactions/{}/Channels/{}/Participants/{participant}",
            c.interaction, c.channel
        );
        self.flex(|rest| rest.post(&path, &[("Status", to)]))
            .map(|_| ())
    }

    /// The agent ends the chat: Flex closes the interaction channel (the task wraps up and the
    /// conversation closes), then the agent completes the task after wrap-up.
    async fn end_chat(&self, c: &Customer, task: &str) -> Result<(), String> {
        let path = format!("/v1/Interactions/{}/Channels/{}", c.interaction, c.channel);
        self.flex(|rest| rest.post(&path, &[("Status", "closed")]))?;
        self.pause(3.0).await;
        if status(&self.standin, task) == Some(TaskStatus::Wrapping) {
            self.standin.complete(task);
        }
        Ok(())
    }

    /// The call ends: wrap-up, then completion.
    async fn hang_up(&self, task: &str) {
        if status(&self.standin, task) == Some(TaskStatus::Assigned) {
            self.standin.wrap_up(task);
        }
        self.pause(3.0).await;
        if status(&self.standin, task) == Some(TaskStatus::Wrapping) {
            self.standin.complete(task);
        }
    }

    /// A failed transfer left the customer alone: baton routes them back (an invite the
    /// original agent is offered), and the original agent finishes the conversation.
    async fn routed_back(
        &self,
        n: usize,
        c: &Customer,
        failed: &str,
        original: &Agent,
    ) -> Result<(), String> {
        self.expect(Call::Invite {
            channel: c.channel.clone(),
        });
        let back = self
            .wait_for("baton to route the customer back", REACTION, |t| {
                t.tasks()
                    .into_iter()
                    .find(|task| task.attributes_json()["baton"]["returning_from"] == failed)
                    .map(|task| task.sid)
            })
            .await?;
        self.say(&format!(
            "#{n} baton routes the customer back to {}",
            original.name
        ));
        self.take(&back, original).await;
        self.pause(5.0).await;
        self.end_chat(c, &back).await
    }
}
