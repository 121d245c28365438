-- Named queries of the SQLite adapter. Parameters use sqlite3's :name style.

-- name: health_check
-- Cheapest round trip to the database.
SELECT 1 AS ok;

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

-- name: ledger_select
-- Every applied migration in name order.
SELECT name, checksum, applied_at FROM cowork_migrations ORDER BY name;

-- name: ledger_has
-- Whether one migration is already recorded.
SELECT 1 AS present FROM cowork_migrations WHERE name = :name;

-- name: ledger_insert
-- Record one applied migration.
INSERT INTO cowork_migrations (name, checksum, execution_ms)
VALUES (:name, :checksum, :execution_ms);

-- name: schema_tables
-- The cowork tables present in the database.
SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cowork%' ORDER BY name;

-- name: snapshot_insert
-- Store a workspace snapshot.
INSERT INTO cowork_workspace_snapshot
    (tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content)
VALUES (:tenant_id, :snapshot_id, :workspace_id, :owner_id, :label, :created_by, :now, :content);

-- name: snapshot_get
-- One snapshot by id.
SELECT tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content
FROM cowork_workspace_snapshot
WHERE tenant_id = :tenant_id AND snapshot_id = :snapshot_id;

-- name: snapshot_count_unfiltered
-- Counts snapshots with NO tenant filter (SQLite has no row-level security).
SELECT count(*) AS n FROM cowork_workspace_snapshot;
