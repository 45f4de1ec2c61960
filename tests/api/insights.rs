//! `baton backfill insights` end to end: baton's processor builds chains from the stand-in's
//! signed callbacks (no dispatcher runs, so nothing stamps them live, as when baton was not yet
//! installed), then the real binary reads and stamps the tasks through the stand-in's REST API.
//! Tests assert on the report rows, the CSV, `insights_stamps`, the tasks' attributes in the
//! stand-in and its request log.

use crate::backfill::{baton_command, create_task, run_command};
use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use twilio_standin::{SeedWorker, StandIn, StandInConfig};

const CH_LIVE: &str = "CH00000000000000000000000000000a01";
const CH_OVER: &str = "CH00000000000000000000000000000a02";
const WRONG: &str = "WT0000000000000000000000000000beef";

/// Two chains. Live (root `a`): `a` has no id (the root needs none), `b` has a `conversations`
/// object without the id, `c` a wrong id, `l` the right one. Over (root `d`): `d` and `e`
/// completed, `e` unlinked; `g` was deleted in Twilio after baton saw it.
struct Scene {
    app: TestApp,
    twilio: StandIn,
    a: String,
    b: String,
    c: String,
    l: String,
    d: String,
    e: String,
    g: String,
}

async fn task(twilio: &StandIn, attributes: Value) -> String {
    let sid = create_task(twilio, attributes).await;
    // One at a time, so each chain's order is the creation order.
    twilio.settle().await;
    sid
}

async fn scene() -> Scene {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let app = spawn_app_with(AppOptions {
        processors: 1,
        auth_tokens: vec![twilio.auth_token().to_owned()],
        public_url: Some("http://127.0.0.1:0".into()),
        ..AppOptions::default()
    })
    .await;
    twilio.set_callback_url(Some(format!("{}/webhooks/taskrouter", app.address)));

    let a = task(&twilio, json!({"channelSid": CH_LIVE, "name": "Ada"})).await;
    let b = task(
        &twilio,
        json!({"channelSid": CH_LIVE, "conversations": {"communication_channel": "chat"}}),
    )
    .await;
    let c = task(
        &twilio,
        json!({"channelSid": CH_LIVE, "conversations": {"conversation_id": WRONG}}),
    )
    .await;
    let l = task(
        &twilio,
        json!({"channelSid": CH_LIVE, "conversations": {"conversation_id": a}}),
    )
    .await;
    let d = task(&twilio, json!({"channelSid": CH_OVER})).await;
    let reservation = twilio.offer(&d, &alice);
    twilio.accept(&reservation);
    twilio.complete(&d);
    let e = task(&twilio, json!({"channelSid": CH_OVER})).await;
    let reservation = twilio.offer(&e, &bob);
    twilio.accept(&reservation);
    twilio.complete(&e);
    let g = task(&twilio, json!({"channelSid": CH_OVER})).await;
    twilio.settle().await;
    drained(&app.pool).await;
    // Deleted while nobody listened: baton still has it in its chain.
    twilio.set_callback_url(None);
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/v1/Workspaces/{}/Tasks/{g}",
            twilio.base_url(),
            twilio.workspace_sid()
        ))
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .send()
        .await
        .expect("stand-in reachable");
    assert_eq!(response.status(), 204);

    let chains: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT chain_id, task_sid, position FROM chain_tasks ORDER BY chain_id, position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut expected = vec![
        (a.clone(), a.clone(), 0),
        (a.clone(), b.clone(), 1),
        (a.clone(), c.clone(), 2),
        (a.clone(), l.clone(), 3),
        (d.clone(), d.clone(), 0),
        (d.clone(), e.clone(), 1),
        (d.clone(), g.clone(), 2),
    ];
    expected.sort_by(|x, y| (&x.0, x.2).cmp(&(&y.0, y.2)));
    assert_eq!(chains, expected, "the chains the backfill starts from");
    twilio.clear_requests();
    Scene {
        app,
        twilio,
        a,
        b,
        c,
        l,
        d,
        e,
        g,
    }
}

/// `(task, chain, found id, status, action)` of every report row of the latest run, by chain.
async fn report(
    pool: &sqlx::PgPool,
) -> Vec<(String, String, Option<String>, Option<String>, String)> {
    sqlx::query_as(
        "SELECT task_sid, chain_id, found_id, task_status, action FROM insights_backfill_tasks
         WHERE run_id = (SELECT max(id) FROM insights_backfill_runs)
         ORDER BY chain_id, position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

type Row = (String, String, Option<String>, Option<String>, String);

fn row(task: &str, chain: &str, found: Option<&str>, status: Option<&str>, action: &str) -> Row {
    (
        task.into(),
        chain.into(),
        found.map(Into::into),
        status.map(Into::into),
        action.into(),
    )
}

impl Scene {
    /// The report both runs give, with `b` and `c` given `live_action`.
    fn expected(&self, live_action: &str) -> Vec<Row> {
        let mut chains = [
            vec![
                row(&self.a, &self.a, None, Some("pending"), "already_linked"),
                row(&self.b, &self.a, None, Some("pending"), live_action),
                row(&self.c, &self.a, Some(WRONG), Some("pending"), live_action),
                row(
                    &self.l,
                    &self.a,
                    Some(&self.a),
                    Some("pending"),
                    "already_linked",
                ),
            ],
            vec![
                row(&self.d, &self.d, None, Some("completed"), "already_linked"),
                row(
                    &self.e,
                    &self.d,
                    None,
                    Some("completed"),
                    "completed_unchangeable",
                ),
                row(&self.g, &self.d, None, None, "gone"),
            ],
        ];
        chains.sort_by(|x, y| x[0].1.cmp(&y[0].1));
        chains.concat()
    }

    fn insights(&self, args: &[&str]) -> std::process::Command {
        let mut command = baton_command(
            &self.app,
            &self.twilio,
            &["backfill", "insights", "--json", "--rate", "200"],
        );
        command.args(args);
        command
    }

    fn tasks_path(&self, task: &str) -> String {
        format!(
            "/v1/Workspaces/{}/Tasks/{task}",
            self.twilio.workspace_sid()
        )
    }

    /// `task → [(method, status, If-Match sent)]` of the stand-in's task requests, in order.
    fn task_requests(&self) -> BTreeMap<String, Vec<(String, Option<u16>, bool)>> {
        let prefix = self.tasks_path("");
        let mut out: BTreeMap<String, Vec<(String, Option<u16>, bool)>> = BTreeMap::new();
        for r in self.twilio.requests() {
            if let Some(task) = r.path.strip_prefix(&prefix) {
                out.entry(task.to_owned()).or_default().push((
                    r.method.clone(),
                    r.status,
                    r.header("if-match").is_some(),
                ));
            }
        }
        out
    }

    fn attributes(&self, task: &str) -> Value {
        serde_json::from_str(&self.twilio.task(task).expect("task").attributes).expect("json")
    }
}

fn get(status: u16) -> (String, Option<u16>, bool) {
    ("GET".into(), Some(status), false)
}

fn post(status: u16) -> (String, Option<u16>, bool) {
    ("POST".into(), Some(status), true)
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing_then_the_real_run_stamps_only_live_unlinked_tasks_and_resumes(
) {
    let s = scene().await;
    let before_b = s.attributes(&s.b);
    let before_c = s.attributes(&s.c);

    // Dry run: every task read once, nothing written, no stamps recorded.
    let (code, dry, stderr) = run_command(s.insights(&["--dry-run"])).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dry["status"], "complete");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (
            &dry["chains"],
            &dry["tasks"],
            &dry["would_stamp"],
            &dry["already_linked"],
            &dry["completed_unchangeable"],
            &dry["gone"],
            &dry["stamped"],
            &dry["failed"]
        ),
        (
            &json!(2),
            &json!(7),
            &json!(2),
            &json!(3),
            &json!(1),
            &json!(1),
            &json!(0),
            &json!(0)
        )
    );
    assert_eq!(report(&s.app.pool).await, s.expected("would_stamp"));
    let requests = s.task_requests();
    assert_eq!(requests.len(), 7);
    for (task, calls) in &requests {
        let gone = task == &s.g;
        assert_eq!(calls, &vec![get(if gone { 404 } else { 200 })], "{task}");
    }
    assert_eq!(s.attributes(&s.b), before_b);
    assert_eq!(s.attributes(&s.c), before_c);
    let stamps: i64 = sqlx::query_scalar("SELECT count(*) FROM insights_stamps")
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(stamps, 0);

    // The real run: `b`'s first write meets a 412 (someone wrote in between: re-read), `c`'s
    // read a 503 (retried). Stopped after one chain, then continued.
    s.twilio.clear_requests();
    s.twilio
        .fail_next("POST", &s.tasks_path(&s.b), 1, 412, 20412);
    s.twilio
        .fail_next("GET", &s.tasks_path(&s.c), 1, 503, 20503);
    let dir = std::env::temp_dir().join(format!("baton-insights-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("report.csv");
    let out = csv.to_str().unwrap();
    let (code, first, stderr) = run_command(s.insights(&["--max-chains", "1", "--out", out])).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(first["status"], "interrupted");
    assert_eq!(first["resumed"], false);
    assert_eq!(first["chains"], 1);
    assert!(
        stderr.contains("run the same command to continue"),
        "{stderr}"
    );
    let (code, third, stderr) = run_command(s.insights(&["--out", out])).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(third["run_id"], first["run_id"]);
    assert_eq!(third["resumed"], true);
    assert_eq!(third["status"], "complete");
    assert_eq!(third["this_invocation_chains"], 1);
    assert_eq!(
        (
            &third["chains"],
            &third["tasks"],
            &third["stamped"],
            &third["already_linked"],
            &third["completed_unchangeable"],
            &third["gone"],
            &third["would_stamp"]
        ),
        (
            &json!(2),
            &json!(7),
            &json!(2),
            &json!(3),
            &json!(1),
            &json!(1),
            &json!(0)
        )
    );
    assert_eq!(report(&s.app.pool).await, s.expected("stamped"));

    // Each task read once over both invocations (plus the retry and the re-read); writes,
    // with If-Match, only for the live unlinked ones.
    let mut expected: BTreeMap<String, Vec<(String, Option<u16>, bool)>> = [
        (&s.a, vec![get(200)]),
        (&s.b, vec![get(200), post(412), get(200), post(200)]),
        (&s.c, vec![get(503), get(200), post(200)]),
        (&s.l, vec![get(200)]),
        (&s.d, vec![get(200)]),
        (&s.e, vec![get(200)]),
        (&s.g, vec![get(404)]),
    ]
    .into_iter()
    .map(|(k, v)| (k.clone(), v))
    .collect();
    assert_eq!(s.task_requests(), std::mem::take(&mut expected));

    // Merged into the existing `conversations` object; everything else kept.
    assert_eq!(
        s.attributes(&s.b),
        json!({"channelSid": CH_LIVE, "conversations": {"communication_channel": "chat", "conversation_id": s.a}})
    );
    assert_eq!(
        s.attributes(&s.c),
        json!({"channelSid": CH_LIVE, "conversations": {"conversation_id": s.a}})
    );
    let stamps: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT task_sid, chain_id, already_linked FROM insights_stamps ORDER BY task_sid",
    )
    .fetch_all(&s.app.pool)
    .await
    .unwrap();
    let mut expected_stamps = vec![
        (s.b.clone(), s.a.clone(), false),
        (s.c.clone(), s.a.clone(), false),
        (s.l.clone(), s.a.clone(), true),
    ];
    expected_stamps.sort();
    assert_eq!(stamps, expected_stamps);

    // The CSV: every task of the run, whichever invocation did it.
    let mut golden = String::from("task_sid,chain_id,found_conversation_id,task_status,action\n");
    for (task, chain, found, status, action) in s.expected("stamped") {
        golden += &format!(
            "{task},{chain},{},{},{action}\n",
            found.unwrap_or_default(),
            status.unwrap_or_default()
        );
    }
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), golden);
    std::fs::remove_dir_all(&dir).unwrap();

    // Everything is linked now: a new run writes nothing.
    s.twilio.clear_requests();
    let (code, again, stderr) = run_command(s.insights(&["--restart"])).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_ne!(again["run_id"], first["run_id"]);
    assert_eq!(
        (&again["stamped"], &again["already_linked"]),
        (&json!(0), &json!(5))
    );
    assert!(s
        .task_requests()
        .values()
        .flatten()
        .all(|(method, _, _)| method == "GET"));
}

#[tokio::test]
async fn insights_backfill_settings_errors_are_one_line() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let app = spawn_app().await;
    for (args, expected) in [
        (
            &["--rate", "0"][..],
            "--rate must be a number of requests per second above 0 and at most 1000",
        ),
        (
            &["--since", "someday"][..],
            "--since \"someday\" is not a time such as 2026-11-01T00:00Z, a date such as 2026-11-01, or a duration ago such as 6h",
        ),
    ] {
        let mut command = baton_command(&app, &twilio, &["backfill", "insights"]);
        let out = command.args(args).output().expect("run baton");
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            format!("baton: configuration error: {expected}")
        );
    }
}
