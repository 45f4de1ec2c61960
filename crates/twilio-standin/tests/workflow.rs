//! Tasks that leave their workflow unrouted: a `skip_if` in the final step
//! (`workflow.skipped`) or the last timeout (`workflow.timeout`), each ending in a cancel.

mod common;

use common::receiver::Receiver;
use common::{event_types, timeless_events};
use serde_json::json;
use twilio_standin::{
    Effect, ReservationStatus, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus,
    WORKFLOW_SKIPPED, WORKFLOW_TIMEOUT,
};

/// A reserved task (one pending reservation for alice), events on.
async fn reserved() -> (StandIn, String, String, String) {
    let twilio = StandIn::start(StandInConfig {
        generate_events: true,
        ..StandInConfig::default()
    })
    .await;
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let task = twilio.seed_task(SeedTask::new().attributes(json!({"type": "support"})));
    let offered = twilio.offer(&task, &alice);
    (twilio, task, alice, offered)
}

#[tokio::test]
async fn skipping_the_workflow_announces_it_then_cancels_the_task() {
    let (twilio, task, alice, offered) = reserved().await;
    let workflow = twilio.default_workflow_sid();
    let queue = twilio.default_task_queue_sid();
    twilio.clear_effects();
    let before = twilio.events().len();

    twilio.skip_workflow(&task);

    assert_eq!(WORKFLOW_SKIPPED, "Task skipped by workflow");
    let state = twilio.task(&task).unwrap();
    assert_eq!(state.assignment_status, TaskStatus::Canceled);
    assert_eq!(state.reason.as_deref(), Some(WORKFLOW_SKIPPED));
    assert_eq!(
        twilio.reservation(&offered).unwrap().status,
        ReservationStatus::Canceled
    );
    assert_eq!(
        twilio.effects(),
        vec![
            Effect::TaskStatusChanged {
                task_sid: task.clone(),
                from: "reserved".into(),
                to: "canceled".into(),
                reason: Some(WORKFLOW_SKIPPED.into()),
            },
            Effect::ReservationStatusChanged {
                reservation_sid: offered.clone(),
                task_sid: task.clone(),
                worker_sid: alice.clone(),
                from: "pending".into(),
                to: "canceled".into(),
            },
        ]
    );
    assert_eq!(
        event_types(&twilio, before),
        ["workflow.skipped", "reservation.canceled", "task.canceled"]
    );
    let events = timeless_events(&twilio, before);
    let skipped = &events[0];
    let ws = twilio.workspace_sid();
    assert_eq!(skipped["resource_type"], "workflow");
    assert_eq!(skipped["resource_sid"], workflow.as_str());
    assert_eq!(
        skipped["resource_url"],
        format!("https://taskrouter.twilio.com/v1/Workspaces/{ws}/Workflows/{workflow}")
    );
    assert_eq!(
        skipped["description"],
        format!("Task {task} skipped Workflow {workflow}")
    );
    let data = skipped["event_data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "task_assignment_status",
            "task_attributes",
            "task_channel_sid",
            "task_channel_unique_name",
            "task_priority",
            "task_queue_name",
            "task_queue_sid",
            "task_queue_target_expression",
            "task_sid",
            "workflow_name",
            "workflow_sid",
            "workspace_name",
            "workspace_sid",
        ]
    );
    assert_eq!(data["task_sid"], task.as_str());
    // The task is still reserved when the workflow lets it go; the cancel follows.
    assert_eq!(data["task_assignment_status"], "reserved");
    assert_eq!(data["task_queue_sid"], queue.as_str());
    assert_eq!(data["workflow_sid"], workflow.as_str());
    assert_eq!(data["workflow_name"], "Assign to Anyone");
    let canceled = &events[2]["event_data"];
    assert_eq!(canceled["task_canceled_reason"], WORKFLOW_SKIPPED);
    assert_eq!(events[2]["description"], WORKFLOW_SKIPPED);
}

#[tokio::test]
async fn the_skip_reaches_the_callback_url_with_the_task_fields() {
    let receiver = Receiver::start();
    let twilio = StandIn::start(StandInConfig::default()).await;
    twilio.set_callback_url(Some(receiver.url.clone()));
    let task = twilio.seed_task(SeedTask::new());
    twilio.skip_workflow(&task);
    twilio.settle().await;

    assert_eq!(receiver.types(), ["workflow.skipped", "task.canceled"]);
    let received = receiver.received();
    let skipped = &received[0];
    let workflow = twilio.default_workflow_sid();
    assert_eq!(skipped.param("ResourceType"), Some("workflow"));
    assert_eq!(skipped.param("ResourceSid"), Some(workflow.as_str()));
    assert_eq!(skipped.param("WorkflowSid"), Some(workflow.as_str()));
    assert_eq!(skipped.param("TaskSid"), Some(task.as_str()));
    assert_eq!(skipped.param("TaskAssignmentStatus"), Some("pending"));
    assert_eq!(skipped.param("TaskCanceledReason"), None);
    let canceled = &received[1];
    assert_eq!(canceled.param("TaskAssignmentStatus"), Some("canceled"));
    assert_eq!(canceled.param("TaskCanceledReason"), Some(WORKFLOW_SKIPPED));
}

/// The timeout is the same exit with its own event and reason.
#[tokio::test]
async fn timing_out_of_the_workflow_is_the_same_exit_with_its_own_event_and_reason() {
    let (twilio, task, _alice, _offered) = reserved().await;
    let workflow = twilio.default_workflow_sid();
    let before = twilio.events().len();
    twilio.time_out_workflow(&task);
    assert_eq!(
        event_types(&twilio, before),
        ["workflow.timeout", "reservation.canceled", "task.canceled"]
    );
    let events = timeless_events(&twilio, before);
    assert_eq!(events[0]["resource_sid"], workflow.as_str());
    assert_eq!(
        events[0]["description"],
        format!("Task {task} timed out of Workflow {workflow}")
    );
    let state = twilio.task(&task).unwrap();
    assert_eq!(state.assignment_status, TaskStatus::Canceled);
    assert_eq!(state.reason.as_deref(), Some(WORKFLOW_TIMEOUT));
}

#[tokio::test]
#[should_panic(expected = "is assigned; only pending or reserved tasks skip their workflow")]
async fn an_assigned_task_does_not_skip_its_workflow() {
    let (twilio, task, _alice, offered) = reserved().await;
    twilio.accept(&offered);
    twilio.skip_workflow(&task);
}
