//! Conversations v1 (`conversations.twilio.com/v1/Conversations/…`).

use crate::ctx::{Ctx, Reply};
use crate::effects::Effect;
use crate::error::ApiError;
use crate::model::*;
use crate::paging::offset_page;
use crate::state::{fmt_date, State};
use crate::webhooks::{enabled_header, Origin, StateReason};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

// ---- rendering ----

fn conversation_url(base: &str, sid: &str) -> String {
    format!("{base}/v1/Conversations/{sid}")
}

fn conversation_json(state: &State, c: &ConversationState, base: &str) -> Value {
    let url = conversation_url(base, &c.sid);
    let mut timers = Map::new();
    if let Some(d) = c.date_inactive {
        timers.insert("date_inactive".into(), json!(fmt_date(d)));
    }
    if let Some(d) = c.date_closed {
        timers.insert("date_closed".into(), json!(fmt_date(d)));
    }
    json!({
        "account_sid": state.settings.account_sid,
        "chat_service_sid": state.settings.chat_service_sid,
        "messaging_service_sid": c.messaging_service_sid,
        "sid": c.sid,
        "friendly_name": c.friendly_name,
        "unique_name": c.unique_name,
        "attributes": c.attributes,
        "state": c.state.as_str(),
        "date_created": fmt_date(c.date_created),
        "date_updated": fmt_date(c.date_updated),
        "timers": timers,
        "url": url,
        "links": {
            "participants": format!("{url}/Participants"),
            "messages": format!("{url}/Messages"),
            "webhooks": format!("{url}/Webhooks"),
        },
        "bindings": {},
    })
}

fn participant_json(
    state: &State,
    conversation_sid: &str,
    p: &ConversationParticipantState,
    base: &str,
) -> Value {
    json!({
        "account_sid": state.settings.account_sid,
        "conversation_sid": conversation_sid,
        "sid": p.sid,
        "identity": p.identity,
        "attributes": p.attributes,
        "messaging_binding": p.messaging_binding,
        "role_sid": p.role_sid,
        "date_created": fmt_date(p.date_created),
        "date_updated": fmt_date(p.date_updated),
        "url": format!("{}/Participants/{}", conversation_url(base, conversation_sid), p.sid),
        "last_read_message_index": null,
        "last_read_timestamp": null,
    })
}

fn webhook_json(state: &State, conversation_sid: &str, w: &WebhookState, base: &str) -> Value {
    let mut configuration = Map::new();
    if let Some(url) = &w.url {
        configuration.insert("url".into(), json!(url));
    }
    if let Some(method) = &w.method {
        configuration.insert("method".into(), json!(method));
    }
    if !w.filters.is_empty() || w.target == "webhook" {
        configuration.insert("filters".into(), json!(w.filters));
    }
    if !w.triggers.is_empty() {
        configuration.insert("triggers".into(), json!(w.triggers));
    }
    if let Some(flow) = &w.flow_sid {
        configuration.insert("flow_sid".into(), json!(flow));
    }
    if let Some(replay) = w.replay_after {
        configuration.insert("replay_after".into(), json!(replay));
    }
    json!({
        "sid": w.sid,
        "account_sid": state.settings.account_sid,
        "conversation_sid": conversation_sid,
        "target": w.target,
        "url": format!("{}/Webhooks/{}", conversation_url(base, conversation_sid), w.sid),
        "configuration": configuration,
        "date_created": fmt_date(w.date_created),
        "date_updated": fmt_date(w.date_created),
    })
}

// ---- helpers ----

fn find_conversation(ctx: &Ctx<'_>, param: &str) -> Result<String, ApiError> {
    let key = ctx.path(param)?;
    ctx.state
        .conversation_sid(&key)
        .ok_or_else(|| ctx.not_found())
}

/// Seconds in an ISO 8601 duration such as `PT10M`, `P1DT2H`, `PT90S`, `P1W`.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut any = false;
    let mut read = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        for ch in part.chars() {
            if ch.is_ascii_digit() {
                number.push(ch);
                continue;
            }
            let scale = units.iter().find(|(u, _)| *u == ch)?.1;
            let n: i64 = number.parse().ok()?;
            total = total.checked_add(n.checked_mul(scale)?)?;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    read(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        read(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

/// When a `Timers.*` duration from now ends.
fn timer(ctx: &Ctx<'_>, name: &str, minimum_secs: i64) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = ctx.params.str(name)? else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid(format!(
            "Invalid value '{raw}' for parameter {name}: expected an ISO 8601 duration"
        ))
    };
    let secs = parse_duration(raw).ok_or_else(invalid)?;
    if secs < minimum_secs {
        return Err(ApiError::invalid(format!(
            "Invalid value '{raw}' for parameter {name}: the minimum is {} minutes",
            minimum_secs / 60
        )));
    }
    chrono::Duration::try_seconds(secs)
        .and_then(|span| ctx.now.checked_add_signed(span))
        .map(Some)
        .ok_or_else(invalid)
}

// ---- Conversations ----

pub(crate) fn fetch_conversation(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = find_conversation(ctx, "Sid")?;
    let c = ctx
        .state
        .conversations
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?;
    Ok(Reply::json(200, conversation_json(ctx.state, c, ctx.base)))
}

pub(crate) fn update_conversation(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = find_conversation(ctx, "Sid")?;
    let now = ctx.now;
    let p = ctx.params;
    let current = ctx
        .state
        .conversations
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?
        .clone();

    // Validate everything first.
    let to = p.str("State")?.and_then(ConversationStatus::parse);
    if let Some(to) = to {
        if current.state == ConversationStatus::Closed && to != ConversationStatus::Closed {
            return Err(ApiError::invalid(format!(
                "Invalid State: conversation {sid} is closed and cannot be reactivated (it is not in a state that allows State={to})"
            )));
        }
    }
    let inactive = timer(ctx, "Timers.Inactive", 60)?;
    let closed = timer(ctx, "Timers.Closed", 600)?;
    let unique_name = p.str("UniqueName")?.map(str::to_owned);
    if let Some(name) = &unique_name {
        let taken = ctx
            .state
            .conversations
            .values()
            .any(|c| c.sid != sid && c.unique_name.as_deref() == Some(name));
        if taken {
            return Err(ApiError::invalid(format!(
                "Invalid UniqueName: a conversation with unique name '{name}' already exists"
            )));
        }
    }
    let attributes = p.str("Attributes")?.map(str::to_owned);
    let friendly_name = p.str("FriendlyName")?.map(str::to_owned);
    let messaging_service = p.str("MessagingServiceSid")?.map(str::to_owned);
    let date_created = p.datetime("DateCreated")?;
    let date_updated = p.datetime("DateUpdated")?;
    let webhooks = enabled_header(ctx.header("X-Twilio-Webhook-Enabled")?);

    let mut changed = Vec::new();
    if let Some(c) = ctx.state.conversations.get_mut(&sid) {
        if let Some(attributes) = attributes {
            if c.attributes != attributes {
                c.attributes = attributes;
                changed.push("Attributes".to_owned());
            }
        }
        if friendly_name.is_some() && c.friendly_name != friendly_name {
            c.friendly_name = friendly_name;
            changed.push("FriendlyName".to_owned());
        }
        if unique_name.is_some() && c.unique_name != unique_name {
            c.unique_name = unique_name;
            changed.push("UniqueName".to_owned());
        }
        if messaging_service.is_some() && c.messaging_service_sid != messaging_service {
            c.messaging_service_sid = messaging_service;
            changed.push("MessagingServiceSid".to_owned());
        }
        if let Some(at) = inactive {
            c.date_inactive = Some(at);
            changed.push("Timers.Inactive".to_owned());
        }
        if let Some(at) = closed {
            c.date_closed = Some(at);
            changed.push("Timers.Closed".to_owned());
        }
        if let Some(d) = date_created {
            c.date_created = d;
            changed.push("DateCreated".to_owned());
        }
        if !changed.is_empty() {
            c.date_updated = date_updated.unwrap_or(now);
        }
    }
    if !changed.is_empty() {
        ctx.state.effect(Effect::ConversationUpdated {
            conversation_sid: sid.clone(),
            changed,
        });
    }
    if let Some(to) = to {
        // REST changes fire post-action webhooks only when the request asks for them.
        let webhook = webhooks.then_some((StateReason::Api, Origin::Api));
        ctx.state.change_conversation_state(&sid, to, webhook, now);
    }
    let c = ctx
        .state
        .conversations
        .get(&sid)
        .ok_or_else(|| ApiError::bug("conversation vanished"))?;
    Ok(Reply::json(200, conversation_json(ctx.state, c, ctx.base)))
}

pub(crate) fn delete_conversation(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = find_conversation(ctx, "Sid")?;
    let webhooks = enabled_header(ctx.header("X-Twilio-Webhook-Enabled")?);
    ctx.state.remove_conversation(&sid, webhooks, ctx.now);
    Ok(Reply::no_content())
}

// ---- Participants ----

pub(crate) fn list_participants(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = find_conversation(ctx, "ConversationSid")?;
    let c = ctx
        .state
        .conversations
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?;
    let items: Vec<Value> = c
        .participants
        .iter()
        .map(|p| participant_json(ctx.state, &sid, p, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "participants", items)?))
}

/// The participant at this path (by `MB…` SID or identity).
fn find_participant(ctx: &Ctx<'_>) -> Result<(String, ConversationParticipantState), ApiError> {
    let sid = find_conversation(ctx, "ConversationSid")?;
    let key = ctx.path("Sid")?;
    let participant = ctx
        .state
        .conversations
        .get(&sid)
        .and_then(|c| {
            c.participants
                .iter()
                .find(|p| p.sid == key || p.identity.as_deref() == Some(key.as_str()))
        })
        .cloned()
        .ok_or_else(|| ctx.not_found())?;
    Ok((sid, participant))
}

pub(crate) fn fetch_participant(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (sid, participant) = find_participant(ctx)?;
    Ok(Reply::json(
        200,
        participant_json(ctx.state, &sid, &participant, ctx.base),
    ))
}

pub(crate) fn delete_participant(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (sid, participant) = find_participant(ctx)?;
    // A REST removal fires `onParticipantRemoved` only when the request asks for webhooks.
    let webhooks = enabled_header(ctx.header("X-Twilio-Webhook-Enabled")?);
    ctx.state
        .remove_conversation_participant(&sid, &participant.sid, webhooks, ctx.now);
    Ok(Reply::no_content())
}

// ---- Webhooks ----

pub(crate) fn create_webhook(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = find_conversation(ctx, "ConversationSid")?;
    let p = ctx.params;
    let target = p.required("Target")?.to_owned();
    let url = p.str("Configuration.Url")?.map(str::to_owned);
    let flow_sid = p.str("Configuration.FlowSid")?.map(str::to_owned);
    match target.as_str() {
        "studio" if flow_sid.is_none() => return Err(ApiError::invalid(
            "Missing required parameter Configuration.FlowSid in the post body for Target=studio",
        )),
        "webhook" | "trigger" if url.is_none() => {
            return Err(ApiError::invalid(format!(
                "Missing required parameter Configuration.Url in the post body for Target={target}"
            )))
        }
        _ => {}
    }
    let method = match p.str("Configuration.Method")? {
        Some(m) => Some(m.to_ascii_lowercase()),
        None if target != "studio" => Some("post".to_owned()),
        None => None,
    };
    let webhook_sid = ctx.state.sid("WH");
    let webhook = WebhookState {
        sid: webhook_sid.clone(),
        target,
        url,
        method,
        filters: p.list("Configuration.Filters")?,
        triggers: p.list("Configuration.Triggers")?,
        flow_sid,
        replay_after: p.int("Configuration.ReplayAfter")?,
        date_created: ctx.now,
    };
    let body = webhook_json(ctx.state, &sid, &webhook, ctx.base);
    if let Some(c) = ctx.state.conversations.get_mut(&sid) {
        c.webhooks.push(webhook);
    }
    ctx.state.effect(Effect::WebhookCreated {
        conversation_sid: sid,
        webhook_sid,
    });
    Ok(Reply::json(201, body))
}

pub(crate) fn list_webhooks(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let sid = find_conversation(ctx, "ConversationSid")?;
    let c = ctx
        .state
        .conversations
        .get(&sid)
        .ok_or_else(|| ctx.not_found())?;
    let items: Vec<Value> = c
        .webhooks
        .iter()
        .map(|w| webhook_json(ctx.state, &sid, w, ctx.base))
        .collect();
    Ok(Reply::json(200, offset_page(ctx, "webhooks", items)?))
}

fn find_webhook(ctx: &Ctx<'_>) -> Result<(String, WebhookState), ApiError> {
    let sid = find_conversation(ctx, "ConversationSid")?;
    let webhook_sid = ctx.path("Sid")?;
    let webhook = ctx
        .state
        .conversations
        .get(&sid)
        .and_then(|c| c.webhooks.iter().find(|w| w.sid == webhook_sid))
        .cloned()
        .ok_or_else(|| ctx.not_found())?;
    Ok((sid, webhook))
}

pub(crate) fn fetch_webhook(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (sid, webhook) = find_webhook(ctx)?;
    Ok(Reply::json(
        200,
        webhook_json(ctx.state, &sid, &webhook, ctx.base),
    ))
}

pub(crate) fn delete_webhook(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (sid, webhook) = find_webhook(ctx)?;
    if let Some(c) = ctx.state.conversations.get_mut(&sid) {
        c.webhooks.retain(|w| w.sid != webhook.sid);
    }
    ctx.state.effect(Effect::WebhookDeleted {
        conversation_sid: sid,
        webhook_sid: webhook.sid,
    });
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT10M"), Some(600));
        assert_eq!(parse_duration("PT1M30S"), Some(90));
        assert_eq!(parse_duration("P1DT2H"), Some(93_600));
        assert_eq!(parse_duration("P1W"), Some(604_800));
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("10M"), None);
        assert_eq!(parse_duration("PT5X"), None);
        assert_eq!(parse_duration("P"), None);
    }
}
