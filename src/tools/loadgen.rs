//! `baton loadgen`: sends signed TaskRouter callbacks at a fixed concurrency and reports how many
//! were acknowledged per second (each acknowledgement means the event is durably stored) with
//! latency percentiles. Only for loopback or your own test hosts.

use crate::edge::signature::compute_signature;
use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
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
    send_url: String,
    signed_url: String,
    token: String,
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let target = Url::parse(&args.target).context("--target is not a URL")?;
    let public = match &args.public_url {
        Some(p) => Url::parse(p).context("--public-url is not a URL")?,
        None => target.clone(),
    };
    let token = signing_token(&args.auth_token)?;
    let path = "/webhooks/taskrouter";
    let target = Arc::new(Target {
        send_url: format!("{}{path}", target.as_str().trim_end_matches('/')),
        signed_url: format!("{}{path}", public.as_str().trim_end_matches('/')),
        token,
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
            round(
                &target,
                connections,
                Duration::from_secs(args.warmup_secs),
                args.tasks,
            )
            .await?;
        }
        let report = round(
            &target,
            connections,
            Duration::from_secs(args.duration_secs),
            args.tasks,
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

/// A realistic TaskRouter callback (about 1 KB), unique per call.
pub fn sample_callback(seq: u64, tasks: u64) -> Vec<(String, String)> {
    let mut rng = rand::thread_rng();
    let event_sid = format!("EV{:032x}", rng.gen::<u128>());
    let task_sid = format!("WT{:032x}", seq % tasks.max(1));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
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
        ("Timestamp", (now_ms / 1000).to_string()),
        ("TimestampMs", now_ms.to_string()),
        ("WorkflowSid", format!("WW{:032x}", 1)),
        ("WorkspaceName", "Flex Task Assignment".to_owned()),
        ("WorkspaceSid", format!("WS{:032x}", 1)),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

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

/// A latency histogram in microseconds, 1 µs to 60 s.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a [`latency_histogram`], in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: histogram.max() as f64 / 1000.0,
        }
    }
}

/// Encodes form pairs as an `application/x-www-form-urlencoded` body.
pub fn form_body(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

async fn round(
    target: &Arc<Target>,
    connections: usize,
    duration: Duration,
    tasks: u64,
) -> anyhow::Result<RoundReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .http1_only()
        .timeout(Duration::from_secs(30))
        .build()?;
    let seq = Arc::new(AtomicU64::new(rand::thread_rng().gen::<u32>() as u64));
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client.clone();
        let target = target.clone();
        let seq = seq.clone();
        handles.push(tokio::spawn(async move {
            let mut histogram = latency_histogram();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let pairs = sample_callback(n, tasks);
                let (signature, body) = signed_form(&target.token, &target.signed_url, &pairs);
                let sent = Instant::now();
                let outcome = client
                    .post(&target.send_url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("X-Twilio-Signature", signature)
                    .body(body)
                    .send()
                    .await;
                let micros = sent.elapsed().as_micros() as u64;
                let label = match outcome {
                    Ok(res) => {
                        let status = res.status();
                        let _ = res.bytes().await;
                        if status.is_success() {
                            let _ = histogram.record(micros.max(1));
                        }
                        status.as_u16().to_string()
                    }
                    Err(e) if e.is_timeout() => "timeout".to_owned(),
                    Err(_) => "connection error".to_owned(),
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
