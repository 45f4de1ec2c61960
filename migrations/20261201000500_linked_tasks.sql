-- The tasks that share a link key with another task (issue 7, processor cost). Most tasks never
-- do (a contact one agent handled): those are chains of one, and walking `task_links` from
-- every task of a batch to find that out was a third of the processor's database time. The
-- processor now walks from the tasks listed here alone. A batch lists them as it sees their
-- links' holders (each event's attribute links are looked up before anything is locked), so a
-- link two processors stored at once, neither seeing the other's, is listed with the next
-- event of either task — as the walk itself found it before. Grow-only, like the links.
CREATE TABLE linked_tasks (
    task_sid text PRIMARY KEY
);
INSERT INTO linked_tasks (task_sid)
SELECT DISTINCT l.task_sid
FROM task_links l
WHERE l.link IN (SELECT link FROM task_links GROUP BY link HAVING count(*) > 1);
