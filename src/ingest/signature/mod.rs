//! Twilio `X-Twilio-Signature` validation.
//!
//! Signature = Base64(HMAC-SHA1(auth_token, url + sorted key/value pairs)).
//! Twilio signs the URL string it called, so we hash the URL exactly as
//! received first and only then try the variants the official SDKs accept
//! (default port toggled, `'` <-> `%27` in the query). We never parse and
//! re-serialise the URL: that lowercases hosts and re-encodes bytes, which is
//! the classic cause of false rejections.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

pub type HmacSha1 = Hmac<Sha1>;

/// Validates Twilio webhook signatures against one or more auth tokens.
pub struct RequestValidator {
    tokens: Vec<SecretString>,
}

impl RequestValidator {
    /// Any of the tokens may match (rotation: old and new token both valid).
    ///
    /// Empty tokens are ignored when validating: an empty HMAC key would let
    /// anyone forge signatures, so a misconfigured token must not open the door.
    pub fn new(tokens: Vec<SecretString>) -> Self {
        Self { tokens }
    }

    /// Form-encoded request. `url` = the full URL as Twilio called it
    /// (scheme://authority + raw path + raw query, exactly as received, no
    /// fragment). `params` = the decoded body pairs, repeated keys kept, in
    /// arrival order.
    pub fn validate_form(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        self.signature_matches(url, params, signature)
    }

    /// JSON body: valid only if the URL's query carries `bodySHA256` equal
    /// (constant-time, case-insensitive hex) to hex(sha256(body)) AND the
    /// URL-only signature (no params) matches. No `bodySHA256` -> false. If
    /// `bodySHA256` appears several times, all values must match.
    pub fn validate_json(&self, url: &str, body: &[u8], signature: &str) -> bool {
        let claimed = body_sha256_values(url);
        if claimed.is_empty() {
            return false;
        }
        let actual = body_sha256_hex(body);
        let mut hash_ok = Choice::from(1u8);
        for value in &claimed {
            hash_ok &= value.to_ascii_lowercase().ct_eq(actual.as_bytes());
        }
        // Non-short-circuit `&`: the signature check runs whatever the hash says.
        bool::from(hash_ok) & self.signature_matches(url, &[], signature)
    }

    fn signature_matches(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        if signature.is_empty() {
            return false;
        }
        let suffix = params_suffix(params);
        let mut matched = Choice::from(0u8);
        // Every candidate x token pair is checked (no early exit) so timing
        // does not reveal which variant or token matched.
        for candidate in candidate_urls(url) {
            for token in &self.tokens {
                let key = token.expose_secret().as_bytes();
                if key.is_empty() {
                    continue;
                }
                // The message is the URL then the sorted pairs, fed in two pieces.
                let mut mac = keyed_mac(key);
                mac.update(candidate.as_bytes());
                mac.update(&suffix);
                matched |= finish_signature(mac).as_bytes().ct_eq(signature.as_bytes());
            }
        }
        matched.into()
    }
}

impl std::fmt::Debug for RequestValidator {
    // Only the count: tokens are secrets and must never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestValidator")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// Base64(HMAC-SHA1(token, url + sorted params)). Used by tests and the load
/// generator to sign requests.
pub fn compute_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    sign(token.as_bytes(), &signed_message(url, params))
}

/// What a form request's signature is the HMAC of: the URL, then each `key+value` sorted.
pub fn signed_message(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut message = url.as_bytes().to_vec();
    message.extend_from_slice(&params_suffix(params));
    message
}

/// An HMAC-SHA1 keyed with `token`, for a signer that feeds [`signed_message`] in pieces (the
/// load generator, whose callbacks differ in a few values); [`finish_signature`] encodes it.
pub fn keyed_mac(key: &[u8]) -> HmacSha1 {
    // Infallible: HMAC takes keys of any length (longer ones are hashed first).
    <HmacSha1 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// The `X-Twilio-Signature` value of a [`keyed_mac`] fed the whole message.
pub fn finish_signature(mac: HmacSha1) -> String {
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Lowercase hex SHA-256 of the raw body, as Twilio puts in `bodySHA256`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Candidate URLs in the order tried: (a) as received, (b) default port
/// toggled by editing ONLY the authority (https: add `:443` when no port,
/// http: add `:80`; when any port is present strip it), then (c) re-encoded
/// quote variants of (a) and (b): `'` in the query percent-encoded as `%27`,
/// and `%27` decoded to `'` (node's leniency; only added when they differ).
/// No duplicates.
pub fn candidate_urls(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some(toggled) = toggle_default_port(url) {
        push_unique(&mut out, toggled);
    }
    let base_len = out.len();
    for i in 0..base_len {
        let encoded = replace_in_query(&out[i], "'", "%27");
        let decoded = replace_in_query(&out[i], "%27", "'");
        push_unique(&mut out, encoded);
        push_unique(&mut out, decoded);
    }
    out
}

fn push_unique(out: &mut Vec<String>, candidate: String) {
    if !out.contains(&candidate) {
        out.push(candidate);
    }
}

fn sign(key: &[u8], message: &[u8]) -> String {
    let mut mac = keyed_mac(key);
    mac.update(message);
    finish_signature(mac)
}

/// `key+value` for each pair, sorted by key bytes then value bytes, exact
/// duplicates dropped (Python/Node/PHP SDK behaviour for repeated keys).
fn params_suffix(params: &[(String, String)]) -> Vec<u8> {
    // `str` ordering is byte order, which is Twilio's "Unix-style" sort.
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(sorted.iter().map(|(k, v)| k.len() + v.len()).sum());
    for (k, v) in sorted {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Byte range of the query (after `?`, before any `#`).
fn query_range(url: &str) -> Option<(usize, usize)> {
    let start = url.find('?')? + 1;
    let end = url[start..].find('#').map_or(url.len(), |i| start + i);
    Some((start, end))
}

fn replace_in_query(url: &str, from: &str, to: &str) -> String {
    match query_range(url) {
        Some((start, end)) => {
            let query = url[start..end].replace(from, to);
            format!("{}{}{}", &url[..start], query, &url[end..])
        }
        None => url.to_owned(),
    }
}

/// Decoded `bodySHA256` values from the URL query (form decoding, as [`super::form`] does).
fn body_sha256_values(url: &str) -> Vec<Vec<u8>> {
    let Some((start, end)) = query_range(url) else {
        return Vec::new();
    };
    super::form::query_values(&url[start..end], "bodySHA256")
        .into_iter()
        .map(String::into_bytes)
        .collect()
}

/// The URL with its default port added (none present) or its port removed
/// (any present), editing only the authority's port. `None` when the scheme
/// is not http(s) or the authority cannot be parsed safely.
fn toggle_default_port(url: &str) -> Option<String> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return None;
    };
    let auth_start = colon + 1 + "//".len();
    if !url[colon + 1..].starts_with("//") {
        return None;
    }
    let auth_end = url[auth_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| auth_start + i);
    let authority = &url[auth_start..auth_end];
    // Userinfo ends at the last '@'; everything after is host[:port].
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];

    // Length of the host within host_port, and whether a port follows it.
    let (host_len, has_port) = if host_port.starts_with('[') {
        // IPv6 literal: the port can only follow the closing bracket.
        let close = host_port.find(']')?;
        match &host_port[close + 1..] {
            "" => (close + 1, false),
            rest => {
                let port = rest.strip_prefix(':')?;
                if !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (close + 1, true)
            }
        }
    } else {
        match host_port.find(':') {
            None => (host_port.len(), false),
            Some(i) => {
                // Rejects extra colons too (unbracketed IPv6, garbage).
                if !host_port[i + 1..].bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (i, true)
            }
        }
    };
    if host_len == 0 {
        return None;
    }
    let host_end = auth_start + host_start + host_len;
    Some(if has_port {
        format!("{}{}", &url[..host_end], &url[auth_end..])
    } else {
        format!("{}:{}{}", &url[..auth_end], default_port, &url[auth_end..])
    })
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tampering;
#[cfg(test)]
mod vectors;
