//! Postgres cut under load (a proxy that resets every connection and refuses new ones), then
//! back, with the same `baton serve` process throughout.

use crate::checks::each_event_stored_and_applied_once;
use crate::helpers::{server_url, AUTH_TOKEN};
use crate::load::{sample_events, settle, wait_for, Load, Redeliver};
use crate::proxy::Proxy;
use crate::serve::{migrated_database, Baton, ServeOptions};
use baton::store;
use std::collections::BTreeSet;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

async fn status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_under_load_gets_503s_and_baton_recovers_without_a_restart() {
    let database_url = migrated_database().await;
    let server = url::Url::parse(&server_url()).unwrap();
    let upstream = (
        server.host_str().unwrap_or("127.0.0.1"),
        server.port().unwrap_or(5432),
    )
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    let mut baton = Baton::start(
        ServeOptions::without_twilio(&proxy.url_for(&database_url)).set("BATON_DB_POOL_SIZE", "4"),
    )
    .await;
    let pool = store::connect_lazy(&database_url, &store::PoolSettings::default()).unwrap();
    // As TaskRouter sends callbacks: once; an event answered 503 is left to Event Streams or
    // the reconciler.
    let load = Load::start(
        vec![baton.address.clone()],
        AUTH_TOKEN,
        sample_events(1_500, 200),
        4,
        Duration::from_millis(2),
        Redeliver::Never,
    );
    wait_for(
        "events acknowledged before the cut",
        Duration::from_secs(30),
        || load.acknowledged() >= 200,
    )
    .await;

    proxy.cut();
    // Requests in flight at the cut may still commit (and be acknowledged) or fail; from here
    // on nothing can be stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let down_from = Instant::now();
    let client = reqwest::Client::new();
    let readyz = format!("{}/readyz", baton.address);
    let healthz = format!("{}/healthz", baton.address);
    // Five seconds down: longer than the pool's acquire timeout (3 s), so requests that waited
    // for a connection give up too.
    while down_from.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            status(&client, &readyz).await,
            Some(503),
            "/readyz while down"
        );
        assert_eq!(
            status(&client, &healthz).await,
            Some(200),
            "/healthz while down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let down_until = Instant::now();
    assert!(baton.is_running(), "baton stays up while Postgres is gone");
    proxy.restore();
    let client2 = client.clone();
    let ready = async {
        loop {
            if status(&client2, &readyz).await == Some(200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("ready again without a restart");
    // More deliveries, to the same process.
    let after = Load::start(
        vec![baton.address.clone()],
        AUTH_TOKEN,
        sample_events(300, 200),
        4,
        Duration::ZERO,
        Redeliver::Never,
    );
    let load = load.finish(Duration::from_secs(120)).await;
    let after = after.finish(Duration::from_secs(60)).await;
    assert_eq!(
        after.acknowledged(),
        after.len(),
        "all acknowledged after the outage"
    );
    settle(&pool, Duration::from_secs(60)).await;

    let attempts = load.attempts();
    let during: Vec<_> = attempts
        .iter()
        .filter(|a| a.sent >= down_from && a.answered <= down_until)
        .collect();
    assert!(
        during.len() >= 20,
        "the load went on during the outage ({} deliveries)",
        during.len()
    );
    for a in &during {
        assert_eq!(
            (a.status, a.retry_after.as_deref()),
            (Some(503), Some("5")),
            "a delivery while Postgres was down"
        );
    }
    // Every acknowledged event is stored and applied once; none answered 503 during the
    // outage was stored. (One in flight at the cut may be stored without its 2xx: Twilio
    // would deliver it again and it would be a duplicate.)
    let acknowledged: BTreeSet<String> = load
        .acknowledged_keys()
        .into_iter()
        .chain(after.acknowledged_keys())
        .collect();
    let keys = load.keys();
    let in_flight_at_cut: BTreeSet<String> = attempts
        .iter()
        .filter(|a| !a.acknowledged() && a.sent < down_from)
        .map(|a| keys[a.event].clone())
        .collect();
    let stored: BTreeSet<String> = sqlx::query_scalar("SELECT event_key FROM inbox_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let unacknowledged_but_stored: BTreeSet<String> =
        stored.difference(&acknowledged).cloned().collect();
    assert!(
        unacknowledged_but_stored.is_subset(&in_flight_at_cut),
        "only events in flight at the cut may be stored unacknowledged: {} of {}",
        unacknowledged_but_stored.len(),
        in_flight_at_cut.len()
    );
    let expected: BTreeSet<String> = acknowledged
        .union(&unacknowledged_but_stored)
        .cloned()
        .collect();
    each_event_stored_and_applied_once(&pool, &expected).await;
    assert!(proxy.accepted() > 4, "baton reconnected through the proxy");
    assert!(baton.is_running());
    assert!(baton.panics().is_empty(), "{:?}", baton.panics());
}
