-- Shared queries: blackboard entries, their versions, and feedback. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- name: entry_get
-- The current version of one artifact.
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND artifact_key = %(artifact_key)s;

-- name: entry_insert
-- First version of an artifact.
INSERT INTO cowork_blackboard_entry
    (tenant_id, workspace_id, artifact_key, artifact_id, owner_id, artifact_type, source,
     payload, version, deleted, created_at, updated_at)
VALUES (%(tenant_id)s, %(workspace_id)s, %(artifact_key)s, %(artifact_id)s, %(owner_id)s,
        %(artifact_type)s, %(source)s, %(payload)s, %(version)s, %(deleted)s, %(now)s, %(now)s);

-- name: entry_update
-- Next version of an artifact (compare-and-set on the version read under lock).
UPDATE cowork_blackboard_entry
SET artifact_type = %(artifact_type)s, source = %(source)s, payload = %(payload)s,
    version = %(version)s, deleted = %(deleted)s, updated_at = %(now)s
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND artifact_key = %(artifact_key)s AND version = %(previous_version)s;

-- name: entry_list
-- Current artifacts of a workspace.
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND (%(include_deleted)s OR NOT deleted)
ORDER BY artifact_key;

-- name: version_insert
-- Keep one version in the history.
INSERT INTO cowork_blackboard_entry_version
    (tenant_id, workspace_id, artifact_key, version, artifact_id, artifact_type, source,
     payload, operation, deleted, based_on, created_at)
VALUES (%(tenant_id)s, %(workspace_id)s, %(artifact_key)s, %(version)s, %(artifact_id)s,
        %(artifact_type)s, %(source)s, %(payload)s, %(operation)s, %(deleted)s, %(based_on)s,
        %(now)s);

-- name: version_list
-- The whole history of one artifact, oldest first.
SELECT * FROM cowork_blackboard_entry_version
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND artifact_key = %(artifact_key)s
ORDER BY version;

-- name: version_get
-- One past version of an artifact.
SELECT * FROM cowork_blackboard_entry_version
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND artifact_key = %(artifact_key)s AND version = %(version)s;

-- name: feedback_get
-- One feedback thread.
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = %(tenant_id)s AND feedback_id = %(feedback_id)s;

-- name: feedback_update
-- Write a thread's new state.
UPDATE cowork_blackboard_feedback
SET status = %(status)s, severity = %(severity)s, tags = %(tags)s, comments = %(comments)s,
    updated_at = %(now)s, row_version = row_version + 1
WHERE tenant_id = %(tenant_id)s AND feedback_id = %(feedback_id)s
  AND row_version = %(row_version)s;
