-- Ops' view of the outbox: when a call last changed (an attempt recorded, a re-drive)
-- and how often ops re-drove it. Nullable / constant default: no table rewrite.
ALTER TABLE outbox ADD COLUMN updated_at timestamptz;
ALTER TABLE outbox ADD COLUMN redrives integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN redriven_at timestamptz;
