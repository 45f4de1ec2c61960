//! Every tampered request fails; the URLs a request may have been signed under.

use super::fixtures::*;
use super::vectors::*;
use super::*;
use proptest::prelude::*;

// ---- tampering ---------------------------------------------------------

#[test]
fn tamper_param_values_additions_and_removals() {
    for (id, url, params, sig) in [
        ("C1", U, p(), RSOY),
        ("D1", D1_URL, d1_params(), D1_SIG),
        (
            "D5",
            "https://example.com/s",
            pairs(&[("Body", "héllo ✓")]),
            "GIPjDAJJGLwtOpDhzW76Kw+7sy4=",
        ),
    ] {
        check_form(id, TOKEN, url, &params, sig, true);
        for i in 0..params.len() {
            let mut changed = params.clone();
            changed[i].1.push('x');
            check_form(
                &format!("{id} value {i} changed"),
                TOKEN,
                url,
                &changed,
                sig,
                false,
            );
            let mut renamed = params.clone();
            renamed[i].0.push('x');
            check_form(
                &format!("{id} key {i} changed"),
                TOKEN,
                url,
                &renamed,
                sig,
                false,
            );
            let mut removed = params.clone();
            removed.remove(i);
            check_form(
                &format!("{id} param {i} removed"),
                TOKEN,
                url,
                &removed,
                sig,
                false,
            );
        }
        let mut added = params.clone();
        added.push(("Extra".into(), "1".into()));
        check_form(&format!("{id} param added"), TOKEN, url, &added, sig, false);
        let mut added_empty = params.clone();
        added_empty.push(("Extra".into(), String::new()));
        check_form(
            &format!("{id} empty param added"),
            TOKEN,
            url,
            &added_empty,
            sig,
            false,
        );
        check_form(
            &format!("{id} other token"),
            "54321",
            url,
            &params,
            sig,
            false,
        );
    }
    // Unicode: a different but similar-looking value fails.
    let lookalike = pairs(&[("Body", "he\u{301}llo ✓")]);
    check_form(
        "D5 NFD lookalike",
        TOKEN,
        "https://example.com/s",
        &lookalike,
        "GIPjDAJJGLwtOpDhzW76Kw+7sy4=",
        false,
    );
}

#[test]
fn tamper_repeated_keys() {
    let sig = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
    // Duplicates are dropped, so order and repetition do not matter...
    let reordered = pairs(&[
        ("Digits", "1234"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Sid", "CA123"),
    ]);
    check_form("C6 reordered", TOKEN, U, &reordered, sig, true);
    // ...but a missing or extra distinct value does.
    let missing = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "1234"),
    ]);
    check_form("C6 value missing", TOKEN, U, &missing, sig, false);
    let extra = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "9999"),
    ]);
    check_form("C6 extra value", TOKEN, U, &extra, sig, false);
    let n7 = pairs(&[("MessagingBinding.Address", "+1325xxxxxxx")]);
    check_form(
        "N7 one value dropped",
        TOKEN,
        U,
        &n7,
        "83O6e2vORAoJHUNzJjDWN1jz+BA=",
        false,
    );
}

#[test]
fn tamper_every_url_character() {
    for (id, url, params, sig) in [
        ("C1", U, p(), RSOY),
        (
            "C3",
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            p(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
        (
            "N3",
            "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
            p(),
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
        ),
    ] {
        for (i, c) in url.char_indices() {
            let replacement = if c == 'X' { "Y" } else { "X" };
            let mut mutated = url.to_string();
            mutated.replace_range(i..i + c.len_utf8(), replacement);
            check_form(
                &format!("{id} URL char {i} changed"),
                TOKEN,
                &mutated,
                &params,
                sig,
                false,
            );
        }
        check_form(
            &format!("{id} trailing slash"),
            TOKEN,
            &format!("{url}/"),
            &params,
            sig,
            false,
        );
    }
    // Host case is signed (CS1/CS2).
    check_form(
        "C1 host uppercased",
        TOKEN,
        "https://MYCOMPANY.com/myapp.php?foo=1&bar=2",
        &p(),
        RSOY,
        false,
    );
}

#[test]
fn tamper_port() {
    check_form(
        "C3 port 1234->1235",
        TOKEN,
        "http://mycompany.com:1235/myapp.php?foo=1&bar=2",
        &p(),
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        false,
    );
    check_form(
        "C3 port removed",
        TOKEN,
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &p(),
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        false,
    );
    check_form(
        "CS10 port 1234->4321",
        TOKEN,
        "https://mycompany.com:4321/myapp.php?foo=1&bar=2",
        &p(),
        "CYn1h0gLBdNxDGkKJg6hYohgeD8=",
        false,
    );
    check_form(
        "D1 :443 sig on :8443",
        TOKEN,
        "https://example.com:8443/twilio/taskrouter/events",
        &d1_params(),
        D1_SIG_443,
        false,
    );
    check_form(
        "C4 :443 sig on :80",
        TOKEN,
        "https://mycompany.com:80/myapp.php?foo=1&bar=2",
        &p(),
        "kvajT1Ptam85bY51eRf/AJRuM3w=",
        false,
    );
    check_form(
        "C5 :80 sig on https",
        TOKEN,
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        &p(),
        "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        false,
    );
}

#[test]
fn tamper_json_body_and_hash() {
    let url = url_with_hash(U, HB);
    let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
    check_json("C8", TOKEN, &url, B.as_bytes(), sig, true);
    for i in 0..B.len() {
        let mut body = B.as_bytes().to_vec();
        body[i] ^= 0x01;
        check_json(
            &format!("C8 body byte {i} flipped"),
            TOKEN,
            &url,
            &body,
            sig,
            false,
        );
    }
    let mut longer = B.as_bytes().to_vec();
    longer.push(b'\n');
    check_json("C8 trailing newline", TOKEN, &url, &longer, sig, false);
    check_json("C8 other token", "54321", &url, B.as_bytes(), sig, false);
    check_json("C8 empty signature", TOKEN, &url, B.as_bytes(), "", false);
    // A JSON request's URL signature must not validate with params attached.
    check_form("C8 as form with params", TOKEN, &url, &p(), sig, false);
    // Truncated hash (node middleware test: last char dropped).
    let truncated = url_with_hash(U, &HB[..HB.len() - 1]);
    let sig_t = compute_signature(TOKEN, &truncated, &[]);
    check_json(
        "C8 truncated hash",
        TOKEN,
        &truncated,
        B.as_bytes(),
        &sig_t,
        false,
    );
}

#[test]
fn json_hash_is_case_insensitive_and_all_occurrences_must_match() {
    let upper = url_with_hash(U, &HB.to_ascii_uppercase());
    let sig = compute_signature(TOKEN, &upper, &[]);
    check_json("uppercase hex", TOKEN, &upper, B.as_bytes(), &sig, true);

    let twice = format!("{U}&bodySHA256={HB}&bodySHA256={}", HB.to_ascii_uppercase());
    let sig = compute_signature(TOKEN, &twice, &[]);
    check_json(
        "bodySHA256 twice (php#861)",
        TOKEN,
        &twice,
        B.as_bytes(),
        &sig,
        true,
    );

    let mixed = format!("{U}&bodySHA256={HB}&bodySHA256=deadbeef");
    let sig = compute_signature(TOKEN, &mixed, &[]);
    check_json(
        "bodySHA256 one bad value",
        TOKEN,
        &mixed,
        B.as_bytes(),
        &sig,
        false,
    );

    let empty = format!("{U}&bodySHA256=");
    let sig = compute_signature(TOKEN, &empty, &[]);
    check_json("bodySHA256 empty", TOKEN, &empty, b"", &sig, false);

    // Key match is exact: another casing is not the hash parameter.
    let lower_key = format!("{U}&bodysha256={HB}");
    let sig = compute_signature(TOKEN, &lower_key, &[]);
    check_json(
        "bodysha256 wrong key case",
        TOKEN,
        &lower_key,
        B.as_bytes(),
        &sig,
        false,
    );

    // A right hash with a wrong signature still fails.
    check_json(
        "C8 hash ok, bad sig",
        TOKEN,
        &url_with_hash(U, HB),
        B.as_bytes(),
        RSOY,
        false,
    );
}

#[test]
fn token_rotation() {
    let both = RequestValidator::new(vec![
        SecretString::from("wrong-old-token"),
        SecretString::from(TOKEN),
    ]);
    assert!(
        both.validate_form(U, &p(), RSOY),
        "vector C1 with second token right"
    );
    assert!(
        both.validate_json(
            &url_with_hash(U, HB),
            B.as_bytes(),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ),
        "vector C8 with second token right"
    );
    let first = RequestValidator::new(vec![SecretString::from(TOKEN), SecretString::from("other")]);
    assert!(
        first.validate_form(U, &p(), RSOY),
        "vector C1 with first token right"
    );
    let neither = RequestValidator::new(vec![SecretString::from("a"), SecretString::from("b")]);
    assert!(
        !neither.validate_form(U, &p(), RSOY),
        "vector C1 with no token right"
    );
    let none = RequestValidator::new(Vec::new());
    assert!(
        !none.validate_form(U, &p(), RSOY),
        "vector C1 with no tokens"
    );
}

#[test]
fn empty_token_never_validates() {
    let sig = compute_signature("", U, &p());
    let v = RequestValidator::new(vec![SecretString::from("")]);
    assert!(
        !v.validate_form(U, &p(), &sig),
        "empty token must be ignored"
    );
}

#[test]
fn debug_hides_tokens() {
    let v = RequestValidator::new(vec![
        SecretString::from("topsecret1"),
        SecretString::from("topsecret2"),
    ]);
    let shown = format!("{v:?}");
    assert_eq!(shown, "RequestValidator { tokens: 2 }");
    assert!(!format!("{v:#?}").contains("topsecret"));
}

// ---- candidate URLs ---------------------------------------------------

fn cands(url: &str) -> Vec<String> {
    candidate_urls(url)
}

#[test]
fn candidates_port_toggle() {
    assert_eq!(
        cands(U),
        vec![U, "https://mycompany.com:443/myapp.php?foo=1&bar=2"]
    );
    assert_eq!(
        cands("http://mycompany.com/x"),
        vec!["http://mycompany.com/x", "http://mycompany.com:80/x"]
    );
    assert_eq!(
        cands("https://mycompany.com:1234/x?y"),
        vec![
            "https://mycompany.com:1234/x?y",
            "https://mycompany.com/x?y"
        ]
    );
    assert_eq!(cands("https://h:443"), vec!["https://h:443", "https://h"]);
    assert_eq!(cands("https://h"), vec!["https://h", "https://h:443"]);
    assert_eq!(
        cands("https://h?q=1"),
        vec!["https://h?q=1", "https://h:443?q=1"]
    );
    assert_eq!(cands("https://h#f"), vec!["https://h#f", "https://h:443#f"]);
    // Empty port counts as a port (RFC 3986 allows it).
    assert_eq!(cands("https://h:/p"), vec!["https://h:/p", "https://h/p"]);
}

#[test]
fn candidates_userinfo_ipv6_and_scheme_case() {
    assert_eq!(
        cands("https://user:pass@host/p?q"),
        vec![
            "https://user:pass@host/p?q",
            "https://user:pass@host:443/p?q"
        ]
    );
    assert_eq!(
        cands("https://user:pass@host:8443/p"),
        vec!["https://user:pass@host:8443/p", "https://user:pass@host/p"]
    );
    // '@' inside userinfo: the host starts after the last one.
    assert_eq!(
        cands("https://a@b:c@host/p"),
        vec!["https://a@b:c@host/p", "https://a@b:c@host:443/p"]
    );
    assert_eq!(
        cands("https://[::1]:8443/p"),
        vec!["https://[::1]:8443/p", "https://[::1]/p"]
    );
    assert_eq!(
        cands("http://[::1]/p"),
        vec!["http://[::1]/p", "http://[::1]:80/p"]
    );
    assert_eq!(
        cands("https://u@[fe80::1%25eth0]/"),
        vec![
            "https://u@[fe80::1%25eth0]/",
            "https://u@[fe80::1%25eth0]:443/"
        ]
    );
    assert_eq!(
        cands("HTTP://u:p@MyCompany.com/A?B=C"),
        vec![
            "HTTP://u:p@MyCompany.com/A?B=C",
            "HTTP://u:p@MyCompany.com:80/A?B=C"
        ]
    );
    assert_eq!(
        cands("HtTpS://MyCompany.COM/"),
        vec!["HtTpS://MyCompany.COM/", "HtTpS://MyCompany.COM:443/"]
    );
}

#[test]
fn candidates_only_as_is_when_unparseable() {
    for url in [
        "",
        "mycompany.com/myapp.php",
        "ftp://host/x",
        "wss://host/x",
        "https:/host/x",
        "https:host",
        "https://",
        "https:///path",
        "https://user@/path",
        "https://:443/p",
        "https://host:abc/p",
        "https://host:1:2/p",
        "https://::1/p",
        "https://[::1/p",
        "https://[::1]x/p",
        "https://[::1]:8a/p",
        "://host",
    ] {
        assert_eq!(cands(url), vec![url.to_string()], "{url:?}");
    }
}

#[test]
fn candidates_quote_variants() {
    assert_eq!(
        cands("https://h/p'x?a=b'c"),
        vec![
            "https://h/p'x?a=b'c",
            "https://h:443/p'x?a=b'c",
            "https://h/p'x?a=b%27c",
            "https://h:443/p'x?a=b%27c",
        ]
    );
    assert_eq!(
        cands("https://h:443/p?a=b%27c"),
        vec![
            "https://h:443/p?a=b%27c",
            "https://h/p?a=b%27c",
            "https://h:443/p?a=b'c",
            "https://h/p?a=b'c",
        ]
    );
    // Both forms present: both rewrites differ from the original.
    assert_eq!(
        cands("wss://h/?a='%27"),
        vec!["wss://h/?a='%27", "wss://h/?a=%27%27", "wss://h/?a=''"]
    );
    // Path and fragment are never rewritten.
    assert_eq!(cands("x:/p%27'#'"), vec!["x:/p%27'#'"]);
    assert_eq!(cands("x:/p?'#'"), vec!["x:/p?'#'", "x:/p?%27#'"]);
}

#[test]
fn candidates_never_change_host_path_or_query_bytes() {
    let url = "https://User:Pa%40ss@MyCompany.COM/Path%2F/España/?Q=%2b+x'&Z=%27";
    let c = cands(url);
    assert_eq!(c[0], url);
    assert_eq!(
        c[1],
        "https://User:Pa%40ss@MyCompany.COM:443/Path%2F/España/?Q=%2b+x'&Z=%27"
    );
    assert_eq!(c.len(), 6, "{c:?}");
}

// ---- robustness -----------------------------------------------------

/// Structured URL pieces plus the port-toggled URL we expect, if any.
fn url_strategy() -> impl Strategy<Value = (String, Option<String>)> {
    (
        prop_oneof![
            Just("https"),
            Just("http"),
            Just("HTTPS"),
            Just("HtTp"),
            Just("ftp"),
            Just("")
        ],
        prop_oneof![Just(""), Just("user@"), Just("user:pass@"), Just("a@b@")],
        prop_oneof![
            Just("example.com".to_string()),
            Just("MyCompany.COM".to_string()),
            Just("[::1]".to_string()),
            "[a-zA-Z0-9.-]{1,12}",
        ],
        proptest::option::of("[0-9]{0,5}"),
        "(/[a-zA-Z0-9%'._~-]{0,8}){0,3}",
        prop_oneof![Just(String::new()), "\\?[a-zA-Z0-9%'=&+]{0,16}"],
    )
        .prop_map(|(scheme, user, host, port, path, query)| {
            let port_part = port.as_ref().map_or(String::new(), |p| format!(":{p}"));
            let url = format!("{scheme}://{user}{host}{port_part}{path}{query}");
            let default = if scheme.eq_ignore_ascii_case("https") {
                Some("443")
            } else if scheme.eq_ignore_ascii_case("http") {
                Some("80")
            } else {
                None
            };
            let toggled = default.map(|d| match port {
                Some(_) => format!("{scheme}://{user}{host}{path}{query}"),
                None => format!("{scheme}://{user}{host}:{d}{path}{query}"),
            });
            (url, toggled)
        })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_strings(
        url in any::<String>(),
        sig in any::<String>(),
        token in any::<String>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        params in proptest::collection::vec((any::<String>(), any::<String>()), 0..4),
    ) {
        let v = RequestValidator::new(vec![SecretString::from(token.as_str())]);
        let _ = v.validate_form(&url, &params, &sig);
        let _ = v.validate_json(&url, &body, &sig);
        let c = candidate_urls(&url);
        prop_assert_eq!(&c[0], &url);
    }

    #[test]
    fn never_panics_on_url_like_strings(url in "[hHtTpPsS:/@\\[\\]0-9a-z?#%'&=.]{0,40}") {
        let c = candidate_urls(&url);
        prop_assert_eq!(&c[0], &url);
        let v = validator(TOKEN);
        let _ = v.validate_json(&url, b"{}", "x");
    }

    #[test]
    fn signed_urls_round_trip(
        (url, _) in url_strategy(),
        params in proptest::collection::vec(("[A-Za-z]{0,6}", "\\PC{0,6}"), 0..5),
    ) {
        let sig = compute_signature(TOKEN, &url, &params);
        prop_assert!(validator(TOKEN).validate_form(&url, &params, &sig));
        prop_assert!(!validator("other").validate_form(&url, &params, &sig));
    }

    #[test]
    fn candidates_toggle_only_the_port((url, toggled) in url_strategy()) {
        let c = candidate_urls(&url);
        prop_assert_eq!(&c[0], &url);
        for (i, a) in c.iter().enumerate() {
            prop_assert!(!c[i + 1..].contains(a), "duplicate {:?} in {:?}", a, c);
        }
        match toggled {
            Some(t) => prop_assert_eq!(&c[1], &t),
            // Unknown scheme: only quote variants may follow the original.
            None => {
                for x in &c {
                    prop_assert_eq!(x.replace("%27", "'"), url.replace("%27", "'"));
                }
            }
        }
    }
}
