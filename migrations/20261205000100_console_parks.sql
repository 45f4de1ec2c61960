-- The parks the ops console lists on a year of history: a conversation's parks whatever their
-- state (the conversation page; `parks_conversation` holds only the parked ones), and parks of
-- any state newest first (the parks page), so neither reads the whole table.
CREATE INDEX parks_conversation_all ON parks (conversation_sid, parked_at);
CREATE INDEX parks_newest ON parks (parked_at, park_id);
