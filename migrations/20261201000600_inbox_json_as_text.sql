-- The inbox's JSON columns hold text (for ingest throughput). baton builds and checks this
-- JSON itself at the edge (serde), and reads it whole; Postgres parsing it again into `json` or
-- `jsonb` on every insert was about 37 µs of the writer's 66 µs per row, all on the one
-- connection every delivery waits for. Cast to query inside: `params::jsonb ->> 'TaskSid'`.
ALTER TABLE inbox_events
    ALTER COLUMN event TYPE text,
    ALTER COLUMN params TYPE text,
    ALTER COLUMN task_attributes TYPE text;

-- A new type takes the default compression: back to lz4 where the server has it (see the
-- first migration).
DO $$
BEGIN
    ALTER TABLE inbox_events ALTER COLUMN params SET COMPRESSION lz4;
    ALTER TABLE inbox_events ALTER COLUMN event SET COMPRESSION lz4;
    ALTER TABLE inbox_events ALTER COLUMN task_attributes SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 unavailable; inbox columns keep the default compression';
END
$$;
