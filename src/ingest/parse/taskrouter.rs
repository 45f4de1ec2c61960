//! TaskRouter event callbacks (the workspace's `EventCallbackUrl`): form parameters.

use super::*;

/// Callback form parameters (PascalCase).
pub(super) const CALLBACK_NAMES: TaskRouterNames = TaskRouterNames {
    event_sid: "Sid",
    event_type: "EventType",
    account_sid: "AccountSid",
    workspace_sid: "WorkspaceSid",
    resource_type: "ResourceType",
    resource_sid: "ResourceSid",
    timestamp_ms: "TimestampMs",
    timestamp: "Timestamp",
    task_sid: "TaskSid",
    task_attributes: "TaskAttributes",
    task_age: "TaskAge",
    task_priority: "TaskPriority",
    task_assignment_status: "TaskAssignmentStatus",
    task_canceled_reason: "TaskCanceledReason",
    task_completed_reason: "TaskCompletedReason",
    task_channel_unique_name: "TaskChannelUniqueName",
    reservation_sid: "ReservationSid",
    worker_sid: "WorkerSid",
    worker_name: "WorkerName",
    worker_attributes: "WorkerAttributes",
    worker_activity_sid: "WorkerActivitySid",
    worker_activity_name: "WorkerActivityName",
    worker_previous_activity_sid: "WorkerPreviousActivitySid",
    task_queue_sid: "TaskQueueSid",
    task_queue_name: "TaskQueueName",
    workflow_sid: "WorkflowSid",
    reason: "Reason",
    transfer_sid: "TransferSid",
    transfer_mode: "TransferMode",
    transfer_to: "TransferTo",
    transfer_type: "TransferType",
    transfer_status: "TransferStatus",
    transfer_failed_reason: "TransferFailedReason",
    transfer_initiating_worker_sid: "TransferInitiatingWorkerSid",
    transfer_initiating_reservation_sid: "TransferInitiatingReservationSid",
};

/// A TaskRouter workspace event callback (form parameters).
pub fn taskrouter_callback(
    pairs: &[(String, String)],
    idempotency_token: Option<String>,
) -> ParsedEvent {
    let f = FormFields(pairs);
    let mut errors = Vec::new();
    let event = match f.text(CALLBACK_NAMES.event_type) {
        Some(t) => TwilioEvent::Taskrouter(Box::new(taskrouter_event(
            &f,
            &CALLBACK_NAMES,
            TaskRouterEventType::parse(&t),
            &mut errors,
        ))),
        None => {
            errors.push("the callback has no EventType".into());
            TwilioEvent::Unrecognized { event_type: None }
        }
    };
    let delivery = DeliveryIdentity {
        cloud_event_id: None,
        content_hash: (!event.has_own_identity() && idempotency_token.is_none())
            .then(|| form_content_hash(pairs)),
        idempotency_token,
    };
    finish(
        Source::TaskrouterCallback,
        event,
        params_object(pairs),
        delivery,
        errors,
    )
}
