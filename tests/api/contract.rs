//! The OpenAPI document as a contract: schemathesis (PyPI) generates requests from
//! `/api/v1/openapi.json` — valid ones, invalid ones, other methods, missing or wrong
//! credentials, the documented links — sends them to a running baton beside the stand-in, and
//! checks each answer against the document with every check on. Any request the document
//! allows but baton refuses, any status, header or body the document does not describe, fails.

use crate::flex::{Flex, FlexOptions, OPS_TOKEN};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The CLI, under either of its names.
const COMMANDS: [&str; 2] = ["schemathesis", "st"];

/// Test cases per operation and phase: enough to find a schema the server disagrees with, few
/// enough to finish in a couple of minutes on a small machine.
const MAX_EXAMPLES: &str = "25";

/// A run that takes longer than this is stuck.
const TIMEOUT: Duration = Duration::from_secs(600);

/// What exists in the stand-in and in baton before the run, offered to schemathesis beside the
/// values it generates, so that requests reach past "no such task" to the answers that carry
/// bodies: a live task to park or transfer, a transfer with its chain and outbox call.
struct KnownValues {
    tasks: Vec<String>,
    targets: Vec<String>,
    conversations: Vec<String>,
    workers: Vec<String>,
    queues: Vec<String>,
}

impl KnownValues {
    async fn seed(flex: &Flex) -> KnownValues {
        let mut tasks = Vec::new();
        let mut conversations = Vec::new();
        for worker in [&flex.alice, &flex.bob] {
            let customer = flex.customer_writes_in().await;
            let reservation = flex.twilio.offer(&customer.task, worker);
            flex.twilio.accept(&reservation);
            tasks.push(customer.task);
            conversations.push(customer.conversation);
        }
        flex.quiesce().await;
        // Bob's customer goes to Sales: a transfer, its chain and its outbox call exist.
        let (status, body) = flex
            .transfer(serde_json::json!({"task_sid": tasks[1], "target_sid": flex.sales}))
            .await;
        assert_eq!(status, 202, "{body}");
        flex.quiesce().await;
        KnownValues {
            tasks,
            targets: vec![
                flex.carol.clone(),
                flex.sales.clone(),
                flex.transfer_workflow.clone(),
            ],
            conversations,
            workers: vec![flex.alice.clone(), flex.bob.clone()],
            queues: vec![flex.sales.clone()],
        }
    }

    /// Schemathesis dictionaries and the parameters that draw on them (half the time).
    fn settings(&self) -> String {
        let list = |values: &[String]| {
            values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::new();
        for (name, values) in [
            ("tasks", &self.tasks),
            ("targets", &self.targets),
            ("conversations", &self.conversations),
            ("workers", &self.workers),
            ("queues", &self.queues),
        ] {
            out.push_str(&format!(
                "[dictionaries.{name}]\nvalues = [{}]\n",
                list(values)
            ));
        }
        out.push_str("[dictionaries.calls]\nvalues = [1]\n[parameters]\n");
        for (parameter, dictionary) in [
            ("path.task_sid", "tasks"),
            ("body.task_sid", "tasks"),
            ("body.target_sid", "targets"),
            ("path.sid", "conversations"),
            ("query.conversation_sid", "conversations"),
            ("query.worker_sid", "workers"),
            ("query.queue_sid", "queues"),
            ("path.id", "calls"),
        ] {
            out.push_str(&format!(
                "{parameter:?} = {{ dictionary = {dictionary:?}, probability = 0.5 }}\n"
            ));
        }
        out
    }
}

async fn installed(command: &str) -> Option<String> {
    let output = tokio::process::Command::new(command)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    // `st` may be another program.
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && version.contains("schemathesis")).then_some(version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_request_the_document_and_baton_disagree_on() {
    let mut cli = None;
    for command in COMMANDS {
        if let Some(version) = installed(command).await {
            cli = Some((command, version));
            break;
        }
    }
    let Some((command, version)) = cli else {
        panic!(
            "schemathesis is not installed: `pip install schemathesis` (the contract test runs \
             its CLI, `schemathesis` or `st`, against a running baton)"
        );
    };

    let flex = Flex::start(FlexOptions::default()).await;
    let known = KnownValues::seed(&flex).await;
    let schema = format!("{}/api/v1/openapi.json", flex.app.address);
    // Hypothesis keeps its example database in the working directory: a scratch one, which also
    // holds the settings with this run's known values.
    let scratch = std::env::temp_dir().join(format!("baton-contract-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml"),
    )
    .expect("tests/api/schemathesis.toml");
    let config = scratch.join("schemathesis.toml");
    std::fs::write(&config, format!("{base}\n{}", known.settings())).expect("settings");

    let started = Instant::now();
    let run = tokio::process::Command::new(command)
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &schema,
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            // One worker: Hypothesis is not safe to drive from several threads at once.
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--output-sanitize",
            "true",
            "--no-color",
        ])
        // The token reaches schemathesis through the environment only (the config file names
        // the variable), never its command line.
        .env("BATON_OPS_TOKEN", OPS_TOKEN)
        .current_dir(&scratch)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {TIMEOUT:?}"))
        .expect("schemathesis runs");
    let _ = std::fs::remove_dir_all(&scratch);

    let raw = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let leaked = raw.contains(OPS_TOKEN);
    // Masked here too, so that a failing run's log never carries it whatever is printed.
    let printed = raw.replace(OPS_TOKEN, "[ops token]");
    eprintln!(
        "{version}: {:?}, {}\n{printed}",
        started.elapsed(),
        output.status
    );
    assert!(
        output.status.success(),
        "schemathesis found requests where baton and its OpenAPI document disagree (above)"
    );
    assert!(!leaked, "schemathesis printed the ops token");
}
