-- Sqlite queries: blackboard entries, their versions, and feedback. sqlite3 :name style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: entry_get_for_update
-- The current version of one artifact (the transaction holds SQLite's write lock).
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND artifact_key = :artifact_key;

-- name: feedback_insert
-- A new feedback thread.
INSERT INTO cowork_blackboard_feedback
    (tenant_id, feedback_id, workspace_id, artifact_key, owner_id, author_id, body, severity,
     status, tags, comments, metadata, created_at, updated_at)
VALUES (:tenant_id, :feedback_id, :workspace_id, :artifact_key, :owner_id, :author_id, :body,
        :severity, 'pending', :tags, '[]', :metadata, :now, :now);

-- name: feedback_get_for_update
-- One feedback thread (the transaction holds SQLite's write lock).
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = :tenant_id AND feedback_id = :feedback_id;

-- name: feedback_list
-- Threads of a workspace; artifact_key filters to one artifact; status filters by status.
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id
  AND (:artifact_key IS NULL OR artifact_key = :artifact_key)
  AND (:status IS NULL OR status = :status)
ORDER BY created_at, feedback_id;
