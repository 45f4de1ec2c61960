//! `baton workflow render|check`, the real binary against the stand-in's workflows: the rendered
//! configuration (golden), a workflow lacking baton's routes (named, exit 1), one that has them
//! (exit 0), and `--apply` merging them in (the diff printed, `UpdateWorkflow` sent once, the
//! workflow passing the check afterwards).

use serde_json::{json, Value};
use std::process::{Command, Output};
use twilio_standin::{SeedTaskQueue, SeedWorkflow, StandIn, StandInConfig};

fn workflow(twilio: &StandIn, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("workflow")
        .args(args)
        .env_clear()
        .env("TWILIO_ACCOUNT_SID", twilio.account_sid())
        .env("TWILIO_AUTH_TOKEN", twilio.auth_token())
        .env("TWILIO_WORKSPACE_SID", twilio.workspace_sid())
        .env("TWILIO_API_BASE_URL", twilio.base_url())
        .output()
        .expect("run baton")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn render_prints_the_routes_baton_needs() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let out = workflow(
        &twilio,
        &[
            "render",
            "--everyone-queue",
            "WQ00000000000000000000000000000001",
            "--queue",
            "WQ00000000000000000000000000000002",
            "--park",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), include_str!("golden/workflow_render.json"));
    assert!(twilio.requests().is_empty(), "render asks Twilio nothing");
    let bad = workflow(
        &twilio,
        &[
            "render",
            "--everyone-queue",
            "WK00000000000000000000000000000001",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim_end(),
        "baton: configuration error: --everyone-queue must start with WQ (a task queue SID)"
    );
}

#[tokio::test]
async fn check_names_missing_routes_and_apply_merges_them_before_the_catch_all() {
    let twilio = StandIn::start(StandInConfig::default()).await;
    let everyone = twilio.default_task_queue_sid();
    let sales = twilio.seed_task_queue(SeedTaskQueue::new("Sales"));
    let mine = json!({"filter_friendly_name": "VIP", "expression": "vip == true",
                      "targets": [{"queue": sales, "priority": 10}]});
    let catch_all = json!({"filter_friendly_name": "All", "expression": "1==1",
                           "targets": [{"queue": everyone}]});
    let original = json!({"task_routing": {"filters": [mine, catch_all],
                                           "default_filter": {"queue": sales}}});
    let lacking =
        twilio.seed_workflow(SeedWorkflow::new("Chat Transfer").configuration(original.clone()));
    let route_args = [
        "--everyone-queue",
        everyone.as_str(),
        "--queue",
        sales.as_str(),
    ];
    let rendered: Value = serde_json::from_str(&stdout(&workflow(
        &twilio,
        &[&["render"][..], &route_args].concat(),
    )))
    .unwrap();
    let complete =
        twilio.seed_workflow(SeedWorkflow::new("Complete").configuration(rendered.clone()));

    let check = |sid: &str, extra: &[&str]| {
        workflow(&twilio, &[&["check", sid][..], &route_args, extra].concat())
    };
    let out = check(&lacking, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "workflow {lacking} (Chat Transfer)\n  missing  baton: route back in {everyone}\n  missing  baton: route back in {sales}\n  missing  baton: transfer to worker\n  missing  baton: transfer to queue {everyone}\n  missing  baton: transfer to queue {sales}\n5 route(s) missing or different; --apply merges them in\n"
        )
    );
    let out = check(&complete, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("every route baton needs is present\n"));
    assert!(
        twilio.requests().iter().all(|r| r.method == "GET"),
        "check changes nothing"
    );

    twilio.clear_requests();
    let out = check(&lacking, &["--apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for name in [
        "baton: transfer to worker".to_owned(),
        format!("baton: transfer to queue {everyone}"),
        format!("baton: transfer to queue {sales}"),
    ] {
        assert!(
            text.contains(&format!("+         \"filter_friendly_name\": \"{name}\",")),
            "the diff shows {name}:\n{text}"
        );
    }
    assert!(
        !text.lines().any(|l| l.starts_with("- ")),
        "nothing removed:\n{text}"
    );
    assert!(text.ends_with(&format!(
        "applied: 5 route(s) merged into workflow {lacking}\n"
    )));
    let updates: Vec<_> = twilio
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].operation.as_deref(), Some("UpdateWorkflow"));
    assert_eq!(updates[0].status, Some(200));
    let stored: Value =
        serde_json::from_str(&twilio.workflow(&lacking).unwrap().configuration).unwrap();
    // Theirs first, baton's next, the catch-all last; their default filter kept.
    let mut filters = vec![original["task_routing"]["filters"][0].clone()];
    filters.extend(
        rendered["task_routing"]["filters"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    filters.push(original["task_routing"]["filters"][1].clone());
    assert_eq!(
        stored,
        json!({"task_routing": {"filters": filters, "default_filter": {"queue": sales}}})
    );
    let out = check(&lacking, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
