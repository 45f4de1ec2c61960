//! Conversations webhooks (the service's post-event webhook, and conversation-scoped ones):
//! form parameters.

use super::*;

pub(super) fn conversations_event(
    f: &dyn Fields,
    event_type: ConversationsEventType,
    errors: &mut Vec<String>,
) -> ConversationsEvent {
    // The most specific time the event carries.
    let time = ["DateRemoved", "StateUpdated", "DateUpdated", "DateCreated"]
        .iter()
        .find_map(|name| f.text(name).and_then(|raw| parse_time(&raw)));
    if time.is_none() && event_type.is_known() {
        errors.push("the event has no readable timestamp".into());
    }
    ConversationsEvent {
        event_type,
        account_sid: f.text("AccountSid"),
        conversation_sid: f.text("ConversationSid"),
        chat_service_sid: f.text("ChatServiceSid"),
        participant_sid: f.text("ParticipantSid"),
        message_sid: f.text("MessageSid"),
        author: f.text("Author"),
        identity: f.text("Identity"),
        state_from: f.text("StateFrom"),
        state_to: f.text("StateTo"),
        reason: f.text("Reason"),
        origin: f.text("Source"),
        time,
    }
}

/// A Conversations webhook (form parameters).
pub fn conversations_webhook(
    pairs: &[(String, String)],
    idempotency_token: Option<String>,
) -> ParsedEvent {
    let f = FormFields(pairs);
    let mut errors = Vec::new();
    let event = match f.text("EventType") {
        Some(t) => TwilioEvent::Conversations(Box::new(conversations_event(
            &f,
            ConversationsEventType::parse(&t),
            &mut errors,
        ))),
        None => {
            errors.push("the webhook has no EventType".into());
            TwilioEvent::Unrecognized { event_type: None }
        }
    };
    let delivery = DeliveryIdentity {
        cloud_event_id: None,
        content_hash: idempotency_token
            .is_none()
            .then(|| form_content_hash(pairs)),
        idempotency_token,
    };
    finish(
        Source::ConversationsWebhook,
        event,
        params_object(pairs),
        delivery,
        errors,
    )
}
