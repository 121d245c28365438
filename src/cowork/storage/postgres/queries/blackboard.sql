-- Postgres queries: blackboard entries, their versions, and feedback. psycopg %(name)s style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: entry_get_for_update
-- The current version of one artifact, locked for a write (optimistic check under lock).
SELECT * FROM cowork_blackboard_entry
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND artifact_key = %(artifact_key)s
FOR UPDATE;

-- name: feedback_insert
-- A new feedback thread.
INSERT INTO cowork_blackboard_feedback
    (tenant_id, feedback_id, workspace_id, artifact_key, owner_id, author_id, body, severity,
     status, tags, comments, metadata, created_at, updated_at)
VALUES (%(tenant_id)s, %(feedback_id)s, %(workspace_id)s, %(artifact_key)s, %(owner_id)s,
        %(author_id)s, %(body)s, %(severity)s, 'pending', %(tags)s, '[]'::jsonb, %(metadata)s,
        %(now)s, %(now)s);

-- name: feedback_get_for_update
-- One feedback thread, locked for a change.
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = %(tenant_id)s AND feedback_id = %(feedback_id)s
FOR UPDATE;

-- name: feedback_list
-- Threads of a workspace; artifact_key filters to one artifact; status filters by status.
SELECT * FROM cowork_blackboard_feedback
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s
  AND (%(artifact_key)s::text IS NULL OR artifact_key = %(artifact_key)s::text)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY created_at, feedback_id;
