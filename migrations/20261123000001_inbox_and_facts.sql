-- The durable inbox: one row per real Twilio event, however often it is delivered.
-- A callback is acknowledged only after its row (or the row of an earlier delivery) is committed.
CREATE TABLE inbox_events (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The event identity (see README "Event identity"): unique across sources.
    event_key              text        NOT NULL,
    -- For TaskRouter events with millisecond timestamps: event type + resource sid + time,
    -- so a callback without `Sid` and the same event from Event Streams still land once.
    natural_key            text,
    source                 text        NOT NULL
        CHECK (source IN ('taskrouter_callback', 'conversations_webhook', 'event_streams', 'events_api')),
    received_at            timestamptz NOT NULL DEFAULT now(),
    -- Parsed, typed fields (queryable).
    event_type             text,
    resource_type          text,
    resource_sid           text,
    account_sid            text,
    workspace_sid          text,
    task_sid               text,
    reservation_sid        text,
    worker_sid             text,
    task_queue_sid         text,
    workflow_sid           text,
    conversation_sid       text,
    task_attributes        jsonb,
    task_assignment_status text,
    event_time_ms          bigint,
    -- The typed event as the edge parsed it (task attributes live in their own column). `json`,
    -- not `jsonb`: baton reads it whole and never queries inside it, and building JSONB costs
    -- ingest throughput.
    event                  json        NOT NULL,
    -- The raw parameters exactly as received (form: key -> value, or key -> [values] when repeated;
    -- Event Streams: the CloudEvent object).
    params                 jsonb       NOT NULL,
    -- Set when baton stored a signed event it could not fully interpret (flagged for inspection).
    interpret_error        text,
    CONSTRAINT inbox_events_event_key_unique UNIQUE (event_key),
    CONSTRAINT inbox_events_natural_key_unique UNIQUE (natural_key)
);

-- Lookups by task or conversation go to the state tables; the inbox keeps only the indexes
-- ingest and processing need (each random-key index costs ingest throughput).
CREATE INDEX inbox_events_flagged ON inbox_events (id) WHERE interpret_error IS NOT NULL;

-- lz4 compresses wide JSONB rows at a fraction of pglz's CPU (where the server has lz4).
DO $$
BEGIN
    ALTER TABLE inbox_events ALTER COLUMN params SET COMPRESSION lz4;
    ALTER TABLE inbox_events ALTER COLUMN event SET COMPRESSION lz4;
    ALTER TABLE inbox_events ALTER COLUMN task_attributes SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 unavailable; inbox columns keep the default compression';
END
$$;

-- Processing state, one narrow row per inbox event, so claiming and finishing an event never
-- rewrites the wide event row. Claimed with a lease (FOR UPDATE SKIP LOCKED); `processed_at`
-- is set in the same transaction as the event's effects.
CREATE TABLE inbox_progress (
    -- No foreign key: rows are created together with their event in one statement, and the
    -- RI trigger costs ~7 % of ingest CPU.
    event_id               bigint      PRIMARY KEY,
    attempts               integer     NOT NULL DEFAULT 0,
    lease_owner            uuid,
    lease_expires_at       timestamptz,
    processed_at           timestamptz,
    processed_by           uuid,
    last_error             text,
    dead_at                timestamptz
) WITH (fillfactor = 70);  -- room on the page for HOT updates (claim, then processed)

-- The processor's claim scans only what is still to do.
CREATE INDEX inbox_progress_pending ON inbox_progress (event_id)
    WHERE processed_at IS NULL AND dead_at IS NULL;
CREATE INDEX inbox_progress_dead ON inbox_progress (event_id) WHERE dead_at IS NOT NULL;

-- Latest known state of each TaskRouter task, reservation and worker, merged from events in
-- event-time order (a late, older event never overwrites newer state). `versions` holds, per
-- field, the stamp of the event that set it — (terminal, event time, lifecycle rank, event-key
-- hash) — as compact text `field=t,ms,rank,hash;…`, since it is rewritten with every event.
CREATE TABLE tasks (
    task_sid               text PRIMARY KEY,
    workspace_sid          text,
    assignment_status      text,
    -- Hash of the attributes last written to `task_attributes`, so an event repeating them
    -- writes nothing there.
    attributes_hash        bigint,
    task_queue_sid         text,
    workflow_sid           text,
    task_channel           text,
    priority               bigint,
    canceled_reason        text,
    completed_reason       text,
    last_event_type        text,
    versions               text        NOT NULL DEFAULT '',
    first_event_ms         bigint,
    last_event_ms          bigint,
    deleted                boolean     NOT NULL DEFAULT false,
    event_count            bigint      NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);  -- every event rewrites its row: leave room for HOT updates

-- A task's latest attributes, apart from `tasks`: most events repeat the attributes they
-- carry, and a row is rewritten only when they change (half of processing cost was rewriting
-- unchanged attributes with every event).
CREATE TABLE task_attributes (
    task_sid               text PRIMARY KEY,
    attributes             jsonb       NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reservations (
    reservation_sid        text PRIMARY KEY,
    task_sid               text,
    worker_sid             text,
    task_queue_sid         text,
    workflow_sid           text,
    status                 text,
    versions               text        NOT NULL DEFAULT '',
    first_event_ms         bigint,
    last_event_ms          bigint,
    event_count            bigint      NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);  -- every event rewrites its row: leave room for HOT updates
CREATE INDEX reservations_task_sid ON reservations (task_sid);

CREATE TABLE workers (
    worker_sid             text PRIMARY KEY,
    friendly_name          text,
    activity_sid           text,
    activity_name          text,
    previous_activity_sid  text,
    attributes             jsonb,
    versions               text        NOT NULL DEFAULT '',
    first_event_ms         bigint,
    last_event_ms          bigint,
    deleted                boolean     NOT NULL DEFAULT false,
    event_count            bigint      NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);  -- every event rewrites its row: leave room for HOT updates
