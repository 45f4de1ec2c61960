//! Strict `application/x-www-form-urlencoded` parsing for Twilio webhook bodies, and the
//! matching encoder ([`form_body`]) for the bodies baton's tests and load tools send.
//!
//! Twilio signs the *decoded* body pairs, so decoding must be exact: no lossy
//! UTF-8 replacement (that would silently change what we verify), and repeated
//! keys stay in arrival order because every one of them is signed.
//!
//! Malformed percent escapes such as `%zz` or a trailing `%4` are kept
//! literally, as browsers and the Twilio SDKs' form parsers do; rejecting them
//! would refuse bodies that Twilio itself signed verbatim.

use percent_encoding::percent_decode;
use std::borrow::Cow;

/// Why a form body was rejected. Messages never echo the raw input, so they
/// are safe to log and to return to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    /// Parameter number `field` (0-based, in arrival order) does not decode
    /// to valid UTF-8.
    #[error("form parameter #{field} is not valid UTF-8 after decoding")]
    InvalidUtf8 { field: usize },
    /// A key or value contains U+0000 (raw or `%00`); downstream stores and
    /// logs mishandle it, and Twilio never sends it.
    #[error("form data contains a NUL character")]
    NulCharacter,
    /// More than `limit` parameters; bounds the work done per request.
    #[error("form data has more than {limit} parameters")]
    TooManyParams { limit: usize },
}

/// Parses a form body into decoded `(key, value)` pairs in arrival order.
///
/// Splits on `&`, skips empty segments, splits each segment on its first `=`
/// (a segment without `=` is a key with an empty value), turns `+` into a
/// space, percent-decodes to bytes, then requires valid UTF-8 and no NUL.
/// A malformed escape (`%zz`, `%4`) is kept literally, matching browsers and
/// Twilio's SDKs. Repeated keys are all kept, in order.
pub fn parse_form(body: &[u8], max_params: usize) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    for (field, segment) in body
        .split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        // Checked before decoding so an oversized body costs no decode work.
        if field >= max_params {
            return Err(FormError::TooManyParams { limit: max_params });
        }
        let (raw_key, raw_value) = split_pair(segment);
        let key = decode_strict(raw_key, field)?;
        let value = decode_strict(raw_value, field)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Values of `key` in a raw query string (no leading `?`), decoded like
/// [`parse_form`], in order of appearance.
///
/// The return type cannot carry an error, so a value that is not valid UTF-8
/// is decoded lossily (U+FFFD) rather than dropped: a caller that requires
/// every occurrence to match (e.g. `bodySHA256`) still sees the bad one.
pub fn query_values(query: &str, key: &str) -> Vec<String> {
    query
        .as_bytes()
        .split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .filter_map(|segment| {
            let (raw_key, raw_value) = split_pair(segment);
            if *decode_bytes(raw_key) != *key.as_bytes() {
                return None;
            }
            Some(String::from_utf8_lossy(&decode_bytes(raw_value)).into_owned())
        })
        .collect()
}

/// Encodes `(key, value)` pairs, in order, as an `application/x-www-form-urlencoded` body:
/// the counterpart of [`parse_form`], which decodes it back to the same pairs.
pub fn form_body(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

/// Splits on the first `=`; a missing `=` means an empty value.
fn split_pair(segment: &[u8]) -> (&[u8], &[u8]) {
    match segment.iter().position(|&b| b == b'=') {
        Some(i) => (&segment[..i], &segment[i + 1..]),
        None => (segment, &[]),
    }
}

/// `+` -> space, then percent-decode; malformed escapes pass through as-is. Borrows `raw` when
/// there is nothing to decode (most keys and SIDs).
fn decode_bytes(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'+') {
        return percent_decode(raw).into();
    }
    // `+` must become a space *before* percent-decoding so `%2B` stays a `+`.
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    Cow::Owned(percent_decode(&spaced).collect())
}

fn decode_strict(raw: &[u8], field: usize) -> Result<String, FormError> {
    let invalid = |_| FormError::InvalidUtf8 { field };
    let text = match decode_bytes(raw) {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes).map_err(invalid)?.to_owned(),
        Cow::Owned(bytes) => String::from_utf8(bytes).map_err(|e| invalid(e.utf8_error()))?,
    };
    if text.contains('\0') {
        return Err(FormError::NulCharacter);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decodes_plus_and_percent() {
        let got = parse_form(b"From=%2B14158675309&Body=hello+world%21&Tag=a%2Bb+c", 10).unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("From", "+14158675309"),
                ("Body", "hello world!"),
                ("Tag", "a+b c"),
            ])
        );
    }

    #[test]
    fn decodes_percent_encoded_keys_and_lowercase_hex() {
        let got = parse_form(b"Na%6de=%c3%a9", 10).unwrap();
        assert_eq!(got, pairs(&[("Name", "é")]));
    }

    #[test]
    fn keeps_repeated_keys_in_order() {
        let got = parse_form(b"Digits=5678&Sid=CA123&Digits=1234&Digits=1234", 10).unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("Digits", "5678"),
                ("Sid", "CA123"),
                ("Digits", "1234"),
                ("Digits", "1234"),
            ])
        );
    }

    #[test]
    fn empty_value_key_without_equals_and_empty_segments() {
        let got = parse_form(b"&&a=&b&=v&c==x&&", 10).unwrap();
        assert_eq!(got, pairs(&[("a", ""), ("b", ""), ("", "v"), ("c", "=x")]));
    }

    #[test]
    fn empty_body_is_no_params() {
        assert_eq!(parse_form(b"", 0).unwrap(), Vec::new());
        assert_eq!(parse_form(b"&&&", 0).unwrap(), Vec::new());
    }

    #[test]
    fn malformed_percent_escapes_are_kept_literally() {
        let got = parse_form(b"a=%zz&b=%4&c=100%&d=%%41", 10).unwrap();
        assert_eq!(
            got,
            pairs(&[("a", "%zz"), ("b", "%4"), ("c", "100%"), ("d", "%A")])
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_lossy() {
        assert_eq!(
            parse_form(b"a=1&b=%FF", 10),
            Err(FormError::InvalidUtf8 { field: 1 })
        );
        assert_eq!(
            parse_form(b"a=\xFF", 10),
            Err(FormError::InvalidUtf8 { field: 0 })
        );
        assert_eq!(
            parse_form(b"ok=1&%C3=x", 10),
            Err(FormError::InvalidUtf8 { field: 1 })
        );
    }

    #[test]
    fn nul_is_rejected_raw_or_encoded() {
        assert_eq!(parse_form(b"a=x%00y", 10), Err(FormError::NulCharacter));
        assert_eq!(parse_form(b"%00=y", 10), Err(FormError::NulCharacter));
        assert_eq!(parse_form(b"a=x\0", 10), Err(FormError::NulCharacter));
    }

    #[test]
    fn too_many_params() {
        assert_eq!(parse_form(b"a=1&b=2&c=3", 3).unwrap().len(), 3);
        assert_eq!(
            parse_form(b"a=1&b=2&c=3&d=4", 3),
            Err(FormError::TooManyParams { limit: 3 })
        );
        // Empty segments do not count towards the limit.
        assert_eq!(parse_form(b"a=1&&&b=2", 2).unwrap().len(), 2);
        assert_eq!(
            parse_form(b"a=1", 0),
            Err(FormError::TooManyParams { limit: 0 })
        );
    }

    #[test]
    fn error_messages_do_not_echo_input() {
        let secret = "s3cr3tpayload";
        let body = format!("{secret}=%FF");
        let err = parse_form(body.as_bytes(), 10).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        let body = format!("{secret}=%00");
        let err = parse_form(body.as_bytes(), 10).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        assert_eq!(
            FormError::TooManyParams { limit: 7 }.to_string(),
            "form data has more than 7 parameters"
        );
    }

    #[test]
    fn unicode_round_trip() {
        let original = "héllo ✓ España 日本 🎉";
        let encoded: String =
            percent_encoding::utf8_percent_encode(original, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let body = format!("Body={encoded}&Raw={original}");
        let got = parse_form(body.as_bytes(), 10).unwrap();
        assert_eq!(got, pairs(&[("Body", original), ("Raw", original)]));
    }

    #[test]
    fn query_values_finds_all_occurrences() {
        let q = "bodySHA256=ab%43d&foo=1&bodySHA256=x+y&bodysha256=no&body%53HA256=enc";
        assert_eq!(
            query_values(q, "bodySHA256"),
            vec!["abCd".to_string(), "x y".to_string(), "enc".to_string()]
        );
        assert_eq!(query_values(q, "foo"), vec!["1".to_string()]);
        assert!(query_values(q, "missing").is_empty());
        assert_eq!(query_values("flag&x=1", "flag"), vec![String::new()]);
    }

    #[test]
    fn query_values_keeps_invalid_utf8_values_lossily() {
        assert_eq!(query_values("k=%FF", "k"), vec!["\u{FFFD}".to_string()]);
    }

    proptest! {
        #[test]
        fn parse_form_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..64) {
            if let Ok(pairs) = parse_form(&body, max) {
                prop_assert!(pairs.len() <= max);
                for (k, v) in &pairs {
                    prop_assert!(!k.contains('\0') && !v.contains('\0'));
                }
            }
        }

        #[test]
        fn parse_form_never_panics_on_form_like_input(body in "[a-zA-Z0-9%&=+\\x00\\xff]{0,128}") {
            let _ = parse_form(body.as_bytes(), 16);
        }

        #[test]
        fn query_values_never_panics(query in any::<String>(), key in any::<String>()) {
            let _ = query_values(&query, &key);
        }

        #[test]
        fn encoded_pairs_round_trip(items in proptest::collection::vec(("[^\\x00]{0,12}", "[^\\x00]{0,12}"), 0..8)) {
            let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            let body = items
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect::<Vec<_>>()
                .join("&");
            let got = parse_form(body.as_bytes(), 8).unwrap();
            // An all-empty pair encodes as "=" and still parses as ("", "").
            prop_assert_eq!(got, items);
        }

        #[test]
        fn form_body_decodes_to_its_pairs(items in proptest::collection::vec(("[^\\x00]{0,12}", "[^\\x00]{0,12}"), 0..8)) {
            let pairs: Vec<(String, String)> = items;
            prop_assert_eq!(parse_form(form_body(&pairs).as_bytes(), 8).unwrap(), pairs);
        }
    }
}
