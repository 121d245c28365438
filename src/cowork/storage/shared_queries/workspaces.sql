-- Shared queries: workspaces. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- name: workspace_insert
-- Create a workspace row.
INSERT INTO cowork_workspace_state
    (tenant_id, workspace_id, owner_id, project_id, name, description, status, members,
     metadata, created_by, created_at, updated_at)
VALUES (%(tenant_id)s, %(workspace_id)s, %(owner_id)s, %(project_id)s, %(name)s,
        %(description)s, 'active', %(members)s, %(metadata)s, %(created_by)s, %(now)s, %(now)s);

-- name: workspace_get
-- One workspace.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s;

-- name: workspace_update
-- Write a workspace's new state (compare-and-set on row_version).
UPDATE cowork_workspace_state
SET status = %(status)s, members = %(members)s, metadata = %(metadata)s, name = %(name)s,
    description = %(description)s, project_id = %(project_id)s, closed_at = %(closed_at)s,
    deleted_at = %(deleted_at)s, updated_at = %(now)s, row_version = row_version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND row_version = %(row_version)s;

-- name: workspace_counts
-- Workspaces of a tenant by status (deleted ones included).
SELECT status, count(*) AS n FROM cowork_workspace_state
WHERE tenant_id = %(tenant_id)s
GROUP BY status;
