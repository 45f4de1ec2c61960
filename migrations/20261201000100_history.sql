-- Transfer history: `GET /api/v1/transfers`, `GET /api/v1/stats/transfers` and
-- `baton history` list hops newest first with keyset pagination, filtered by worker, queue,
-- target type, outcome, conversation and time, over a year of hops.

-- The queue the customer came from (the from task's) and the queue the hop went to (where the
-- new task was routed, else the target queue), and when the target's side ended.
ALTER TABLE hops
    ADD COLUMN from_queue_sid text,
    ADD COLUMN to_queue_sid   text,
    ADD COLUMN ended_ms       bigint,
    -- The hop's place in time, never null so it can be a keyset (initiated_ms is unknown only
    -- for a task with no event time; such hops sort as the oldest).
    ADD COLUMN at_ms          bigint GENERATED ALWAYS AS (COALESCE(initiated_ms, 0)) STORED;

-- Hops derived before this migration: the queues from the facts (a task's next event re-derives
-- its chain with every column).
UPDATE hops h SET
    from_queue_sid = f.task_queue_sid,
    to_queue_sid = COALESCE(t.task_queue_sid, CASE WHEN h.target_type = 'queue' THEN h.target_sid END)
FROM tasks f, tasks t
WHERE f.task_sid = h.from_task_sid AND t.task_sid = h.to_task_sid;

-- Every list is ordered by (at_ms, chain_id, seq) descending: one index per filter that leads
-- with the filter's column, so a page is an index range scan of `limit` entries whatever the
-- table's size. Worker and queue filters match either side of a hop: two scans, merged.
CREATE INDEX hops_at ON hops (at_ms, chain_id, seq);
CREATE INDEX hops_from_worker ON hops (from_worker_sid, at_ms, chain_id, seq);
CREATE INDEX hops_to_worker ON hops (to_worker_sid, at_ms, chain_id, seq);
CREATE INDEX hops_from_queue ON hops (from_queue_sid, at_ms, chain_id, seq);
CREATE INDEX hops_to_queue ON hops (to_queue_sid, at_ms, chain_id, seq);
CREATE INDEX hops_outcome ON hops (outcome, at_ms, chain_id, seq);
CREATE INDEX hops_target_type ON hops (target_type, at_ms, chain_id, seq);
-- In flight (no outcome yet): few rows, all recent.
CREATE INDEX hops_in_flight ON hops (at_ms, chain_id, seq) WHERE outcome IS NULL;
