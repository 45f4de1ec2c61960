-- The outbox: every outbound Twilio call baton decides on, written in the same transaction as
-- the decision, then sent by a dispatcher with retries until it ends `done` or `dead`.
CREATE TABLE outbox (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- One row per decision, however often it is made (replays, duplicate events).
    idempotency_key    text        NOT NULL,
    kind               text        NOT NULL,
    -- The REST call: product, method, Twilio path, form parameters, If-Match.
    request            jsonb       NOT NULL,
    -- The inbox event whose processing decided this call, if any.
    caused_by_event    bigint,
    created_at         timestamptz NOT NULL DEFAULT now(),
    state              text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'done', 'dead')),
    attempts           integer     NOT NULL DEFAULT 0,
    -- `attempts` when ops last re-drove a dead call: the retry budget counts from here.
    attempt_base       integer     NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner        uuid,
    lease_expires_at   timestamptz,
    last_status        integer,
    last_error         text,
    -- Twilio's answer to the attempt that finished it (JSON body), for ops.
    response           jsonb,
    done_at            timestamptz,
    dead_at            timestamptz,
    CONSTRAINT outbox_idempotency_key_unique UNIQUE (idempotency_key)
) WITH (fillfactor = 80);

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (dead_at) WHERE state = 'dead';

-- Every attempt, for the record: when, what Twilio said, what was decided.
CREATE TABLE outbox_attempts (
    outbox_id          bigint      NOT NULL REFERENCES outbox (id),
    attempt            integer     NOT NULL,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz NOT NULL DEFAULT now(),
    http_status        integer,
    twilio_code        integer,
    error              text,
    decision           text        NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);
