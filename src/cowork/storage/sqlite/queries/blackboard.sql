-- Sqlite queries: blackboard entries, their versions, and feedback. sqlite3 :name style.

-- name: entry_get
-- The current version of one artifact.
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND artifact_key = :artifact_key;

-- name: entry_get_for_update
-- The current version of one artifact (the transaction holds SQLite's write lock).
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND artifact_key = :artifact_key;

-- name: entry_insert
-- First version of an artifact.
INSERT INTO cowork_blackboard_entry
    (tenant_id, workspace_id, artifact_key, artifact_id, owner_id, artifact_type, source,
     payload, version, deleted, created_at, updated_at)
VALUES (:tenant_id, :workspace_id, :artifact_key, :artifact_id, :owner_id, :artifact_type,
        :source, :payload, :version, :deleted, :now, :now);

-- name: entry_update
-- Next version of an artifact (compare-and-set on the version read).
UPDATE cowork_blackboard_entry
SET artifact_type = :artifact_type, source = :source, payload = :payload, version = :version,
    deleted = :deleted, updated_at = :now
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id
  AND artifact_key = :artifact_key AND version = :previous_version;

-- name: entry_list
-- Current artifacts of a workspace.
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id
  AND (:include_deleted OR NOT deleted)
ORDER BY artifact_key;

-- name: version_insert
-- Keep one version in the history.
INSERT INTO cowork_blackboard_entry_version
    (tenant_id, workspace_id, artifact_key, version, artifact_id, artifact_type, source,
     payload, operation, deleted, based_on, created_at)
VALUES (:tenant_id, :workspace_id, :artifact_key, :version, :artifact_id, :artifact_type,
        :source, :payload, :operation, :deleted, :based_on, :now);

-- name: version_list
-- The whole history of one artifact, oldest first.
SELECT * FROM cowork_blackboard_entry_version
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND artifact_key = :artifact_key
ORDER BY version;

-- name: version_get
-- One past version of an artifact.
SELECT * FROM cowork_blackboard_entry_version
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id
  AND artifact_key = :artifact_key AND version = :version;

-- name: feedback_insert
-- A new feedback thread.
INSERT INTO cowork_blackboard_feedback
    (tenant_id, feedback_id, workspace_id, artifact_key, owner_id, author_id, body, severity,
     status, tags, comments, metadata, created_at, updated_at)
VALUES (:tenant_id, :feedback_id, :workspace_id, :artifact_key, :owner_id, :author_id, :body,
        :severity, 'pending', :tags, '[]', :metadata, :now, :now);

-- name: feedback_get
-- One feedback thread.
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = :tenant_id AND feedback_id = :feedback_id;

-- name: feedback_get_for_update
-- One feedback thread (the transaction holds SQLite's write lock).
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = :tenant_id AND feedback_id = :feedback_id;

-- name: feedback_update
-- Write a thread's new state.
UPDATE cowork_blackboard_feedback
SET status = :status, severity = :severity, tags = :tags, comments = :comments,
    updated_at = :now, row_version = row_version + 1
WHERE tenant_id = :tenant_id AND feedback_id = :feedback_id AND row_version = :row_version;

-- name: feedback_list
-- Threads of a workspace; artifact_key filters to one artifact; status filters by status.
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id
  AND (:artifact_key IS NULL OR artifact_key = :artifact_key)
  AND (:status IS NULL OR status = :status)
ORDER BY created_at, feedback_id;
