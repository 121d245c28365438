-- Sqlite queries: workflow definitions, instances and history. sqlite3 :name style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: wf_instance_insert_at_head
-- wf_instance_insert for a start by hand: the instance's event cursor is the head of the log
-- a reader can see now (see event_head), so it waits only for events after its start.
INSERT INTO cowork_workflow_instance
    (tenant_id, instance_id, workflow_id, workflow_version, owner_id, status, correlation_key,
     start_key, step_index, state, attempts, last_error, wake_at, event_tx_id, event_position,
     lease_owner, lease_expires_at, created_at, updated_at, ended_at, action)
VALUES (:tenant_id, :instance_id, :workflow_id, :workflow_version, :owner_id,
        :status, :correlation_key, :start_key, :step_index, :state, :attempts,
        :last_error, :wake_at,
        coalesce((SELECT tx_id
                  FROM cowork_event_log
                  WHERE tenant_id = :tenant_id
                  ORDER BY position DESC LIMIT 1), 0),
        coalesce((SELECT position
                  FROM cowork_event_log
                  WHERE tenant_id = :tenant_id
                  ORDER BY position DESC LIMIT 1), 0),
        :lease_owner, :lease_expires_at, :now, :now, :ended_at, :action)
ON CONFLICT (tenant_id, workflow_id, start_key) DO NOTHING
RETURNING *;

-- name: wf_instance_lock
-- One instance (SQLite's write lock serialises writers).
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = :tenant_id AND instance_id = :instance_id;

-- name: wf_instances_correlated
-- Active instances of a workflow with one correlation key (SQLite's write lock serialises).
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = :tenant_id AND workflow_id = :workflow_id
  AND correlation_key = :correlation_key AND status IN ('running', 'waiting')
ORDER BY created_at, instance_id;

-- name: wf_instance_claim
-- Lease up to `limit` due instances whose lease (if any) has expired, for its owner too, and
-- whose pending action (if any) is one of `actions` (a JSON array); SQLite's write lock
-- serialises claims. Times are this host's: SQLite runs in this process.
UPDATE cowork_workflow_instance
SET lease_owner = :owner,
    lease_expires_at = :expires
WHERE tenant_id = :tenant_id AND instance_id IN (
    SELECT instance_id FROM cowork_workflow_instance
    WHERE tenant_id = :tenant_id AND status IN ('running', 'waiting')
      AND wake_at <= :at
      AND (lease_owner IS NULL OR lease_expires_at < :at)
      AND (action IS NULL OR action IN (SELECT value FROM json_each(:actions)))
    ORDER BY wake_at, instance_id
    LIMIT :limit)
RETURNING *;

-- name: wf_instance_heartbeat
-- Extend our leases on running steps; the ids returned are the ones we still hold on active
-- instances (a missing one was cancelled, ended or taken over).
UPDATE cowork_workflow_instance
SET lease_expires_at = :expires
WHERE tenant_id = :tenant_id AND instance_id IN (SELECT value FROM json_each(:instance_ids))
  AND lease_owner = :owner AND status IN ('running', 'waiting')
RETURNING instance_id;

-- name: wf_instance_still_held
-- Which of our running steps we still hold on active instances.
SELECT instance_id FROM cowork_workflow_instance
WHERE tenant_id = :tenant_id AND instance_id IN (SELECT value FROM json_each(:instance_ids))
  AND lease_owner = :owner AND status IN ('running', 'waiting');

-- name: wf_pending_actions
-- Steps due for at least min_age seconds that no worker has taken, by action.
SELECT action, count(*) AS steps, min(wake_at) AS "due_since [TIMESTAMPTEXT]"
FROM cowork_workflow_instance
WHERE tenant_id = :tenant_id AND status = 'running' AND action IS NOT NULL
  AND wake_at <= :cutoff
  AND (lease_owner IS NULL OR lease_expires_at < :at)
GROUP BY action
ORDER BY action;

-- name: wf_next_wake
-- When the next instance of a tenant becomes due (or a held lease expires).
SELECT min(CASE WHEN lease_owner IS NOT NULL AND lease_expires_at > :now
                THEN lease_expires_at ELSE wake_at END) AS "wake_at [TIMESTAMPTEXT]"
FROM cowork_workflow_instance
WHERE tenant_id = :tenant_id AND status IN ('running', 'waiting') AND wake_at IS NOT NULL
  AND (action IS NULL OR action IN (SELECT value FROM json_each(:actions)));

-- name: wf_horizon
-- SQLite has one writer: every committed row is visible, so the horizon is always reached.
SELECT 0 AS xmin, -1 AS xmax;

-- name: wf_instance_update
-- Write an instance's new state: compare-and-set on row_version and, when given, on the
-- lease owner.
UPDATE cowork_workflow_instance
SET status = :status, step_index = :step_index, state = :state,
    attempts = :attempts, last_error = :last_error, wake_at = :wake_at,
    event_tx_id = :event_tx_id, event_position = :event_position,
    lease_owner = :lease_owner, lease_expires_at = :lease_expires_at,
    updated_at = :now, ended_at = :ended_at, action = :action,
    row_version = row_version + 1
WHERE tenant_id = :tenant_id AND instance_id = :instance_id
  AND row_version = :row_version
  AND (:expect_owner IS NULL OR lease_owner = :expect_owner)
RETURNING *;

-- name: wf_instance_list
-- Instances of a tenant, newest first, optionally filtered.
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = :tenant_id
  AND (:workflow_id IS NULL OR workflow_id = :workflow_id)
  AND (:status IS NULL OR status = :status)
ORDER BY created_at DESC, instance_id DESC
LIMIT :limit;

-- name: wf_history_insert_batch
-- Append several history rows in order (seq continues from the instance's last one).
INSERT INTO cowork_workflow_history
    (tenant_id, instance_id, seq, kind, step_index, step_name, from_status, to_status,
     event_id, actor, detail, created_at)
SELECT :tenant_id, :instance_id,
       (SELECT coalesce(max(seq), 0) FROM cowork_workflow_history
         WHERE tenant_id = :tenant_id AND instance_id = :instance_id) + h.key + 1,
       json_extract(h.value, '$.kind'), json_extract(h.value, '$.step_index'),
       json_extract(h.value, '$.step_name'), json_extract(h.value, '$.from_status'),
       json_extract(h.value, '$.to_status'), json_extract(h.value, '$.event_id'),
       json_extract(h.value, '$.actor'), coalesce(json_extract(h.value, '$.detail'), '{}'),
       :now
FROM json_each(:entries) AS h
ORDER BY h.key;
