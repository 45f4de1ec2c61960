//! Conversations post-action webhooks: what Twilio POSTs to the service-level `PostWebhookUrl`
//! ([`StandIn::set_conversations_webhook_url`](crate::StandIn::set_conversations_webhook_url))
//! and to conversation-scoped webhooks (`POST /v1/Conversations/{CH}/Webhooks` with
//! `Target=webhook`) when a message is added, a conversation changes state or is removed, or a
//! participant is removed. They go through the same queue as the TaskRouter callbacks
//! (`crate::callback_queue`), each to its own URL, signed the same way. The control methods
//! that set the service webhook and play the customer and Twilio's timers are
//! `crate::conversations_play`.

use crate::effects::Effect;
use crate::model::*;
use crate::state::{Fields, State};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Who made the change a webhook reports: its `Source` (and `ClientIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The REST API, or Twilio itself (a timer, an Interactions change): `Source=API`.
    Api,
    /// A participant: a Conversations SDK client or an SMS participant: `Source=SDK`, with
    /// `ClientIdentity` when the participant has an identity (chat).
    Sdk { identity: Option<String> },
}

/// `Reason` of `onConversationStateUpdated`: what changed the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateReason {
    /// A REST update (with `X-Twilio-Webhook-Enabled: true`) or an Interactions channel close.
    Api,
    /// The conversation's `Timers.*` ran out.
    Timer,
    /// A message to an inactive conversation made it active again.
    Event,
}

impl StateReason {
    fn as_str(self) -> &'static str {
        match self {
            StateReason::Api => "API",
            StateReason::Timer => "TIMER",
            StateReason::Event => "EVENT",
        }
    }
}

/// Conversations webhook dates: ISO 8601 in UTC with milliseconds (`2024-01-01T00:00:00.000Z`).
pub(crate) fn webhook_date(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Whether a request asked for webhooks: `X-Twilio-Webhook-Enabled: true` (any case).
pub(crate) fn enabled_header(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl State {
    /// The URLs an event of this conversation goes to: the service webhook when its filters
    /// name the event, then each conversation-scoped `webhook` target whose filters do.
    fn webhook_targets(
        &self,
        conversation: &ConversationState,
        event_type: &str,
    ) -> Vec<(String, Option<String>)> {
        let mut targets = Vec::new();
        if let Some(url) = &self.service_webhook.url {
            if self.service_webhook.filters.iter().any(|f| f == event_type) {
                targets.push((url.clone(), None));
            }
        }
        for webhook in &conversation.webhooks {
            if webhook.target != "webhook" || !webhook.filters.iter().any(|f| f == event_type) {
                continue;
            }
            if let Some(url) = &webhook.url {
                targets.push((url.clone(), Some(webhook.sid.clone())));
            }
        }
        targets
    }

    /// Queues one delivery of a Conversations event per target (none when nothing is
    /// configured for it): `AccountSid`, `EventType`, `Source`, `ClientIdentity` (SDK changes by
    /// a chat participant), then the event's `fields`. Each target gets its own idempotency
    /// token.
    fn send_conversations_event(
        &mut self,
        conversation: &ConversationState,
        event_type: &str,
        origin: &Origin,
        fields: Fields,
    ) {
        let targets = self.webhook_targets(conversation, event_type);
        if targets.is_empty() {
            return;
        }
        let mut params: Fields = vec![
            ("AccountSid", self.settings.account_sid.clone()),
            ("EventType", event_type.to_owned()),
        ];
        match origin {
            Origin::Api => params.push(("Source", "API".to_owned())),
            Origin::Sdk { identity } => {
                params.push(("Source", "SDK".to_owned()));
                if let Some(identity) = identity {
                    params.push(("ClientIdentity", identity.clone()));
                }
            }
        }
        params.extend(fields);
        let params: Vec<(String, String)> =
            params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for (url, webhook_sid) in targets {
            let token = self.idempotency_token();
            self.callbacks.enqueue_webhook(
                &url,
                webhook_sid,
                event_type.to_owned(),
                params.clone(),
                token,
            );
        }
    }

    /// Changes a conversation's state (recording the effect) and, when `webhook` says why,
    /// fires `onConversationStateUpdated`. Returns whether the state changed.
    pub(crate) fn change_conversation_state(
        &mut self,
        conversation_sid: &str,
        to: ConversationStatus,
        webhook: Option<(StateReason, Origin)>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(from) = self.set_conversation_state(conversation_sid, to, now) else {
            return false;
        };
        let Some((reason, origin)) = webhook else {
            return true;
        };
        let Some(conversation) = self.conversations.get(conversation_sid).cloned() else {
            return true;
        };
        let fields: Fields = vec![
            ("ChatServiceSid", self.settings.chat_service_sid.clone()),
            ("ConversationSid", conversation.sid.clone()),
            ("StateUpdated", webhook_date(now)),
            ("StateFrom", from.as_str().to_owned()),
            ("StateTo", to.as_str().to_owned()),
            ("Reason", reason.as_str().to_owned()),
            (
                "MessagingServiceSid",
                conversation
                    .messaging_service_sid
                    .clone()
                    .unwrap_or_default(),
            ),
        ];
        self.send_conversations_event(&conversation, "onConversationStateUpdated", &origin, fields);
        true
    }

    /// Removes a conversation (recording the effect) and, with `webhook`, fires
    /// `onConversationRemoved` (to the service webhook and the conversation's own webhooks, as
    /// they were). Returns the removed conversation.
    pub(crate) fn remove_conversation(
        &mut self,
        conversation_sid: &str,
        webhook: bool,
        now: DateTime<Utc>,
    ) -> Option<ConversationState> {
        let conversation = self.conversations.remove(conversation_sid)?;
        self.effect(Effect::ConversationRemoved {
            conversation_sid: conversation_sid.to_owned(),
        });
        if webhook {
            let fields: Fields = vec![
                ("ChatServiceSid", self.settings.chat_service_sid.clone()),
                ("ConversationSid", conversation.sid.clone()),
                ("DateCreated", webhook_date(conversation.date_created)),
                ("DateUpdated", webhook_date(conversation.date_updated)),
                ("DateRemoved", webhook_date(now)),
                (
                    "FriendlyName",
                    conversation.friendly_name.clone().unwrap_or_default(),
                ),
                (
                    "UniqueName",
                    conversation.unique_name.clone().unwrap_or_default(),
                ),
                ("Attributes", conversation.attributes.clone()),
                (
                    "MessagingServiceSid",
                    conversation
                        .messaging_service_sid
                        .clone()
                        .unwrap_or_default(),
                ),
                ("State", conversation.state.as_str().to_owned()),
            ];
            self.send_conversations_event(
                &conversation,
                "onConversationRemoved",
                &Origin::Api,
                fields,
            );
        }
        Some(conversation)
    }

    /// Removes a conversation participant (recording the effect) and, with `webhook`, fires
    /// `onParticipantRemoved` (`Source=API`): `ChatServiceSid`, `ConversationSid`,
    /// `ParticipantSid`, `DateCreated`, `DateUpdated`, `DateRemoved`, then `Identity` (a chat
    /// participant) or `MessagingBinding.Address` / `.ProxyAddress` / `.Type` (SMS), then
    /// `Attributes`, and `RoleSid` when the participant has one. Returns the removed
    /// participant.
    pub(crate) fn remove_conversation_participant(
        &mut self,
        conversation_sid: &str,
        participant_sid: &str,
        webhook: bool,
        now: DateTime<Utc>,
    ) -> Option<ConversationParticipantState> {
        let conversation = self.conversations.get_mut(conversation_sid)?;
        let at = conversation
            .participants
            .iter()
            .position(|p| p.sid == participant_sid)?;
        let participant = conversation.participants.remove(at);
        let conversation = conversation.clone();
        self.effect(Effect::ConversationParticipantRemoved {
            conversation_sid: conversation_sid.to_owned(),
            participant_sid: participant_sid.to_owned(),
        });
        if webhook {
            let mut fields: Fields = vec![
                ("ChatServiceSid", self.settings.chat_service_sid.clone()),
                ("ConversationSid", conversation.sid.clone()),
                ("ParticipantSid", participant.sid.clone()),
                ("DateCreated", webhook_date(participant.date_created)),
                ("DateUpdated", webhook_date(participant.date_updated)),
                ("DateRemoved", webhook_date(now)),
            ];
            if let Some(identity) = &participant.identity {
                fields.push(("Identity", identity.clone()));
            }
            if let Some(binding) = &participant.messaging_binding {
                for (name, key) in [
                    ("MessagingBinding.Address", "address"),
                    ("MessagingBinding.ProxyAddress", "proxy_address"),
                    ("MessagingBinding.ProjectedAddress", "projected_address"),
                ] {
                    if let Some(value) = binding.get(key).and_then(Value::as_str) {
                        fields.push((name, value.to_owned()));
                    }
                }
                if let Some(kind) = binding.get("type").and_then(Value::as_str) {
                    fields.push(("MessagingBinding.Type", kind.to_ascii_uppercase()));
                }
            }
            fields.push(("Attributes", participant.attributes.clone()));
            if let Some(role) = &participant.role_sid {
                fields.push(("RoleSid", role.clone()));
            }
            self.send_conversations_event(
                &conversation,
                "onParticipantRemoved",
                &Origin::Api,
                fields,
            );
        }
        Some(participant)
    }

    /// The conversation's customer: the first participant that is not an agent. Agents are the
    /// conversation participants an interaction channel's non-customer participant stands for,
    /// and chat identities that name a worker (friendly name, or `contact_uri` with or without
    /// `client:`). An SMS participant is never an agent.
    fn customer(&self, conversation: &ConversationState) -> Option<ConversationParticipantState> {
        let agent_members: Vec<&str> = self
            .channels
            .values()
            .filter(|c| c.conversation_sid.as_deref() == Some(conversation.sid.as_str()))
            .flat_map(|c| &c.participants)
            .filter(|p| p.participant_type != "customer")
            .filter_map(|p| p.conversation_participant_sid.as_deref())
            .collect();
        let worker_names: Vec<String> = self
            .workers
            .values()
            .flat_map(|w| {
                let contact_uri = serde_json::from_str::<Value>(&w.attributes)
                    .ok()
                    .and_then(|a| a.get("contact_uri")?.as_str().map(str::to_owned));
                let bare = contact_uri
                    .as_deref()
                    .and_then(|u| u.strip_prefix("client:"))
                    .map(str::to_owned);
                [Some(w.friendly_name.clone()), contact_uri, bare]
            })
            .flatten()
            .collect();
        conversation
            .participants
            .iter()
            .find(|p| {
                if agent_members.contains(&p.sid.as_str()) {
                    return false;
                }
                if p.messaging_binding.is_some() {
                    return true;
                }
                p.identity
                    .as_ref()
                    .is_some_and(|identity| !worker_names.contains(identity))
            })
            .cloned()
    }

    /// A message from the conversation's customer: an inactive conversation becomes active
    /// (`onConversationStateUpdated`, `Reason=EVENT`), the message is added, `onMessageAdded`
    /// fires. Returns the `IM…` SID.
    pub(crate) fn customer_writes(
        &mut self,
        key: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let sid = self
            .conversation_sid(key)
            .ok_or_else(|| format!("conversation {key} does not exist"))?;
        let conversation = self
            .conversations
            .get(&sid)
            .ok_or_else(|| format!("conversation {key} does not exist"))?;
        if conversation.state == ConversationStatus::Closed {
            return Err(format!(
                "conversation {sid} is closed (a customer's message would start a new conversation)"
            ));
        }
        let customer = self.customer(conversation).ok_or_else(|| {
            format!(
                "conversation {sid} has no customer participant (an SMS participant, or a chat identity that is not an agent's)"
            )
        })?;
        let (author, identity) = match (&customer.messaging_binding, &customer.identity) {
            (Some(binding), _) => (
                binding
                    .get("address")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                None,
            ),
            (None, Some(identity)) => (identity.clone(), Some(identity.clone())),
            (None, None) => (String::new(), None),
        };
        let origin = Origin::Sdk { identity };
        if conversation.state == ConversationStatus::Inactive {
            self.change_conversation_state(
                &sid,
                ConversationStatus::Active,
                Some((StateReason::Event, origin.clone())),
                now,
            );
        }
        let message_sid = self.sid("IM");
        let Some(conversation) = self.conversations.get_mut(&sid) else {
            return Err(format!("conversation {sid} vanished"));
        };
        let message = ConversationMessageState {
            sid: message_sid.clone(),
            index: conversation.messages.len() as u64,
            author,
            body: body.to_owned(),
            attributes: "{}".to_owned(),
            participant_sid: Some(customer.sid.clone()),
            date_created: now,
            date_updated: now,
        };
        conversation.messages.push(message.clone());
        let conversation = conversation.clone();
        self.effect(Effect::MessageAdded {
            conversation_sid: sid.clone(),
            message_sid: message_sid.clone(),
            participant_sid: message.participant_sid.clone(),
        });
        let fields: Fields = vec![
            ("ChatServiceSid", self.settings.chat_service_sid.clone()),
            ("ConversationSid", sid),
            ("MessageSid", message.sid),
            (
                "MessagingServiceSid",
                conversation
                    .messaging_service_sid
                    .clone()
                    .unwrap_or_default(),
            ),
            ("Index", message.index.to_string()),
            ("DateCreated", webhook_date(message.date_created)),
            ("Body", message.body),
            ("Author", message.author),
            ("ParticipantSid", customer.sid),
            ("Attributes", message.attributes),
        ];
        self.send_conversations_event(&conversation, "onMessageAdded", &origin, fields);
        Ok(message_sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_dates_have_milliseconds() {
        let dt = DateTime::<Utc>::from_timestamp_millis(1_704_067_200_042).unwrap();
        assert_eq!(webhook_date(dt), "2024-01-01T00:00:00.042Z");
    }

    #[test]
    fn only_true_enables_webhooks() {
        assert!(enabled_header(Some("true")));
        assert!(enabled_header(Some("True")));
        assert!(!enabled_header(Some("false")));
        assert!(!enabled_header(Some("")));
        assert!(!enabled_header(None));
    }
}
