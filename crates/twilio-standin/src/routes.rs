//! The route table: every (method, path) the stand-in serves, the parameters it reads and the
//! fields it returns. The server routes by this table, validates parameters by it and refuses
//! (500) to return a field it does not declare; the contract test checks the table against
//! Twilio's OpenAPI specs. So the table cannot drift from what the stand-in does, and what the
//! stand-in does cannot drift from the specs.

use crate::ctx::{Ctx, Reply};
use crate::error::ApiError;
use crate::route_spec::{Api, Body, ParamKind, ParamSpec, RouteSpec};
use crate::{conversations, flex, iam, task_list, taskrouter};
use std::sync::OnceLock;

pub(crate) type Handler = fn(&mut Ctx<'_>) -> Result<Reply, ApiError>;

/// One entry of the table: what the route declares, and the handler that answers it.
pub(crate) struct Route {
    pub spec: RouteSpec,
    pub handler: Handler,
}

/// The `meta` object of every list answer.
pub const META_FIELDS: &[&str] = &[
    "page",
    "page_size",
    "first_page_url",
    "previous_page_url",
    "next_page_url",
    "key",
    "url",
];

const fn p(name: &'static str, kind: ParamKind) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: false,
    }
}

const fn req(name: &'static str, kind: ParamKind) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: true,
    }
}

const INT32: ParamKind = ParamKind::Int {
    min: 0,
    max: 2_147_483_647,
};
const PAGE: ParamSpec = p(
    "Page",
    ParamKind::Int {
        min: 0,
        max: i64::MAX,
    },
);
const PAGE_TOKEN: ParamSpec = p("PageToken", ParamKind::Str);
const fn page_size(max: i64) -> ParamSpec {
    p("PageSize", ParamKind::Int { min: 1, max })
}

const TASK_STATUSES: &[&str] = &[
    "pending",
    "reserved",
    "assigned",
    "canceled",
    "completed",
    "wrapping",
];
const RESERVATION_STATUSES: &[&str] = &[
    "pending",
    "accepted",
    "rejected",
    "timeout",
    "canceled",
    "rescinded",
    "wrapping",
    "completed",
];

pub(crate) const WORKSPACE_FIELDS: &[&str] = &[
    "account_sid",
    "date_created",
    "date_updated",
    "default_activity_name",
    "default_activity_sid",
    "event_callback_url",
    "events_filter",
    "friendly_name",
    "multi_task_enabled",
    "sid",
    "timeout_activity_name",
    "timeout_activity_sid",
    "prioritize_queue_order",
    "url",
    "links",
];
pub(crate) const TASK_FIELDS: &[&str] = &[
    "account_sid",
    "age",
    "assignment_status",
    "attributes",
    "addons",
    "date_created",
    "date_updated",
    "task_queue_entered_date",
    "priority",
    "reason",
    "sid",
    "task_queue_sid",
    "task_queue_friendly_name",
    "task_channel_sid",
    "task_channel_unique_name",
    "timeout",
    "workflow_sid",
    "workflow_friendly_name",
    "workspace_sid",
    "url",
    "links",
    "virtual_start_time",
    "ignore_capacity",
    "routing_target",
];
pub(crate) const RESERVATION_FIELDS: &[&str] = &[
    "account_sid",
    "date_created",
    "date_updated",
    "reservation_status",
    "sid",
    "task_sid",
    "worker_name",
    "worker_sid",
    "workspace_sid",
    "url",
    "links",
];
pub(crate) const WORKER_FIELDS: &[&str] = &[
    "account_sid",
    "activity_name",
    "activity_sid",
    "attributes",
    "available",
    "date_created",
    "date_status_changed",
    "date_updated",
    "friendly_name",
    "sid",
    "workspace_sid",
    "url",
    "links",
];
pub(crate) const TASK_QUEUE_FIELDS: &[&str] = &[
    "account_sid",
    "assignment_activity_sid",
    "assignment_activity_name",
    "date_created",
    "date_updated",
    "friendly_name",
    "max_reserved_workers",
    "reservation_activity_sid",
    "reservation_activity_name",
    "sid",
    "target_workers",
    "task_order",
    "url",
    "workspace_sid",
    "links",
];
pub(crate) const WORKFLOW_FIELDS: &[&str] = &[
    "account_sid",
    "assignment_callback_url",
    "configuration",
    "date_created",
    "date_updated",
    "document_content_type",
    "fallback_assignment_callback_url",
    "friendly_name",
    "sid",
    "task_reservation_timeout",
    "workspace_sid",
    "url",
    "links",
];
pub(crate) const ACTIVITY_FIELDS: &[&str] = &[
    "account_sid",
    "available",
    "date_created",
    "date_updated",
    "friendly_name",
    "sid",
    "workspace_sid",
    "url",
    "links",
];
pub(crate) const EVENT_FIELDS: &[&str] = &[
    "account_sid",
    "actor_sid",
    "actor_type",
    "actor_url",
    "description",
    "event_data",
    "event_date",
    "event_date_ms",
    "event_type",
    "resource_sid",
    "resource_type",
    "resource_url",
    "sid",
    "source",
    "source_ip_address",
    "url",
    "workspace_sid",
];
pub(crate) const CONVERSATION_FIELDS: &[&str] = &[
    "account_sid",
    "chat_service_sid",
    "messaging_service_sid",
    "sid",
    "friendly_name",
    "unique_name",
    "attributes",
    "state",
    "date_created",
    "date_updated",
    "timers",
    "url",
    "links",
    "bindings",
];
pub(crate) const CONVERSATION_PARTICIPANT_FIELDS: &[&str] = &[
    "account_sid",
    "conversation_sid",
    "sid",
    "identity",
    "attributes",
    "messaging_binding",
    "role_sid",
    "date_created",
    "date_updated",
    "url",
    "last_read_message_index",
    "last_read_timestamp",
];
pub(crate) const WEBHOOK_FIELDS: &[&str] = &[
    "sid",
    "account_sid",
    "conversation_sid",
    "target",
    "url",
    "configuration",
    "date_created",
    "date_updated",
];
pub(crate) const INTERACTION_FIELDS: &[&str] = &[
    "sid",
    "channel",
    "routing",
    "url",
    "links",
    "interaction_context_sid",
    "webhook_ttid",
];
pub(crate) const CHANNEL_FIELDS: &[&str] = &[
    "sid",
    "interaction_sid",
    "type",
    "status",
    "error_code",
    "error_message",
    "url",
    "links",
];
pub(crate) const INVITE_FIELDS: &[&str] =
    &["sid", "interaction_sid", "channel_sid", "routing", "url"];
pub(crate) const INTERACTION_PARTICIPANT_FIELDS: &[&str] = &[
    "sid",
    "type",
    "interaction_sid",
    "channel_sid",
    "url",
    "routing_properties",
];
/// What `iam.twilio.com/v1/Accounts/{AccountSid}/Tokens/validate` answers (the shape
/// `twilio-flex-token-validator` consumers read).
pub(crate) const TOKEN_FIELDS: &[&str] = &[
    "valid",
    "code",
    "message",
    "expiration",
    "identity",
    "realm_user_id",
    "worker_sid",
    "roles",
    "flex_instance_sid",
    "flex_user_sid",
];

const WS: (&str, &str) = ("WorkspaceSid", "WS");

macro_rules! route {
    ($api:ident $method:literal $path:literal $op:literal, body: $body:ident, params: $params:expr,
     headers: $headers:expr, sids: $sids:expr, status: $status:literal, list: $list:expr,
     fields: $fields:expr, handler: $handler:path) => {
        Route {
            spec: RouteSpec {
                api: Api::$api,
                method: $method,
                path: $path,
                operation_id: $op,
                body: Body::$body,
                params: $params,
                headers: $headers,
                path_sids: $sids,
                status: $status,
                list_key: $list,
                fields: $fields,
            },
            handler: $handler,
        }
    };
}

static ROUTES: &[Route] = &[
    // ---- TaskRouter: the Workspace ----
    route!(TaskRouter "GET" "/v1/Workspaces/{Sid}" "FetchWorkspace",
        body: None, params: &[], headers: &[], sids: &[("Sid", "WS")], status: 200,
        list: None, fields: WORKSPACE_FIELDS, handler: taskrouter::fetch_workspace),
    // ---- TaskRouter: Tasks ----
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Tasks" "ListTask",
        body: None,
        params: &[
            p("Priority", INT32),
            p("AssignmentStatus", ParamKind::Array),
            p("WorkflowSid", ParamKind::Sid("WW")),
            p("WorkflowName", ParamKind::Str),
            p("TaskQueueSid", ParamKind::Sid("WQ")),
            p("TaskQueueName", ParamKind::Str),
            p("EvaluateTaskAttributes", ParamKind::Str),
            p("RoutingTarget", ParamKind::Str),
            p("Ordering", ParamKind::Str),
            page_size(1000), PAGE, PAGE_TOKEN,
        ],
        headers: &[], sids: &[WS], status: 200, list: Some("tasks"),
        fields: TASK_FIELDS, handler: task_list::list_tasks),
    route!(TaskRouter "POST" "/v1/Workspaces/{WorkspaceSid}/Tasks" "CreateTask",
        body: Form,
        params: &[
            p("Timeout", ParamKind::Int { min: 1, max: 1_209_600 }),
            p("Priority", INT32),
            p("TaskChannel", ParamKind::Str),
            p("WorkflowSid", ParamKind::Sid("WW")),
            p("Attributes", ParamKind::JsonObject),
            p("VirtualStartTime", ParamKind::DateTime),
            p("RoutingTarget", ParamKind::Str),
            p("IgnoreCapacity", ParamKind::Str),
            p("TaskQueueSid", ParamKind::Sid("WQ")),
        ],
        headers: &[], sids: &[WS], status: 201, list: None,
        fields: TASK_FIELDS, handler: taskrouter::create_task),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}" "FetchTask",
        body: None, params: &[], headers: &[], sids: &[WS, ("Sid", "WT")], status: 200,
        list: None, fields: TASK_FIELDS, handler: taskrouter::fetch_task),
    route!(TaskRouter "POST" "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}" "UpdateTask",
        body: Form,
        params: &[
            p("Attributes", ParamKind::JsonObject),
            p("AssignmentStatus", ParamKind::Enum(TASK_STATUSES)),
            p("Reason", ParamKind::Str),
            p("Priority", INT32),
            p("TaskChannel", ParamKind::Str),
            p("VirtualStartTime", ParamKind::DateTime),
        ],
        headers: &["If-Match"], sids: &[WS, ("Sid", "WT")], status: 200, list: None,
        fields: TASK_FIELDS, handler: taskrouter::update_task),
    route!(TaskRouter "DELETE" "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}" "DeleteTask",
        body: None, params: &[], headers: &["If-Match"], sids: &[WS, ("Sid", "WT")],
        status: 204, list: None, fields: &[], handler: taskrouter::delete_task),
    // ---- TaskRouter: Reservations ----
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations"
        "ListTaskReservation",
        body: None,
        params: &[
            p("ReservationStatus", ParamKind::Enum(RESERVATION_STATUSES)),
            p("WorkerSid", ParamKind::Sid("WK")),
            page_size(1000), PAGE, PAGE_TOKEN,
        ],
        headers: &[], sids: &[WS, ("TaskSid", "WT")], status: 200, list: Some("reservations"),
        fields: RESERVATION_FIELDS, handler: taskrouter::list_task_reservations),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}"
        "FetchTaskReservation",
        body: None, params: &[], headers: &[],
        sids: &[WS, ("TaskSid", "WT"), ("Sid", "WR")], status: 200, list: None,
        fields: RESERVATION_FIELDS, handler: taskrouter::fetch_reservation),
    route!(TaskRouter "POST" "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}"
        "UpdateTaskReservation",
        body: Form,
        params: &[
            p("ReservationStatus", ParamKind::Enum(RESERVATION_STATUSES)),
            p("WorkerActivitySid", ParamKind::Sid("WA")),
        ],
        headers: &[], sids: &[WS, ("TaskSid", "WT"), ("Sid", "WR")], status: 200, list: None,
        fields: RESERVATION_FIELDS, handler: taskrouter::update_reservation),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}"
        "FetchWorkerReservation",
        body: None, params: &[], headers: &[],
        sids: &[WS, ("WorkerSid", "WK"), ("Sid", "WR")], status: 200, list: None,
        fields: RESERVATION_FIELDS, handler: taskrouter::fetch_reservation),
    route!(TaskRouter "POST" "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}"
        "UpdateWorkerReservation",
        body: Form,
        params: &[
            p("ReservationStatus", ParamKind::Enum(RESERVATION_STATUSES)),
            p("WorkerActivitySid", ParamKind::Sid("WA")),
        ],
        headers: &[], sids: &[WS, ("WorkerSid", "WK"), ("Sid", "WR")], status: 200, list: None,
        fields: RESERVATION_FIELDS, handler: taskrouter::update_reservation),
    // ---- TaskRouter: Workers, queues, workflows, activities ----
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}" "FetchWorker",
        body: None, params: &[], headers: &[], sids: &[WS, ("Sid", "WK")], status: 200,
        list: None, fields: WORKER_FIELDS, handler: taskrouter::fetch_worker),
    route!(TaskRouter "POST" "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}" "UpdateWorker",
        body: Form,
        params: &[
            p("ActivitySid", ParamKind::Sid("WA")),
            p("Attributes", ParamKind::JsonObject),
            p("FriendlyName", ParamKind::Str),
            p("RejectPendingReservations", ParamKind::Bool),
        ],
        headers: &[], sids: &[WS, ("Sid", "WK")], status: 200, list: None,
        fields: WORKER_FIELDS, handler: taskrouter::update_worker),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}" "FetchTaskQueue",
        body: None, params: &[], headers: &[], sids: &[WS, ("Sid", "WQ")], status: 200,
        list: None, fields: TASK_QUEUE_FIELDS, handler: taskrouter::fetch_task_queue),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}" "FetchWorkflow",
        body: None, params: &[], headers: &[], sids: &[WS, ("Sid", "WW")], status: 200,
        list: None, fields: WORKFLOW_FIELDS, handler: taskrouter::fetch_workflow),
    route!(TaskRouter "POST" "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}" "UpdateWorkflow",
        body: Form,
        params: &[
            p("FriendlyName", ParamKind::Str),
            p("AssignmentCallbackUrl", ParamKind::Str),
            p("FallbackAssignmentCallbackUrl", ParamKind::Str),
            p("Configuration", ParamKind::JsonObject),
            p("TaskReservationTimeout", ParamKind::Int { min: 1, max: 86_400 }),
            p("ReEvaluateTasks", ParamKind::Str),
        ],
        headers: &[], sids: &[WS, ("Sid", "WW")], status: 200, list: None,
        fields: WORKFLOW_FIELDS, handler: taskrouter::update_workflow),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Activities" "ListActivity",
        body: None,
        params: &[
            p("FriendlyName", ParamKind::Str),
            p("Available", ParamKind::Str),
            page_size(1000), PAGE, PAGE_TOKEN,
        ],
        headers: &[], sids: &[WS], status: 200, list: Some("activities"),
        fields: ACTIVITY_FIELDS, handler: taskrouter::list_activities),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}" "FetchActivity",
        body: None, params: &[], headers: &[], sids: &[WS, ("Sid", "WA")], status: 200,
        list: None, fields: ACTIVITY_FIELDS, handler: taskrouter::fetch_activity),
    // ---- TaskRouter: Events ----
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Events" "ListEvent",
        body: None,
        params: &[
            p("EndDate", ParamKind::DateTime),
            p("EventType", ParamKind::Str),
            p("Minutes", ParamKind::Int { min: 0, max: i64::MAX }),
            p("ReservationSid", ParamKind::Sid("WR")),
            p("StartDate", ParamKind::DateTime),
            p("TaskQueueSid", ParamKind::Sid("WQ")),
            p("TaskSid", ParamKind::Sid("WT")),
            p("WorkerSid", ParamKind::Sid("WK")),
            p("WorkflowSid", ParamKind::Sid("WW")),
            p("TaskChannel", ParamKind::Str),
            p("Sid", ParamKind::Sid("EV")),
            page_size(1000), PAGE, PAGE_TOKEN,
        ],
        headers: &[], sids: &[WS], status: 200, list: Some("events"),
        fields: EVENT_FIELDS, handler: taskrouter::list_events),
    route!(TaskRouter "GET" "/v1/Workspaces/{WorkspaceSid}/Events/{Sid}" "FetchEvent",
        body: None, params: &[], headers: &[], sids: &[WS, ("Sid", "EV")], status: 200,
        list: None, fields: EVENT_FIELDS, handler: taskrouter::fetch_event),
    // ---- Conversations ----
    route!(Conversations "GET" "/v1/Conversations/{Sid}" "FetchConversation",
        body: None, params: &[], headers: &[], sids: &[], status: 200, list: None,
        fields: CONVERSATION_FIELDS, handler: conversations::fetch_conversation),
    route!(Conversations "POST" "/v1/Conversations/{Sid}" "UpdateConversation",
        body: Form,
        params: &[
            p("FriendlyName", ParamKind::Str),
            p("DateCreated", ParamKind::DateTime),
            p("DateUpdated", ParamKind::DateTime),
            p("Attributes", ParamKind::Json),
            p("MessagingServiceSid", ParamKind::Sid("MG")),
            p("State", ParamKind::Enum(&["initializing", "inactive", "active", "closed"])),
            p("Timers.Inactive", ParamKind::Str),
            p("Timers.Closed", ParamKind::Str),
            p("UniqueName", ParamKind::Str),
        ],
        headers: &["X-Twilio-Webhook-Enabled"], sids: &[], status: 200, list: None,
        fields: CONVERSATION_FIELDS, handler: conversations::update_conversation),
    route!(Conversations "DELETE" "/v1/Conversations/{Sid}" "DeleteConversation",
        body: None, params: &[], headers: &["X-Twilio-Webhook-Enabled"], sids: &[],
        status: 204, list: None, fields: &[], handler: conversations::delete_conversation),
    route!(Conversations "GET" "/v1/Conversations/{ConversationSid}/Participants"
        "ListConversationParticipant",
        body: None, params: &[page_size(100), PAGE, PAGE_TOKEN], headers: &[], sids: &[],
        status: 200, list: Some("participants"), fields: CONVERSATION_PARTICIPANT_FIELDS,
        handler: conversations::list_participants),
    route!(Conversations "GET" "/v1/Conversations/{ConversationSid}/Participants/{Sid}"
        "FetchConversationParticipant",
        body: None, params: &[], headers: &[], sids: &[], status: 200, list: None,
        fields: CONVERSATION_PARTICIPANT_FIELDS, handler: conversations::fetch_participant),
    route!(Conversations "DELETE" "/v1/Conversations/{ConversationSid}/Participants/{Sid}"
        "DeleteConversationParticipant",
        body: None, params: &[], headers: &["X-Twilio-Webhook-Enabled"], sids: &[],
        status: 204, list: None, fields: &[], handler: conversations::delete_participant),
    route!(Conversations "POST" "/v1/Conversations/{ConversationSid}/Webhooks"
        "CreateConversationScopedWebhook",
        body: Form,
        params: &[
            req("Target", ParamKind::Enum(&["webhook", "trigger", "studio"])),
            p("Configuration.Url", ParamKind::Str),
            p("Configuration.Method", ParamKind::EnumIgnoreCase(&["get", "post"])),
            p("Configuration.Filters", ParamKind::Array),
            p("Configuration.Triggers", ParamKind::Array),
            p("Configuration.FlowSid", ParamKind::Sid("FW")),
            p("Configuration.ReplayAfter", ParamKind::Int { min: 0, max: i64::MAX }),
        ],
        headers: &[], sids: &[], status: 201, list: None, fields: WEBHOOK_FIELDS,
        handler: conversations::create_webhook),
    route!(Conversations "GET" "/v1/Conversations/{ConversationSid}/Webhooks"
        "ListConversationScopedWebhook",
        body: None, params: &[page_size(5), PAGE, PAGE_TOKEN], headers: &[], sids: &[],
        status: 200, list: Some("webhooks"), fields: WEBHOOK_FIELDS,
        handler: conversations::list_webhooks),
    route!(Conversations "GET" "/v1/Conversations/{ConversationSid}/Webhooks/{Sid}"
        "FetchConversationScopedWebhook",
        body: None, params: &[], headers: &[], sids: &[("Sid", "WH")], status: 200, list: None,
        fields: WEBHOOK_FIELDS, handler: conversations::fetch_webhook),
    route!(Conversations "DELETE" "/v1/Conversations/{ConversationSid}/Webhooks/{Sid}"
        "DeleteConversationScopedWebhook",
        body: None, params: &[], headers: &[], sids: &[("Sid", "WH")], status: 204, list: None,
        fields: &[], handler: conversations::delete_webhook),
    // ---- Flex Interactions ----
    route!(Flex "GET" "/v1/Interactions/{Sid}" "FetchInteraction",
        body: None, params: &[], headers: &[], sids: &[("Sid", "KD")], status: 200, list: None,
        fields: INTERACTION_FIELDS, handler: flex::fetch_interaction),
    route!(Flex "GET" "/v1/Interactions/{InteractionSid}/Channels" "ListInteractionChannel",
        body: None, params: &[page_size(1000), PAGE, PAGE_TOKEN], headers: &[],
        sids: &[("InteractionSid", "KD")], status: 200, list: Some("channels"),
        fields: CHANNEL_FIELDS, handler: flex::list_channels),
    route!(Flex "GET" "/v1/Interactions/{InteractionSid}/Channels/{Sid}" "FetchInteractionChannel",
        body: None, params: &[], headers: &[], sids: &[("InteractionSid", "KD"), ("Sid", "UO")],
        status: 200, list: None, fields: CHANNEL_FIELDS, handler: flex::fetch_channel),
    route!(Flex "POST" "/v1/Interactions/{InteractionSid}/Channels/{Sid}" "UpdateInteractionChannel",
        body: Form,
        params: &[
            req("Status", ParamKind::Enum(&["closed", "inactive"])),
            p("Routing", ParamKind::JsonObject),
        ],
        headers: &[], sids: &[("InteractionSid", "KD"), ("Sid", "UO")], status: 200, list: None,
        fields: CHANNEL_FIELDS, handler: flex::update_channel),
    route!(Flex "POST" "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Invites"
        "CreateInteractionChannelInvite",
        body: Form, params: &[req("Routing", ParamKind::JsonObject)], headers: &[],
        sids: &[("InteractionSid", "KD"), ("ChannelSid", "UO")], status: 200, list: None,
        fields: INVITE_FIELDS, handler: flex::create_invite),
    route!(Flex "GET" "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Invites"
        "ListInteractionChannelInvite",
        body: None, params: &[page_size(1000), PAGE, PAGE_TOKEN], headers: &[],
        sids: &[("InteractionSid", "KD"), ("ChannelSid", "UO")], status: 200,
        list: Some("invites"), fields: INVITE_FIELDS, handler: flex::list_invites),
    route!(Flex "GET" "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants"
        "ListInteractionChannelParticipant",
        body: None, params: &[page_size(1000), PAGE, PAGE_TOKEN], headers: &[],
        sids: &[("InteractionSid", "KD"), ("ChannelSid", "UO")], status: 200,
        list: Some("participants"), fields: INTERACTION_PARTICIPANT_FIELDS,
        handler: flex::list_participants),
    route!(Flex "POST" "/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants/{Sid}"
        "UpdateInteractionChannelParticipant",
        body: Form, params: &[req("Status", ParamKind::Enum(&["closed", "wrapup"]))],
        headers: &[], sids: &[("InteractionSid", "KD"), ("ChannelSid", "UO"), ("Sid", "UT")],
        status: 200, list: None, fields: INTERACTION_PARTICIPANT_FIELDS,
        handler: flex::update_participant),
    // ---- IAM (Flex token validation; not in twilio-oai) ----
    route!(Iam "POST" "/v1/Accounts/{AccountSid}/Tokens/validate" "ValidateFlexToken",
        body: Json, params: &[req("token", ParamKind::Str)], headers: &[],
        sids: &[("AccountSid", "AC")], status: 200, list: None, fields: TOKEN_FIELDS,
        handler: iam::validate_token),
];

/// The full route table.
pub fn routes() -> &'static [RouteSpec] {
    static SPECS: OnceLock<Vec<RouteSpec>> = OnceLock::new();
    SPECS.get_or_init(|| ROUTES.iter().map(|route| route.spec).collect())
}

/// The result of matching a request against the table.
pub(crate) enum Match {
    Found(&'static Route, Vec<(&'static str, String)>),
    /// The path exists, but not for this method.
    MethodNotAllowed,
    NotFound,
}

/// Matches `method` and a raw (percent-encoded) `path` against the table.
pub(crate) fn find(method: &str, path: &str) -> Match {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut path_matched = false;
    for route in ROUTES {
        if let Some(params) = match_template(route.spec.path, &segments) {
            path_matched = true;
            if route.spec.method.eq_ignore_ascii_case(method) {
                return Match::Found(route, params);
            }
        }
    }
    if path_matched {
        Match::MethodNotAllowed
    } else {
        Match::NotFound
    }
}

fn match_template(
    template: &'static str,
    segments: &[&str],
) -> Option<Vec<(&'static str, String)>> {
    let parts: Vec<&'static str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if segment.is_empty() {
                return None;
            }
            let decoded = percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned();
            params.push((name, decoded));
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_distinguishes_methods_and_paths() {
        let ws = "WS00000000000000000000000000000001";
        let wt = "WT00000000000000000000000000000002";
        match find("POST", &format!("/v1/Workspaces/{ws}/Tasks/{wt}")) {
            Match::Found(route, params) => {
                assert_eq!(route.spec.operation_id, "UpdateTask");
                assert_eq!(
                    params,
                    vec![("WorkspaceSid", ws.into()), ("Sid", wt.into())]
                );
            }
            _ => panic!("no match"),
        }
        assert!(matches!(
            find("PUT", &format!("/v1/Workspaces/{ws}/Tasks/{wt}")),
            Match::MethodNotAllowed
        ));
        assert!(matches!(find("GET", "/v1/Nope"), Match::NotFound));
    }

    #[test]
    fn every_route_is_reachable_by_its_own_template() {
        for route in routes() {
            let concrete = route.path.replace('{', "x").replace('}', "");
            match find(route.method, &concrete) {
                Match::Found(found, _) => assert_eq!(found.spec.operation_id, route.operation_id),
                _ => panic!("{} {} unreachable", route.method, route.path),
            }
        }
    }
}
