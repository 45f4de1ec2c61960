//! `baton-load loadgen`: sends signed TaskRouter callbacks at a fixed concurrency and reports how many
//! were acknowledged per second (each acknowledgement means the event is durably stored) with
//! latency percentiles. Only for loopback or your own test hosts.

use crate::http1;
use crate::latency::{latency_histogram, Latency};
use crate::signing::signing_token;
use anyhow::{bail, Context};
use baton::ingest::form::form_body;
use baton::ingest::signature::{finish_signature, keyed_mac, signed_message, HmacSha1};
use clap::Args;
use hmac::Mac;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// Base URL of the baton under load.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The base URL baton validates signatures against (its BATON_PUBLIC_URL); defaults to --target.
    #[arg(long, env = "BATON_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Auth token to sign with (the first of a comma-separated list is used).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: String,
    /// Concurrent connections; a comma-separated list runs one round per value.
    #[arg(long, default_value = "32", value_delimiter = ',')]
    pub connections: Vec<usize>,
    /// Seconds each round lasts.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Seconds of unmeasured warm-up before each round.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Distinct tasks the events are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub tasks: u64,
    /// Print one JSON object per round instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The figures of one round.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundReport {
    pub connections: usize,
    pub seconds: f64,
    pub acknowledged: u64,
    pub failed: u64,
    pub statuses: BTreeMap<String, u64>,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

struct Target {
    send_url: Url,
    templates: CallbackTemplates,
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let target = Url::parse(&args.target).context("--target is not a URL")?;
    let public = match &args.public_url {
        Some(p) => Url::parse(p).context("--public-url is not a URL")?,
        None => target.clone(),
    };
    let token = signing_token(&args.auth_token)?;
    let path = "/webhooks/taskrouter";
    let signed_url = format!("{}{path}", public.as_str().trim_end_matches('/'));
    let target = Arc::new(Target {
        send_url: Url::parse(&format!("{}{path}", target.as_str().trim_end_matches('/')))?,
        templates: CallbackTemplates::new(&token, &signed_url, args.tasks)?,
    });
    if !args.json {
        println!(
            "{:>6} {:>10} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "conns", "acked", "failed", "acked/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
    }
    for &connections in &args.connections {
        if connections == 0 {
            bail!("--connections must be at least 1");
        }
        if args.warmup_secs > 0 {
            round(&target, connections, Duration::from_secs(args.warmup_secs)).await?;
        }
        let report = round(
            &target,
            connections,
            Duration::from_secs(args.duration_secs),
        )
        .await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{:>6} {:>10} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                report.connections,
                report.acknowledged,
                report.failed,
                report.per_second,
                report.p50_ms,
                report.p90_ms,
                report.p99_ms,
                report.max_ms
            );
            if report.failed > 0 {
                println!("       statuses: {:?}", report.statuses);
            }
        }
    }
    Ok(())
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A realistic TaskRouter callback (about 1 KB): a `task.updated` of task `seq % tasks` with
/// this event SID and these timestamps.
fn callback_at(
    seq: u64,
    tasks: u64,
    event_sid: String,
    timestamp: String,
    timestamp_ms: String,
) -> Vec<(String, String)> {
    let task_sid = format!("WT{:032x}", seq % tasks.max(1));
    let attributes = serde_json::json!({
        "from": "+14155550100",
        "channelType": "sms",
        "conversationSid": format!("CH{:032x}", seq % tasks.max(1)),
        "flexInteractionSid": format!("KD{:032x}", seq % tasks.max(1)),
        "flexInteractionChannelSid": format!("UO{:032x}", seq % tasks.max(1)),
        "customers": {"name": "Load Test", "phone": "+14155550100"},
        "conversations": {"conversation_id": task_sid, "communication_channel": "sms", "direction": "inbound"},
        "direction": "inbound",
    });
    let pairs = [
        ("AccountSid", format!("AC{:032x}", 1)),
        ("EventDescription", format!("Task {task_sid} updated")),
        ("EventType", "task.updated".to_owned()),
        ("ResourceSid", task_sid.clone()),
        ("ResourceType", "task".to_owned()),
        ("Sid", event_sid),
        ("TaskAge", "12".to_owned()),
        ("TaskAssignmentStatus", "assigned".to_owned()),
        ("TaskAttributes", attributes.to_string()),
        ("TaskChannelUniqueName", "chat".to_owned()),
        ("TaskPriority", "0".to_owned()),
        ("TaskQueueSid", format!("WQ{:032x}", 1)),
        ("TaskSid", task_sid),
        ("Timestamp", timestamp),
        ("TimestampMs", timestamp_ms),
        ("WorkflowSid", format!("WW{:032x}", 1)),
        ("WorkspaceName", "Flex Task Assignment".to_owned()),
        ("WorkspaceSid", format!("WS{:032x}", 1)),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The callbacks ([`callback_at`]) of each task, prepared so that a callback costs the load tool a few
/// microseconds: what differs between two callbacks of a task is the event SID and the
/// timestamps (none needing percent-encoding), so the body is pieces around them, and the
/// signature an HMAC already fed the message up to the SID. Otherwise building, encoding and
/// signing each callback took a third of the CPU baton itself used — on the same two cores.
pub struct CallbackTemplates {
    tasks: Vec<CallbackTemplate>,
}

struct CallbackTemplate {
    /// Keyed and fed the signed message up to the event SID's value.
    mac: HmacSha1,
    /// The signed message's pieces after the SID, the timestamp and the ms timestamp.
    signed: [Vec<u8>; 3],
    /// The body around the same three values.
    body: [String; 4],
}

const MARKS: [&str; 3] = ["\u{1}sid\u{1}", "\u{1}ts\u{1}", "\u{1}ms\u{1}"];

impl CallbackTemplates {
    pub fn new(token: &str, signed_url: &str, tasks: u64) -> anyhow::Result<CallbackTemplates> {
        let [sid, ts, ms] = MARKS.map(str::to_owned);
        // How each mark reads in a form body (its value's place there).
        let encoded: [String; 3] =
            MARKS.map(|m| url::form_urlencoded::byte_serialize(m.as_bytes()).collect());
        let keyed = keyed_mac(token.as_bytes());
        let tasks = (0..tasks.max(1))
            .map(|task| {
                let pairs = callback_at(task, tasks, sid.clone(), ts.clone(), ms.clone());
                let message = signed_message(signed_url, &pairs);
                let [first, a, b, c] = split_at_marks(&message, MARKS.map(str::as_bytes))?;
                let body = split_at_marks(
                    form_body(&pairs).as_bytes(),
                    encoded.each_ref().map(|e| e.as_bytes()),
                )?;
                let mut mac = keyed.clone();
                mac.update(&first);
                Ok(CallbackTemplate {
                    mac,
                    signed: [a, b, c],
                    body: body.map(|piece| String::from_utf8_lossy(&piece).into_owned()),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(CallbackTemplates { tasks })
    }

    /// The signature and body of callback `seq` ([`callback_at`]'s task choice) with this
    /// event SID and time.
    pub fn signed(&self, seq: u64, event_sid: &str, now_ms: u64) -> (String, String) {
        let t = &self.tasks[(seq % self.tasks.len() as u64) as usize];
        let timestamp = (now_ms / 1000).to_string();
        let timestamp_ms = now_ms.to_string();
        let values = [event_sid, timestamp.as_str(), timestamp_ms.as_str()];
        let mut mac = t.mac.clone();
        let mut body = String::with_capacity(t.body.iter().map(String::len).sum::<usize>() + 64);
        body.push_str(&t.body[0]);
        for (i, value) in values.iter().enumerate() {
            mac.update(value.as_bytes());
            mac.update(&t.signed[i]);
            body.push_str(value);
            body.push_str(&t.body[i + 1]);
        }
        (finish_signature(mac), body)
    }
}

/// `bytes` cut at each of three marks, in this order, each found exactly once.
fn split_at_marks(bytes: &[u8], marks: [&[u8]; 3]) -> anyhow::Result<[Vec<u8>; 4]> {
    let mut pieces: Vec<Vec<u8>> = Vec::with_capacity(4);
    let mut rest = bytes;
    for mark in marks {
        let at = rest
            .windows(mark.len())
            .position(|w| w == mark)
            .context("a callback template lost a value's place")?;
        pieces.push(rest[..at].to_vec());
        rest = &rest[at + mark.len()..];
    }
    pieces.push(rest.to_vec());
    pieces
        .try_into()
        .map_err(|_| anyhow::anyhow!("four pieces"))
}

async fn round(
    target: &Arc<Target>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<RoundReport> {
    // One thread of its own: the load must not take the cores baton and Postgres share with it
    // (work stealing across two threads cost more than it gained).
    let target = target.clone();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(round_on_this_thread(target, connections, duration))
    })
    .await?
}

async fn round_on_this_thread(
    target: Arc<Target>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<RoundReport> {
    let seq = Arc::new(AtomicU64::new(rand::thread_rng().gen::<u32>() as u64));
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut connection = http1::Connection::new(&target.send_url)?;
        let target = target.clone();
        let seq = seq.clone();
        handles.push(tokio::spawn(async move {
            let mut histogram = latency_histogram();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let event_sid = format!("EV{:032x}", rand::thread_rng().gen::<u128>());
                let (signature, body) = target.templates.signed(n, &event_sid, epoch_ms());
                let headers = [
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("X-Twilio-Signature", signature.as_str()),
                ];
                let sent = Instant::now();
                let outcome = connection
                    .post(
                        target.send_url.path(),
                        &headers,
                        body.as_bytes(),
                        Duration::from_secs(30),
                    )
                    .await;
                let micros = sent.elapsed().as_micros() as u64;
                let label = match outcome {
                    Ok(status) => {
                        if (200..300).contains(&status) {
                            let _ = histogram.record(micros.max(1));
                        }
                        status.to_string()
                    }
                    Err(http1::Failure::Timeout) => "timeout".to_owned(),
                    Err(http1::Failure::Connection) => "connection error".to_owned(),
                };
                *statuses.entry(label).or_default() += 1;
            }
            (histogram, statuses)
        }));
    }
    let mut histogram = latency_histogram();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for handle in handles {
        let (h, s) = handle.await?;
        histogram.add(h)?;
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let acknowledged = histogram.len();
    let total: u64 = statuses.values().sum();
    let latency = Latency::of(&histogram);
    Ok(RoundReport {
        connections,
        seconds,
        acknowledged,
        failed: total - acknowledged,
        statuses,
        per_second: acknowledged as f64 / seconds,
        p50_ms: latency.p50_ms,
        p90_ms: latency.p90_ms,
        p99_ms: latency.p99_ms,
        max_ms: latency.max_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::signed_form;
    use baton::ingest::form::parse_form;
    use baton::ingest::signature::RequestValidator;
    use secrecy::SecretString;

    const URL: &str = "https://baton.example.com/webhooks/taskrouter";
    const TOKEN: &str = "12345678901234567890123456789012";

    #[test]
    fn a_templated_callback_is_the_callback_signed() {
        let templates = CallbackTemplates::new(TOKEN, URL, 7).expect("templates");
        let validator = RequestValidator::new(vec![SecretString::from(TOKEN.to_owned())]);
        for seq in [0, 3, 6, 7, 1_000_003] {
            let sid = format!("EV{:032x}", seq * 31 + 1);
            let ms = 1_764_590_400_123 + seq;
            let (signature, body) = templates.signed(seq, &sid, ms);
            let pairs = callback_at(seq, 7, sid, (ms / 1000).to_string(), ms.to_string());
            assert_eq!(
                (signature.clone(), body.clone()),
                signed_form(TOKEN, URL, &pairs),
                "callback {seq}"
            );
            let parsed = parse_form(body.as_bytes(), 100).expect("form");
            assert_eq!(parsed, pairs);
            assert!(validator.validate_form(URL, &parsed, &signature));
        }
    }
}
