//! The console's sign-in session: a signed cookie that says who signed in and until when, and
//! the CSRF token bound to it. The key is derived from the ops token, so changing the token ends
//! every session; nothing is stored server-side, so any replica accepts any session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "baton_session";
/// The header a console action carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

type HmacSha256 = Hmac<Sha256>;

/// Who signed in. A Flex user's token was validated with Twilio at sign-in; the session keeps
/// what Twilio said (identity, roles), never the token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum Who {
    Ops,
    Flex {
        identity: String,
        worker_sid: Option<String>,
        roles: Vec<String>,
    },
}

impl Who {
    /// How the console names the signed-in user.
    pub fn label(&self) -> &str {
        match self {
            Who::Ops => "operations (ops token)",
            Who::Flex { identity, .. } => identity,
        }
    }
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub who: Who,
    /// Unix seconds after which the session is refused.
    pub expires: i64,
    /// Random, per sign-in: what the CSRF token is bound to.
    pub nonce: String,
}

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a cookie this key signed (forged, tampered with, or signed before the ops token
    /// changed).
    Forged,
    Expired,
}

/// Signs and checks sessions.
pub struct SessionKey {
    key: [u8; 32],
}

impl SessionKey {
    pub fn new(ops_token: &SecretString) -> SessionKey {
        let mut mac = mac_with(ops_token.expose_secret().as_bytes());
        mac.update(b"baton console session v1");
        SessionKey {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// A new session for `who`, valid for `ttl` from `now` (unix seconds).
    pub fn start(&self, who: Who, now: i64, ttl: std::time::Duration) -> Session {
        let nonce: [u8; 16] = rand::random();
        Session {
            who,
            expires: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
        }
    }

    /// The cookie's value: the session as JSON, base64url, a dot, and its signature.
    pub fn seal(&self, session: &Session) -> String {
        let body =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_else(|_| b"{}".to_vec()));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(b"session", body.as_bytes()));
        format!("{body}.{signature}")
    }

    /// The session a cookie holds, if this key signed it and it has not expired at `now`.
    pub fn open(&self, cookie: &str, now: i64) -> Result<Session, Refused> {
        let (body, signature) = cookie.split_once('.').ok_or(Refused::Forged)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refused::Forged)?;
        let expected = self.sign(b"session", body.as_bytes());
        if !bool::from(expected.as_slice().ct_eq(&signature)) {
            return Err(Refused::Forged);
        }
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| Refused::Forged)?;
        let session: Session = serde_json::from_slice(&json).map_err(|_| Refused::Forged)?;
        if session.expires <= now {
            return Err(Refused::Expired);
        }
        Ok(session)
    }

    /// The session's CSRF token: what a console action must send back in [`CSRF_HEADER`] (or
    /// a form's `csrf` field). A page can read it; another site cannot.
    pub fn csrf_token(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(self.sign(b"csrf", session.nonce.as_bytes()))
    }

    /// Whether `token` is the session's CSRF token.
    pub fn csrf_matches(&self, session: &Session, token: &str) -> bool {
        bool::from(self.csrf_token(session).as_bytes().ct_eq(token.as_bytes()))
    }

    fn sign(&self, purpose: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = mac_with(&self.key);
        mac.update(purpose);
        mac.update(b":");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(token: &str) -> SessionKey {
        SessionKey::new(&SecretString::from(token.to_owned()))
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let k = key("0123456789abcdef0123");
        let session = k.start(Who::Ops, 1_000, Duration::from_secs(60));
        let cookie = k.seal(&session);
        assert_eq!(k.open(&cookie, 1_059), Ok(session));
        assert_eq!(k.open(&cookie, 1_060), Err(Refused::Expired));
    }

    #[test]
    fn a_tampered_or_foreign_cookie_is_refused() {
        let k = key("0123456789abcdef0123");
        let session = k.start(Who::Ops, 1_000, Duration::from_secs(60));
        let cookie = k.seal(&session);
        let (body, signature) = cookie.split_once('.').unwrap();
        // A longer life, signed with the old signature.
        let mut forged = session.clone();
        forged.expires += 3600;
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            k.open(&format!("{forged_body}.{signature}"), 1_000),
            Err(Refused::Forged)
        );
        assert_eq!(k.open(body, 1_000), Err(Refused::Forged));
        assert_eq!(k.open("", 1_000), Err(Refused::Forged));
        // Signed under another ops token.
        assert_eq!(
            key("another-token-entirely").open(&cookie, 1_000),
            Err(Refused::Forged)
        );
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let k = key("0123456789abcdef0123");
        let a = k.start(Who::Ops, 0, Duration::from_secs(60));
        let b = k.start(Who::Ops, 0, Duration::from_secs(60));
        assert!(k.csrf_matches(&a, &k.csrf_token(&a)));
        assert!(!k.csrf_matches(&a, &k.csrf_token(&b)));
        assert!(!k.csrf_matches(&a, ""));
    }
}
