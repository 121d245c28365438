-- Sqlite queries: health, migration ledger, catalogue. Parameters use sqlite3's :name style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: ledger_create
-- The migration ledger (the one table without tenant_id).
CREATE TABLE IF NOT EXISTS cowork_migrations (
    name          TEXT PRIMARY KEY,
    checksum      TEXT NOT NULL,
    applied_at    TIMESTAMPTEXT NOT NULL
                  DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    execution_ms  REAL
);

-- name: ledger_exists
-- Whether the ledger table exists yet.
SELECT count(*) > 0 AS present FROM sqlite_master WHERE type = 'table' AND name = 'cowork_migrations';

-- name: schema_tables
-- The cowork tables present in the database.
SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cowork%' ORDER BY name;

-- name: tenants_known
-- Every tenant with events, by a loose index scan (one probe per tenant, not a full scan).
WITH RECURSIVE t(tenant_id) AS (
    SELECT (SELECT tenant_id FROM cowork_event_log ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tenant_id FROM cowork_event_log e WHERE e.tenant_id > t.tenant_id
            ORDER BY e.tenant_id LIMIT 1)
    FROM t WHERE t.tenant_id IS NOT NULL
)
SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL;

-- name: citus_installed
-- SQLite: never.
SELECT 0 AS present;

-- name: event_log_distributed
-- SQLite: never.
SELECT 0 AS present;

-- name: database_clock
-- SQLite runs in this process: its clock is the host's (no offset to measure).
SELECT NULL AS now;
