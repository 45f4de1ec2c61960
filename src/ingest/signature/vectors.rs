//! X-Twilio-Signature test vectors from the official helper libraries' own suites and docs.

use super::fixtures::*;
use super::*;

// ---- §1.5.1 core vectors -------------------------------------------

#[test]
fn core_vectors_c1_to_c6() {
    let http_1234 = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
    let https_1234 = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
    let http_plain = "http://mycompany.com/myapp.php?foo=1&bar=2";
    let c6 = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    let rows = [
        ("C1", U, p(), RSOY),
        ("C2", https_1234, p(), RSOY),
        ("C3", http_1234, p(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        ("C4", U, p(), "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("C5", http_plain, p(), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        ("C6", U, c6.clone(), "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
    ];
    for (id, url, params, sig) in &rows {
        check_form(id, TOKEN, url, params, sig, true);
    }
    assert_eq!(
        compute_signature(TOKEN, U, &p()),
        RSOY,
        "vector C1: compute_signature"
    );
    assert_eq!(
        compute_signature(TOKEN, U, &c6),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        "vector C6: compute_signature"
    );
}

#[test]
fn core_vectors_c7_to_c13() {
    assert_eq!(body_sha256_hex(B.as_bytes()), HB, "vector C7: body hash");
    let c8 = url_with_hash(U, HB);
    check_json(
        "C8",
        TOKEN,
        &c8,
        B.as_bytes(),
        "a9nBmqA0ju/hNViExpshrM61xv4=",
        true,
    );
    let c9 = url_with_hash("https://mycompany.com/myapp.php", HB);
    check_json(
        "C9",
        TOKEN,
        &c9,
        B.as_bytes(),
        "y77kIzt2vzLz71DgmJGsen2scGs=",
        true,
    );
    check_json("C10", TOKEN, U, B.as_bytes(), RSOY, false);
    check_json(
        "C11",
        TOKEN,
        "https://mycompany.com/myapp.php",
        B.as_bytes(),
        RSOY,
        false,
    );
    for sig in [
        "WRONG_SIGNATURE",
        "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8=",
        "fake_signature",
        "FAIL",
        "IncorrectSignatureValue123=",
        "", // also stands for Java's null / node's undefined header
    ] {
        check_form(&format!("C12 ({sig:?})"), TOKEN, U, &p(), sig, false);
    }
    // C13: a wrong body hash fails even when the URL signature is right.
    for wrong in ["WRONG_HASH", "WRONG"] {
        let url = url_with_hash(U, wrong);
        let sig = compute_signature(TOKEN, &url, &[]);
        check_json(
            &format!("C13 ({wrong})"),
            TOKEN,
            &url,
            B.as_bytes(),
            &sig,
            false,
        );
    }
}

// ---- §1.5.2 twilio-node ---------------------------------------------

#[test]
fn node_vectors_n1_to_n9() {
    let n1 = url_with_hash(
        U,
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    );
    assert_eq!(
        body_sha256_hex(b"{}"),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "vector N1: hash of {{}}"
    );
    check_json(
        "N1",
        TOKEN,
        &n1,
        b"{}",
        "Ldidvp12m26NI7eqEvxnEpkd9Hc=",
        true,
    );
    // N2: '+' -> %2B and '=' -> %3D are no-ops on a hex hash.
    let n2 = url_with_hash(
        "https://mycompany.com/myapp.php",
        &HB.replace('+', "%2B").replace('=', "%3D"),
    );
    check_json(
        "N2",
        TOKEN,
        &n2,
        B.as_bytes(),
        "y77kIzt2vzLz71DgmJGsen2scGs=",
        true,
    );
    let creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    let user = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    check_form(
        "N3",
        TOKEN,
        creds,
        &p(),
        "CukzLTc1tT5dXEDIHm/tKBanW10=",
        true,
    );
    check_form(
        "N4",
        TOKEN,
        user,
        &p(),
        "2YRLlVAflCqxaNicjMpJcSTgzSs=",
        true,
    );
    check_form(
        "N5",
        TOKEN,
        creds,
        &p(),
        "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
        true,
    );
    let n6 = format!("{U}&Body=It's+amazing");
    check_form("N6", TOKEN, &n6, &p(), "TfZzewPq8wqrGlMfyAud8+/IvJ0=", true);
    check_form(
        "N6 (raw ' form)",
        TOKEN,
        &n6,
        &p(),
        "dsq4Ehbj6cs+KdTkpF5sSSplOWw=",
        true,
    );
    for order in [
        ["+1325xxxxxxx", "+1415xxxxxxx"],
        ["+1415xxxxxxx", "+1325xxxxxxx"],
    ] {
        let params = pairs(&[
            ("MessagingBinding.Address", order[0]),
            ("MessagingBinding.Address", order[1]),
        ]);
        check_form(
            "N7",
            TOKEN,
            U,
            &params,
            "83O6e2vORAoJHUNzJjDWN1jz+BA=",
            true,
        );
    }
    let n8 = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    check_form("N8", TOKEN, U, &n8, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", true);
    check_json("N9", TOKEN, U, B.as_bytes(), RSOY, false);
}

#[test]
pub(super) fn node_webhooks_spec_table() {
    let base = "https://example.com/path?test=param";
    let port = "https://example.com:443/path?test=param";
    let quote = "https://example.com/path?test=param'WithQuote";
    let pct = "https://example.com/path?test=param%27WithQuote";
    // (id, signed URL, its signature, validated URL, expected)
    let rows = [
        (
            "W1",
            base,
            "loLgTitFAoWx57yy5oEU4Hlddzw=",
            "https://example.com/path?test=param2",
            false,
        ),
        ("W2", port, "IdwMFypqvNxti3YgvWWmfcNL26M=", port, true),
        ("W3", port, "IdwMFypqvNxti3YgvWWmfcNL26M=", base, true),
        ("W4", base, "loLgTitFAoWx57yy5oEU4Hlddzw=", base, true),
        ("W5", base, "loLgTitFAoWx57yy5oEU4Hlddzw=", port, true),
        ("W6", quote, "GfI7onHX/KQ2k1oVS3cUTVk4IEw=", quote, true),
        ("W7", quote, "GfI7onHX/KQ2k1oVS3cUTVk4IEw=", pct, true),
        ("W8", pct, "HkuXLxVQ7zHv9LmGpzlLuGaxhJY=", quote, true),
        ("W9", pct, "HkuXLxVQ7zHv9LmGpzlLuGaxhJY=", pct, true),
    ];
    for (id, signed, sig, target, expected) in rows {
        assert_eq!(
            compute_signature("s3cr3t", signed, &[]),
            sig,
            "vector {id}: literal signature"
        );
        check_form(id, "s3cr3t", target, &[], sig, expected);
    }
}

// ---- §1.5.3 twilio-go -----------------------------------------------

#[test]
fn go_vectors_g1_to_g10() {
    let vo = "vOEb5UThFn24KEfnOFLQY2AE5FY=";
    let n2 = "n2xBNyzSW7rfYStDtOFiFMv7qNo=";
    check_form("G1", TOKEN, U, &gp(), vo, true);
    check_form("G2", TOKEN, U, &gp(), "WRONG SIGNATURE", false);
    check_form(
        "G3",
        TOKEN,
        "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
        &gp(),
        vo,
        true,
    );
    check_form(
        "G4",
        TOKEN,
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &gp(),
        n2,
        true,
    );
    check_form(
        "G5",
        TOKEN,
        "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
        &gp(),
        n2,
        true,
    );
    check_form("G6", TOKEN, U, &gp(), "95+Bu0JVPi0r/SsESZCVf0dWAjw=", false);
    check_json(
        "G7",
        TOKEN,
        &url_with_hash(U, HB),
        B.as_bytes(),
        "a9nBmqA0ju/hNViExpshrM61xv4=",
        true,
    );
    let g8 = split_form("property=value&boolean=true");
    check_form("G8", TOKEN, U, &g8, "NBdBDr/T/lgjI+tlgpXjKZQZs/k=", true);
    check_json("G9", TOKEN, U, B.as_bytes(), vo, false);
    let g10 = url_with_hash("https://mycompany.com/myapp.php", HB);
    check_json(
        "G10",
        TOKEN,
        &g10,
        B.as_bytes(),
        "y77kIzt2vzLz71DgmJGsen2scGs=",
        true,
    );
}

// ---- §1.5.4 twilio-java ---------------------------------------------

#[test]
fn java_vectors_j1_to_j12() {
    check_form("J1", TOKEN, U, &[], "zYQTYrRWXE7LtzbG4PfP7/bkkGo=", true);
    check_form(
        "J2",
        TOKEN,
        "https://mycompany.com/myapp.php",
        &p(),
        "1xaxFBvyzXYvWplzNOSs28HWO94=",
        true,
    );
    let j3 = "https://mycompany.com/myapp.php?foo=1&bar=2&type=thiswontbeusedinthesignaturegeneratorandsoshouldbeignored";
    check_form("J3", TOKEN, j3, &p(), "hYkNsTBttoNGkyCS0p+wWmQoRTg=", true);
    let j4 = "https://mycompany.com/myapp.php?foo=hello%20world&bar=test%2Bvalue";
    check_form("J4", TOKEN, j4, &p(), "er2tvAP1Wx+iuTTE2BPgvEaN1cs=", true);
    let j5 = pairs(&[
        ("Message", "Hello & goodbye! @#$%^*()"),
        ("From", "+1 (415) 867-5309"),
        ("Special", "unicode: ñáéíóú"),
    ]);
    check_form("J5", TOKEN, U, &j5, "dCPiR4WtQ6QFN6pJh81CtlCcWLQ=", true);
    let j6 = pairs(&[
        ("Digits", ""),
        ("CallSid", "CA1234567890ABCDE"),
        ("EmptyParam", ""),
    ]);
    check_form("J6", TOKEN, U, &j6, "9HHp/OqQMEwdrVebHDdA/+tqjX8=", true);
    // J7: Java's null values are signed as empty strings.
    let j7 = pairs(&[
        ("Digits", ""),
        ("CallSid", "CA1234567890ABCDE"),
        ("NullParam", ""),
    ]);
    check_form("J7", TOKEN, U, &j7, "L9lTTwIlxM1xGAtLRwhOSZggRhM=", true);
    let j8 = pairs(&[
        ("Zebra", "last"),
        ("Alpha", "first"),
        ("Beta", "second"),
        ("Gamma", "third"),
    ]);
    check_form("J8", TOKEN, U, &j8, "enveUe73ZTVLAekHxez3Qx6JuuQ=", true);
    let j9_raw = "https://mycompany.com/webhook/España?año=2023";
    let j9_pct = "https://mycompany.com/webhook/Espa%C3%B1a?a%C3%B1o=2023";
    check_form(
        "J9",
        TOKEN,
        j9_raw,
        &p(),
        "G/Hx6mqqnjUNlPAoi2Sp9bGst0g=",
        true,
    );
    // We never re-encode, so the percent-encoded URL's signature must not
    // validate the raw URL (and vice versa).
    check_form(
        "J9 (encoded sig on raw URL)",
        TOKEN,
        j9_raw,
        &p(),
        "Qjt0wG+2fkeGQbRrhsKrXXNbqyA=",
        false,
    );
    check_form(
        "J9 (encoded URL as-is)",
        TOKEN,
        j9_pct,
        &p(),
        "Qjt0wG+2fkeGQbRrhsKrXXNbqyA=",
        true,
    );
    check_form(
        "J9 (raw sig on encoded URL)",
        TOKEN,
        j9_pct,
        &p(),
        "G/Hx6mqqnjUNlPAoi2Sp9bGst0g=",
        false,
    );
    let j10 = pairs(&[
        ("callSid", "lowercase"),
        ("CallSid", "uppercase"),
        ("CALLSID", "allcaps"),
    ]);
    check_form("J10", TOKEN, U, &j10, "jDK7WKT8wiNrwggd4ceTv4e1MJ4=", true);
    let j11 = "https://mycompany.com:443//myapp.php?foo=1&bar=2";
    check_form(
        "J11",
        TOKEN,
        j11,
        &p(),
        "A9lH3u16NjyiiM/+wylw5rirFUs=",
        true,
    );
    check_json("J12", TOKEN, U, B.as_bytes(), RSOY, false);
}

// ---- §1.5.5 twilio-ruby -----------------------------------------------

#[test]
fn ruby_vectors_r1_r2() {
    let creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    let user = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    check_form(
        "R1",
        TOKEN,
        creds,
        &p(),
        "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
        true,
    );
    check_form(
        "R2",
        TOKEN,
        user,
        &p(),
        "aZfj4hyX1MLZhSS6QIL18Vn2/RA=",
        true,
    );
}

// ---- §1.5.6 twilio-csharp -----------------------------------------------

#[test]
fn csharp_vectors_cs1_to_cs12() {
    // C# passes P in non-sorted order; sorting is our job.
    let mut params = p();
    params.reverse();
    let rows = [
        (
            "CS1",
            "https://MyCompany.com/myapp.php?foo=1&bar=2",
            "g9IN/x4Cft2g517EjYvEvM/W7LU=",
            true,
        ),
        (
            "CS2",
            "https://MyCompany.com/myapp.php?foo=1&bar=2",
            RSOY,
            false,
        ),
        (
            "CS3",
            "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
            "PCqOZm8cnu/L6+u5i5fuEd+Iac4=",
            true,
        ),
        (
            "CS4",
            "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
            RSOY,
            false,
        ),
        (
            "CS5",
            "http://MyCompany.com/myapp.php?foo=1&bar=2",
            "XY7AlKOKL6im4yWyX84gldUrtis=",
            true,
        ),
        (
            "CS6",
            "http://MyCompany.com/myapp.php?foo=1&bar=2",
            RSOY,
            false,
        ),
        (
            "CS7",
            "http://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
            "PJ08CxXr7KLPjEQCTc8LkUSMwSM=",
            true,
        ),
        (
            "CS8",
            "HTTP://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
            "hy/l8pca+LFms4cvRdv8uiP6NGc=",
            true,
        ),
        (
            "CS9",
            "http://Username:Password@MyCompany.com/myapp.php?foo=1&bar=2",
            "SkTSKyDJH9kUlhItI0slbgZ1UsI=",
            true,
        ),
        (
            "CS10",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            "CYn1h0gLBdNxDGkKJg6hYohgeD8=",
            true,
        ),
        (
            "CS11",
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            true,
        ),
        // The C# suite also re-checks C2/C4/C5.
        (
            "CS-C2",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            RSOY,
            true,
        ),
        ("CS-C4", U, "kvajT1Ptam85bY51eRf/AJRuM3w=", true),
        (
            "CS-C5",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            true,
        ),
    ];
    for (id, url, sig, expected) in rows {
        check_form(id, TOKEN, url, &params, sig, expected);
    }
    check_json("CS12", TOKEN, U, B.as_bytes(), RSOY, false);
    // The C# thread-safety call: no assertion there, must simply not panic.
    let _ = validator("123").validate_form("https://foo.com", &[], "foo");
}

// ---- §1.5.7 twilio-php / §1.5.8 twilio-python ---------------------------

#[test]
fn php_vectors() {
    let creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    let user = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    check_form(
        "PHP testBuildUrlCreds",
        TOKEN,
        creds,
        &p(),
        "CukzLTc1tT5dXEDIHm/tKBanW10=",
        true,
    );
    check_form(
        "PHP testBuildUrlWithUser",
        TOKEN,
        user,
        &p(),
        "2YRLlVAflCqxaNicjMpJcSTgzSs=",
        true,
    );
    check_form(
        "PHP testBuildUrlCredsAddsPort",
        TOKEN,
        creds,
        &p(),
        "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
        true,
    );
    let dup = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    check_form(
        "PHP testValidateWithArrayAndDuplicates",
        TOKEN,
        U,
        &dup,
        "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        true,
    );
}

#[test]
fn python_vectors() {
    // test_compute_signature_duplicate_query_dict: the QueryDict string.
    let qd = split_form("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234");
    assert_eq!(
        compute_signature(TOKEN, U, &qd),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        "vector PY duplicate_query_dict (C6)"
    );
    check_form(
        "PY duplicate_multi_dict (C6)",
        TOKEN,
        U,
        &qd,
        "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        true,
    );
    assert_eq!(
        body_sha256_hex(B.as_bytes()),
        HB,
        "vector PY compute_hash_unicode (C7)"
    );
}

// ---- §1.5.9 docs ---------------------------------------------------

#[test]
fn docs_vectors() {
    let params = pairs(&[
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+14158675310"),
        ("Caller", "+14158675310"),
        ("CallSid", "CA1234567890ABCDE"),
    ]);
    check_form(
        "DOCS form",
        "12345",
        "https://example.com/myapp.php?foo=1&bar=2",
        &params,
        "L/OH5YylLD5NRKLltdqwSvS0BnU=",
        true,
    );
    let body = br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#;
    let hash = "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";
    assert_eq!(body_sha256_hex(body), hash, "vector DOCS json bodySHA256");
    // The docs' JSON signature uses an undisclosed token; sign it ourselves.
    let url = url_with_hash("https://example.com/myapp", hash);
    let sig = compute_signature("12345", &url, &[]);
    check_json("DOCS json", "12345", &url, body, &sig, true);
}

// ---- §1.5.10 derived vectors ------------------------------------------

pub(super) fn a32() -> String {
    "a".repeat(32)
}

pub(super) fn d1_params() -> Vec<(String, String)> {
    let a = a32();
    vec![
        ("AccountSid".into(), format!("AC{a}")),
        ("EventDescription".into(), format!("Task WT{a} completed")),
        ("EventType".into(), "task.completed".into()),
        ("ResourceSid".into(), format!("WT{a}")),
        ("ResourceType".into(), "task".into()),
        ("TaskAssignmentStatus".into(), "completed".into()),
        (
            "TaskAttributes".into(),
            format!(r#"{{"conversationSid":"CH{a}"}}"#),
        ),
        ("TaskSid".into(), format!("WT{a}")),
        ("Timestamp".into(), "1700000000".into()),
        ("WorkspaceName".into(), "Flex Task Assignment".into()),
        ("WorkspaceSid".into(), format!("WS{a}")),
    ]
}

pub(super) const D1_URL: &str = "https://example.com/twilio/taskrouter/events";
pub(super) const D1_SIG: &str = "9oamgByzwRwaYkiqFPB2HRTT+qM=";
pub(super) const D1_SIG_443: &str = "g5UjkOKEkrKXmOYQl/hED54MdiQ=";

#[test]
fn derived_vectors_d1_to_d6() {
    let a = a32();
    check_form("D1 (no port)", TOKEN, D1_URL, &d1_params(), D1_SIG, true);
    check_form(
        "D1 (signed with :443)",
        TOKEN,
        D1_URL,
        &d1_params(),
        D1_SIG_443,
        true,
    );
    let d1_443 = "https://example.com:443/twilio/taskrouter/events";
    check_form(
        "D1 (:443 URL, no-port sig)",
        TOKEN,
        d1_443,
        &d1_params(),
        D1_SIG,
        true,
    );
    check_form(
        "D1 (:443 URL, :443 sig)",
        TOKEN,
        d1_443,
        &d1_params(),
        D1_SIG_443,
        true,
    );

    let d2 = vec![
        ("AccountSid".to_string(), format!("AC{a}")),
        ("EventType".into(), "onConversationStateUpdated".into()),
        ("ChatServiceSid".into(), format!("IS{a}")),
        ("ConversationSid".into(), format!("CH{a}")),
        ("StateFrom".into(), "active".into()),
        ("StateTo".into(), "closed".into()),
        ("Reason".into(), "API".into()),
        ("StateUpdated".into(), "2024-01-01T00:00:00.000Z".into()),
        ("MessagingServiceSid".into(), format!("MG{a}")),
        ("Source".into(), "API".into()),
        ("ClientIdentity".into(), String::new()),
    ];
    let d2_url = "https://example.com/twilio/conversations?tenant=acme";
    check_form(
        "D2",
        TOKEN,
        d2_url,
        &d2,
        "PIbvr3Z3RcT3P4gkV8UTAtRAeGw=",
        true,
    );

    let d3_body = br#"[{"specversion":"1.0","type":"com.twilio.taskrouter.task.completed","id":"EZ00000000000000000000000000000000"}]"#;
    let d3_hash = "d4eda16170d3908c5f269dafc87c4685ccb85013e7c9321d61687a4fd929247a";
    assert_eq!(body_sha256_hex(d3_body), d3_hash, "vector D3: body hash");
    let d3_url = url_with_hash("https://example.com/twilio/events", d3_hash);
    check_json(
        "D3",
        TOKEN,
        &d3_url,
        d3_body,
        "GGtcT8HtBoFPDM81qx5CIt6b1D0=",
        true,
    );

    let d4 = pairs(&[
        ("b", "1"),
        ("B", "2"),
        ("_x", "3"),
        ("a", "4"),
        ("A", "5"),
        ("Z", "6"),
        ("0", "7"),
    ]);
    check_form(
        "D4",
        TOKEN,
        "https://example.com/s",
        &d4,
        "VCOP2M2zzMBSgLB3LN6PGfeAEvo=",
        true,
    );

    let d5 = pairs(&[("Body", "héllo ✓")]);
    check_form(
        "D5",
        TOKEN,
        "https://example.com/s",
        &d5,
        "GIPjDAJJGLwtOpDhzW76Kw+7sy4=",
        true,
    );

    let d6 = pairs(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]);
    check_form("D6", TOKEN, U, &d6, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", true);
}
