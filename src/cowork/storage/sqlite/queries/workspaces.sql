-- Sqlite queries: workspaces. Parameters use sqlite3's :name style.

-- name: workspace_insert
-- Create a workspace row.
INSERT INTO cowork_workspace_state
    (tenant_id, workspace_id, owner_id, project_id, name, description, status, members,
     metadata, created_by, created_at, updated_at)
VALUES (:tenant_id, :workspace_id, :owner_id, :project_id, :name, :description, 'active',
        :members, :metadata, :created_by, :now, :now);

-- name: workspace_get
-- One workspace.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id;

-- name: workspace_get_for_update
-- One workspace (the transaction already holds SQLite's write lock).
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id;

-- name: workspace_get_for_share
-- One workspace (the transaction already holds SQLite's write lock).
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id;

-- name: workspace_update
-- Write a workspace's new state (compare-and-set on row_version).
UPDATE cowork_workspace_state
SET status = :status, members = :members, metadata = :metadata, name = :name,
    description = :description, project_id = :project_id, closed_at = :closed_at,
    deleted_at = :deleted_at, updated_at = :now, row_version = row_version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND row_version = :row_version;

-- name: workspace_counts
-- Workspaces of a tenant by status (deleted ones included).
SELECT status, count(*) AS n FROM cowork_workspace_state
WHERE tenant_id = :tenant_id
GROUP BY status;

-- name: workspace_list
-- Workspaces of a tenant, optionally of one project or status, oldest first.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id
  AND (:project_id IS NULL OR project_id = :project_id)
  AND (:status IS NULL OR status = :status)
  AND (:include_deleted OR status <> 'deleted')
ORDER BY created_at, workspace_id
LIMIT :limit;
