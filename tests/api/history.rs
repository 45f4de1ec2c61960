//! Transfer history: `GET /api/v1/transfers` (filters, keyset pagination, limits) and
//! `GET /api/v1/stats/transfers` (counts, median and p90 time to accept). The query tests seed
//! `hops` rows directly; one goes from real TaskRouter callbacks to the list.

use crate::flex::*;
use crate::helpers::*;
use baton::domain::chain::CompleteOn;
use serde_json::{json, Value};
use sqlx::PgPool;

/// A hop row as the processor would write it (only what the queries read).
#[derive(Clone, Default)]
pub(crate) struct SeedHop {
    pub(crate) chain: String,
    pub(crate) seq: i32,
    /// Initiated, ms since the epoch.
    pub(crate) at: i64,
    pub(crate) from_worker: Option<String>,
    pub(crate) to_worker: Option<String>,
    pub(crate) from_queue: Option<String>,
    pub(crate) to_queue: Option<String>,
    pub(crate) target_type: Option<&'static str>,
    pub(crate) target_sid: Option<String>,
    pub(crate) target_name: Option<&'static str>,
    pub(crate) outcome: Option<&'static str>,
    /// Offered, accepted, ended: ms after `at`.
    pub(crate) offered_after: Option<i64>,
    pub(crate) accepted_after: Option<i64>,
    pub(crate) ended_after: Option<i64>,
}

impl SeedHop {
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.chain, self.seq)
    }
}

pub(crate) async fn insert_hops(pool: &PgPool, hops: &[SeedHop]) {
    for h in hops {
        let after = |d: Option<i64>| d.map(|d| h.at + d);
        sqlx::query(
            "INSERT INTO hops (chain_id, seq, from_task_sid, to_task_sid, from_worker_sid,
                 to_worker_sid, from_queue_sid, to_queue_sid, target_type, target_sid, target_name,
                 outcome, initiated_ms, offered_ms, accepted_ms, ended_ms, finished_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
        )
        .bind(&h.chain)
        .bind(h.seq)
        .bind(format!("{}-from-{}", h.chain, h.seq))
        .bind(format!("{}-to-{}", h.chain, h.seq))
        .bind(&h.from_worker)
        .bind(&h.to_worker)
        .bind(&h.from_queue)
        .bind(&h.to_queue)
        .bind(h.target_type)
        .bind(&h.target_sid)
        .bind(h.target_name)
        .bind(h.outcome)
        .bind(h.at)
        .bind(after(h.offered_after))
        .bind(after(h.accepted_after))
        .bind(after(h.ended_after))
        .execute(pool)
        .await
        .expect("insert hop");
    }
}

/// Ties a chain's tasks to a conversation, as the processor's links do.
async fn link_conversation(pool: &PgPool, chain: &str, tasks: &[&str], conversation: &str) {
    for (i, task) in tasks.iter().enumerate() {
        sqlx::query("INSERT INTO chain_tasks (task_sid, chain_id, position) VALUES ($1, $2, $3)")
            .bind(task)
            .bind(chain)
            .bind(i as i32)
            .execute(pool)
            .await
            .expect("chain task");
        sqlx::query("INSERT INTO task_links (task_sid, link) VALUES ($1, $2)")
            .bind(task)
            .bind(format!("conv:{conversation}"))
            .execute(pool)
            .await
            .expect("link");
    }
}

pub(crate) async fn insert_worker(pool: &PgPool, sid: &str, name: &str) {
    sqlx::query("INSERT INTO workers (worker_sid, friendly_name) VALUES ($1, $2)")
        .bind(sid)
        .bind(name)
        .execute(pool)
        .await
        .expect("worker");
}

/// The `chain/seq` of each listed hop.
fn keys(body: &Value) -> Vec<String> {
    body["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("no transfers in {body}"))
        .iter()
        .map(|t| format!("{}/{}", t["chain_id"].as_str().unwrap(), t["seq"]))
        .collect()
}

fn now_ms() -> i64 {
    // Whole seconds, so times compare exactly in RFC 3339.
    chrono::Utc::now().timestamp() * 1000
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

const MIN: i64 = 60_000;

struct Rig {
    app: TestApp,
    w: Vec<String>,
    q: Vec<String>,
    /// The hops, by name.
    h: Vec<SeedHop>,
    t: i64,
}

/// Five hops over four chains (see each one's comment), newest first: H4, H2, H3, H1, H5.
async fn five_hops() -> Rig {
    let app = spawn_app().await;
    let t = now_ms() - 60 * MIN;
    let (w, q, h) = seed_five_hops(&app.pool, t, 2).await;
    Rig { app, w, q, h, t }
}

/// The hops of [`five_hops`] from `t` on, H5 `h5_days` days before `t`: the workers, queues
/// and hops (H1 is `h[1]`).
async fn seed_five_hops(
    pool: &PgPool,
    t: i64,
    h5_days: i64,
) -> (Vec<String>, Vec<String>, Vec<SeedHop>) {
    let w: Vec<String> = (0..5).map(|n| sid("WK", n)).collect();
    let q: Vec<String> = (0..4).map(|n| sid("WQ", n)).collect();
    for (sid, name) in w[1..].iter().zip(["Alice", "Bob", "Carol", "Dan"]) {
        insert_worker(pool, sid, name).await;
    }
    let chain = |n| sid("WT", n);
    let s = |x: &String| Some(x.clone());
    let h = vec![
        SeedHop::default(), // unused: H1 is h[1]
        // H1: Alice (Q1) → Bob (Q2), to a worker, completed.
        SeedHop {
            chain: chain(1),
            seq: 1,
            at: t + MIN,
            from_worker: s(&w[1]),
            to_worker: s(&w[2]),
            from_queue: s(&q[1]),
            to_queue: s(&q[2]),
            target_type: Some("worker"),
            target_sid: s(&w[2]),
            outcome: Some("completed"),
            offered_after: Some(5_000),
            accepted_after: Some(12_000),
            ended_after: Some(300_000),
            ..SeedHop::default()
        },
        // H2: Bob (Q2) → queue Q3, where Carol takes it.
        SeedHop {
            chain: chain(1),
            seq: 2,
            at: t + 10 * MIN,
            from_worker: s(&w[2]),
            to_worker: s(&w[3]),
            from_queue: s(&q[2]),
            to_queue: s(&q[3]),
            target_type: Some("queue"),
            target_sid: s(&q[3]),
            target_name: Some("Billing"),
            outcome: Some("completed"),
            offered_after: Some(1_000),
            accepted_after: Some(30_500),
            ..SeedHop::default()
        },
        // H3: Carol (Q1) → queue Q2, nobody took it.
        SeedHop {
            chain: chain(2),
            seq: 1,
            at: t + 5 * MIN,
            from_worker: s(&w[3]),
            from_queue: s(&q[1]),
            to_queue: s(&q[2]),
            target_type: Some("queue"),
            target_sid: s(&q[2]),
            outcome: Some("failed"),
            ended_after: Some(120_000),
            ..SeedHop::default()
        },
        // H4: Alice (Q1) → a workflow, offered to Dan (Q3), in flight.
        SeedHop {
            chain: chain(3),
            seq: 1,
            at: t + 20 * MIN,
            from_worker: s(&w[1]),
            to_worker: s(&w[4]),
            from_queue: s(&q[1]),
            to_queue: s(&q[3]),
            target_type: Some("workflow"),
            target_sid: Some(sid("WW", 1)),
            offered_after: Some(2_000),
            ..SeedHop::default()
        },
        // H5, days earlier: Dan (Q3) → Alice (Q1), canceled.
        SeedHop {
            chain: chain(4),
            seq: 1,
            at: t - h5_days * 24 * 60 * MIN,
            from_worker: s(&w[4]),
            to_worker: s(&w[1]),
            from_queue: s(&q[3]),
            to_queue: s(&q[1]),
            target_type: Some("worker"),
            target_sid: s(&w[1]),
            outcome: Some("canceled"),
            ..SeedHop::default()
        },
    ];
    insert_hops(pool, &h[1..]).await;
    let c1 = chain(1);
    link_conversation(
        pool,
        &c1,
        &[&c1, "WTb0000000000000000000000000000000"],
        &sid("CH", 1),
    )
    .await;
    link_conversation(pool, &chain(2), &[&chain(2)], &sid("CH", 2)).await;
    (w, q, h)
}

#[tokio::test]
async fn transfers_are_listed_newest_first_with_their_timings_and_every_filter() {
    let r = five_hops().await;
    let k = |n: &[usize]| -> Vec<String> { n.iter().map(|&i| r.h[i].key()).collect() };
    let list = |query: String| {
        let app = &r.app;
        async move {
            let (status, body) = app.api_get(&format!("/api/v1/transfers{query}")).await;
            assert_eq!(status, 200, "{query}: {body}");
            keys(&body)
        }
    };
    assert_eq!(list(String::new()).await, k(&[4, 2, 3, 1, 5]));

    // H1 in full: its timings, both sides, the workers' names.
    let (_, body) = r
        .app
        .api_get(&format!("/api/v1/transfers?worker_sid={}", r.w[2]))
        .await;
    let h1 = &body["transfers"][1];
    assert_eq!(h1["chain_id"], r.h[1].chain.as_str());
    assert_eq!(h1["seq"], 1);
    assert_eq!(h1["from_worker_sid"], r.w[1].as_str());
    assert_eq!(h1["from_worker_name"], "Alice");
    assert_eq!(h1["to_worker_sid"], r.w[2].as_str());
    assert_eq!(h1["to_worker_name"], "Bob");
    assert_eq!(h1["from_queue_sid"], r.q[1].as_str());
    assert_eq!(h1["to_queue_sid"], r.q[2].as_str());
    assert_eq!(h1["target_type"], "worker");
    assert_eq!(h1["outcome"], "completed");
    assert_eq!(h1["initiated_at"], iso(r.t + MIN));
    assert_eq!(h1["accepted_at"], iso(r.t + MIN + 12_000));
    assert_eq!(h1["ended_at"], iso(r.t + MIN + 300_000));
    assert_eq!(h1["seconds_to_offer"], 5.0);
    assert_eq!(h1["seconds_to_accept"], 12.0);
    assert_eq!(h1["seconds_in_hop"], 288.0);
    assert_eq!(body["next"], Value::Null);
    let h2 = &body["transfers"][0];
    assert_eq!(h2["seconds_to_accept"], 30.5);
    assert_eq!(h2["seconds_in_hop"], Value::Null, "Carol still has it");
    assert_eq!(h2["target_name"], "Billing");

    // A worker or a queue on either side of the hop.
    let cases: Vec<(String, Vec<usize>)> = vec![
        (format!("worker_sid={}", r.w[2]), vec![2, 1]),
        (format!("worker_sid={}", r.w[1]), vec![4, 1, 5]),
        (format!("worker_sid={}", r.w[0]), vec![]),
        (format!("queue_sid={}", r.q[2]), vec![2, 3, 1]),
        (format!("queue_sid={}", r.q[1]), vec![4, 3, 1, 5]),
        (format!("queue_sid={}", r.q[3]), vec![4, 2, 5]),
        ("target_type=queue".into(), vec![2, 3]),
        ("target_type=worker".into(), vec![1, 5]),
        ("target_type=workflow".into(), vec![4]),
        ("outcome=completed".into(), vec![2, 1]),
        ("outcome=failed".into(), vec![3]),
        ("outcome=canceled".into(), vec![5]),
        ("outcome=returned".into(), vec![]),
        ("outcome=in_flight".into(), vec![4]),
        (format!("conversation_sid={}", sid("CH", 1)), vec![2, 1]),
        (format!("conversation_sid={}", sid("CH", 2)), vec![3]),
        (format!("conversation_sid={}", sid("CH", 9)), vec![]),
        // Times: ISO 8601 (since inclusive, until exclusive), dates, durations ago.
        (format!("since={}", iso(r.t)), vec![4, 2, 3, 1]),
        (format!("until={}", iso(r.t + 5 * MIN)), vec![1, 5]),
        (
            format!("since={}&until={}", iso(r.t), iso(r.t + 10 * MIN)),
            vec![3, 1],
        ),
        (format!("since={}", iso(r.t + 5 * MIN)), vec![4, 2, 3]),
        ("since=1d".into(), vec![4, 2, 3, 1]),
        ("since=3d&until=1d".into(), vec![5]),
        ("since=2000-01-01&until=2000-01-02".into(), vec![]),
        // Filters together.
        (format!("worker_sid={}&outcome=completed", r.w[1]), vec![1]),
        (
            format!("queue_sid={}&target_type=queue", r.q[2]),
            vec![2, 3],
        ),
        (
            format!("worker_sid={}&queue_sid={}", r.w[1], r.q[3]),
            vec![4, 5],
        ),
        (
            format!("conversation_sid={}&worker_sid={}", sid("CH", 1), r.w[3]),
            vec![2],
        ),
        (format!("worker_sid={}&since=1d", r.w[1]), vec![4, 1]),
    ];
    for (query, expected) in cases {
        assert_eq!(list(format!("?{query}")).await, k(&expected), "{query}");
    }
}

#[tokio::test]
async fn walking_the_pages_returns_every_hop_once_in_order_while_hops_are_added() {
    let app = spawn_app().await;
    let t = now_ms() - 24 * 60 * MIN;
    // 90 hops over 30 chains; pairs of chains share each millisecond, so the order within a
    // millisecond (chain, then seq) decides page boundaries too.
    let hops: Vec<SeedHop> = (0..90)
        .map(|i| SeedHop {
            chain: sid("WT", 100 + (i % 30) as u128),
            seq: i / 30 + 1,
            at: t + (i / 2) as i64 * 1000,
            outcome: Some("completed"),
            ..SeedHop::default()
        })
        .collect();
    insert_hops(&app.pool, &hops).await;
    let mut expected = hops.clone();
    expected.sort_by(|a, b| (b.at, &b.chain, b.seq).cmp(&(a.at, &a.chain, a.seq)));
    let mut expected: Vec<String> = expected.iter().map(SeedHop::key).collect();

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("/api/v1/transfers?limit=7&cursor={c}"),
            None => "/api/v1/transfers?limit=7".to_owned(),
        };
        let (status, body) = app.api_get(&query).await;
        assert_eq!(status, 200, "{body}");
        let page = keys(&body);
        assert!(page.len() <= 7);
        seen.extend(page);
        pages += 1;
        // Meanwhile: new hops (newer than everything listed, so they belong before the
        // cursor), and a chain re-derived by the processor (its hops deleted and written again,
        // with a new one).
        let newer = SeedHop {
            chain: sid("WT", 900 + pages),
            seq: 1,
            at: now_ms() + pages as i64,
            ..SeedHop::default()
        };
        insert_hops(&app.pool, &[newer]).await;
        if pages == 3 {
            let chain = sid("WT", 105);
            sqlx::query("DELETE FROM hops WHERE chain_id = $1")
                .bind(&chain)
                .execute(&app.pool)
                .await
                .unwrap();
            let mut again: Vec<SeedHop> =
                hops.iter().filter(|h| h.chain == chain).cloned().collect();
            again.push(SeedHop {
                chain: chain.clone(),
                seq: 4,
                at: now_ms(),
                ..SeedHop::default()
            });
            insert_hops(&app.pool, &again).await;
            // And a late hop, older than any: it is after the cursor, so it is listed once.
            let late = SeedHop {
                chain: sid("WT", 800),
                seq: 1,
                at: t - 1000,
                ..SeedHop::default()
            };
            insert_hops(&app.pool, std::slice::from_ref(&late)).await;
            expected.push(late.key());
        }
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 13, "91 hops, 7 a page");
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_limit_is_bounded_and_defaults_to_fifty() {
    let app = spawn_app().await;
    let t = now_ms() - 60 * MIN;
    let hops: Vec<SeedHop> = (0..60)
        .map(|i| SeedHop {
            chain: sid("WT", i),
            seq: 1,
            at: t + i as i64 * 1000,
            ..SeedHop::default()
        })
        .collect();
    insert_hops(&app.pool, &hops).await;
    let (_, body) = app.api_get("/api/v1/transfers").await;
    assert_eq!(keys(&body).len(), 50);
    assert!(body["next"].is_string());
    let (_, body) = app.api_get("/api/v1/transfers?limit=1").await;
    assert_eq!(keys(&body), vec![hops[59].key()]);
    let (_, body) = app.api_get("/api/v1/transfers?limit=500").await;
    assert_eq!(keys(&body).len(), 60);
    assert_eq!(body["next"], Value::Null);
    // Exactly a page: no next page.
    let (_, body) = app.api_get("/api/v1/transfers?limit=60").await;
    assert_eq!(body["next"], Value::Null);
    for bad in ["0", "501", "-1", "ten", ""] {
        let (status, body) = app.api_get(&format!("/api/v1/transfers?limit={bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(
            body["error"]["message"],
            format!("limit {bad:?} must be a whole number from 1 to 500")
        );
    }
}

#[tokio::test]
async fn stats_count_outcomes_and_time_to_accept_exactly() {
    let app = spawn_app().await;
    let (q1, q2) = (sid("WQ", 1), sid("WQ", 2));
    let (w1, w2) = (sid("WK", 1), sid("WK", 2));
    insert_worker(&app.pool, &w1, "Alice").await;
    insert_worker(&app.pool, &w2, "Bob").await;
    let t = now_ms() - 60 * MIN;
    let mut n = 0;
    let mut hop = |to_queue: Option<&String>,
                   to_worker: Option<&String>,
                   outcome: Option<&'static str>,
                   accept_secs: Option<i64>| {
        n += 1;
        let to_queue = to_queue.cloned();
        SeedHop {
            chain: sid("WT", n),
            seq: 1,
            at: t + n as i64 * 1000,
            to_worker: to_worker.cloned(),
            target_type: Some(if to_worker.is_some() {
                "worker"
            } else {
                "queue"
            }),
            target_sid: to_worker.cloned().or(to_queue.clone()),
            target_name: to_worker.is_none().then_some("Sales"),
            to_queue,
            outcome,
            accepted_after: accept_secs.map(|s| s * 1000),
            ..SeedHop::default()
        }
    };
    let mut hops = vec![
        hop(Some(&q1), Some(&w1), Some("completed"), Some(10)),
        hop(Some(&q1), Some(&w1), Some("completed"), Some(20)),
        hop(Some(&q1), Some(&w2), Some("completed"), Some(30)),
        hop(Some(&q1), Some(&w2), Some("completed"), Some(40)),
        hop(Some(&q1), None, Some("failed"), None),
        hop(Some(&q1), None, None, None),
        hop(Some(&q2), Some(&w1), Some("completed"), Some(5)),
        hop(Some(&q2), None, Some("canceled"), None),
        hop(Some(&q2), None, Some("returned"), None),
        hop(None, None, Some("failed"), None),
    ];
    // Forty days ago: outside the default window of 30 days.
    let mut old = hop(Some(&q2), Some(&w2), Some("completed"), Some(100));
    old.at = t - 40 * 24 * 60 * MIN;
    hops.push(old);
    insert_hops(&app.pool, &hops).await;

    let (status, body) = app.api_get("/api/v1/stats/transfers?group_by=queue").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["group_by"], "queue");
    assert_eq!(
        body["groups"],
        json!([
            {"group": q1, "name": "Sales", "total": 6, "completed": 4, "failed": 1, "canceled": 0,
             "returned": 0, "in_flight": 1, "accepted": 4,
             "median_seconds_to_accept": 25.0, "p90_seconds_to_accept": 37.0},
            {"group": q2, "name": "Sales", "total": 3, "completed": 1, "failed": 0, "canceled": 1,
             "returned": 1, "in_flight": 0, "accepted": 1,
             "median_seconds_to_accept": 5.0, "p90_seconds_to_accept": 5.0},
            {"group": null, "name": null, "total": 1, "completed": 0, "failed": 1, "canceled": 0,
             "returned": 0, "in_flight": 0, "accepted": 0,
             "median_seconds_to_accept": null, "p90_seconds_to_accept": null},
        ])
    );
    let until = chrono::DateTime::parse_from_rfc3339(body["until"].as_str().unwrap()).unwrap();
    let since = chrono::DateTime::parse_from_rfc3339(body["since"].as_str().unwrap()).unwrap();
    assert_eq!(until - since, chrono::TimeDelta::days(30));

    let (_, body) = app.api_get("/api/v1/stats/transfers?group_by=worker").await;
    let summary: Vec<Value> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            json!([
                g["group"],
                g["name"],
                g["total"],
                g["median_seconds_to_accept"],
                g["p90_seconds_to_accept"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            json!([null, null, 5, null, null]),
            json!([w1, "Alice", 3, 10.0, 18.0]),
            json!([w2, "Bob", 2, 35.0, 39.0]),
        ]
    );

    let (_, body) = app
        .api_get("/api/v1/stats/transfers?group_by=target_type")
        .await;
    let summary: Vec<Value> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            json!([
                g["group"],
                g["total"],
                g["completed"],
                g["median_seconds_to_accept"],
                g["p90_seconds_to_accept"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            json!(["queue", 5, 0, null, null]),
            json!(["worker", 5, 5, 20.0, 36.0]),
        ]
    );

    // A wider window takes the old hop in; a filter narrows the hops grouped.
    let (_, body) = app
        .api_get("/api/v1/stats/transfers?group_by=queue&since=60d")
        .await;
    assert_eq!(body["groups"][1]["group"], q2.as_str());
    assert_eq!(body["groups"][1]["total"], 4);
    assert_eq!(body["groups"][1]["median_seconds_to_accept"], 52.5);
    assert_eq!(body["groups"][1]["p90_seconds_to_accept"], 90.5);
    let (_, body) = app
        .api_get(&format!(
            "/api/v1/stats/transfers?group_by=queue&worker_sid={w2}"
        ))
        .await;
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
    assert_eq!(body["groups"][0]["total"], 2);
    assert_eq!(body["groups"][0]["median_seconds_to_accept"], 35.0);
}

#[tokio::test]
async fn bad_query_parameters_are_refused_naming_them() {
    let app = spawn_app().await;
    let wq = sid("WQ", 1);
    let cases: Vec<(String, String)> = vec![
        ("transfers?since=yesterday".into(), "since \"yesterday\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h".into()),
        ("transfers?until=2026-13-01".into(), "until \"2026-13-01\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h".into()),
        ("transfers?since=1d&until=2d".into(), "since must be before until".into()),
        (format!("transfers?worker_sid={wq}"), format!("worker_sid \"{wq}\" must start with WK (a worker SID)")),
        ("transfers?queue_sid=sales".into(), "queue_sid \"sales\" must be two letters followed by 32 hex digits".into()),
        (format!("transfers?conversation_sid={wq}"), format!("conversation_sid \"{wq}\" must start with CH (a conversation SID)")),
        ("transfers?target_type=team".into(), "target_type \"team\" must be worker, queue or workflow".into()),
        ("transfers?outcome=done".into(), "outcome \"done\" must be completed, failed, canceled, returned or in_flight".into()),
        ("transfers?limit=1000".into(), "limit \"1000\" must be a whole number from 1 to 500".into()),
        ("transfers?cursor=bm90LWEtY3Vyc29y".into(), "cursor is not a cursor this API returned".into()),
        ("transfers?queue=x".into(), "unknown query parameter \"queue\"; this route takes since, until, worker_sid, queue_sid, target_type, outcome, conversation_sid, limit, cursor".into()),
        ("transfers?outcome=failed&outcome=canceled".into(), "outcome is given more than once".into()),
        ("stats/transfers".into(), "group_by is required: queue, worker, target_type, from_queue or from_worker".into()),
        ("stats/transfers?group_by=day".into(), "group_by \"day\" must be queue, worker, target_type, from_queue or from_worker".into()),
        ("stats/transfers?group_by=queue&limit=5".into(), "unknown query parameter \"limit\"; this route takes since, until, worker_sid, queue_sid, target_type, outcome, conversation_sid, group_by".into()),
        ("stats/transfers?group_by=queue&since=tomorrow".into(), "since \"tomorrow\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h".into()),
    ];
    for (path, message) in cases {
        let (status, body) = app.api_get(&format!("/api/v1/{path}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            body,
            json!({"error": {"code": "invalid_request", "message": message}}),
            "{path}"
        );
    }
    // Without credentials: 401, whatever the parameters.
    for path in [
        "transfers",
        "transfers?limit=0",
        "stats/transfers?group_by=queue",
    ] {
        let response = app
            .client
            .get(format!("{}/api/v1/{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"baton\""
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn a_transfer_made_through_real_callbacks_is_listed_for_supervisors_only() {
    let flex = flex(CompleteOn::Accepted).await;
    let customer = flex.customer_writes_in().await;
    flex.accept(&customer.task, &flex.alice).await;
    let a = customer.task.clone();
    let (status, body) = flex
        .transfer(json!({"task_sid": a, "target_sid": flex.bob, "notes": "billing"}))
        .await;
    assert_eq!(status, 202, "{body}");
    flex.quiesce().await;
    let b = flex.task_after(&a);
    flex.accept(&b, &flex.bob).await;

    let (status, body) = flex
        .api_get(&format!(
            "/api/v1/transfers?conversation_sid={}",
            customer.conversation
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let transfers = body["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 1, "{body}");
    let hop = &transfers[0];
    assert_eq!(hop["chain_id"], a.as_str());
    assert_eq!(hop["from_task_sid"], a.as_str());
    assert_eq!(hop["to_task_sid"], b.as_str());
    assert_eq!(hop["from_worker_sid"], flex.alice.as_str());
    assert_eq!(hop["to_worker_sid"], flex.bob.as_str());
    assert_eq!(hop["target_type"], "worker");
    assert_eq!(hop["notes"], "billing");
    assert_eq!(hop["outcome"], "completed");
    let queue = flex.twilio.task(&b).unwrap().task_queue_sid;
    assert_eq!(hop["to_queue_sid"].as_str(), queue.as_deref());
    let to_accept = hop["seconds_to_accept"].as_f64().expect("a time to accept");
    assert!(to_accept >= 0.0, "{hop}");
    assert_eq!(body["next"], Value::Null);
    // The same hop by either worker; none by a worker it did not involve.
    for (worker, n) in [(&flex.alice, 1), (&flex.bob, 1), (&flex.carol, 0)] {
        let (_, body) = flex
            .api_get(&format!("/api/v1/transfers?worker_sid={worker}"))
            .await;
        assert_eq!(body["transfers"].as_array().unwrap().len(), n, "{worker}");
    }
    let (_, stats) = flex
        .api_get("/api/v1/stats/transfers?group_by=worker")
        .await;
    assert_eq!(stats["groups"][0]["group"], flex.bob.as_str());
    assert_eq!(stats["groups"][0]["completed"], 1);

    // History is for supervisors and ops: an agent's Flex token is refused.
    flex.twilio.seed_flex_token(
        "agent-token",
        "alice@example.com",
        Some(&flex.alice),
        &["agent"],
    );
    flex.twilio
        .seed_flex_token("lead-token", "lee@example.com", None, &["supervisor"]);
    for path in ["transfers", "stats/transfers?group_by=queue"] {
        let as_user = |token: &'static str| {
            flex.app
                .client
                .get(format!("{}/api/v1/{path}", flex.app.address))
                .bearer_auth(token)
                .send()
        };
        let refused = as_user("agent-token").await.unwrap();
        assert_eq!(refused.status(), 403, "{path}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["error"]["message"],
            "transfer history needs the ops token or a Flex admin/supervisor"
        );
        assert_eq!(as_user("lead-token").await.unwrap().status(), 200, "{path}");
    }
}

/// `baton history …` against `database_url`, in Paris time: exit code, stdout, stderr.
fn history_cli(database_url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("history")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("TZ", "Europe/Paris")
        .output()
        .expect("run baton history");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn history_ok(database_url: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = history_cli(database_url, args);
    assert_eq!(code, Some(0), "{args:?}: {stderr}");
    assert_eq!(stderr, "", "{args:?}");
    stdout
}

/// A migrated database with the five hops on 2 November 2026 (H5 ten days before, in summer
/// time), and no `baton serve`: the command reads the database alone.
async fn cli_database() -> (String, Vec<SeedHop>) {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("connect");
    baton::store::migrate(&pool).await.expect("migrate");
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
        .unwrap()
        .timestamp_millis();
    let (_, _, h) = seed_five_hops(&pool, t, 10).await;
    // Chain 1 as the processor stores it: its root, its tasks.
    let c1 = sid("WT", 1);
    sqlx::query(
        "INSERT INTO chains (chain_id, root_task_sid, task_count, hop_count, started_ms)
         VALUES ($1, $1, 2, 2, $2)",
    )
    .bind(&c1)
    .bind(t)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tasks (task_sid, assignment_status) VALUES ($1, 'completed'),
             ('WTb0000000000000000000000000000000', 'assigned')",
    )
    .bind(&c1)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    (url, h)
}

#[tokio::test]
async fn the_history_command_prints_tables_json_and_csv_from_the_database() {
    let (url, _) = cli_database().await;
    let q2 = sid("WQ", 2);
    let stats = [
        "stats",
        "--group-by",
        "queue",
        "--since",
        "2026-10-01",
        "--until",
        "2026-12-01",
    ];
    let with = |base: &[&str], extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let transfers = ["transfers", "--since", "2026-11-01", "--queue", q2.as_str()];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            with(&transfers, &[]),
            include_str!("golden/history-transfers.txt"),
        ),
        (
            with(&transfers, &["--json"]),
            include_str!("golden/history-transfers.json"),
        ),
        (
            with(&transfers, &["--csv"]),
            include_str!("golden/history-transfers.csv"),
        ),
        (
            with(&["transfers", "--limit", "2"], &[]),
            include_str!("golden/history-transfers-page.txt"),
        ),
        (with(&stats, &[]), include_str!("golden/history-stats.txt")),
        (
            with(&stats, &["--json"]),
            include_str!("golden/history-stats.json"),
        ),
        (
            with(&stats, &["--csv"]),
            include_str!("golden/history-stats.csv"),
        ),
        (
            with(&["chain", &sid("WT", 1)], &[]),
            include_str!("golden/history-chain.txt"),
        ),
    ];
    for (args, golden) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(history_ok(&url, &args), golden, "{args:?}");
    }
    // The JSON is the API's body.
    let json: Value = serde_json::from_str(include_str!("golden/history-transfers.json")).unwrap();
    assert_eq!(json["transfers"].as_array().unwrap().len(), 3);

    // The next page continues where the printed cursor says.
    let page = include_str!("golden/history-transfers-page.txt");
    let cursor = page.trim_end().rsplit(' ').next().unwrap();
    let next = history_ok(
        &url,
        &["transfers", "--limit", "2", "--cursor", cursor, "--csv"],
    );
    let rows: Vec<&str> = next.lines().skip(1).map(|l| &l[..36]).collect();
    assert_eq!(
        rows,
        vec![format!("{},1", sid("WT", 2)), format!("{},1", sid("WT", 1)),]
    );
}

#[tokio::test]
async fn the_history_command_names_what_is_wrong_in_one_line() {
    let (url, _) = cli_database().await;
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["transfers", "--limit", "0"],
            2,
            "baton: configuration error: --limit \"0\" must be a whole number from 1 to 500".into(),
        ),
        (
            vec!["transfers", "--worker", "WQ00000000000000000000000000000001"],
            2,
            "baton: configuration error: --worker \"WQ00000000000000000000000000000001\" must start with WK (a worker SID)".into(),
        ),
        (
            vec!["transfers", "--since", "2d", "--until", "3d"],
            2,
            "baton: configuration error: --since must be before --until".into(),
        ),
        (
            vec!["stats", "--group-by", "day"],
            2,
            "baton: configuration error: --group-by \"day\" must be queue, worker, target_type, from_queue or from_worker".into(),
        ),
        (
            vec!["chain", "task-1"],
            2,
            "baton: configuration error: TASK_SID \"task-1\" must be two letters followed by 32 hex digits".into(),
        ),
        (
            vec!["chain", "WT00000000000000000000000000000099"],
            1,
            "baton: baton has seen no event of task WT00000000000000000000000000000099".into(),
        ),
    ];
    for (args, code, message) in cases {
        let (status, stdout, stderr) = history_cli(&url, &args);
        assert_eq!(status, Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), message, "{args:?}");
        assert_eq!(stdout, "", "{args:?}");
    }
    // A database baton has not migrated is named, not queried.
    let empty = fresh_database().await;
    let (status, _, stderr) = history_cli(&empty, &["transfers"]);
    assert_eq!(status, Some(1));
    assert_eq!(
        stderr.trim_end(),
        "baton: the database is not migrated to this baton's version; run `baton migrate`"
    );
}
