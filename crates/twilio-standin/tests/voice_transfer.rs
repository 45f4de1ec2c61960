//! Native (Flex) voice transfers: the task stays assigned, a transfer (`TT…`) offers it through
//! reservations of its own and announces each step with a `task.transfer-*` event.

mod common;

use common::receiver::Receiver;
use common::{event_types, timeless_events, Client};
use serde_json::json;
use twilio_standin::{
    Effect, ReservationStatus, SeedTask, SeedTaskQueue, SeedWorker, StandIn, StandInConfig,
    TaskStatus, TransferMode, TransferState, TransferStatus, TransferType,
};

/// A voice call alice holds (assigned through `held`), bob and carol to transfer it to, and a
/// Support queue.
struct Call {
    twilio: StandIn,
    client: Client,
    alice: String,
    bob: String,
    carol: String,
    support: String,
    task: String,
    held: String,
    events_before: usize,
}

async fn call() -> Call {
    let twilio = StandIn::start(StandInConfig {
        generate_events: true,
        ..StandInConfig::default()
    })
    .await;
    let client = Client::new(&twilio);
    let alice = twilio.seed_worker(SeedWorker::new("alice"));
    let bob = twilio.seed_worker(SeedWorker::new("bob"));
    let carol = twilio.seed_worker(SeedWorker::new("carol"));
    let support = twilio.seed_task_queue(SeedTaskQueue::new("Support"));
    let task = twilio.seed_task(
        SeedTask::new()
            .channel("voice")
            .status(TaskStatus::Assigned)
            .worker(&alice)
            .attributes(json!({"call_sid": "CA01"})),
    );
    let held = twilio.task(&task).unwrap().reservations[0].clone();
    let events_before = twilio.events().len();
    Call {
        twilio,
        client,
        alice,
        bob,
        carol,
        support,
        task,
        held,
        events_before,
    }
}

impl Call {
    fn status(&self) -> TaskStatus {
        self.twilio.task(&self.task).unwrap().assignment_status
    }

    fn reservation(&self, sid: &str) -> ReservationStatus {
        self.twilio.reservation(sid).unwrap().status
    }

    fn types(&self) -> Vec<String> {
        event_types(&self.twilio, self.events_before)
    }

    fn moved(&self, sid: &str, worker: &str, from: &str, to: &str) -> Effect {
        Effect::ReservationStatusChanged {
            reservation_sid: sid.to_owned(),
            task_sid: self.task.clone(),
            worker_sid: worker.to_owned(),
            from: from.into(),
            to: to.into(),
        }
    }

    fn transfer_moved(&self, transfer: &str, to: &str, reason: Option<&str>) -> Effect {
        Effect::TransferStatusChanged {
            transfer_sid: transfer.to_owned(),
            task_sid: self.task.clone(),
            from: "INITIATED".into(),
            to: to.into(),
            reason: reason.map(str::to_owned),
        }
    }

    async fn reservation_update(&self, worker: &str, sid: &str, to: &str) {
        let path = format!(
            "{}/Workers/{worker}/Reservations/{sid}",
            self.client.ws(&self.twilio)
        );
        let r = self.client.post(&path, &[("ReservationStatus", to)]).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
}

#[tokio::test]
async fn a_cold_transfer_to_a_worker_offers_at_once_and_completes_on_accept() {
    let c = call().await;
    c.twilio.clear_effects();
    let tt = c.twilio.start_transfer(&c.task, &c.bob, false);

    assert!(tt.starts_with("TT") && tt.len() == 34, "{tt}");
    let offered = c.twilio.task(&c.task).unwrap().reservations[1].clone();
    let transfer = c.twilio.transfer(&tt).unwrap();
    let started = transfer.date_created;
    assert_eq!(
        transfer,
        TransferState {
            sid: tt.clone(),
            task_sid: c.task.clone(),
            mode: TransferMode::Cold,
            to: c.bob.clone(),
            transfer_type: TransferType::Worker,
            status: TransferStatus::Initiated,
            failed_reason: None,
            initiating_worker_sid: c.alice.clone(),
            initiating_reservation_sid: c.held.clone(),
            initiating_queue_sid: Some(c.twilio.default_task_queue_sid()),
            initiating_workflow_sid: Some(c.twilio.default_workflow_sid()),
            reservations: vec![offered.clone()],
            date_created: started,
            date_updated: started,
        }
    );
    assert_eq!(c.status(), TaskStatus::Assigned);
    assert_eq!(c.reservation(&c.held), ReservationStatus::Accepted);
    assert_eq!(c.reservation(&offered), ReservationStatus::Pending);
    assert_eq!(c.twilio.reservation(&offered).unwrap().worker_sid, c.bob);
    assert_eq!(
        c.types(),
        ["task.transfer-initiated", "reservation.created"]
    );

    c.twilio.accept(&offered);

    assert_eq!(
        c.types()[2..],
        [
            "reservation.accepted",
            "reservation.wrapup",
            "task.transfer-completed"
        ]
    );
    let transfer = c.twilio.transfer(&tt).unwrap();
    assert_eq!(transfer.status, TransferStatus::Completed);
    assert_eq!(transfer.failed_reason, None);
    assert_eq!(c.status(), TaskStatus::Assigned);
    assert_eq!(c.reservation(&offered), ReservationStatus::Accepted);
    assert_eq!(c.reservation(&c.held), ReservationStatus::Wrapping);
    assert_eq!(
        c.twilio.effects(),
        vec![
            Effect::TransferInitiated {
                transfer_sid: tt.clone(),
                task_sid: c.task.clone(),
                mode: "COLD".into(),
                to: c.bob.clone(),
            },
            Effect::ReservationCreated {
                reservation_sid: offered.clone(),
                task_sid: c.task.clone(),
                worker_sid: c.bob.clone(),
            },
            c.moved(&offered, &c.bob, "pending", "accepted"),
            c.moved(&c.held, &c.alice, "accepted", "wrapping"),
            c.transfer_moved(&tt, "COMPLETED", None),
        ]
    );

    // Every event of it says the task is assigned; the reservation events are bob's, the
    // wrap-up alice's.
    let events = timeless_events(&c.twilio, c.events_before);
    for event in &events {
        assert_eq!(event["event_data"]["task_assignment_status"], "assigned");
        assert_eq!(event["event_data"]["task_sid"], c.task.as_str());
    }
    let resources: Vec<&str> = events
        .iter()
        .map(|e| e["resource_sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [&c.task, &offered, &offered, &c.held, &c.task].map(String::as_str)
    );
    assert_eq!(events[1]["event_data"]["worker_sid"], c.bob.as_str());
    assert_eq!(events[3]["event_data"]["worker_sid"], c.alice.as_str());

    // alice finishes her wrap-up: bob still holds the call.
    c.reservation_update(&c.alice, &c.held, "completed").await;
    assert_eq!(c.reservation(&c.held), ReservationStatus::Completed);
    assert_eq!(c.status(), TaskStatus::Assigned);
    // bob ends it.
    c.twilio.wrap_up(&c.task);
    c.twilio.complete(&c.task);
    assert_eq!(c.status(), TaskStatus::Completed);
    assert_eq!(c.reservation(&offered), ReservationStatus::Completed);
}

#[tokio::test]
async fn transfer_events_carry_the_task_fields_and_the_transfer() {
    let c = call().await;
    let tt = c.twilio.start_transfer(&c.task, &c.bob, true);
    let events = timeless_events(&c.twilio, c.events_before);
    let initiated = &events[0];
    let ws = c.twilio.workspace_sid();
    assert_eq!(initiated["event_type"], "task.transfer-initiated");
    assert_eq!(initiated["resource_type"], "task");
    assert_eq!(initiated["resource_sid"], c.task.as_str());
    assert_eq!(
        initiated["resource_url"],
        format!(
            "https://taskrouter.twilio.com/v1/Workspaces/{ws}/Tasks/{}",
            c.task
        )
    );
    assert_eq!(
        initiated["description"],
        format!("Task {} transfer {tt} initiated", c.task)
    );
    let data = initiated["event_data"].as_object().unwrap();
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
            "transfer_initiating_reservation_sid",
            "transfer_initiating_worker_sid",
            "transfer_mode",
            "transfer_sid",
            "transfer_status",
            "transfer_to",
            "transfer_type",
            "workflow_name",
            "workflow_sid",
            "workspace_name",
            "workspace_sid",
        ]
    );
    assert_eq!(data["transfer_sid"], tt.as_str());
    assert_eq!(data["transfer_mode"], "WARM");
    assert_eq!(data["transfer_to"], c.bob.as_str());
    assert_eq!(data["transfer_type"], "WORKER");
    assert_eq!(data["transfer_status"], "INITIATED");
    assert_eq!(data["transfer_initiating_worker_sid"], c.alice.as_str());
    assert_eq!(data["transfer_initiating_reservation_sid"], c.held.as_str());
    assert_eq!(data["task_channel_unique_name"], "voice");

    // The callback: the envelope, the Task group, then the transfer, in that order.
    let receiver = Receiver::start();
    c.twilio.set_callback_url(Some(receiver.url.clone()));
    c.twilio.fail_transfer(&tt, "No answer");
    c.twilio.settle().await;
    assert_eq!(
        receiver.types(),
        ["reservation.canceled", "task.transfer-failed"]
    );
    let failed = &receiver.received()[1];
    let names: Vec<&str> = failed.pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "AccountSid",
            "WorkspaceSid",
            "WorkspaceName",
            "Sid",
            "EventType",
            "EventDescription",
            "ResourceType",
            "ResourceSid",
            "Timestamp",
            "TimestampMs",
            "TaskSid",
            "TaskAttributes",
            "TaskAssignmentStatus",
            "TaskAge",
            "TaskPriority",
            "TaskDateCreated",
            "TaskChannelSid",
            "TaskChannelUniqueName",
            "TaskQueueSid",
            "TaskQueueName",
            "TaskQueueTargetExpression",
            "TaskQueueEnteredDate",
            "WorkflowSid",
            "WorkflowName",
            "TransferSid",
            "TransferMode",
            "TransferTo",
            "TransferType",
            "TransferStatus",
            "TransferFailedReason",
            "TransferInitiatingWorkerSid",
            "TransferInitiatingReservationSid",
        ]
    );
    let p = |name: &str| failed.param(name).unwrap();
    assert_eq!(p("EventType"), "task.transfer-failed");
    assert_eq!(p("ResourceType"), "task");
    assert_eq!(p("ResourceSid"), c.task);
    assert_eq!(p("TaskAssignmentStatus"), "assigned");
    assert_eq!(p("TransferSid"), tt);
    assert_eq!(p("TransferMode"), "WARM");
    assert_eq!(p("TransferTo"), c.bob);
    assert_eq!(p("TransferType"), "WORKER");
    assert_eq!(p("TransferStatus"), "FAILED");
    assert_eq!(p("TransferFailedReason"), "No answer");
    assert_eq!(p("TransferInitiatingWorkerSid"), c.alice);
    assert_eq!(p("TransferInitiatingReservationSid"), c.held);
}

#[tokio::test]
async fn a_warm_transfer_to_a_queue_waits_for_offers_and_survives_failed_attempts() {
    let c = call().await;
    let tt = c.twilio.start_transfer(&c.task, &c.support, true);
    assert_eq!(c.types(), ["task.transfer-initiated"]);
    let transfer = c.twilio.transfer(&tt).unwrap();
    assert_eq!(transfer.transfer_type, TransferType::Queue);
    assert_eq!(transfer.to, c.support);
    assert!(transfer.reservations.is_empty());

    // bob rejects.
    let to_bob = c.twilio.offer_transfer(&tt, &c.bob);
    c.twilio.reject(&to_bob);
    // carol lets it time out (and goes offline, as any timeout does).
    let to_carol = c.twilio.offer_transfer(&tt, &c.carol);
    c.twilio.time_out_reservation(&to_carol);
    // bob is offered it again and rejects over REST.
    let again = c.twilio.offer_transfer(&tt, &c.bob);
    c.reservation_update(&c.bob, &again, "rejected").await;
    assert_eq!(
        c.types()[1..],
        [
            "reservation.created",
            "reservation.rejected",
            "task.transfer-attempt-failed",
            "reservation.created",
            "reservation.timeout",
            "task.transfer-attempt-failed",
            "worker.activity.update",
            "reservation.created",
            "reservation.rejected",
            "task.transfer-attempt-failed",
        ]
    );
    let events = timeless_events(&c.twilio, c.events_before);
    for failed in events
        .iter()
        .filter(|e| e["event_type"] == "task.transfer-attempt-failed")
    {
        assert_eq!(failed["event_data"]["transfer_status"], "INITIATED");
        assert_eq!(failed["event_data"]["transfer_sid"], tt.as_str());
        assert!(failed["event_data"].get("transfer_failed_reason").is_none());
    }
    assert_eq!(c.status(), TaskStatus::Assigned);
    assert_eq!(
        c.twilio.transfer(&tt).unwrap().status,
        TransferStatus::Initiated
    );

    // bob takes it the fourth time, over REST: warm, so alice stays on the call.
    let taken = c.twilio.offer_transfer(&tt, &c.bob);
    let before = c.twilio.events().len();
    c.reservation_update(&c.bob, &taken, "accepted").await;
    assert_eq!(
        event_types(&c.twilio, before),
        ["reservation.accepted", "task.transfer-completed"]
    );
    let transfer = c.twilio.transfer(&tt).unwrap();
    assert_eq!(transfer.status, TransferStatus::Completed);
    assert_eq!(
        transfer.reservations,
        [to_bob, to_carol, again, taken.clone()]
    );
    assert_eq!(c.reservation(&c.held), ReservationStatus::Accepted);
    assert_eq!(c.reservation(&taken), ReservationStatus::Accepted);
    assert_eq!(c.status(), TaskStatus::Assigned);

    // alice leaves the conference: her reservation wraps, the task is bob's.
    c.reservation_update(&c.alice, &c.held, "wrapping").await;
    assert_eq!(c.status(), TaskStatus::Assigned);
    c.reservation_update(&c.alice, &c.held, "completed").await;
    assert_eq!(c.status(), TaskStatus::Assigned);
    // bob wraps up and completes: the task follows him.
    c.reservation_update(&c.bob, &taken, "wrapping").await;
    assert_eq!(c.status(), TaskStatus::Wrapping);
    c.reservation_update(&c.bob, &taken, "completed").await;
    assert_eq!(c.status(), TaskStatus::Completed);
}

#[tokio::test]
async fn a_later_transfer_starts_from_whoever_took_the_last_one() {
    let c = call().await;
    let first = c.twilio.start_transfer(&c.task, &c.bob, true);
    let to_bob = c.twilio.task(&c.task).unwrap().reservations[1].clone();
    c.twilio.accept(&to_bob);
    let second = c.twilio.start_transfer(&c.task, &c.carol, false);
    let transfer = c.twilio.transfer(&second).unwrap();
    assert_ne!(first, second);
    assert_eq!(transfer.initiating_worker_sid, c.bob);
    assert_eq!(transfer.initiating_reservation_sid, to_bob);
    let to_carol = transfer.reservations[0].clone();
    c.twilio.accept(&to_carol);
    // Cold: bob's reservation wraps up; alice's (from the warm one) is untouched.
    assert_eq!(c.reservation(&to_bob), ReservationStatus::Wrapping);
    assert_eq!(c.reservation(&c.held), ReservationStatus::Accepted);
    assert_eq!(c.status(), TaskStatus::Assigned);
}

#[tokio::test]
async fn failing_a_transfer_cancels_its_offers_and_leaves_the_call_with_its_holder() {
    let c = call().await;
    let tt = c.twilio.start_transfer(&c.task, &c.bob, false);
    let offered = c.twilio.transfer(&tt).unwrap().reservations[0].clone();
    c.twilio.clear_effects();
    c.twilio.fail_transfer(&tt, "Worker unreachable");

    assert_eq!(
        c.types()[2..],
        ["reservation.canceled", "task.transfer-failed"]
    );
    let transfer = c.twilio.transfer(&tt).unwrap();
    assert_eq!(transfer.status, TransferStatus::Failed);
    assert_eq!(
        transfer.failed_reason.as_deref(),
        Some("Worker unreachable")
    );
    assert_eq!(
        c.twilio.effects(),
        vec![
            c.moved(&offered, &c.bob, "pending", "canceled"),
            c.transfer_moved(&tt, "FAILED", Some("Worker unreachable")),
        ]
    );
    assert_eq!(c.status(), TaskStatus::Assigned);
    assert_eq!(c.reservation(&c.held), ReservationStatus::Accepted);
    let events = timeless_events(&c.twilio, c.events_before);
    assert_eq!(
        events[3]["event_data"]["transfer_failed_reason"],
        "Worker unreachable"
    );
    // alice can transfer again, and finish the call as usual.
    let retry = c.twilio.start_transfer(&c.task, &c.carol, false);
    assert_ne!(retry, tt);
    c.twilio.cancel_transfer(&retry);
    c.twilio.wrap_up(&c.task);
    c.twilio.complete(&c.task);
    assert_eq!(c.status(), TaskStatus::Completed);
}

#[tokio::test]
async fn canceling_a_queue_transfer_cancels_every_pending_offer() {
    let c = call().await;
    let tt = c.twilio.start_transfer(&c.task, &c.support, false);
    let to_bob = c.twilio.offer_transfer(&tt, &c.bob);
    let to_carol = c.twilio.offer_transfer(&tt, &c.carol);
    c.twilio.reject(&to_bob);
    let before = c.twilio.events().len();
    c.twilio.clear_effects();
    c.twilio.cancel_transfer(&tt);

    assert_eq!(
        event_types(&c.twilio, before),
        ["reservation.canceled", "task.transfer-canceled"]
    );
    assert_eq!(c.reservation(&to_bob), ReservationStatus::Rejected);
    assert_eq!(c.reservation(&to_carol), ReservationStatus::Canceled);
    assert_eq!(
        c.twilio.effects(),
        vec![
            c.moved(&to_carol, &c.carol, "pending", "canceled"),
            c.transfer_moved(&tt, "CANCELED", None),
        ]
    );
    let canceled = &timeless_events(&c.twilio, before)[1]["event_data"];
    assert_eq!(canceled["transfer_status"], "CANCELED");
    assert_eq!(canceled["transfer_type"], "QUEUE");
    assert_eq!(canceled["transfer_to"], c.support.as_str());
    assert!(canceled.get("transfer_failed_reason").is_none());
    assert_eq!(c.status(), TaskStatus::Assigned);
    assert_eq!(c.reservation(&c.held), ReservationStatus::Accepted);
}

#[tokio::test]
async fn the_flex_transfer_call_play_is_unchanged() {
    let c = call().await;
    let offered = c.twilio.transfer_call(&c.task, &c.bob);
    assert_eq!(c.status(), TaskStatus::Reserved);
    assert_eq!(c.reservation(&c.held), ReservationStatus::Wrapping);
    c.twilio.accept(&offered);
    assert_eq!(
        c.types(),
        [
            "reservation.wrapup",
            "reservation.created",
            "reservation.accepted"
        ]
    );
    // Without a native transfer, alice completing her leg completes the task, as before.
    c.reservation_update(&c.alice, &c.held, "completed").await;
    assert_eq!(c.status(), TaskStatus::Completed);
}

// ---- refusals ----

#[tokio::test]
#[should_panic(expected = "is pending, not assigned")]
async fn a_task_nobody_holds_is_not_transferred() {
    let c = call().await;
    let waiting = c.twilio.seed_task(SeedTask::new().channel("voice"));
    c.twilio.start_transfer(&waiting, &c.bob, false);
}

#[tokio::test]
#[should_panic(expected = "is being transferred already")]
async fn one_transfer_at_a_time() {
    let c = call().await;
    c.twilio.start_transfer(&c.task, &c.support, false);
    c.twilio.start_transfer(&c.task, &c.bob, false);
}

#[tokio::test]
#[should_panic(expected = "is neither an existing worker (WK…) nor an existing queue (WQ…)")]
async fn the_target_must_exist() {
    let c = call().await;
    c.twilio
        .start_transfer(&c.task, "WK0000000000000000000000000000dead", false);
}

#[tokio::test]
#[should_panic(expected = "holds task")]
async fn the_holder_does_not_transfer_to_themselves() {
    let c = call().await;
    c.twilio.start_transfer(&c.task, &c.alice, false);
}

#[tokio::test]
#[should_panic(expected = "goes to worker")]
async fn a_worker_transfer_is_offered_to_that_worker_only() {
    let c = call().await;
    let tt = c.twilio.start_transfer(&c.task, &c.bob, false);
    c.twilio.offer_transfer(&tt, &c.carol);
}

#[tokio::test]
#[should_panic(expected = "is COMPLETED, not INITIATED")]
async fn a_finished_transfer_offers_nothing_more() {
    let c = call().await;
    let tt = c.twilio.start_transfer(&c.task, &c.support, false);
    let offered = c.twilio.offer_transfer(&tt, &c.bob);
    c.twilio.accept(&offered);
    c.twilio.offer_transfer(&tt, &c.carol);
}
