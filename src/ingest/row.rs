//! The inbox row of a parsed event: its identity and the columns the processor and ops read.

use super::parse::{self, ParsedEvent};
use crate::domain::event::TwilioEvent;
use crate::store::inbox::NewInboxEvent;

/// The inbox row for a parsed event.
pub fn inbox_row(parsed: &ParsedEvent) -> NewInboxEvent {
    let identity = parsed.event.identity(parsed.source, &parsed.delivery);
    let mut row = NewInboxEvent {
        event_key: identity.key,
        natural_key: identity.natural_key,
        source: parsed.source.as_str(),
        event_type: parsed.event.event_type().map(str::to_owned),
        resource_type: None,
        resource_sid: None,
        account_sid: None,
        workspace_sid: None,
        task_sid: None,
        reservation_sid: None,
        worker_sid: None,
        task_queue_sid: None,
        workflow_sid: None,
        conversation_sid: None,
        task_attributes: parsed.task_attributes().map(parse::to_raw),
        task_assignment_status: None,
        event_time_ms: parsed.event.time().map(|t| t.ms),
        event: parse::to_raw(&parsed.event),
        params: parsed.params.clone(),
        interpret_error: parsed.interpret_error.clone(),
    };
    match &parsed.event {
        TwilioEvent::Taskrouter(e) => {
            row.resource_type = e.resource_type.clone();
            row.resource_sid = e.subject_sid().map(str::to_owned);
            row.account_sid = e.account_sid.clone();
            row.workspace_sid = e.workspace_sid.clone();
            row.task_sid = e.task.as_ref().map(|t| t.task_sid.clone());
            row.task_assignment_status = e.task.as_ref().and_then(|t| t.assignment_status.clone());
            row.reservation_sid = e.reservation_sid.clone();
            row.worker_sid = e.worker.as_ref().map(|w| w.worker_sid.clone());
            row.task_queue_sid = e.task_queue_sid.clone();
            row.workflow_sid = e.workflow_sid.clone();
            row.conversation_sid = parsed
                .task_attributes()
                .and_then(|a| a.get("conversationSid"))
                .and_then(|v| v.as_str())
                .map(str::to_owned);
        }
        TwilioEvent::Conversations(e) => {
            row.resource_type = Some("conversation".into());
            row.resource_sid = e.conversation_sid.clone();
            row.account_sid = e.account_sid.clone();
            row.conversation_sid = e.conversation_sid.clone();
        }
        TwilioEvent::Unrecognized { .. } => {}
    }
    row
}
