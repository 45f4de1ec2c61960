//! `GET /v1/Workspaces/{WS}/Tasks` (`ListTask`): filters, `EvaluateTaskAttributes`, `Ordering`,
//! paging.

mod common;

use common::{assert_error, start, Client};
use serde_json::{json, Value};
use twilio_standin::{SeedTask, SeedTaskQueue, SeedWorker, SeedWorkflow, StandIn, TaskStatus};

struct Scene {
    twilio: StandIn,
    client: Client,
    /// pending, priority 1, conversation_id WTroot
    pending: String,
    /// reserved, priority 5
    reserved: String,
    /// assigned, priority 3, conversation_id WTroot
    assigned: String,
    /// completed, priority 5
    completed: String,
    /// pending on the "Sales" workflow and queue, priority 2
    sales: String,
    sales_workflow: String,
    sales_queue: String,
}

async fn scene() -> Scene {
    let twilio = start().await;
    let client = Client::new(&twilio);
    let worker = twilio.seed_worker(SeedWorker::new("alice"));
    let sales_queue = twilio.seed_task_queue(SeedTaskQueue::new("Sales"));
    let sales_workflow = twilio.seed_workflow(SeedWorkflow::new("Sales").queue(&sales_queue));
    let root = json!({"conversations": {"conversation_id": "WTroot"}, "channelType": "sms"});
    let pending = twilio.seed_task(SeedTask::new().priority(1).attributes(root.clone()));
    let reserved = twilio.seed_task(
        SeedTask::new()
            .status(TaskStatus::Reserved)
            .worker(&worker)
            .priority(5)
            .attributes(json!({"channelType": "web"})),
    );
    let assigned = twilio.seed_task(
        SeedTask::new()
            .status(TaskStatus::Assigned)
            .worker(&worker)
            .priority(3)
            .attributes(root),
    );
    let completed = twilio.seed_task(
        SeedTask::new()
            .status(TaskStatus::Completed)
            .worker(&worker)
            .priority(5),
    );
    let sales = twilio.seed_task(SeedTask::new().workflow(&sales_workflow).priority(2));
    Scene {
        twilio,
        client,
        pending,
        reserved,
        assigned,
        completed,
        sales,
        sales_workflow,
        sales_queue,
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

impl Scene {
    fn path(&self, pairs: &[(&str, &str)]) -> String {
        format!("{}/Tasks?{}", self.client.ws(&self.twilio), query(pairs))
    }

    async fn sids(&self, pairs: &[(&str, &str)]) -> Vec<String> {
        let r = self.client.get(&self.path(pairs)).await;
        assert_eq!(r.status, 200, "{pairs:?}: {r:?}");
        r.json["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| t["sid"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn lists_every_live_task_oldest_first_as_the_fetch_shows_it() {
    let s = scene().await;
    let ws = s.client.ws(&s.twilio);
    // A deleted task is not listed.
    let doomed = s.twilio.seed_task(SeedTask::new());
    assert_eq!(
        s.client
            .delete(&format!("{ws}/Tasks/{doomed}"))
            .await
            .status,
        204
    );

    let r = s.client.get(&format!("{ws}/Tasks")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let keys: Vec<&str> = r
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["meta", "tasks"]);
    let tasks = r.json["tasks"].as_array().unwrap();
    let sids: Vec<&str> = tasks.iter().map(|t| t["sid"].as_str().unwrap()).collect();
    assert_eq!(
        sids,
        [
            s.pending.as_str(),
            s.reserved.as_str(),
            s.assigned.as_str(),
            s.completed.as_str(),
            s.sales.as_str()
        ]
    );
    for task in tasks {
        let mut listed = task.clone();
        let sid = listed["sid"].as_str().unwrap().to_owned();
        let mut fetched = s.client.get(&format!("{ws}/Tasks/{sid}")).await.json;
        // `age` is in whole seconds and may tick between the two requests.
        assert!(listed
            .as_object_mut()
            .unwrap()
            .remove("age")
            .unwrap()
            .is_u64());
        fetched.as_object_mut().unwrap().remove("age");
        assert_eq!(listed, fetched);
    }
    assert_eq!(tasks[1]["assignment_status"], "reserved");
    assert_eq!(tasks[4]["workflow_friendly_name"], "Sales");
    assert_eq!(tasks[4]["task_queue_friendly_name"], "Sales");

    let meta = &r.json["meta"];
    let base = s.twilio.base_url();
    assert_eq!(meta["key"], "tasks");
    assert_eq!(meta["page"], 0);
    assert_eq!(meta["page_size"], 50);
    assert_eq!(meta["next_page_url"], Value::Null);
    assert_eq!(meta["previous_page_url"], Value::Null);
    assert_eq!(
        meta["first_page_url"],
        format!("{base}{ws}/Tasks?PageSize=50&Page=0")
    );
}

#[tokio::test]
async fn assignment_status_takes_repeated_keys_or_a_comma_separated_value() {
    let s = scene().await;
    let open = [s.pending.clone(), s.reserved.clone(), s.sales.clone()];
    assert_eq!(
        s.sids(&[("AssignmentStatus", "pending,reserved")]).await,
        open
    );
    assert_eq!(
        s.sids(&[
            ("AssignmentStatus", "pending"),
            ("AssignmentStatus", "reserved")
        ])
        .await,
        open
    );
    assert_eq!(
        s.sids(&[("AssignmentStatus", "assigned")]).await,
        [s.assigned.as_str()]
    );
    assert_eq!(
        s.sids(&[("AssignmentStatus", "completed, assigned")]).await,
        [s.assigned.as_str(), s.completed.as_str()]
    );
    assert!(s.sids(&[("AssignmentStatus", "wrapping")]).await.is_empty());

    let r = s
        .client
        .get(&s.path(&[("AssignmentStatus", "pending,done")]))
        .await;
    assert_error(&r, 400, 20001);
    assert_eq!(
        r.str("message"),
        "Invalid value 'pending,done' for parameter AssignmentStatus: expected pending, reserved, assigned, canceled, completed or wrapping"
    );
}

#[tokio::test]
async fn workflow_queue_priority_and_routing_target_filters() {
    let s = scene().await;
    let default_workflow = s.twilio.default_workflow_sid();
    assert_eq!(
        s.sids(&[("WorkflowSid", &s.sales_workflow)]).await,
        [s.sales.as_str()]
    );
    assert_eq!(
        s.sids(&[("WorkflowName", "Sales")]).await,
        [s.sales.as_str()]
    );
    assert_eq!(
        s.sids(&[("TaskQueueSid", &s.sales_queue)]).await,
        [s.sales.as_str()]
    );
    assert_eq!(
        s.sids(&[("TaskQueueName", "Everyone"), ("Priority", "5")])
            .await,
        [s.reserved.as_str(), s.completed.as_str()]
    );
    assert_eq!(
        s.sids(&[
            ("WorkflowSid", &default_workflow),
            ("AssignmentStatus", "pending")
        ])
        .await,
        [s.pending.as_str()]
    );
    assert!(s.sids(&[("WorkflowName", "Nope")]).await.is_empty());

    // RoutingTarget: what the task was created with.
    let worker = s.twilio.seed_worker(SeedWorker::new("bob"));
    let ws = s.client.ws(&s.twilio);
    let created = s
        .client
        .post(
            &format!("{ws}/Tasks"),
            &[("RoutingTarget", worker.as_str())],
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        s.sids(&[("RoutingTarget", &worker)]).await,
        [created.str("sid").to_owned()]
    );

    // SIDs are checked as the spec declares them.
    let r = s.client.get(&s.path(&[("WorkflowSid", "WW123")])).await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("WorkflowSid"));
}

#[tokio::test]
async fn evaluate_task_attributes_filters_by_expression() {
    let s = scene().await;
    assert_eq!(
        s.sids(&[(
            "EvaluateTaskAttributes",
            "conversations.conversation_id == 'WTroot'"
        )])
        .await,
        [s.pending.as_str(), s.assigned.as_str()]
    );
    assert_eq!(
        s.sids(&[
            (
                "EvaluateTaskAttributes",
                "conversations.conversation_id == \"WTroot\""
            ),
            ("AssignmentStatus", "assigned"),
        ])
        .await,
        [s.assigned.as_str()]
    );
    assert_eq!(
        s.sids(&[(
            "EvaluateTaskAttributes",
            "channelType IN ['sms','web'] and NOT channelType == 'sms'"
        )])
        .await,
        [s.reserved.as_str()]
    );
    // A missing attribute never matches, not even with !=.
    assert_eq!(
        s.sids(&[("EvaluateTaskAttributes", "channelType != 'sms'")])
            .await,
        [s.reserved.as_str()]
    );
    assert_eq!(
        s.sids(&[("EvaluateTaskAttributes", "1 == 1")]).await.len(),
        5
    );

    let r = s
        .client
        .get(&s.path(&[(
            "EvaluateTaskAttributes",
            "conversations.conversation_id = 'x'",
        )]))
        .await;
    assert_error(&r, 400, 20001);
    assert_eq!(
        r.str("message"),
        "Invalid value 'conversations.conversation_id = 'x'' for parameter EvaluateTaskAttributes: unexpected character '=' at character 30"
    );
    let r = s
        .client
        .get(&s.path(&[("EvaluateTaskAttributes", "(a == 1")]))
        .await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("EvaluateTaskAttributes"));
}

#[tokio::test]
async fn ordering_by_priority_and_date_created() {
    let s = scene().await;
    assert_eq!(
        s.sids(&[("Ordering", "DateCreated:desc")]).await,
        [
            s.sales.as_str(),
            s.completed.as_str(),
            s.assigned.as_str(),
            s.reserved.as_str(),
            s.pending.as_str()
        ]
    );
    assert_eq!(
        s.sids(&[("Ordering", "DateCreated:asc")]).await,
        [
            s.pending.as_str(),
            s.reserved.as_str(),
            s.assigned.as_str(),
            s.completed.as_str(),
            s.sales.as_str()
        ]
    );
    // Equal priorities keep ascending DateCreated unless a second pair says otherwise.
    assert_eq!(
        s.sids(&[("Ordering", "Priority:desc")]).await,
        [
            s.reserved.as_str(),
            s.completed.as_str(),
            s.assigned.as_str(),
            s.sales.as_str(),
            s.pending.as_str()
        ]
    );
    assert_eq!(
        s.sids(&[("Ordering", "Priority:desc,DateCreated:desc")])
            .await,
        [
            s.completed.as_str(),
            s.reserved.as_str(),
            s.assigned.as_str(),
            s.sales.as_str(),
            s.pending.as_str()
        ]
    );
    assert_eq!(
        s.sids(&[("Ordering", "Priority:asc")]).await,
        [
            s.pending.as_str(),
            s.sales.as_str(),
            s.assigned.as_str(),
            s.reserved.as_str(),
            s.completed.as_str()
        ]
    );
    for bad in [
        "Priority",
        "Priority:up",
        "Age:asc",
        "DateCreated:asc,VirtualStartTime:desc",
        "Priority:asc,Priority:desc",
    ] {
        let r = s.client.get(&s.path(&[("Ordering", bad)])).await;
        assert_error(&r, 400, 20001);
        assert!(
            r.str("message")
                .starts_with(&format!("Invalid value '{bad}' for parameter Ordering: ")),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn pages_follow_next_page_url_with_the_filters_kept() {
    let s = scene().await;
    let ws = s.client.ws(&s.twilio);
    let base = s.twilio.base_url();
    let first = s
        .client
        .get(&s.path(&[
            ("AssignmentStatus", "pending,reserved,assigned"),
            ("PageSize", "2"),
        ]))
        .await;
    assert_eq!(first.status, 200);
    let sids = |r: &common::Resp| -> Vec<String> {
        r.json["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["sid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(sids(&first), [s.pending.as_str(), s.reserved.as_str()]);
    let next = first.json["meta"]["next_page_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        next,
        format!("{base}{ws}/Tasks?AssignmentStatus=pending%2Creserved%2Cassigned&PageSize=2&Page=1&PageToken=PT2")
    );
    let second = s.client.get(&next).await;
    assert_eq!(sids(&second), [s.assigned.as_str(), s.sales.as_str()]);
    assert_eq!(second.json["meta"]["next_page_url"], Value::Null);
    assert_eq!(second.json["meta"]["page"], 1);
    assert_eq!(
        second.json["meta"]["previous_page_url"],
        format!("{base}{ws}/Tasks?AssignmentStatus=pending%2Creserved%2Cassigned&PageSize=2&Page=0&PageToken=PT0")
    );
    let r = s.client.get(&s.path(&[("PageSize", "1001")])).await;
    assert_error(&r, 400, 20001);
    assert!(r.str("message").contains("PageSize"));
}
