-- Inbox retention (BATON_INBOX_RETENTION): processed events older than the retention are
-- deleted. A BRIN index finds them by receipt time at almost no ingest cost: inbox rows are
-- written once, in receipt order, and never updated.
CREATE INDEX inbox_events_received_brin ON inbox_events USING brin (received_at);
