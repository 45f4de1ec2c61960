//! TaskRouter's Events API resources (`GET /v1/Workspaces/{WS}/Events`), for backfills.

use super::event_streams::STREAM_NAMES;
use super::*;

/// Events API resource names: the envelope is the resource's own fields (`sid`, `event_type`,
/// `event_date_ms`, `event_date`, `resource_*`, `account_sid`, `workspace_sid`); everything else
/// is an `event_data` key — the callback's parameters in snake_case, as in Event Streams payloads.
pub(super) const EVENTS_API_NAMES: TaskRouterNames = TaskRouterNames {
    event_type: "event_type",
    timestamp_ms: "event_date_ms",
    timestamp: "event_date",
    ..STREAM_NAMES
};

/// An Events API resource's fields: its own first, then `event_data`'s.
pub(super) struct EventResourceFields<'a> {
    resource: JsonFields<'a>,
    data: Option<JsonFields<'a>>,
}

impl Fields for EventResourceFields<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.resource
            .text(name)
            .or_else(|| self.data.as_ref().and_then(|d| d.text(name)))
    }
}

/// `event_data` as an object: Twilio documents no type for it (an object in its examples; a
/// JSON string is read too). `*_attributes` given as objects become JSON text, as callbacks
/// carry them.
pub(super) fn event_data(
    resource: &Map<String, Value>,
    errors: &mut Vec<String>,
) -> Option<Map<String, Value>> {
    let mut data = match resource.get("event_data") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => {
                errors.push("event_data is a string that is not a JSON object".into());
                return None;
            }
        },
        Some(_) => {
            errors.push("event_data is not an object".into());
            return None;
        }
    };
    for (key, value) in data.iter_mut() {
        if key.ends_with("_attributes") && matches!(value, Value::Object(_) | Value::Array(_)) {
            *value = Value::String(value.to_string());
        }
    }
    Some(data)
}

/// One resource of `GET /v1/Workspaces/{WS}/Events` (backfill and reconciliation). It becomes
/// the same typed event, with the same identity, as the event's callback: `sid` is the
/// callback's `Sid`, `event_date_ms` its `TimestampMs`, and `event_data` holds its other
/// parameters. A resource baton cannot interpret is kept and flagged, as the edge does.
pub fn events_api_event(mut item: Value) -> ParsedEvent {
    let mut errors = Vec::new();
    if replace_nul(&mut item) {
        errors.push("NUL characters were replaced with U+FFFD".into());
    }
    let Value::Object(resource) = &item else {
        errors.push("an Events API item is not a JSON object".into());
        let delivery = DeliveryIdentity {
            cloud_event_id: None,
            idempotency_token: None,
            content_hash: Some(hex::encode(Sha256::digest(item.to_string().as_bytes()))),
        };
        return finish(
            Source::EventsApi,
            TwilioEvent::Unrecognized { event_type: None },
            to_raw(&item),
            delivery,
            errors,
        );
    };
    let data = event_data(resource, &mut errors);
    let f = EventResourceFields {
        resource: JsonFields(resource),
        data: data.as_ref().map(JsonFields),
    };
    let event = match f.text(EVENTS_API_NAMES.event_type) {
        Some(t) => {
            let mut event = taskrouter_event(
                &f,
                &EVENTS_API_NAMES,
                TaskRouterEventType::parse(&t),
                &mut errors,
            );
            // A reservation event is about its reservation even when `event_data` leaves the
            // SID out (a callback always carries `ReservationSid`).
            if event.reservation_sid.is_none()
                && event
                    .resource_type
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("reservation"))
            {
                event.reservation_sid.clone_from(&event.resource_sid);
            }
            TwilioEvent::Taskrouter(Box::new(event))
        }
        None => {
            errors.push("the event has no event_type".into());
            TwilioEvent::Unrecognized { event_type: None }
        }
    };
    let delivery = DeliveryIdentity {
        cloud_event_id: None,
        idempotency_token: None,
        content_hash: (!event.has_own_identity())
            .then(|| hex::encode(Sha256::digest(item.to_string().as_bytes()))),
    };
    finish(Source::EventsApi, event, to_raw(&item), delivery, errors)
}
