-- Sqlite queries: workspace snapshots. Parameters use sqlite3's :name style.

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

-- name: snapshot_list
-- Snapshots of a workspace, oldest first (without their content).
SELECT tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at
FROM cowork_workspace_snapshot
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id
ORDER BY created_at, snapshot_id;
