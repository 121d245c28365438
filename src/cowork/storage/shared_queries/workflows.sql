-- Shared queries: workflow definitions, instances and history. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- name: wf_definition_insert
-- Register a definition version (immutable: an existing row is left as it is).
INSERT INTO cowork_workflow_definition
    (tenant_id, workflow_id, version, name, trigger_pattern, definition, checksum, created_at)
VALUES (%(tenant_id)s, %(workflow_id)s, %(version)s, %(name)s, %(trigger_pattern)s,
        %(definition)s, %(checksum)s, %(now)s)
ON CONFLICT (tenant_id, workflow_id, version) DO NOTHING;

-- name: wf_definition_get
-- One definition version.
SELECT workflow_id, version, definition, checksum, created_at
FROM cowork_workflow_definition
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s AND version = %(version)s;

-- name: wf_definition_list
-- Every definition version of a tenant, with the log cursor of its registration event.
SELECT workflow_id, version, definition, checksum, created_at, registered_tx_id,
       registered_position
FROM cowork_workflow_definition
WHERE tenant_id = %(tenant_id)s
ORDER BY workflow_id, version;

-- name: wf_definition_set_registered
-- Record where a new version's registration event sits in the log (triggers after it start it).
UPDATE cowork_workflow_definition
SET registered_tx_id = %(registered_tx_id)s, registered_position = %(registered_position)s
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s AND version = %(version)s;

-- name: wf_instance_insert
-- Start an instance with its first state (written whole, so a start is one statement); the
-- (workflow_id, start_key) key makes starting idempotent.
INSERT INTO cowork_workflow_instance
    (tenant_id, instance_id, workflow_id, workflow_version, owner_id, status, correlation_key,
     start_key, step_index, state, attempts, last_error, wake_at, event_tx_id, event_position,
     lease_owner, lease_expires_at, created_at, updated_at, ended_at, action)
VALUES (%(tenant_id)s, %(instance_id)s, %(workflow_id)s, %(workflow_version)s, %(owner_id)s,
        %(status)s, %(correlation_key)s, %(start_key)s, %(step_index)s, %(state)s, %(attempts)s,
        %(last_error)s, %(wake_at)s, %(event_tx_id)s, %(event_position)s, %(lease_owner)s,
        %(lease_expires_at)s, %(now)s, %(now)s, %(ended_at)s, %(action)s)
ON CONFLICT (tenant_id, workflow_id, start_key) DO NOTHING
RETURNING *;

-- name: wf_instance_get
-- One instance.
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s;

-- name: wf_instance_by_start_key
-- The instance a start key created.
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s AND start_key = %(start_key)s;

-- name: wf_instance_release
-- Give a lease back without changing the instance (a step that did not finish).
UPDATE cowork_workflow_instance SET lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s AND lease_owner = %(owner)s;

-- name: wf_instance_await_worker
-- A claimed step whose action this worker lacks: record the action (so that only workers
-- offering it claim the instance) and give the lease back, changing nothing else.
UPDATE cowork_workflow_instance
SET action = %(action)s, lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s AND lease_owner = %(owner)s;

-- name: wf_instance_counts
-- Instance counts by status.
SELECT status, count(*) AS n FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s
GROUP BY status;

-- name: wf_history_insert
-- Append one history row (seq is the next number of this instance; the row lock orders them).
INSERT INTO cowork_workflow_history
    (tenant_id, instance_id, seq, kind, step_index, step_name, from_status, to_status,
     event_id, actor, detail, created_at)
VALUES (%(tenant_id)s, %(instance_id)s,
        (SELECT coalesce(max(seq), 0) + 1 FROM cowork_workflow_history
          WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s),
        %(kind)s, %(step_index)s, %(step_name)s, %(from_status)s, %(to_status)s,
        %(event_id)s, %(actor)s, %(detail)s, %(now)s);

-- name: wf_history_list
-- An instance's history in order.
SELECT * FROM cowork_workflow_history
WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s
ORDER BY seq;
