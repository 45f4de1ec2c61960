//! The demo `scripts/run` plays when no Twilio account is configured: its contact centre,
//! accelerated, against a real baton and database. Every customer kind plays once, with Twilio's
//! faults on (429 with `Retry-After`, 500, late and repeated callbacks): baton's API shows the
//! chains, parks, route-backs, orphan closes and the dead letter, and the stand-in's log shows
//! each call the demo expected of baton made exactly once and nothing else ended.

use crate::flex::{fast_dispatcher, wait_until, OPS_TOKEN};
use crate::helpers::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use twilio_standin::demo::{Demo, DemoConfig, CUSTOMER_KINDS};
use twilio_standin::{StandIn, StandInConfig};

#[tokio::test]
async fn the_demo_contact_centre_gets_each_expected_call_from_baton_exactly_once() {
    let twilio = Arc::new(
        StandIn::start(StandInConfig {
            generate_events: true,
            ..StandInConfig::default()
        })
        .await,
    );
    let app = spawn_app_with(AppOptions {
        processors: 1,
        auth_tokens: vec![twilio.auth_token().to_owned()],
        public_url: Some("http://127.0.0.1:0".into()),
        twilio_api_base_url: Some(url::Url::parse(&twilio.base_url()).expect("url")),
        dispatcher: Some(fast_dispatcher(8)),
        orphans: true,
        orphan_grace: Duration::from_millis(300),
        ..AppOptions::default()
    })
    .await;
    let demo = Demo::new(
        twilio.clone(),
        DemoConfig {
            speed: 15.0,
            customers: Some(CUSTOMER_KINDS),
            faults: true,
            verbose: std::env::var("TEST_LOG").is_ok(),
            ..DemoConfig::new(app.address.clone(), OPS_TOKEN)
        },
    );
    let summary = tokio::time::timeout(Duration::from_secs(45), demo.run())
        .await
        .expect("the demo played within 45 s");
    assert!(summary.failures.is_empty(), "{:#?}", summary.failures);
    assert_eq!(summary.played, CUSTOMER_KINDS);

    // Everything expected shows, then late duplicates would have time to show too.
    wait_until("every expected call", Duration::from_secs(20), || async {
        demo.missing().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Route-backs, removals, the stale wrap-up, the park's four calls, the closes.
    assert_eq!(
        demo.expected_calls().len(),
        10,
        "{:?}",
        demo.expected_calls()
    );
    let problems = demo.check();
    assert!(problems.is_empty(), "{problems:#?}");
    let faults = twilio
        .requests()
        .iter()
        .filter(|r| matches!(r.status, Some(429 | 500)))
        .count();
    assert!(faults > 0, "Twilio's faults were played");

    let (status, transfers) = app.api_get("/api/v1/transfers?limit=500").await;
    assert_eq!(status, 200, "{transfers}");
    let outcomes: Vec<&str> = transfers["transfers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hop| hop["outcome"].as_str())
        .collect();
    for outcome in ["completed", "returned", "failed"] {
        assert!(
            outcomes.contains(&outcome),
            "no {outcome} hop: {outcomes:?}"
        );
    }

    let (status, parks) = app.api_get("/api/v1/parks").await;
    assert_eq!(status, 200, "{parks}");
    let parks: Vec<&str> = parks["parks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["state"].as_str())
        .collect();
    assert!(parks.len() >= 2, "a messaging and a voice park: {parks:?}");
    assert!(parks.iter().all(|s| *s == "resumed"), "{parks:?}");

    let closes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE kind = 'close_interaction_channel' AND state = 'done'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("outbox");
    assert!(closes >= 1, "an orphan closed");

    let (status, dead) = app.api_get("/api/v1/outbox?state=dead").await;
    assert_eq!(status, 200, "{dead}");
    let dead: Vec<&Value> = dead["calls"].as_array().into_iter().flatten().collect();
    assert_eq!(dead.len(), 1, "the refused close only: {dead:?}");

    // The README's screenshots of the console, from this contact centre: the overview, and the
    // chain with the most hops.
    let mut hops_per_chain = std::collections::HashMap::<&str, (usize, &str)>::new();
    for hop in transfers["transfers"].as_array().into_iter().flatten() {
        if let (Some(chain), Some(task)) = (hop["chain_id"].as_str(), hop["to_task_sid"].as_str()) {
            hops_per_chain.entry(chain).or_insert((0, task)).0 += 1;
        }
    }
    let (_, (_, task)) = hops_per_chain
        .iter()
        .max_by_key(|(chain, (hops, _))| (*hops, *chain))
        .expect("a chain");
    let output = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/console/screenshots.py"
        ))
        .env("BATON_URL", &app.address)
        .env("BATON_CONSOLE_TOKEN", OPS_TOKEN)
        .env("CHAIN_TASK", task)
        .env(
            "SCREENSHOT_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/console-screenshots"),
        )
        .kill_on_drop(true)
        .output()
        .await
        .expect("python3 runs (scripts/install-test-tools installs Playwright and Chromium)");
    assert!(
        output.status.success(),
        "screenshots: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
