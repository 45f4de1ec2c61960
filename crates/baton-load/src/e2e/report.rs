//! The run's report: per Twilio call, how many were expected, made, missing, duplicated,
//! unexpected or refused; and the load's rate and acknowledgement latency.

use super::checker::CallKind;
use super::{lock, Conversation, Run};
use crate::latency::Latency;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Debug, Serialize)]
struct CallRow {
    call: &'static str,
    expected: u64,
    made: u64,
    missing: u64,
    duplicated: u64,
    unexpected: u64,
    refused_attempts: u64,
    /// HTTP status (0: no answer) → refused attempts.
    refused_statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) ok: bool,
    conversations: u64,
    by_kind: BTreeMap<String, u64>,
    load_seconds: f64,
    total_seconds: f64,
    conversations_per_second: f64,
    requests_sent: u64,
    acknowledged: u64,
    acknowledged_per_second: f64,
    statuses: BTreeMap<String, u64>,
    ack_latency: Latency,
    calls: Vec<CallRow>,
    twilio_reads: u64,
    failures: Vec<String>,
}

pub(super) fn report(
    run: &Run,
    conversations: &[Arc<Conversation>],
    expected: &[(CallKind, String)],
    load_secs: f64,
    total_secs: f64,
) -> Report {
    let seen = lock(&run.seen);
    let sent = lock(&run.sent);
    let expected_set: std::collections::HashSet<&(CallKind, String)> = expected.iter().collect();
    let mut rows: BTreeMap<CallKind, CallRow> = BTreeMap::new();
    let row = |rows: &mut BTreeMap<CallKind, CallRow>, kind: &CallKind| {
        if !rows.contains_key(kind) {
            rows.insert(
                kind.clone(),
                CallRow {
                    call: kind.name(),
                    expected: 0,
                    made: 0,
                    missing: 0,
                    duplicated: 0,
                    unexpected: 0,
                    refused_attempts: 0,
                    refused_statuses: BTreeMap::new(),
                },
            );
        }
    };
    for kind in CallKind::REPORTED {
        row(&mut rows, &kind);
    }
    for key in expected {
        row(&mut rows, &key.0);
        if let Some(r) = rows.get_mut(&key.0) {
            r.expected += 1;
            match seen.applied.get(key) {
                None => r.missing += 1,
                Some(1) => {}
                Some(n) => r.duplicated += n - 1,
            }
        }
    }
    for (key, n) in &seen.applied {
        if key.0 == CallKind::FlexEndsChat {
            continue;
        }
        row(&mut rows, &key.0);
        if let Some(r) = rows.get_mut(&key.0) {
            r.made += n;
            if !expected_set.contains(key) {
                r.unexpected += n;
            }
        }
    }
    for (kind, statuses) in &seen.refused {
        row(&mut rows, kind);
        if let Some(r) = rows.get_mut(kind) {
            r.refused_attempts += statuses.values().sum::<u64>();
            r.refused_statuses = statuses.clone();
        }
    }
    let calls: Vec<CallRow> = rows.into_values().collect();
    let failures = lock(&run.failures).clone();
    let ok = failures.is_empty()
        && calls
            .iter()
            .all(|r| r.missing == 0 && r.duplicated == 0 && r.unexpected == 0);
    let mut by_kind = BTreeMap::new();
    for c in conversations {
        let name = serde_json::to_value(c.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *by_kind.entry(name).or_default() += 1;
    }
    let acknowledged = sent.histogram.len();
    Report {
        ok,
        conversations: conversations.len() as u64,
        by_kind,
        load_seconds: load_secs,
        total_seconds: total_secs,
        conversations_per_second: conversations.len() as f64 / load_secs.max(1e-9),
        requests_sent: run.events.load(Ordering::Relaxed),
        acknowledged,
        acknowledged_per_second: acknowledged as f64 / total_secs.max(1e-9),
        statuses: sent.statuses.clone(),
        ack_latency: Latency::of(&sent.histogram),
        calls,
        twilio_reads: seen.reads,
        failures,
    }
}

pub(super) fn print_report(r: &Report) {
    println!(
        "conversations {} ({}) in {:.1} s: {:.1}/s; finished after {:.1} s",
        r.conversations,
        r.by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.load_seconds,
        r.conversations_per_second,
        r.total_seconds
    );
    println!(
        "callbacks and webhooks: {} sent, {} acknowledged ({:.0}/s over the run), answers {:?}",
        r.requests_sent, r.acknowledged, r.acknowledged_per_second, r.statuses
    );
    println!(
        "acknowledgement latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.ack_latency.p50_ms, r.ack_latency.p90_ms, r.ack_latency.p99_ms, r.ack_latency.max_ms
    );
    println!();
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9}",
        "twilio call", "expected", "made", "missing", "duplicated", "unexpected", "refused"
    );
    for c in &r.calls {
        let statuses: Vec<String> = c
            .refused_statuses
            .iter()
            .map(|(status, n)| format!("{status}×{n}"))
            .collect();
        println!(
            "{:<24} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {}",
            c.call,
            c.expected,
            c.made,
            c.missing,
            c.duplicated,
            c.unexpected,
            c.refused_attempts,
            statuses.join(" ")
        );
    }
    println!(
        "(reads: {}; refused = attempts Twilio answered with an error, retried)",
        r.twilio_reads
    );
    for problem in &r.failures {
        println!("failed: {problem}");
    }
    println!(
        "{}",
        if r.ok {
            "exactly once: every expected call made once, nothing else"
        } else {
            "NOT exactly once: see the rows above"
        }
    );
}
