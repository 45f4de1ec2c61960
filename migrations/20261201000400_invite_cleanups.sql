-- Stale pending invites. flex-project-template keeps each outstanding warm-transfer
-- invite in the conversation's attributes (`invites[<invite task SID>]`) and never removes the
-- entry of an invite whose task was canceled or rejected. The sweep looks once at each ended
-- task of an open conversation: one row per (conversation, invite task) it looked at.
CREATE TABLE invite_cleanups (
    conversation_sid   text        NOT NULL,
    task_sid           text        NOT NULL,
    -- `absent` (no entry of it in the conversation's invites), `clearing` (an outbox call
    -- removes it), then `cleared` or `already_gone` (the entry was gone when the call ran).
    state              text        NOT NULL,
    outbox_id          bigint,
    decided_at         timestamptz NOT NULL DEFAULT now(),
    result_at          timestamptz,
    PRIMARY KEY (conversation_sid, task_sid)
);
