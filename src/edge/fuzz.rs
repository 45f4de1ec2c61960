//! The bodies of the `cargo fuzz` targets in `fuzz/` (README "Fuzzing"): what the edge does
//! with untrusted bytes, plus the properties that must hold for any input. They live here so
//! that a unit test runs them over the committed seed corpus and the fuzz crate cannot rot.

use crate::ingest::form::{form_body, parse_form, query_values};
use crate::ingest::inbox_row;
use crate::ingest::parse::{self, ParsedEvent};
use crate::ingest::signature::{body_sha256_hex, compute_signature, RequestValidator};
use secrecy::SecretString;

/// Form parameters the webhooks accept (`MAX_FORM_PARAMS`).
const MAX_PARAMS: usize = 1_000;
const TOKEN: &str = "fuzz-auth-token";
const BASE: &str = "https://baton.example.com";

/// Splits an input into the request's path and query (its first line) and its body.
fn request(data: &[u8]) -> (String, &[u8]) {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    // An HTTP request target never carries a fragment, so none reaches the validator.
    let path: String = String::from_utf8_lossy(first)
        .chars()
        .take_while(|&c| c != '#')
        .filter(|c| !c.is_control())
        .collect();
    (format!("{BASE}/{}", path.trim_start_matches('/')), body)
}

/// Form decoding and signature checks: a form that decodes re-encodes to the same pairs, what
/// is signed with the token validates and nothing else does, and JSON bodies validate only
/// with their own `bodySHA256`.
pub fn form_signature(data: &[u8]) {
    let (url, body) = request(data);
    let validator = RequestValidator::new(vec![SecretString::from(TOKEN.to_owned())]);
    if let Ok(pairs) = parse_form(body, MAX_PARAMS) {
        assert!(pairs.len() <= MAX_PARAMS);
        assert_eq!(
            parse_form(form_body(&pairs).as_bytes(), MAX_PARAMS).as_ref(),
            Ok(&pairs),
            "a decoded form does not re-encode to itself"
        );
        let signature = compute_signature(TOKEN, &url, &pairs);
        assert!(validator.validate_form(&url, &pairs, &signature));
        assert!(!validator.validate_form(&url, &pairs, ""));
        let other = compute_signature("another-token", &url, &pairs);
        assert!(!validator.validate_form(&url, &pairs, &other));
    }
    // A JSON body validates with a signed URL exactly when every `bodySHA256` it carries (at
    // least one) is the body's hash: as received, and with the right hash appended.
    let hash = body_sha256_hex(body);
    let separator = if url.contains('?') { '&' } else { '?' };
    for url in [url.clone(), format!("{url}{separator}bodySHA256={hash}")] {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let claimed = query_values(query, "bodySHA256");
        let expected = !claimed.is_empty() && claimed.iter().all(|v| v.eq_ignore_ascii_case(&hash));
        let signature = compute_signature(TOKEN, &url, &[]);
        assert_eq!(
            validator.validate_json(&url, body, &signature),
            expected,
            "{url}"
        );
    }
}

/// A form body as a TaskRouter callback and as a Conversations webhook: parsing never fails,
/// and the inbox rows are storable.
pub fn form_events(data: &[u8]) {
    let Ok(pairs) = parse_form(data, MAX_PARAMS) else {
        return;
    };
    let token = pairs
        .iter()
        .find(|(k, _)| k == "I-Twilio-Idempotency-Token")
        .map(|(_, v)| v.clone());
    storable(&parse::taskrouter_callback(&pairs, token.clone()));
    storable(&parse::conversations_webhook(&pairs, token));
}

/// Task attributes as TaskRouter sends them (a JSON string in a form field), in a callback and
/// in an Event Streams payload.
pub fn task_attributes(data: &[u8]) {
    let attributes = String::from_utf8_lossy(data).replace('\0', "");
    let pairs: Vec<(String, String)> = [
        ("EventType", "task.created"),
        ("TaskSid", "WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("TaskAttributes", attributes.as_str()),
        ("TimestampMs", "1700000000123"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    storable(&parse::taskrouter_callback(&pairs, None));
    let batch = serde_json::json!([{"id": "CE1", "type": "com.twilio.taskrouter.task.created",
        "data": {"payload": {"eventtype": "task.created", "task_sid": "WT1",
        "timestamp": "2023-11-14T22:13:20.123Z", "task_attributes": attributes}}}]);
    match parse::event_streams_batch(batch.to_string().as_bytes()) {
        Ok(events) => events.iter().for_each(storable),
        Err(e) => panic!("a well-formed batch was refused: {e}"),
    }
}

/// An Event Streams body: a JSON batch of CloudEvents, `data` an object or a string.
pub fn event_streams(data: &[u8]) {
    if let Ok(events) = parse::event_streams_batch(data) {
        events.iter().for_each(storable);
    }
}

/// What Postgres refuses to store: NUL in text, and `\u0000` in JSONB.
fn storable(parsed: &ParsedEvent) {
    let row = inbox_row(parsed);
    let texts = [
        Some(&row.event_key),
        row.natural_key.as_ref(),
        row.event_type.as_ref(),
        row.task_sid.as_ref(),
        row.conversation_sid.as_ref(),
        row.interpret_error.as_ref(),
    ];
    for text in texts.into_iter().flatten() {
        assert!(!text.contains('\0'), "NUL in a text column: {text:?}");
        assert!(
            !text.is_empty() || row.event_key != *text,
            "empty event key"
        );
    }
    for json in [Some(&row.params), row.task_attributes.as_ref()]
        .into_iter()
        .flatten()
    {
        let value: serde_json::Value =
            serde_json::from_str(json.get()).expect("a stored JSON value parses");
        assert!(!has_nul(&value), "JSONB cannot hold \\u0000: {value}");
    }
    let _: serde_json::Value =
        serde_json::from_str(row.event.get()).expect("the typed event serializes");
}

fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of every fuzz target runs through its target (cheap; keeps `fuzz/` honest).
    #[test]
    fn the_seed_corpus_passes_every_target() {
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 4] = [
            ("form_signature", form_signature),
            ("form_events", form_events),
            ("task_attributes", task_attributes),
            ("event_streams", event_streams),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        for (target, run) in targets {
            let dir = root.join(target);
            let mut seeds = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.expect("seed").path();
                run(&std::fs::read(&path).expect("read seed"));
                seeds += 1;
            }
            assert!(seeds >= 3, "{target}: only {seeds} seeds");
        }
    }
}
