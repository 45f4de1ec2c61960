-- Lookups the ops console makes on a year of history.

-- The calls about a task: the task its path names, else the first task its idempotency key
-- names (a route-back creates a task, so its path names none). `store::outbox::TASK_OF_CALL`
-- is the same expression, so the planner uses this index.
CREATE INDEX outbox_task ON outbox ((COALESCE(
    substring(request->>'path' from '/Tasks/(WT[0-9a-fA-F]{32})'),
    substring(idempotency_key from 'WT[0-9a-fA-F]{32}'))));

-- Closes decided in a window (the overview).
CREATE INDEX conversation_closes_decided ON conversation_closes (decided_at);

-- Parked now, longest held first (the overview and the parks page).
CREATE INDEX parks_parked ON parks (parked_at) WHERE state = 'parked';

-- A Flex interaction or interaction channel SID searched for: its conversation.
CREATE INDEX conversations_interaction ON conversations (interaction_sid);
CREATE INDEX conversations_channel ON conversations (channel_sid);
