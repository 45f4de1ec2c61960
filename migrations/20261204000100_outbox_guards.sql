-- What Twilio must confirm just before a call is sent (a close, completion, removal or
-- re-invite is withdrawn when it does not), and the call that must have succeeded first (an
-- ordered step: a park removes its agent only once its webhook exists). Nullable: no rewrite.
ALTER TABLE outbox ADD COLUMN guard jsonb;
ALTER TABLE outbox ADD COLUMN after_key text;
-- Why the call was not sent, when Twilio did not confirm the facts behind it (shown to ops).
ALTER TABLE outbox ADD COLUMN withdrawn text;

CREATE INDEX outbox_after_key ON outbox (after_key) WHERE after_key IS NOT NULL;

-- A voice park is identified by the reservation that parked the call, when seen: a later event
-- of the same task (the transfer-park plugin never clears its marks) is not a new park.
ALTER TABLE parks ADD COLUMN reservation_sid text;
CREATE UNIQUE INDEX parks_reservation_sid ON parks (reservation_sid) WHERE reservation_sid IS NOT NULL;

-- Flex's native transfers (voice transfers keep their task), from the `task.transfer-*` events:
-- one row per transfer, whatever the order its events arrive in.
CREATE TABLE task_transfers (
    transfer_sid                text PRIMARY KEY,   -- `TT` + 32 hex
    task_sid                    text        NOT NULL,
    mode                        text,               -- warm | cold
    target_sid                  text,
    target_type                 text,               -- worker | queue
    initiating_worker_sid       text,
    initiating_reservation_sid  text,
    -- initiated | completed | failed | canceled: a terminal status wins, the latest terminal one
    -- when several arrive.
    status                      text        NOT NULL DEFAULT 'initiated',
    status_ms                   bigint,
    failed_reason               text,
    initiated_ms                bigint,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_transfers_task ON task_transfers (task_sid);

-- The last orphan check of a conversation and what it found (kept open, and why; or closing):
-- a decision not to act is shown to ops like a close.
ALTER TABLE conversations ADD COLUMN last_check_at timestamptz;
ALTER TABLE conversations ADD COLUMN last_check_result text;
