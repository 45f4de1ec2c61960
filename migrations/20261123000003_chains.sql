-- Transfer chains. A chain is derived from the facts, never accumulated: whenever an
-- event touches a task, the chain of its connected component is recomputed and these rows are
-- rewritten, so any order of the same events ends in the same rows.

-- When a reservation was first accepted: when a transfer's target took the customer.
ALTER TABLE reservations ADD COLUMN accepted_ms bigint;

-- What ties a task to the others of its customer conversation, from every version of its
-- attributes ever seen (grow-only, so the union does not depend on arrival order):
-- `id:{WT…}` (its own SID, an explicit previous-task pointer, or an Insights conversation id),
-- `conv:{CH…}` (conversationSid / legacy channelSid), `uo:{UO…}` (interaction channel).
CREATE TABLE task_links (
    task_sid   text NOT NULL,
    link       text NOT NULL,
    PRIMARY KEY (task_sid, link)
);
CREATE INDEX task_links_link ON task_links (link);

-- One row per chain of two or more tasks (a task alone is a chain of one, answered from the
-- facts without being stored).
CREATE TABLE chains (
    chain_id       text PRIMARY KEY,   -- the root's conversations.conversation_id, else its SID
    root_task_sid  text        NOT NULL,
    task_count     integer     NOT NULL,
    hop_count      integer     NOT NULL,
    started_ms     bigint,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chain_tasks (
    task_sid       text PRIMARY KEY,
    chain_id       text        NOT NULL,
    position       integer     NOT NULL,
    -- When baton saw the task carry the chain's id in conversations.conversation_id (stamped by
    -- baton or already there), and the value it saw.
    linked_at      timestamptz,
    linked_value   text
);
CREATE INDEX chain_tasks_chain ON chain_tasks (chain_id);

-- Insights stamps baton made: one row per task and chain id written (GET → ETag → If-Match).
CREATE TABLE insights_stamps (
    task_sid       text        NOT NULL,
    chain_id       text        NOT NULL,
    stamped_at     timestamptz NOT NULL DEFAULT now(),
    -- true when the task already carried the id, so nothing was written.
    already_linked boolean     NOT NULL,
    PRIMARY KEY (task_sid, chain_id)
);

-- The canonical record of each hop: one per transfer, whoever made it.
CREATE TABLE hops (
    chain_id              text    NOT NULL,
    seq                   integer NOT NULL,
    from_task_sid         text    NOT NULL,
    to_task_sid           text    NOT NULL,
    from_reservation_sid  text,
    to_reservation_sid    text,
    from_worker_sid       text,
    to_worker_sid         text,
    target_type           text,   -- worker | queue | workflow
    target_sid            text,
    target_name           text,
    mode                  text,   -- cold | warm
    notes                 text,
    initiated_by          text,
    vocabulary            text,   -- which attributes said so (baton, native_flex, …), null if none
    native_transfer_sid   text,
    transfer_id           text,   -- baton's own transfer, when it made it
    initiated_ms          bigint,
    offered_ms            bigint,
    accepted_ms           bigint,
    finished_ms           bigint,
    outcome               text,   -- completed | failed | canceled | returned; null while in flight
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX hops_to_task ON hops (to_task_sid);

-- Transfers asked of baton (POST /api/v1/transfers).
CREATE TABLE transfers (
    transfer_id      text PRIMARY KEY,   -- `TR` + 32 hex
    idempotency_key  text        NOT NULL,
    task_sid         text        NOT NULL,
    target_type      text        NOT NULL,
    target_sid       text        NOT NULL,
    mode             text        NOT NULL,
    notes            text,
    initiated_by     text,
    -- How the customer is handed over: `invite` (interaction task) or `task` (legacy).
    method           text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_idempotency_key_unique UNIQUE (idempotency_key)
);
CREATE INDEX transfers_task ON transfers (task_sid, created_at);

-- Outbound calls that take more than one request (read, then write): how to run them.
ALTER TABLE outbox ADD COLUMN procedure jsonb;
