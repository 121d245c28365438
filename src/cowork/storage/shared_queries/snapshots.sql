-- Shared queries: workspace snapshots. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- name: snapshot_insert
-- Store a workspace snapshot.
INSERT INTO cowork_workspace_snapshot
    (tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content)
VALUES (%(tenant_id)s, %(snapshot_id)s, %(workspace_id)s, %(owner_id)s, %(label)s,
        %(created_by)s, %(now)s, %(content)s);

-- name: snapshot_get
-- One snapshot by id.
SELECT tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content
FROM cowork_workspace_snapshot
WHERE tenant_id = %(tenant_id)s AND snapshot_id = %(snapshot_id)s;

-- name: snapshot_count_unfiltered
-- Counts snapshots with NO tenant filter: on PostgreSQL row-level security alone must
-- scope it (SQLite has no row-level security).
SELECT count(*) AS n FROM cowork_workspace_snapshot;

-- name: snapshot_list
-- Snapshots of a workspace, oldest first (without their content).
SELECT tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at
FROM cowork_workspace_snapshot
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
ORDER BY created_at, snapshot_id;
