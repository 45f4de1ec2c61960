-- `baton backfill insights`: stamps the chain id into the `conversations.conversation_id` of
-- chain tasks still live in TaskRouter. One row per run: its selection (chains that started or
-- were updated in the window), whether it is a dry run, and its checkpoint (the last chain
-- done, in chain id order). Each chain's task rows and the checkpoint commit together, so a
-- stopped run continues at the next chain and its report covers every invocation.
CREATE TABLE insights_backfill_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_sid  text        NOT NULL,
    since          timestamptz,              -- NULL: from the first chain
    until          timestamptz NOT NULL,     -- fixed when the run starts (its start without --until)
    until_given    boolean     NOT NULL,
    dry_run        boolean     NOT NULL,
    last_chain_id  text,                     -- the checkpoint; NULL before the first chain
    chains         integer     NOT NULL DEFAULT 0,
    status         text        NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'interrupted', 'failed', 'complete', 'abandoned')),
    last_error     text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX insights_backfill_runs_open ON insights_backfill_runs (workspace_sid)
    WHERE finished_at IS NULL;

-- What the run found and did for each task (the report).
CREATE TABLE insights_backfill_tasks (
    run_id       bigint NOT NULL REFERENCES insights_backfill_runs (id) ON DELETE CASCADE,
    task_sid     text   NOT NULL,
    chain_id     text   NOT NULL,   -- the id it should carry
    position     integer NOT NULL,
    found_id     text,              -- its conversations.conversation_id when read (NULL: none)
    task_status  text,              -- its assignment_status when read (NULL: gone or unread)
    action       text   NOT NULL,   -- stamped | already_linked | would_stamp | completed_unchangeable | gone | failed: …
    PRIMARY KEY (run_id, task_sid)
);
