//! Signing callbacks as Twilio does, with the auth token baton checks them against.

use anyhow::bail;
use baton::ingest::form::form_body;
use baton::ingest::signature::compute_signature;

/// The token to sign with: the first of a comma-separated list (`TWILIO_AUTH_TOKEN`).
pub fn signing_token(list: &str) -> anyhow::Result<String> {
    let token = list.split(',').next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("--auth-token (TWILIO_AUTH_TOKEN) is empty");
    }
    Ok(token)
}

/// A signed form callback: its `X-Twilio-Signature` (over `signed_url`, the URL Twilio would
/// call) and its body.
pub fn signed_form(token: &str, signed_url: &str, pairs: &[(String, String)]) -> (String, String) {
    (
        compute_signature(token, signed_url, pairs),
        form_body(pairs),
    )
}
