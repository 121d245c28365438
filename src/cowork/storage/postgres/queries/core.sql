-- Postgres queries: health, migration ledger, catalogue. Parameters use psycopg's %(name)s style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: migration_lock
-- Session-level advisory lock held while migrations run (waits up to lock_timeout).
SELECT pg_advisory_lock(%(key)s);

-- name: ledger_create
-- The migration ledger (the one table without tenant_id).
CREATE TABLE IF NOT EXISTS cowork_migrations (
    name          text PRIMARY KEY,
    checksum      text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    execution_ms  double precision
);

-- name: ledger_exists
-- Whether the ledger table exists yet.
SELECT to_regclass('cowork_migrations') IS NOT NULL AS present;

-- name: schema_tables
-- The cowork tables present in the current schema.
SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name LIKE 'cowork%%'
ORDER BY table_name;

-- name: tenants_known
-- Every tenant with events, by a loose index scan (one probe per tenant, not a full scan).
WITH RECURSIVE t(tenant_id) AS (
    (SELECT tenant_id FROM cowork_event_log ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tenant_id FROM cowork_event_log e WHERE e.tenant_id > t.tenant_id
            ORDER BY e.tenant_id LIMIT 1)
    FROM t WHERE t.tenant_id IS NOT NULL
)
SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL;

-- name: citus_installed
-- Whether the Citus extension is installed in this database.
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS present;

-- name: event_log_distributed
-- Whether Citus distributes the event log (only run when Citus is installed).
SELECT EXISTS (SELECT 1 FROM pg_dist_partition
               WHERE logicalrelid = 'cowork_event_log'::regclass) AS present;

-- name: database_clock
-- The server's clock (leases and timers use the database's time, never a host's).
SELECT clock_timestamp() AS now;
