//! The Flex rig shared by the end-to-end tests: baton on a real database, the Twilio stand-in
//! playing TaskRouter (signed callbacks to baton's real webhook route) and serving the REST
//! calls baton's dispatcher makes.

use crate::helpers::*;
use baton::app::dispatcher::DispatcherConfig;
use baton::domain::chain::CompleteOn;
use baton::domain::retry::RetryPolicy;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use twilio_standin::{
    LoggedRequest, SeedConversation, SeedConversationParticipant, SeedInteraction,
    SeedInteractionParticipant, SeedTaskQueue, SeedWorker, SeedWorkflow, StandIn, StandInConfig,
    TaskStatus,
};

pub(crate) const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

pub(crate) struct Flex {
    pub(crate) app: TestApp,
    pub(crate) twilio: StandIn,
    pub(crate) alice: String,
    pub(crate) bob: String,
    pub(crate) carol: String,
    pub(crate) sales: String,
    pub(crate) transfer_workflow: String,
}

/// A customer's conversation and the task their invite created.
pub(crate) struct Customer {
    pub(crate) task: String,
    pub(crate) conversation: String,
    pub(crate) interaction: String,
    pub(crate) channel: String,
}

/// How the rig's baton is configured.
pub(crate) struct FlexOptions {
    pub(crate) complete_on: CompleteOn,
    pub(crate) max_attempts: u32,
    /// Orphan cleanup on, with this grace period.
    pub(crate) orphan_grace: Option<Duration>,
    pub(crate) timeout_fallback: bool,
    pub(crate) park_ttl: Duration,
    /// The stand-in keeps TaskRouter's Events list (for backfills).
    pub(crate) events_list: bool,
}

impl Default for FlexOptions {
    fn default() -> Self {
        FlexOptions {
            complete_on: CompleteOn::Accepted,
            max_attempts: 8,
            orphan_grace: None,
            timeout_fallback: false,
            park_ttl: Duration::from_secs(600),
            events_list: false,
        }
    }
}

pub(crate) fn fast_dispatcher(max_attempts: u32) -> DispatcherConfig {
    DispatcherConfig {
        concurrency: 4,
        lease: Duration::from_secs(30),
        poll: Duration::from_millis(20),
        policy: RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
            max_attempts,
        },
        ..DispatcherConfig::default()
    }
}

pub(crate) async fn flex_with(complete_on: CompleteOn, max_attempts: u32) -> Flex {
    Flex::start(FlexOptions {
        complete_on,
        max_attempts,
        ..FlexOptions::default()
    })
    .await
}

pub(crate) async fn flex(complete_on: CompleteOn) -> Flex {
    flex_with(complete_on, 8).await
}

impl Flex {
    pub(crate) async fn start(options: FlexOptions) -> Flex {
        let twilio = StandIn::start(StandInConfig {
            generate_events: options.events_list,
            ..StandInConfig::default()
        })
        .await;
        let alice = twilio.seed_worker(SeedWorker::new("alice"));
        let bob = twilio.seed_worker(SeedWorker::new("bob"));
        let carol = twilio.seed_worker(SeedWorker::new("carol"));
        let sales = twilio.seed_task_queue(SeedTaskQueue::new("Sales"));
        let transfer_workflow = twilio.seed_workflow(SeedWorkflow::new("Chat Transfer"));
        let app = spawn_app_with(AppOptions {
            processors: 1,
            auth_tokens: vec![twilio.auth_token().to_owned()],
            public_url: Some("http://127.0.0.1:0".into()),
            twilio_api_base_url: Some(url::Url::parse(&twilio.base_url()).expect("url")),
            dispatcher: Some(fast_dispatcher(options.max_attempts)),
            complete_on: options.complete_on,
            transfer_workflow_sid: Some(transfer_workflow.clone()),
            orphans: options.orphan_grace.is_some(),
            orphan_grace: options.orphan_grace.unwrap_or(Duration::from_secs(30)),
            timeout_fallback_workflow_sid: options
                .timeout_fallback
                .then(|| transfer_workflow.clone()),
            park_ttl: options.park_ttl,
            ..AppOptions::default()
        })
        .await;
        twilio.set_callback_url(Some(format!("{}/webhooks/taskrouter", app.address)));
        Flex {
            app,
            twilio,
            alice,
            bob,
            carol,
            sales,
            transfer_workflow,
        }
    }

    /// Waits until every callback is delivered and processed and no outbound call is pending.
    pub(crate) async fn quiesce(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut calm = 0;
        while calm < 3 {
            assert!(
                Instant::now() < deadline,
                "baton did not settle: {:?}",
                self.pending().await
            );
            self.twilio.settle().await;
            if self.pending().await == (0, 0) {
                calm += 1;
            } else {
                calm = 0;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    pub(crate) async fn pending(&self) -> (i64, i64) {
        let inbox: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inbox_progress WHERE processed_at IS NULL AND dead_at IS NULL",
        )
        .fetch_one(&self.app.pool)
        .await
        .expect("inbox");
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.app.pool)
            .await
            .expect("outbox");
        (inbox, outbox)
    }

    pub(crate) async fn twilio_post(&self, path: &str, form: &[(&str, String)]) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.twilio.base_url()))
            .basic_auth(self.twilio.account_sid(), Some(self.twilio.auth_token()))
            .form(form)
            .send()
            .await
            .expect("stand-in reachable");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// A customer writing in on a Flex Conversations (SMS) channel: the conversation, its
    /// interaction, and the task the customer's invite created (pending, offered to no one).
    pub(crate) async fn customer_writes_in(&self) -> Customer {
        let conversation = self
            .twilio
            .seed_conversation(SeedConversation::new().participant(
                SeedConversationParticipant::sms("+14155550100", "+18005550100"),
            ));
        let seeded = self.twilio.seed_interaction(
            SeedInteraction::new()
                .channel_type("sms")
                .conversation(&conversation)
                .participant(SeedInteractionParticipant::customer()),
        );
        let (kd, uo) = (seeded.interaction_sid, seeded.channel_sid);
        let task = self
            .invite(
                &kd,
                &uo,
                json!({"conversationSid": conversation, "from": "+14155550100",
                    "customerName": "Ada", "conversations": {"communication_channel": "sms"}}),
            )
            .await;
        Customer {
            task,
            conversation,
            interaction: kd,
            channel: uo,
        }
    }

    /// Invites into the interaction channel through the default workflow, as Flex does for a
    /// customer's first message or a plugin's transfer: the new task's SID.
    pub(crate) async fn invite(&self, kd: &str, uo: &str, attributes: Value) -> String {
        let before: Vec<String> = self.twilio.tasks().into_iter().map(|t| t.sid).collect();
        let routing = json!({"properties": {
            "workspace_sid": self.twilio.workspace_sid(),
            "workflow_sid": self.twilio.default_workflow_sid(),
            "task_channel_unique_name": "chat",
            "attributes": attributes,
        }});
        self.twilio_post(
            &format!("/v1/Interactions/{kd}/Channels/{uo}/Invites"),
            &[("Routing", routing.to_string())],
        )
        .await;
        self.twilio
            .tasks()
            .into_iter()
            .find(|t| t.attributes.contains(uo) && !before.contains(&t.sid))
            .expect("the invite created a task")
            .sid
    }

    /// A customer on a Flex Conversations channel, routed to `worker` who accepts: the task.
    pub(crate) async fn conversation_with(&self, worker: &str) -> (String, String, String) {
        let customer = self.customer_writes_in().await;
        let reservation = self.twilio.offer(&customer.task, worker);
        self.twilio.accept(&reservation);
        self.quiesce().await;
        (customer.task, customer.interaction, customer.channel)
    }

    /// A legacy (non-interaction) chat task created through TaskRouter's REST API, as a plugin
    /// or a Flex Flow would.
    pub(crate) async fn create_task(&self, attributes: Value) -> String {
        let ws = self.twilio.workspace_sid().to_owned();
        let task = self
            .twilio_post(
                &format!("/v1/Workspaces/{ws}/Tasks"),
                &[
                    ("Attributes", attributes.to_string()),
                    ("WorkflowSid", self.twilio.default_workflow_sid()),
                    ("TaskChannel", "chat".into()),
                ],
            )
            .await;
        task["sid"].as_str().expect("sid").to_owned()
    }

    /// A legacy chat task accepted by `worker`.
    pub(crate) async fn legacy_task_with(&self, worker: &str, attributes: Value) -> String {
        let task = self.create_task(attributes).await;
        let reservation = self.twilio.offer(&task, worker);
        self.twilio.accept(&reservation);
        self.quiesce().await;
        task
    }

    pub(crate) async fn transfer(&self, body: Value) -> (u16, Value) {
        let response = self
            .app
            .client
            .post(format!("{}/api/v1/transfers", self.app.address))
            .bearer_auth(OPS_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("baton reachable");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    pub(crate) async fn get_transfer(&self, transfer_id: &str) -> Value {
        let response = self
            .app
            .client
            .get(format!(
                "{}/api/v1/transfers/{transfer_id}",
                self.app.address
            ))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .expect("baton reachable");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    pub(crate) async fn chain(&self, task: &str) -> Value {
        let response = self
            .app
            .client
            .get(format!("{}/api/v1/tasks/{task}/chain", self.app.address))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .expect("baton reachable");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// The task a transfer created (the newest task whose attributes name `previous`).
    pub(crate) fn task_after(&self, previous: &str) -> String {
        self.twilio
            .tasks()
            .into_iter()
            .filter(|t| {
                t.attributes
                    .contains(&format!("\"previous_task_sid\":\"{previous}\""))
            })
            .map(|t| t.sid)
            .next_back()
            .expect("a transfer task")
    }

    pub(crate) fn requests(&self, method: &str, path_part: &str) -> Vec<LoggedRequest> {
        self.twilio
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path_part))
            .collect()
    }

    pub(crate) fn status(&self, task: &str) -> TaskStatus {
        self.twilio.task(task).expect("task").assignment_status
    }

    pub(crate) async fn twilio_get(&self, path: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.twilio.base_url()))
            .basic_auth(self.twilio.account_sid(), Some(self.twilio.auth_token()))
            .send()
            .await
            .expect("stand-in reachable");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// Runs `baton sweep` against this rig's database and stand-in: its standard output (the
    /// command must succeed).
    pub(crate) async fn sweep(&self, args: &[&str]) -> String {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_baton"));
        command
            .arg("sweep")
            .args(args)
            .env_clear()
            .env("DATABASE_URL", &self.app.database_url)
            .env("TWILIO_ACCOUNT_SID", self.twilio.account_sid())
            .env("TWILIO_WORKSPACE_SID", self.twilio.workspace_sid())
            .env("TWILIO_AUTH_TOKEN", self.twilio.auth_token())
            .env("TWILIO_API_BASE_URL", self.twilio.base_url());
        // Off the runtime thread: the stand-in and baton keep serving meanwhile.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("run baton sweep");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "baton sweep failed: {stderr}\n{stdout}"
        );
        assert!(
            !stdout.contains(self.twilio.auth_token())
                && !stderr.contains(self.twilio.auth_token()),
            "the auth token was printed"
        );
        stdout
    }

    /// `POST` JSON to an `/api/v1` path with the ops token: status and JSON body.
    pub(crate) async fn api_post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .app
            .client
            .post(format!("{}{path}", self.app.address))
            .bearer_auth(OPS_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("baton reachable");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// `GET` an `/api/v1` path with the ops token: status and JSON body.
    pub(crate) async fn api_get(&self, path: &str) -> (u16, Value) {
        self.app.api_get(path).await
    }

    /// Closes the interaction participant of the agent working `task`, as a plugin's cold
    /// transfer or Flex's "leave" does (their task completes).
    pub(crate) async fn close_agent_participant(&self, kd: &str, uo: &str, task: &str) {
        let list = self
            .twilio_get(&format!("/v1/Interactions/{kd}/Channels/{uo}/Participants"))
            .await;
        let participant = list["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .find(|p| p["routing_properties"]["task_sid"] == task)
            .and_then(|p| p["sid"].as_str())
            .expect("the agent's participant")
            .to_owned();
        self.twilio_post(
            &format!("/v1/Interactions/{kd}/Channels/{uo}/Participants/{participant}"),
            &[("Status", "closed".into())],
        )
        .await;
    }

    /// Offers the task to `worker`, who accepts.
    pub(crate) async fn accept(&self, task: &str, worker: &str) {
        let reservation = self.twilio.offer(task, worker);
        self.twilio.accept(&reservation);
        self.quiesce().await;
    }
}

impl TestApp {
    /// `GET` an `/api/v1` path with the ops token: status and JSON body.
    pub(crate) async fn api_get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .expect("baton reachable");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }
}

pub(crate) fn form<'a>(request: &'a LoggedRequest, key: &str) -> Option<&'a str> {
    request
        .form
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Polls `check` until it holds; fails the test naming `what` after `timeout`.
pub(crate) async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
