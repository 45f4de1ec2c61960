//! # twilio-standin
//!
//! A stand-in for the Twilio REST APIs baton calls, so baton's tests replace Twilio **only at the
//! HTTP boundary**: baton's real client talks HTTP to this server, with Twilio's real paths, form
//! encoding, JSON shapes, error bodies and headers. One server answers all products (baton sets
//! `TWILIO_API_BASE_URL` to [`StandIn::base_url`]), since their paths do not overlap.
//!
//! ## What it covers
//!
//! [`routes()`] is the complete list (and the contract test checks every entry against Twilio's
//! OpenAPI specs in `shared/twilio-oai`):
//!
//! - **TaskRouter** `/v1/Workspaces/{WS}/…`: Tasks create (201) / fetch / update / delete (204)
//!   with `ETag` (a version that goes up by one on every change) and `If-Match` (mismatch: 412,
//!   code 20412); `AssignmentStatus` transitions as TaskRouter allows them (cancel from
//!   pending/reserved, wrap up from assigned, complete from assigned/wrapping; anything else 400
//!   code 20001 "…not in a state…"; unknown or deleted task 404 code 20404); `Reason` stored.
//!   The Tasks list (`ListTask`) answers `{"tasks", "meta"}` with each task as the fetch shows
//!   it (deleted tasks are gone), filtered by `AssignmentStatus` (repeated keys or
//!   comma-separated, `pending,reserved`), `WorkflowSid`, `WorkflowName`, `TaskQueueSid`,
//!   `TaskQueueName`, `Priority`, `RoutingTarget` and `EvaluateTaskAttributes` (a TaskRouter
//!   expression over the attributes, [`TaskExpression`]; one it cannot parse is 400 / 20001
//!   naming `EvaluateTaskAttributes`), ordered by `Ordering` (`DateCreated`, `Priority` or
//!   `VirtualStartTime` with `:asc`/`:desc`, comma-separated; default ascending `DateCreated`;
//!   anything else 400 naming `Ordering`), paged by `PageSize` (≤ 1000) / `PageToken`.
//!   Reservations list/fetch/update under the Task and under the Worker (accepting assigns the
//!   task and rescinds the others; wrapping/completing moves the task). Workers fetch/update
//!   (`ActivitySid` must exist, else 400). TaskQueues and Workflows fetch; Activities list/fetch.
//!   Events list with `StartDate`/`EndDate`/`Minutes` (default 15)/`EventType`/`TaskSid`/… filters,
//!   `PageSize` ≤ 1000, cursor `PageToken`s, Twilio's `meta`; newest first. The Workspace fetch
//!   (`GET /v1/Workspaces/{WS}`: `timeout_activity_sid`/`_name` and `default_activity_*` are
//!   the built-in `Offline`, `event_callback_url` the callback URL).
//! - **Conversations** `/v1/Conversations/…`: fetch/update (a `closed` conversation cannot be
//!   reactivated: 400; closing it again is a 200 no-op) / delete (204), participants
//!   list/fetch/delete, scoped webhooks create (repeated `Configuration.Filters`) / list / fetch /
//!   delete. State changes and deletes with `X-Twilio-Webhook-Enabled: true` fire webhooks
//!   ("Conversations webhooks" below).
//! - **Flex Interactions** `/v1/Interactions/…`: interaction fetch, channels list/fetch/update
//!   (`Status=closed` wraps the channel's tasks, or completes them with `Routing={"status":
//!   "closed"}`, and closes its conversation), invites create (creates the pending task) and list,
//!   participants list/update (`closed` completes the participant's task and removes its
//!   conversation participant, firing `onParticipantRemoved`; `wrapup` wraps it).
//! - **TaskRouter events and routing**: signed event callbacks and the control methods that
//!   stand in for agents and timers (next section); **Conversations webhooks** the same way.
//! - **IAM** `POST /v1/Accounts/{AC}/Tokens/validate` (JSON `{"token"}`), what
//!   `twilio-flex-token-validator` calls to authenticate Flex users; tokens come from
//!   [`StandIn::seed_flex_token`].
//!
//! Every request needs HTTP Basic `AccountSid:AuthToken` (else 401, code 20003, with
//! `WWW-Authenticate: Basic realm="Twilio API"`). Parameters are validated as the spec declares
//! them (enums, SID patterns, integer bounds, JSON objects, required): a violation is 400 / 20001
//! naming the parameter. Unknown parameters are ignored, as Twilio ignores them. Errors always
//! have Twilio's body `{"code", "message", "more_info", "status"}`.
//!
//! ## Playing TaskRouter
//!
//! Every state change TaskRouter would announce produces one event, built once
//! (`state::State::emit`) and used twice: appended to the Events list when
//! [`StandInConfig::generate_events`] is on, and POSTed to the Workspace `EventCallbackUrl`
//! when one is set ([`StandInConfig::callback_url`], [`StandIn::set_callback_url`]).
//!
//! - **Callbacks** are form-encoded with TaskRouter's parameters: the envelope (`AccountSid`,
//!   `WorkspaceSid`, `WorkspaceName`, `Sid`, `EventType`, `EventDescription`, `ResourceType`,
//!   `ResourceSid`, `Timestamp` in epoch seconds, `TimestampMs`), then the event's groups: task
//!   events the Task fields (`TaskSid`, `TaskAttributes`, `TaskAssignmentStatus`, `TaskAge`,
//!   `TaskPriority`, `TaskDateCreated`, `TaskChannelSid`, `TaskChannelUniqueName`,
//!   `TaskCanceledReason` / `TaskCompletedReason` once set, `WorkflowSid`, `WorkflowName`) and,
//!   except `task.created`, which precedes routing, `TaskQueueSid`, `TaskQueueName`,
//!   `TaskQueueTargetExpression`, `TaskQueueEnteredDate`; reservation events those plus the
//!   Worker fields (`WorkerSid`, `WorkerName`, `WorkerAttributes`, `WorkerActivitySid`,
//!   `WorkerActivityName`) and `ReservationSid`; worker events the Worker fields
//!   (`worker.activity.update` adds `WorkerPreviousActivitySid`/`Name` and
//!   `WorkerTimeInPreviousActivity`/`Ms`). Each carries `X-Twilio-Signature` (HMAC-SHA1 of the
//!   URL and the sorted parameters with the auth token), `I-Twilio-Idempotency-Token` (one per
//!   event, repeated on retries and redeliveries) and `User-Agent: TwilioProxy/1.1`. Every
//!   event gets its own millisecond, later than the one before.
//! - **Delivery** is asynchronous, one at a time, in the order produced; failures are retried
//!   per [`CallbackRetry`]. [`StandIn::callbacks`] records every delivery with its attempts;
//!   [`StandIn::settle`] waits until nothing deliverable is left. [`StandIn::hold_callbacks`],
//!   [`StandIn::release_callbacks`] ([`Release`]: in order, reversed, shuffled, duplicated) and
//!   [`StandIn::redeliver`] make the late, reordered and repeated deliveries baton must absorb;
//!   [`StandIn::take_queued_callbacks`] hands held callbacks to a test that delivers them
//!   itself (at load, around a crash).
//! - **What produces events**: `CreateTask` and Invites (`task.created`, then
//!   `task-queue.entered` when the task has a queue), task updates (`task.updated` when the
//!   attributes change; `task.canceled`, `task.wrapup`, `task.completed`, with the
//!   reservations' `reservation.canceled` / `.wrapup` / `.completed` before them), task delete
//!   (`task.deleted`), reservation updates, worker updates (`worker.activity.update`,
//!   `worker.attributes.update`), closing interaction channels and participants (through the
//!   task changes they make), and the control methods:
//!
//! | call | what changes | events, in order |
//! |---|---|---|
//! | [`StandIn::offer`] | new pending reservation; task `reserved` | `reservation.created` |
//! | [`StandIn::accept`] | task `assigned`; reservation `accepted`; other pending ones `rescinded` | `reservation.accepted`, `reservation.rescinded`… |
//! | [`StandIn::reject`] | reservation `rejected`; task `pending` if nothing else is pending | `reservation.rejected` |
//! | [`StandIn::time_out_reservation`] | reservation `timeout`; task as on reject; the worker to the timeout activity (`Offline`) | `reservation.timeout`, `worker.activity.update` |
//! | [`StandIn::time_out_task`] | pending reservations `canceled`; task `canceled`, reason `Task TTL Exceeded` | `reservation.canceled`…, `task.canceled` |
//! | [`StandIn::cancel_task`] | the same with the reason given (`hangup`, …) | `reservation.canceled`…, `task.canceled` |
//! | [`StandIn::time_out_workflow`] | pending reservations `canceled`; task `canceled`, reason [`WORKFLOW_TIMEOUT`] | `workflow.timeout`, `reservation.canceled`…, `task.canceled` |
//! | [`StandIn::skip_workflow`] | the same through a final step's `skip_if`, reason [`WORKFLOW_SKIPPED`] | `workflow.skipped`, `reservation.canceled`…, `task.canceled` |
//! | [`StandIn::set_worker_activity`] | the worker's activity (by SID or friendly name) | `worker.activity.update` |
//! | [`StandIn::wrap_up`] | accepted reservation and task `wrapping` | `reservation.wrapup`, `task.wrapup` |
//! | [`StandIn::complete`] | reservation and task `completed` | `reservation.completed`, `task.completed` |
//!
//! **Native voice transfers** (Flex's transfers with TaskRouter's transfer API) keep the task
//! `assigned` to the worker holding the call (through their accepted reservation, the
//! initiating one) and offer it through new reservations of a transfer (`TT…`,
//! [`StandIn::transfer`] shows it as a [`TransferState`]). Each step is a `task.transfer-*`
//! event: the Task fields (with the queue) and the transfer's (see the choices below).
//!
//! | call | what changes | events, in order |
//! |---|---|---|
//! | [`StandIn::start_transfer`] `(task, to, warm)` | a transfer `INITIATED` (`WARM`/`COLD`, to a `WK…` or `WQ…`); to a worker, a pending reservation for them. Returns the `TT…` SID | `task.transfer-initiated`; to a worker `reservation.created` |
//! | [`StandIn::offer_transfer`] `(transfer, worker)` | a pending reservation for the transfer (a queue transfer's offer, or a worker transfer again). Returns the `WR…` SID | `reservation.created` |
//! | [`StandIn::reject`], [`StandIn::time_out_reservation`] or REST, on a transfer's reservation | as for any reservation; the transfer stays `INITIATED` | `reservation.rejected` / `.timeout`, `task.transfer-attempt-failed` (then a timeout's `worker.activity.update`) |
//! | [`StandIn::accept`] or REST, on a transfer's reservation | reservation `accepted`; cold: the initiating reservation `wrapping`; transfer `COMPLETED`; the task stays `assigned` | `reservation.accepted`, cold: `reservation.wrapup`, `task.transfer-completed` |
//! | [`StandIn::fail_transfer`] `(transfer, reason)` | the transfer's pending reservations `canceled`; transfer `FAILED`; the initiator keeps the task | `reservation.canceled`…, `task.transfer-failed` |
//! | [`StandIn::cancel_transfer`] `(transfer)` | the same, transfer `CANCELED` | `reservation.canceled`…, `task.transfer-canceled` |
//!
//! Once a task was transferred natively, a reservation of it that wraps up or completes moves
//! the task only when no other reservation still holds it (the initiator finishing a cold
//! transfer's wrap-up leaves the task to the worker who took it). [`StandIn::transfer_call`]
//! plays Flex's older cold `TransferTask` (the task back to `reserved`, no transfer events)
//! and is unchanged.
//!
//! **Automatic offers** ([`StandInConfig::auto_offer`], [`StandIn::set_auto_offer`]) are the
//! whole routing engine: when a task is created (the offer follows the creating request's
//! answer, which still shows the task `pending`, as TaskRouter routes after answering), a
//! worker SID it is aimed at (attributes
//! `transferTargetSid`, `targetSid` or `baton.target_sid`, else an Invite's `worker_sid` /
//! `RoutingTarget`) gets the offer at once, available or not; a queue SID there makes the task
//! enter that queue; otherwise a task with a queue is offered to the first seeded worker whose
//! activity is available and whom the attributes do not exclude (`workerSidsInConversation`;
//! `ignoreAgent` / `ignoreWorkerContactUri` matched against the worker's SID, friendly name and
//! `contact_uri`). Target expressions, capacity and re-offers after a reject or timeout are not
//! played; `workflow.*` events come only from [`StandIn::time_out_workflow`] and
//! [`StandIn::skip_workflow`] (their resource is the workflow; they carry the Task fields).
//!
//! **A reservation timeout** (the control method, or a REST update to `ReservationStatus=timeout`)
//! moves the worker to the Workspace's `TimeoutActivitySid` (the built-in `Offline`,
//! [`StandIn::timeout_activity_sid`]) as TaskRouter does: `reservation.timeout` (its Worker
//! fields show the activity the worker was in), then `worker.activity.update`
//! (`WorkerActivitySid`/`Name` the timeout activity, `WorkerPreviousActivitySid`/`Name` the one
//! left). Nothing moves if the worker is there already. [`StandInConfig::timeout_moves_worker_offline`]
//! (default on) and [`StandIn::set_timeout_moves_worker_offline`] turn it off.
//!
//! ## Playing Flex plugins and flex-project-template
//!
//! Some changes come from neither baton nor Twilio but from the code Flex customers run: the
//! serverless functions and Flex UI client of flex-project-template (FPT) and Flex plugins.
//! These control methods play them. Each makes that code's REST calls, in its order, through
//! the stand-in's own routes and handlers (not over HTTP: no request log entry, no faults), so
//! it changes state, records [`StandIn::effects`] and produces TaskRouter events and
//! Conversations webhooks exactly as those calls would; what the code reads from the Flex UI
//! (who is in the channel, a worker's name) comes from the state. A call that fails, or a task
//! that does not fit, panics.
//!
//! | call | what it does (REST calls in order) | events |
//! |---|---|---|
//! | [`StandIn::fpt_transfer`] `(task, target, warm)` | FPT `conversation-transfer`: `GET` the task; `POST …/Invites` on the task's channel with its attributes plus `workerSidsInConversation`, `transferTargetSid`, `transferQueueName`, `transferTargetType`, `conversations.conversation_id` (no `transferMode`), on the workflow named `Chat Transfer…` or the default one; cold: `POST …/Participants/{UT}` `Status=closed` for the caller; warm: `GET` the conversation, `POST` its `Attributes` with `invites[<task>]` merged in. Returns the invite task's SID | `task.created`, `task-queue.entered`; cold: `reservation.completed`, `task.completed` of the caller's task |
//! | [`StandIn::fpt_invite_joined`] `(ch, invite task)` | the client's `conversationJoined`: `GET` the conversation, `POST` its `Attributes` without `invites[<task>]` (nothing when absent) | none |
//! | [`StandIn::fpt_cancel_invite`] `(ch, invite task)` | `POST …/Tasks/{task}` `AssignmentStatus=canceled`, `Reason=canceled by agent`; then as `fpt_invite_joined` | `reservation.canceled`…, `task.canceled` |
//! | [`StandIn::fpt_park`] `(task, unpark URL)` | FPT `park-interaction`: `GET` the task; `POST /v1/Conversations/{CH}/Webhooks` (`webhook`, `POST`, `onMessageAdded`, the URL); `POST …/Participants/{UT}` `Status=closed`; `POST` the conversation's `Attributes` = `{interactionSid, channelSid, participantSid, taskSid, workflowSid, taskChannelUniqueName, queueName, queueSid, workerSid, taskAttributes, webhookSid}` (replaced, not merged). Returns the `WH…` SID | `reservation.completed`, `task.completed`; later customer messages go to the URL (`onMessageAdded`) |
//! | [`StandIn::fpt_unpark`] `(ch, route to same worker)` | FPT `unpark-interaction`: `DELETE` the park's webhook (gone: panic, as the function throws); `GET` the conversation; `POST …/Invites` with the stored workflow, channel and `taskAttributes` plus `originalRouting {queueName, queueSid, workerSid}`, and `queue_sid`/`worker_sid` when routing to the same worker. Returns the new task's SID | `task.created`, `task-queue.entered` |
//! | [`StandIn::plugin_park_call`] `(task)` | the voice transfer-park plugin: `POST …/Tasks/{task}` `Attributes` + `workerParked: true`, `targetWorkerContactUri` (the worker's `contact_uri`, else `client:<friendly name>`); Flex's cold `TransferTask` to the same worker ([`StandIn::transfer_call`]); the plugin's `afterTransferTask` completes the first reservation (`POST …/Reservations/{WR}` `ReservationStatus=completed`). Returns the park reservation's SID; the task is `reserved` | `task.updated`, `reservation.wrapup` (first), `reservation.created` (park), `reservation.completed` (first) |
//! | [`StandIn::plugin_pickup`] `(park reservation)` | the worker accepts the park reservation (`POST …/Workers/{WK}/Reservations/{WR}` `ReservationStatus=accepted`); the task is `assigned`. Nothing ever clears `workerParked` / `targetWorkerContactUri`: every later event of the task carries them | `reservation.accepted` |
//!
//! [`StandIn::conversation_attributes`] reads a conversation's attributes as JSON (where the
//! warm-transfer `invites` and the park's stored routing live).
//!
//! ## Conversations webhooks
//!
//! Conversations post-action events are POSTed to the service-level webhook
//! ([`StandIn::set_conversations_webhook_url`] or [`StandInConfig::conversations_webhook_url`],
//! what `PostWebhookUrl` is on Twilio, for the events [`StandIn::set_conversations_webhook_filters`]
//! names; default `onConversationStateUpdated`, `onConversationRemoved`, `onMessageAdded`:
//! `onParticipantRemoved` goes there only once the filters name it) and to
//! every conversation-scoped webhook created over REST with `Target=webhook` whose
//! `Configuration.Filters` name the event, at its `Configuration.Url` (`trigger` and `studio`
//! targets get nothing). Each target gets its own delivery. With no target, nothing is produced.
//!
//! - **What fires**:
//!
//! | action | event | `Source` | notes |
//! |---|---|---|---|
//! | [`StandIn::customer_writes`] | `onMessageAdded` | `SDK` | the first non-agent participant writes; an inactive conversation first becomes active: `onConversationStateUpdated`, `Reason=EVENT` |
//! | `POST /v1/Conversations/{CH}` `State=…` | `onConversationStateUpdated`, `Reason=API` | `API` | only with `X-Twilio-Webhook-Enabled: true`, and only if the state changed |
//! | `POST /v1/Interactions/{KD}/Channels/{UO}` `Status=closed` | `onConversationStateUpdated` (to `closed`), `Reason=API` | `API` | always: Twilio's own change |
//! | [`StandIn::close_conversation_by_timer`] | `onConversationStateUpdated` (to `closed`), `Reason=TIMER` | `API` | |
//! | `DELETE /v1/Conversations/{CH}` | `onConversationRemoved` | `API` | only with `X-Twilio-Webhook-Enabled: true` |
//! | [`StandIn::remove_conversation`] | `onConversationRemoved` | `API` | always |
//! | `DELETE /v1/Conversations/{CH}/Participants/{MB}` | `onParticipantRemoved` | `API` | only with `X-Twilio-Webhook-Enabled: true` |
//! | `POST /v1/Interactions/{KD}/Channels/{UO}/Participants/{UT}` `Status=closed` | `onParticipantRemoved` of the agent's conversation participant | `API` | always: Twilio's own change (so also every play that closes one: [`StandIn::fpt_transfer`] cold, [`StandIn::fpt_park`]) |
//!
//! - **Parameters** (protocol notes §3.3): `AccountSid`, `EventType`, `Source`,
//!   `ClientIdentity` (only for a chat participant's SDK action), then `onMessageAdded`:
//!   `ChatServiceSid`, `ConversationSid`, `MessageSid` (`IM…`), `MessagingServiceSid`, `Index`
//!   (from 0), `DateCreated`, `Body`, `Author` (the SMS address or chat identity),
//!   `ParticipantSid`, `Attributes` (`{}`); `onConversationStateUpdated`: `ChatServiceSid`,
//!   `ConversationSid`, `StateUpdated`, `StateFrom`, `StateTo`, `Reason`, `MessagingServiceSid`;
//!   `onConversationRemoved`: `ChatServiceSid`, `ConversationSid`, `DateCreated`, `DateUpdated`,
//!   `DateRemoved`, `FriendlyName`, `UniqueName` (empty when unset), `Attributes`,
//!   `MessagingServiceSid`, `State`; `onParticipantRemoved`: `ChatServiceSid`,
//!   `ConversationSid`, `ParticipantSid`, `DateCreated`, `DateUpdated`, `DateRemoved`, then
//!   `Identity` for a chat participant or `MessagingBinding.Address`,
//!   `MessagingBinding.ProxyAddress` (`MessagingBinding.ProjectedAddress` when the binding has
//!   one) and `MessagingBinding.Type` (`SMS`, …) for an SMS one, then `Attributes`, and `RoleSid`
//!   when the participant has a role. Dates are ISO 8601 UTC with milliseconds
//!   (`2024-01-01T00:00:00.000Z`).
//! - **Delivery** is the TaskRouter callbacks' (one queue, in the order produced): signed the
//!   same way over the webhook's URL, `I-Twilio-Idempotency-Token` (one per event and target,
//!   repeated on retries and redeliveries), `User-Agent: TwilioProxy/1.1`, form-encoded,
//!   retried per [`CallbackRetry`]; hold/release/redeliver/settle apply alike. In
//!   [`StandIn::callbacks`] a Conversations delivery has [`Callback::kind`] =
//!   [`CallbackKind::Conversations`] (also [`DeliveredCallback::is_conversations`]),
//!   `event_type` = its `EventType`, `url` = the webhook's URL, `webhook_sid` = the scoped
//!   webhook's `WH…` (`None` for the service webhook), and `event_sid` = its idempotency token
//!   (Conversations sends no event SID), the id [`StandIn::redeliver`] takes.
//! - **Messages** are kept on the conversation ([`StandIn::messages`], `ConversationState::messages`);
//!   there is no Messages REST resource.
//!
//! ## How baton's tests use it
//!
//! ```no_run
//! # async fn demo() {
//! use twilio_standin::{Effect, SeedTask, SeedWorker, StandIn, StandInConfig, TaskStatus};
//! let twilio = StandIn::start(StandInConfig::default()).await;
//! let worker = twilio.seed_worker(SeedWorker::new("alice"));
//! let task = twilio.seed_task(SeedTask::new().status(TaskStatus::Assigned).worker(&worker));
//! // point baton at it: TWILIO_API_BASE_URL = twilio.base_url(), and the config's SIDs/token
//! // … drive baton …
//! let completions = twilio.effects().iter().filter(|e| e.completes_task(&task)).count();
//! assert_eq!(completions, 1);
//! assert!(twilio.requests().iter().all(|r| r.header("authorization").is_none()));
//! # }
//! ```
//!
//! Playing the TaskRouter side of a transfer:
//!
//! ```no_run
//! # async fn demo(baton_url: &str, new_task: &str) {
//! use twilio_standin::{Release, SeedWorker, StandIn, StandInConfig};
//! let twilio = StandIn::start(StandInConfig::default()).await;
//! let bob = twilio.seed_worker(SeedWorker::new("bob"));
//! // … start baton, then:
//! twilio.set_callback_url(Some(format!("{baton_url}/webhooks/taskrouter")));
//! // … baton creates `new_task` (task.created and task-queue.entered go to baton) …
//! let reservation = twilio.offer(new_task, &bob); // reservation.created
//! twilio.hold_callbacks(true);
//! twilio.accept(&reservation); // reservation.accepted, held
//! twilio.release_callbacks(Release::Duplicated); // baton gets it twice
//! twilio.settle().await;
//! assert!(twilio.callbacks().iter().all(|c| c.status() == Some(204)));
//! # }
//! ```
//!
//! Playing the customer of a Flex Conversation, and finding the Conversations webhooks among the
//! callbacks:
//!
//! ```no_run
//! # async fn demo(baton_url: &str) {
//! use twilio_standin::{SeedConversation, SeedConversationParticipant, StandIn, StandInConfig};
//! let twilio = StandIn::start(StandInConfig::default()).await;
//! twilio.set_conversations_webhook_url(Some(format!("{baton_url}/webhooks/conversations")));
//! let ch = twilio.seed_conversation(
//!     SeedConversation::new()
//!         .participant(SeedConversationParticipant::identity("alice"))
//!         .participant(SeedConversationParticipant::sms("+15550001111", "+15550002222")),
//! );
//! let message = twilio.customer_writes(&ch, "hello"); // onMessageAdded, Author=+15550001111
//! twilio.close_conversation_by_timer(&ch); // onConversationStateUpdated, Reason=TIMER
//! twilio.settle().await;
//! let sent: Vec<_> = twilio
//!     .callbacks()
//!     .into_iter()
//!     .filter(|c| c.is_conversations())
//!     .collect();
//! assert_eq!(sent[0].event_type(), "onMessageAdded");
//! assert_eq!(sent[0].param("MessageSid"), Some(message.as_str()));
//! assert_eq!(sent[1].param("Reason"), Some("TIMER"));
//! twilio.redeliver(sent[0].event_sid()); // the same token, signature and URL again
//! # }
//! ```
//!
//! Run as a process (`twilio-standin`, for load runs), [`control`] serves the seeding and the
//! request log over HTTP on a port of its own (`--control-listen`).
//!
//! [`StandIn::requests`] is the log of what arrived (method, path, query, form pairs with
//! repeated keys, JSON body, selected headers — never `Authorization`, and the auth token is
//! redacted anywhere else — the answer's status and code, the fault injected).
//! [`StandIn::effects`] lists the state changes actually applied, so "exactly once" is an
//! assertion on a list. `task()`, `conversation()`, `channel()` … show current state.
//!
//! ## Faults
//!
//! [`StandIn::set_faults`] sets probabilities per kind; one draw per eligible request from a
//! generator seeded with [`StandInConfig::seed`] (re-seeded by every `set_faults`), so the same
//! request sequence gets the same faults ([`Faults::sequence`] predicts them).
//! [`StandIn::fail_next`] / [`StandIn::fault_next`] script failures for the next matching requests.
//! [`Faults::latency`] (+ up to [`Faults::latency_jitter`]) delays every answer, like Twilio's
//! own response time, for load runs.
//! [`StandIn::max_concurrent_requests`] is the most requests it was handling at once: a
//! client's concurrency limit, as Twilio sees it.
//! Faults are decided after routing and authentication.
//!
//! | kind | client sees | effect applied? |
//! |---|---|---|
//! | [`FaultKind::RateLimited`] | 429, `Retry-After: <secs>`, code 20429 "Too Many Requests" | no |
//! | [`FaultKind::ServerError`] | 500, code 20500 | no |
//! | [`FaultKind::ServiceUnavailable`] | 503, code 20503 | no |
//! | [`FaultKind::Timeout`] | nothing for `timeout_delay`, then the connection closes | no |
//! | [`FaultKind::ConnectionReset`] | the connection closes at once, no answer | no |
//! | [`FaultKind::ErrorAfterApply`] | 500, code 20500 ("500 after applying") | **yes** |
//! | [`FaultKind::TimeoutAfterApply`] | like `Timeout` | **yes** |
//! | [`FaultKind::Scripted`] (`fail_next`) | the given status and code | no |
//!
//! ## Choices where Twilio's behaviour is not documented
//!
//! - Closing an Interaction Channel that is already closed: 200, unchanged, no effect, and the
//!   log notes warning 80906 — Twilio documents 80906 "Interaction not open" as a *warning*
//!   (<https://www.twilio.com/docs/api/errors/80906>). [`RecloseChannel::Reject`] answers 400 /
//!   80906 instead. An Invite on a closed channel is always 400 / 80906.
//! - 412 uses code 20412 ("Precondition failed for Sync / TaskRouter updates", Twilio support).
//!   The `ETag` value is the bare version number (Twilio's Flex templates `JSON.parse` it);
//!   `If-Match` accepts it quoted or weak too.
//! - Reactivating a closed conversation: 400 / 20001 (the state doc says it cannot be done; the
//!   code is not documented).
//! - The Events list is newest first; `PageToken` is a cursor, so events that arrive while paging
//!   do not shift pages (Twilio's docs say not to rely on `Page` for this resource).
//! - Invalid Flex tokens answer 200 `{"valid": false, "code": 20101 | 20104, "message": …}`
//!   (the validator library rejects on `valid == false` and reports `message`).
//! - A path SID with the wrong prefix or shape is 404, like an unknown one.
//!
//! - Event callbacks are plain HTTP (the stand-in has no TLS client): point them at baton's
//!   listen address and give baton a `BATON_PUBLIC_URL` equal to it, so the URL signed is the
//!   URL baton rebuilds.
//! - Callback retries: TaskRouter documents none beyond connection overrides (by default one
//!   retry, on a failed connection only: [`CallbackRetry::twilio_default`]). The stand-in's
//!   default retries a failed connection, no answer or a 5xx three times, 10 ms apart and
//!   doubling, so a briefly busy baton does not lose an event in a test.
//! - `I-Twilio-Idempotency-Token` is one value per event, repeated on retries and redeliveries.
//! - `task.created` has no `TaskQueueSid` (the reference lists the Task group and `WorkflowSid`
//!   only); `task-queue.entered` follows with it. A reservation's events come before the task
//!   event of the same change (`reservation.completed`, then `task.completed`), and
//!   `reservation.accepted` already says the task is `assigned`.
//! - `task.canceled`'s `EventDescription` is the cancel reason when there is one (Twilio's spec:
//!   a TTL cancel "will fire with description `Task TTL Exceeded`").
//! - `ResourceType` is lower case (`task`, `reservation`, `worker`), as in the Event resource
//!   example of the OpenAPI spec.
//! - `reservation.timeout` precedes the `worker.activity.update` that moves the worker to the
//!   timeout activity, so its Worker fields show the activity the worker timed out in.
//! - Conversations `Source`: the docs name `SDK` and `API` only. A customer's message is `SDK`
//!   (SMS included; real payloads may say otherwise for SMS, which is not documented), with
//!   `ClientIdentity` only for a chat identity. Changes made by Twilio itself (timers, closing
//!   an interaction channel, removal) are `API`.
//! - The customer [`StandIn::customer_writes`] speaks for is the conversation's first
//!   participant that is not an agent: an SMS participant, or a chat identity that no
//!   interaction channel maps to a non-customer participant and that names no worker
//!   (friendly name, `contact_uri`, or `contact_uri` without `client:`).
//! - A scoped webhook configured with `Configuration.Method=GET` is delivered as a POST with a
//!   form body all the same (signed the same way).
//! - `onParticipantRemoved` of a participant removed by closing its interaction participant
//!   is always sent (`Source=API`), as for the conversation close that closing a channel makes;
//!   it follows the task events of the same close. Its `MessagingBinding.Type` is the binding's
//!   type in upper case (`SMS`), as Event Streams' participant events spell it.
//! - Conversations webhooks get the same retries as TaskRouter callbacks ([`CallbackRetry`]);
//!   Twilio documents none for them (connection overrides do not apply to Conversations).
//! - A call parked with the transfer-park plugin ([`StandIn::plugin_park_call`]) is the same
//!   task with a new pending reservation for the worker who parked it: the task is `reserved`
//!   (TaskRouter's status for a task with a pending reservation; a transferred task is routed
//!   again, not assigned), and `assigned` once the worker picks it up. The live leg's
//!   reservation goes `wrapping` when Flex transfers the call cold (as the agent's task goes to
//!   wrap-up after any cold transfer), then `completed` by the plugin; its `CompleteTask`
//!   reason (`worker parked call`) has nowhere to go on a reservation and is not kept.
//! - Native transfer callbacks: TaskRouter does not document the transfer's callback
//!   parameters (only the JS SDK's transfer object, over its websocket). The stand-in names
//!   them after that object: `TransferSid` (`TT…`), `TransferMode` (`WARM` / `COLD`),
//!   `TransferTo` (the `WK…` or `WQ…`), `TransferType` (`WORKER` / `QUEUE`), `TransferStatus`
//!   (`INITIATED`, `FAILED`, `COMPLETED`, `CANCELED`), `TransferFailedReason` (only once
//!   failed), `TransferInitiatingWorkerSid`, `TransferInitiatingReservationSid`, after the
//!   Task fields (the task's own `TaskQueueSid` and `WorkflowSid` stand for the SDK's
//!   `queueSid` / `workflowSid`). In the Events list they are `event_data`'s `transfer_sid`,
//!   `transfer_mode`, … like every other field. The event's resource is the task; its
//!   description `Task {WT} transfer {TT} initiated` (`attempt failed`, `failed`, `canceled`,
//!   `completed`).
//! - During a native transfer the task stays `assigned` (so `reservation.created` and
//!   `reservation.accepted` of the transfer's reservations say `assigned`), its queue does not
//!   change for a queue transfer, and only one transfer of a task is `INITIATED` at a time. A
//!   worker transfer is offered only to its worker; a later transfer starts from the latest
//!   accepted reservation (after a warm transfer, the worker who took it). A transfer still
//!   `INITIATED` when its task ends stays so (its pending reservations are canceled with the
//!   task, without a transfer event).
//! - The FPT plays take the transfer workflow by name: the first whose friendly name starts
//!   with `Chat Transfer` (what FPT's setup scripts look for), else the built-in one. The warm
//!   invite's `timestampCreated` is ISO 8601 UTC with milliseconds (a JavaScript `Date` in
//!   JSON); its `targetName` is a worker's `full_name` attribute (else friendly name) or the
//!   queue's name.
//! - Seeded conversations have a messaging service ([`StandInConfig::messaging_service_sid`])
//!   unless the seed names one, as every Twilio conversation has.
//!
//! The stand-in keeps no timers: conversation `Timers.*` are stored and shown, not fired
//! ([`StandIn::close_conversation_by_timer`] plays one); tasks
//! and reservations time out when a test says so ([`StandIn::time_out_task`],
//! [`StandIn::time_out_reservation`]); reservations exist because a test offered them
//! ([`StandIn::offer`]), an automatic offer made them when the task was created
//! ([`StandInConfig::auto_offer`]), or a seed did ([`StandIn::seed_reservation`]).

mod callback_queue;
mod callbacks;
pub mod control;
mod conversations;
mod conversations_play;
mod ctx;
pub mod demo;
mod effects;
mod error;
mod events;
mod expression;
mod faults;
mod flex;
mod iam;
mod internal;
mod log;
mod model;
mod paging;
mod park_plugin;
mod play;
mod route_spec;
mod routes;
mod seed;
mod server;
mod state;
mod task_list;
mod task_routing;
mod taskrouter;
mod template;
mod voice_transfer;
mod webhooks;

pub use callback_queue::{
    AttemptOutcome, Callback, CallbackKind, CallbackRetry, DeliveredCallback, Release,
};
pub use callbacks::{CALLBACK_USER_AGENT, SETTLE_TIMEOUT};
pub use effects::Effect;
pub use error::{
    ApiError, CODE_AUTHENTICATE, CODE_INTERACTION_NOT_OPEN, CODE_INTERNAL, CODE_INVALID,
    CODE_METHOD_NOT_ALLOWED, CODE_NOT_FOUND, CODE_PRECONDITION_FAILED, CODE_TOO_MANY_REQUESTS,
    CODE_UNAVAILABLE,
};
pub use expression::{ExpressionError, TaskExpression};
pub use faults::{FaultKind, Faults};
pub use log::{LoggedRequest, LOGGED_HEADERS};
pub use model::*;
pub use play::{TASK_TTL_EXCEEDED, WORKFLOW_SKIPPED, WORKFLOW_TIMEOUT};
pub use route_spec::{Api, Body, ParamKind, ParamSpec, RouteSpec};
pub use routes::{routes, META_FIELDS};
pub use seed::*;
pub use state::RecloseChannel;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use callback_queue::CallbackQueue;
use faults::FaultEngine;
use server::Shared;
use state::{Settings, State};
use std::net::SocketAddr;
use std::sync::Arc;

/// How to start a stand-in.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// `AC…`: the Basic auth user, and the `AccountSid` in every answer.
    pub account_sid: String,
    /// The Basic auth password.
    pub auth_token: String,
    /// `WS…`: the only workspace; other workspace SIDs in paths are 404.
    pub workspace_sid: String,
    pub workspace_name: String,
    /// `IS…`: the Conversations service (`chat_service_sid`).
    pub chat_service_sid: String,
    /// `GO…`: the Flex instance (`flex_instance_sid` of validated tokens).
    pub flex_instance_sid: String,
    /// `MG…`: the messaging service of seeded conversations (`messaging_service_sid`, and
    /// `MessagingServiceSid` in their webhooks) unless the seed names one.
    pub messaging_service_sid: String,
    /// Seeds the fault generator and the SID generator.
    pub seed: u64,
    /// Random faults from the start (see [`StandIn::set_faults`]).
    pub faults: Faults,
    /// Append TaskRouter events (`task.created`, `task.completed`, `reservation.accepted`,
    /// `worker.activity.update`, …) to the Events list as state changes. Off by default so a test
    /// sees only the events it pushes. Callbacks do not depend on it.
    pub generate_events: bool,
    /// The Workspace `EventCallbackUrl`: every TaskRouter event is POSTed there, signed (see
    /// [`StandIn::set_callback_url`], which sets it later, once baton listens).
    pub callback_url: Option<String>,
    /// The Conversations service's post-event webhook URL (`PostWebhookUrl`; see
    /// [`StandIn::set_conversations_webhook_url`]).
    pub conversations_webhook_url: Option<String>,
    /// Which failed callback deliveries are retried, and how fast (TaskRouter and
    /// Conversations alike).
    pub callback_retry: CallbackRetry,
    /// Offer each new task to a worker at once (see "Playing TaskRouter" above). Off by default:
    /// tests call [`StandIn::offer`].
    pub auto_offer: bool,
    /// What closing an already-closed interaction channel answers.
    pub reclose_channel: RecloseChannel,
    /// A reservation that times out moves its worker to the workspace's `TimeoutActivitySid`
    /// (`Offline`), with `worker.activity.update`, as TaskRouter does. On by default; off keeps
    /// the worker where it was ([`StandIn::set_timeout_moves_worker_offline`]).
    pub timeout_moves_worker_offline: bool,
    /// actix worker threads.
    pub workers: usize,
    /// Most requests kept in the log, and most callback deliveries kept in
    /// [`StandIn::callbacks`] (oldest dropped first); 0 keeps none.
    pub log_limit: usize,
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig {
            account_sid: "AC00000000000000000000000000000001".into(),
            auth_token: "0123456789abcdef0123456789abcdef".into(),
            workspace_sid: "WS00000000000000000000000000000001".into(),
            workspace_name: "baton-standin".into(),
            chat_service_sid: "IS00000000000000000000000000000001".into(),
            flex_instance_sid: "GO00000000000000000000000000000001".into(),
            messaging_service_sid: "MG00000000000000000000000000000001".into(),
            seed: 42,
            faults: Faults::none(),
            generate_events: false,
            callback_url: None,
            conversations_webhook_url: None,
            callback_retry: CallbackRetry::default(),
            auto_offer: false,
            reclose_channel: RecloseChannel::Ok,
            timeout_moves_worker_offline: true,
            workers: 2,
            log_limit: usize::MAX,
        }
    }
}

impl StandInConfig {
    /// The default config with these credentials and workspace.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        workspace_sid: impl Into<String>,
    ) -> Self {
        StandInConfig {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            workspace_sid: workspace_sid.into(),
            ..StandInConfig::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        for (value, prefix, what) in [
            (&self.account_sid, "AC", "account_sid"),
            (&self.workspace_sid, "WS", "workspace_sid"),
            (&self.chat_service_sid, "IS", "chat_service_sid"),
            (&self.flex_instance_sid, "GO", "flex_instance_sid"),
            (&self.messaging_service_sid, "MG", "messaging_service_sid"),
        ] {
            if !route_spec::is_sid(value, prefix) {
                return Err(format!("{what} {value:?} is not a {prefix} SID"));
            }
        }
        if self.auth_token.is_empty() {
            return Err("auth_token is empty".into());
        }
        for url in [&self.callback_url, &self.conversations_webhook_url]
            .into_iter()
            .flatten()
        {
            callback_queue::check_url(url)?;
        }
        self.faults.validate()
    }
}

/// A running stand-in. Dropping it stops the server.
pub struct StandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    handle: ServerHandle,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

type Started = std::io::Result<(SocketAddr, ServerHandle)>;

impl StandIn {
    /// Binds `127.0.0.1:0` and serves in the background (its own thread and actix runtime, so
    /// it works from any test runtime). Panics if the config is invalid or nothing can bind.
    pub async fn start(config: StandInConfig) -> StandIn {
        match StandIn::start_at(config, SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(standin) => standin,
            Err(error) => panic!("twilio-standin: cannot start: {error}"),
        }
    }

    /// Like [`StandIn::start`] on a given address, reporting failure.
    pub async fn start_at(config: StandInConfig, addr: SocketAddr) -> std::io::Result<StandIn> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Started>();
        let shared = StandIn::spawn(config, addr, move |started| {
            let _ = tx.send(started);
        })?;
        let started = rx
            .await
            .map_err(|_| std::io::Error::other("twilio-standin server thread ended early"))?;
        let (addr, handle) = started?;
        Ok(StandIn {
            shared,
            addr,
            handle,
        })
    }

    /// [`StandIn::start_at`] for code without an async runtime.
    pub fn start_blocking(config: StandInConfig, addr: SocketAddr) -> std::io::Result<StandIn> {
        let (tx, rx) = std::sync::mpsc::channel::<Started>();
        let shared = StandIn::spawn(config, addr, move |started| {
            let _ = tx.send(started);
        })?;
        let started = rx
            .recv()
            .map_err(|_| std::io::Error::other("twilio-standin server thread ended early"))?;
        let (addr, handle) = started?;
        Ok(StandIn {
            shared,
            addr,
            handle,
        })
    }

    fn spawn(
        config: StandInConfig,
        addr: SocketAddr,
        report: impl FnOnce(Started) + Send + 'static,
    ) -> std::io::Result<Arc<Shared>> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let settings = Settings {
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            workspace_sid: config.workspace_sid.clone(),
            workspace_name: config.workspace_name.clone(),
            chat_service_sid: config.chat_service_sid.clone(),
            flex_instance_sid: config.flex_instance_sid.clone(),
            generate_events: config.generate_events,
            auto_offer: config.auto_offer,
            reclose_channel: config.reclose_channel,
            log_limit: config.log_limit,
            messaging_service_sid: config.messaging_service_sid.clone(),
            timeout_moves_worker_offline: config.timeout_moves_worker_offline,
        };
        let engine = FaultEngine::new(config.seed, config.faults.clone());
        let callbacks = CallbackQueue::new(
            config.auth_token.clone(),
            config.callback_url.clone(),
            config.callback_retry.clone(),
            config.log_limit,
        );
        let mut state = State::new(settings, config.seed, engine, callbacks);
        state.service_webhook.url = config.conversations_webhook_url.clone();
        let shared = Arc::new(Shared::new(state));
        let data = web::Data::from(shared.clone());
        let deliverer = shared.clone();
        let workers = config.workers.max(1);
        std::thread::Builder::new()
            .name("twilio-standin".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    // Callbacks go out from this runtime; the task ends with it.
                    actix_web::rt::spawn(callbacks::deliver(deliverer));
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .default_service(web::to(server::entry))
                    })
                    .workers(workers)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .bind(addr);
                    let server = match server {
                        Ok(server) => server,
                        Err(error) => {
                            report(Err(error));
                            return;
                        }
                    };
                    let bound = server.addrs().first().copied();
                    let running = server.run();
                    match bound {
                        Some(bound) => report(Ok((bound, running.handle()))),
                        None => {
                            report(Err(std::io::Error::other("no address bound")));
                            return;
                        }
                    }
                    let _ = running.await;
                });
            })?;
        Ok(shared)
    }

    /// `http://127.0.0.1:PORT`: the base for every Twilio product's paths.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn account_sid(&self) -> &str {
        &self.shared.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    pub fn workspace_sid(&self) -> &str {
        &self.shared.workspace_sid
    }

    /// The built-in workflow (`Assign to Anyone`).
    pub fn default_workflow_sid(&self) -> String {
        self.shared.lock().default_workflow_sid.clone()
    }

    /// The built-in queue (`Everyone`).
    pub fn default_task_queue_sid(&self) -> String {
        self.shared.lock().default_task_queue_sid.clone()
    }

    /// The Workspace's `TimeoutActivitySid`: the built-in `Offline` activity, where a worker
    /// whose reservation timed out goes.
    pub fn timeout_activity_sid(&self) -> String {
        self.shared.lock().timeout_activity_sid.clone()
    }

    /// An activity's SID by friendly name (`Offline`, `Available` and `Unavailable` exist at
    /// start).
    pub fn activity_sid(&self, friendly_name: &str) -> Option<String> {
        self.shared
            .lock()
            .activities
            .iter()
            .find(|a| a.friendly_name == friendly_name)
            .map(|a| a.sid.clone())
    }

    // ---- inspecting ----

    /// Every request received so far (up to `log_limit`), oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// The requests after the one with id `after` (ids are 1, 2, 3…), oldest first, at most
    /// `limit`: a log read in pages without copying it whole.
    pub fn requests_after(&self, after: u64, limit: usize) -> Vec<LoggedRequest> {
        let state = self.shared.lock();
        let start = state.log.partition_point(|r| r.id <= after);
        state.log.range(start..).take(limit).cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// The most requests the stand-in was handling at once (from arrival until the answer, or
    /// the dropped connection, went out) since it started or
    /// [`StandIn::reset_max_concurrent_requests`]: how a test sees a client's concurrency limit.
    pub fn max_concurrent_requests(&self) -> usize {
        self.shared
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn reset_max_concurrent_requests(&self) {
        self.shared
            .max_in_flight
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every state change applied so far, in order.
    pub fn effects(&self) -> Vec<Effect> {
        self.shared.lock().effects.clone()
    }

    pub fn clear_effects(&self) {
        self.shared.lock().effects.clear();
    }

    pub fn task(&self, sid: &str) -> Option<TaskState> {
        self.shared.lock().tasks.get(sid).cloned()
    }

    /// Every task, oldest first.
    pub fn tasks(&self) -> Vec<TaskState> {
        let mut tasks: Vec<TaskState> = self.shared.lock().tasks.values().cloned().collect();
        tasks.sort_by(|a, b| a.date_created.cmp(&b.date_created).then(a.sid.cmp(&b.sid)));
        tasks
    }

    pub fn workflow(&self, sid: &str) -> Option<WorkflowState> {
        self.shared.lock().workflow(sid).cloned()
    }

    pub fn reservation(&self, sid: &str) -> Option<ReservationState> {
        self.shared.lock().reservations.get(sid).cloned()
    }

    pub fn worker(&self, sid: &str) -> Option<WorkerState> {
        self.shared.lock().workers.get(sid).cloned()
    }

    /// A conversation by SID or unique name, with its participants and webhooks.
    pub fn conversation(&self, sid_or_unique_name: &str) -> Option<ConversationState> {
        let state = self.shared.lock();
        let sid = state.conversation_sid(sid_or_unique_name)?;
        state.conversations.get(&sid).cloned()
    }

    /// A conversation's attributes, parsed (a conversation by SID or unique name). Panics if
    /// it does not exist.
    pub fn conversation_attributes(&self, sid_or_unique_name: &str) -> serde_json::Value {
        let Some(conversation) = self.conversation(sid_or_unique_name) else {
            panic!("twilio-standin conversation_attributes: conversation {sid_or_unique_name} does not exist");
        };
        serde_json::from_str(&conversation.attributes).unwrap_or(serde_json::Value::Null)
    }

    pub fn interaction(&self, sid: &str) -> Option<InteractionState> {
        self.shared.lock().interactions.get(sid).cloned()
    }

    /// An interaction channel, with its participants and invites.
    pub fn channel(&self, channel_sid: &str) -> Option<ChannelState> {
        self.shared.lock().channels.get(channel_sid).cloned()
    }

    /// The Events list, in arrival order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.shared
            .lock()
            .events
            .iter()
            .map(|e| e.value.clone())
            .collect()
    }

    // ---- faults ----

    /// Replaces the random faults and restarts their seeded draws. Panics if a probability is
    /// outside 0.0–1.0 or they sum above 1.0.
    pub fn set_faults(&self, faults: Faults) {
        if let Err(problem) = faults.validate() {
            panic!("twilio-standin set_faults: {problem}");
        }
        self.shared.lock().faults.set(faults);
    }

    /// The random faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.faults().clone()
    }

    /// The next `times` requests with this method (`"*"`: any) whose path starts with
    /// `path_prefix` get HTTP `status` with Twilio error `code`, unprocessed. A 429 carries
    /// `Retry-After` (`Faults::retry_after_secs`).
    pub fn fail_next(&self, method: &str, path_prefix: &str, times: usize, status: u16, code: u32) {
        self.fault_next(
            method,
            path_prefix,
            times,
            FaultKind::Scripted { status, code },
        );
    }

    /// Like [`StandIn::fail_next`] with any fault kind (e.g. `ErrorAfterApply`,
    /// `ConnectionReset`).
    pub fn fault_next(&self, method: &str, path_prefix: &str, times: usize, kind: FaultKind) {
        self.shared
            .lock()
            .faults
            .script(method, path_prefix, times, kind);
    }

    /// Drops scripted failures not yet used.
    pub fn clear_scripted_faults(&self) {
        self.shared.lock().faults.clear_scripted();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Sends the stop command now; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}
