-- Backfills from TaskRouter's Events API (`baton backfill events`, and the reconciler that
-- BATON_RECONCILE_INTERVAL turns on). One row per run: its window, where it stands (the next
-- page to fetch) and its counts. The row is updated in the transaction that stores a page's
-- events in the inbox, so a run that stops — Ctrl-C, crash, Twilio error — continues from the
-- page after the last one stored, and its counts stay exact.
CREATE TABLE backfill_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('cli', 'reconcile')),
    workspace_sid    text        NOT NULL,
    -- The window (StartDate, EndDate). `until` is fixed when the run starts (the start time when
    -- none was given), so a resumed run pages through the same list.
    since            timestamptz NOT NULL,
    until            timestamptz NOT NULL,
    until_given      boolean     NOT NULL,
    page_size        integer     NOT NULL,
    -- Path and query of the next page (Twilio's next_page_url, PageToken included); NULL before
    -- the first page and after the last.
    next_page        text,
    pages            integer     NOT NULL DEFAULT 0,
    fetched          bigint      NOT NULL DEFAULT 0,
    stored           bigint      NOT NULL DEFAULT 0,   -- new: not in the inbox before
    duplicates       bigint      NOT NULL DEFAULT 0,   -- already there (e.g. its callback arrived)
    flagged          bigint      NOT NULL DEFAULT 0,   -- stored with interpret_error
    -- The oldest event time fetched so far (the list is newest first): how far the run got.
    oldest_event_ms  bigint,
    status           text        NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'interrupted', 'failed', 'complete', 'abandoned')),
    last_error       text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
-- Unfinished runs, to resume.
CREATE INDEX backfill_runs_open ON backfill_runs (workspace_sid, kind, since)
    WHERE finished_at IS NULL;
-- The reconciler's schedule and window: its latest runs.
CREATE INDEX backfill_runs_reconcile ON backfill_runs (workspace_sid, started_at)
    WHERE kind = 'reconcile';

-- The tasks that the events a `baton backfill events` run stored concern: the run's summary
-- counts the chains holding them that the processor rebuilt ("chains changed").
CREATE TABLE backfill_run_tasks (
    run_id    bigint NOT NULL REFERENCES backfill_runs (id) ON DELETE CASCADE,
    task_sid  text   NOT NULL,
    PRIMARY KEY (run_id, task_sid)
);
