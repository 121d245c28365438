-- Postgres queries: workspaces. Parameters use psycopg's %(name)s style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: workspace_get_for_update
-- One workspace, locked for a state change.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
FOR UPDATE;

-- name: workspace_get_for_share
-- One workspace, locked against state changes while an artifact write depends on its status.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
FOR SHARE;

-- name: workspace_list
-- Workspaces of a tenant, optionally of one project or status, oldest first.
SELECT * FROM cowork_workspace_state
WHERE tenant_id = %(tenant_id)s
  AND (%(project_id)s::text IS NULL OR project_id = %(project_id)s::text)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(include_deleted)s OR status <> 'deleted')
ORDER BY created_at, workspace_id
LIMIT %(limit)s;
