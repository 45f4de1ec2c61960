-- The tasks that share a link key with another task (for the processor's cost). Most tasks never
-- do (a contact one agent handled): those are chains of one, and walking `task_links` from
-- every task of a batch to find that out was a third of the processor's database time. The
-- processor now walks from the tasks listed here alone. A batch lists them from its links'
-- holders, looked up after it has waited for any other batch storing one of its new links
-- (`pg_advisory_xact_lock` by link key), so the list is exact when the batch commits; a task
-- missing from it anyway (rows from before these locks) is listed by its next event. Grow-only,
-- like the links.
CREATE TABLE linked_tasks (
    task_sid text PRIMARY KEY
);
INSERT INTO linked_tasks (task_sid)
SELECT DISTINCT l.task_sid
FROM task_links l
WHERE l.link IN (SELECT link FROM task_links GROUP BY link HAVING count(*) > 1);
