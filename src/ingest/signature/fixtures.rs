//! What the signature tests share: the helper libraries' fixtures and checks.

use super::*;
pub(super) const TOKEN: &str = "12345";
pub(super) const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
pub(super) const B: &str = r#"{"property": "value", "boolean": true}"#;
pub(super) const HB: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
pub(super) const RSOY: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

pub(super) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Shared SDK fixture `P` (§1.4).
pub(super) fn p() -> Vec<(String, String)> {
    pairs(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ])
}

/// twilio-go fixture `GP` = `P` + two `Reason*` params (§1.5.3).
pub(super) fn gp() -> Vec<(String, String)> {
    let mut v = p();
    v.extend(pairs(&[
        ("ReasonConferenceEnded", "test"),
        ("Reason", "Participant"),
    ]));
    v
}

pub(super) fn validator(token: &str) -> RequestValidator {
    RequestValidator::new(vec![SecretString::from(token)])
}

pub(super) fn check_form(
    id: &str,
    token: &str,
    url: &str,
    params: &[(String, String)],
    sig: &str,
    expected: bool,
) {
    assert_eq!(
        validator(token).validate_form(url, params, sig),
        expected,
        "vector {id}: validate_form({url:?}, sig {sig:?}) should be {expected}"
    );
}

pub(super) fn check_json(id: &str, token: &str, url: &str, body: &[u8], sig: &str, expected: bool) {
    assert_eq!(
        validator(token).validate_json(url, body, sig),
        expected,
        "vector {id}: validate_json({url:?}, sig {sig:?}) should be {expected}"
    );
}

/// Simple `k=v&k=v` split for fixtures that have no escapes.
pub(super) fn split_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .map(|seg| {
            let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub(super) fn url_with_hash(base: &str, hash: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}bodySHA256={hash}")
}
