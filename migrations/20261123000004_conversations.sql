-- Conversations and orphan cleanup.

-- Every Flex Conversations conversation baton has seen, from the attributes of its tasks
-- (`conversationSid`, `flexInteractionSid`, `flexInteractionChannelSid`) and from Conversations
-- webhooks. `state` is Twilio's (`active`, `inactive`, `closed`); `closed` and `removed` are
-- sticky: a conversation closed elsewhere is never acted on again.
CREATE TABLE conversations (
    conversation_sid   text PRIMARY KEY,
    interaction_sid    text,
    channel_sid        text,
    -- sms, chat, whatsapp… (the task's `channelType` / `conversations.communication_channel`)
    channel_type       text,
    state              text        NOT NULL DEFAULT 'active',
    -- Event time (ms) of the webhook that set `state`, so a late older one does not win.
    state_ms           bigint,
    state_reason       text,
    removed            boolean     NOT NULL DEFAULT false,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    -- When the last of its tasks ended (what the sweep's threshold counts from).
    last_task_ended_at timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_open_idle ON conversations (last_task_ended_at)
    WHERE state <> 'closed' AND NOT removed;

-- A pending orphan check: when a task of the conversation ended, the conversation is looked at
-- again after the grace period (`BATON_ORPHAN_GRACE`). One per conversation; a later terminal
-- event moves it later.
CREATE TABLE orphan_checks (
    conversation_sid   text PRIMARY KEY,
    due_at             timestamptz NOT NULL,
    -- The terminal event that scheduled it.
    task_sid           text,
    event_type         text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orphan_checks_due ON orphan_checks (due_at);

-- Why baton closed a conversation (one record per conversation: a closed one stays closed). A
-- close withdrawn at send time (`result` = `kept: …`) may be decided again: `generation` counts
-- decisions and is part of the outbox key (`close:{CH}:{generation}`).
CREATE TABLE conversation_closes (
    conversation_sid   text PRIMARY KEY,
    generation         integer     NOT NULL DEFAULT 1,
    -- `orphan` (its last task ended), `sweep` (found idle by the reconciler).
    reason             text        NOT NULL,
    detail             text,
    task_sid           text,
    event_type         text,
    -- `interaction_channel` (POST …/Channels/{UO} Status=closed) or `conversation`.
    method             text        NOT NULL,
    outbox_id          bigint,
    decided_at         timestamptz NOT NULL DEFAULT now(),
    -- What the close call found: `closed`, `already_closed`, or `kept: …` when the check at send
    -- time (a task, invite, transfer or park appeared, or an agent is still in it) stopped it.
    result             text,
    result_at          timestamptz
);

-- Outbound calls about a conversation (invites, closes): a pending invite keeps it open.
ALTER TABLE outbox ADD COLUMN conversation_sid text;
CREATE INDEX outbox_conversation ON outbox (conversation_sid, created_at)
    WHERE conversation_sid IS NOT NULL;

-- Parked calls and conversations. A park holds its conversation open.
CREATE TABLE parks (
    park_id            text PRIMARY KEY,   -- `PA` + 32 hex
    -- `voice` (observed from a task's attributes) or `messaging` (asked of baton).
    kind               text        NOT NULL,
    -- parked | resumed | expired | ended
    state              text        NOT NULL DEFAULT 'parked',
    task_sid           text        NOT NULL,
    worker_sid         text,
    conversation_sid   text,
    interaction_sid    text,
    channel_sid        text,
    channel_type       text,
    -- Which attributes said so (voice): worker_parked, hold_assignment, park_pickup, target_worker.
    vocabulary         text,
    reason             text,
    parked_at          timestamptz NOT NULL DEFAULT now(),
    parked_ms          bigint,
    expires_at         timestamptz,
    -- Everything needed to resume, kept here rather than in conversation attributes.
    resume_state       jsonb,
    resumed_at         timestamptz,
    -- What ended it: customer_message, ops, ttl, pickup, hangup, conversation_closed.
    ended_by           text,
    -- How it was resumed: same_worker | queue.
    resume_route       text,
    resumed_task_sid   text,
    outcome            text,
    idempotency_key    text UNIQUE,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parks_conversation ON parks (conversation_sid) WHERE state = 'parked';
CREATE INDEX parks_task ON parks (task_sid);
CREATE INDEX parks_expiring ON parks (expires_at) WHERE state = 'parked';
CREATE INDEX parks_worker ON parks (worker_sid, parked_at);
