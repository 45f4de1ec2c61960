//! Playing Conversations: the service-level webhook's URL and filters, and the control methods
//! a test calls instead of the customer writing or Twilio's timers closing and removing
//! conversations. Each fires its webhooks as `crate::webhooks` builds them.

use crate::callback_queue::check_url;
use crate::model::*;
use crate::webhooks::{Origin, StateReason};
use crate::StandIn;

impl StandIn {
    /// Sets (or clears) the Conversations service's post-event webhook, what
    /// `POST /v1/Services/{IS}/Configuration/Webhooks` `PostWebhookUrl` sets on Twilio: from now
    /// on the events its filters name ([`StandIn::set_conversations_webhook_filters`]) are
    /// POSTed there, signed. Panics if the URL is not an absolute `http` URL.
    pub fn set_conversations_webhook_url(&self, url: Option<String>) {
        if let Some(url) = &url {
            if let Err(problem) = check_url(url) {
                panic!("twilio-standin set_conversations_webhook_url: {problem}");
            }
        }
        self.shared.lock().service_webhook.url = url;
    }

    pub fn conversations_webhook_url(&self) -> Option<String> {
        self.shared.lock().service_webhook.url.clone()
    }

    /// The events the service webhook gets (its `Filters`). Default:
    /// `onConversationStateUpdated`, `onConversationRemoved`, `onMessageAdded`. The stand-in
    /// produces those three and `onParticipantRemoved`.
    pub fn set_conversations_webhook_filters(&self, filters: &[&str]) {
        self.shared.lock().service_webhook.filters =
            filters.iter().map(|f| (*f).to_owned()).collect();
    }

    pub fn conversations_webhook_filters(&self) -> Vec<String> {
        self.shared.lock().service_webhook.filters.clone()
    }

    /// The conversation's customer writes (an SMS arrives, or the web chat user sends): the
    /// message is added, authored by the first non-agent participant (its SMS address, or its
    /// chat identity), and `onMessageAdded` fires (`Source=SDK`). An inactive conversation
    /// becomes active first (`onConversationStateUpdated`, `Reason=EVENT`). Returns the `IM…`
    /// SID. Panics if the conversation (SID or unique name) does not exist, is closed, or has
    /// no customer participant.
    pub fn customer_writes(&self, conversation_sid: &str, body: &str) -> String {
        self.play("customer_writes", |state, now| {
            state.customer_writes(conversation_sid, body, now)
        })
    }

    /// The conversation's `Timers.Closed` ran out: it is `closed` and
    /// `onConversationStateUpdated` fires with `Reason=TIMER` (`Source=API`). The stand-in keeps
    /// no timers; the test says when. Panics if the conversation does not exist or is closed.
    pub fn close_conversation_by_timer(&self, conversation_sid: &str) {
        self.play("close_conversation_by_timer", |state, now| {
            let sid = state
                .conversation_sid(conversation_sid)
                .ok_or_else(|| format!("conversation {conversation_sid} does not exist"))?;
            let changed = state.change_conversation_state(
                &sid,
                ConversationStatus::Closed,
                Some((StateReason::Timer, Origin::Api)),
                now,
            );
            if changed {
                Ok(())
            } else {
                Err(format!("conversation {sid} is already closed"))
            }
        });
    }

    /// Twilio removes a conversation (the REST `DELETE` fires the webhook only with
    /// `X-Twilio-Webhook-Enabled: true`; this always does): `onConversationRemoved`. Panics if
    /// it does not exist.
    pub fn remove_conversation(&self, conversation_sid: &str) {
        self.play("remove_conversation", |state, now| {
            let sid = state
                .conversation_sid(conversation_sid)
                .ok_or_else(|| format!("conversation {conversation_sid} does not exist"))?;
            state.remove_conversation(&sid, true, now);
            Ok(())
        });
    }

    /// A conversation's messages (SID or unique name), oldest first; empty if it does not exist.
    pub fn messages(&self, conversation_sid: &str) -> Vec<ConversationMessageState> {
        self.conversation(conversation_sid)
            .map(|c| c.messages)
            .unwrap_or_default()
    }
}
