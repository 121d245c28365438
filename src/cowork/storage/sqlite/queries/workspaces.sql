-- Sqlite queries: workspaces. Parameters use sqlite3's :name style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: workspace_get_for_update
-- One workspace (the transaction already holds SQLite's write lock).
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id;

-- name: workspace_get_for_share
-- One workspace (the transaction already holds SQLite's write lock).
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id;

-- name: workspace_list
-- Workspaces of a tenant, optionally of one project or status, oldest first.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = :tenant_id
  AND (:project_id IS NULL OR project_id = :project_id)
  AND (:status IS NULL OR status = :status)
  AND (:include_deleted OR status <> 'deleted')
ORDER BY created_at, workspace_id
LIMIT :limit;
