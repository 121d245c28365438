-- Postgres queries: workflow definitions, instances and history. psycopg %(name)s style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: wf_instance_insert_at_head
-- wf_instance_insert for a start by hand: the instance's event cursor is the head of the log
-- a reader can see now (see event_head), so it waits only for events after its start.
INSERT INTO cowork_workflow_instance
    (tenant_id, instance_id, workflow_id, workflow_version, owner_id, status, correlation_key,
     start_key, step_index, state, attempts, last_error, wake_at, event_tx_id, event_position,
     lease_owner, lease_expires_at, created_at, updated_at, ended_at, action)
VALUES (%(tenant_id)s, %(instance_id)s, %(workflow_id)s, %(workflow_version)s, %(owner_id)s,
        %(status)s, %(correlation_key)s, %(start_key)s, %(step_index)s, %(state)s, %(attempts)s,
        %(last_error)s, %(wake_at)s,
        coalesce((SELECT tx_id
                  FROM cowork_event_log
                  WHERE tenant_id = %(tenant_id)s
                    AND tx_id < (SELECT cowork_event_horizon(%(tenant_id)s))
                  ORDER BY tx_id DESC, position DESC LIMIT 1), 0),
        coalesce((SELECT position
                  FROM cowork_event_log
                  WHERE tenant_id = %(tenant_id)s
                    AND tx_id < (SELECT cowork_event_horizon(%(tenant_id)s))
                  ORDER BY tx_id DESC, position DESC LIMIT 1), 0),
        %(lease_owner)s, %(lease_expires_at)s, %(now)s, %(now)s, %(ended_at)s, %(action)s)
ON CONFLICT (tenant_id, workflow_id, start_key) DO NOTHING
RETURNING *;

-- name: wf_instance_lock
-- One instance, locked (waits for a worker that holds it).
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s
FOR UPDATE;

-- name: wf_instances_correlated
-- Active instances of a workflow with one correlation key, locked; a worker holding one makes
-- this wait, and the re-check after the wait sees the worker's committed state.
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND workflow_id = %(workflow_id)s
  AND correlation_key = %(correlation_key)s AND status IN ('running', 'waiting')
ORDER BY created_at, instance_id
FOR UPDATE;

-- name: wf_instance_claim
-- Lease up to `limit` due instances whose lease (if any) has expired and whose pending action
-- (if any) is one of `actions` (a JSON array), the ones this worker has registered: a lease is exclusive
-- until it expires, for its owner too (an executor runs the instances a start in its process
-- leased to it without claiming them). Times are the database's (`now` only overrides it in
-- tests). The row locks (SKIP LOCKED) last only for this statement; the lease then keeps other
-- workers away while the step runs.
UPDATE cowork_workflow_instance AS i
SET lease_owner = %(owner)s,
    lease_expires_at = coalesce(%(now)s::timestamptz, now())
                       + make_interval(secs => %(lease_seconds)s)
FROM (SELECT tenant_id, instance_id FROM cowork_workflow_instance
      WHERE tenant_id = %(tenant_id)s AND status IN ('running', 'waiting')
        AND wake_at <= coalesce(%(now)s::timestamptz, now())
        AND (lease_owner IS NULL OR lease_expires_at < coalesce(%(now)s::timestamptz, now()))
        AND (action IS NULL OR action IN (SELECT jsonb_array_elements_text(%(actions)s)))
      ORDER BY wake_at, instance_id
      LIMIT %(limit)s
      FOR UPDATE SKIP LOCKED) AS due
WHERE i.tenant_id = due.tenant_id AND i.instance_id = due.instance_id
RETURNING i.*;

-- name: wf_instance_heartbeat
-- Extend our leases on running steps (database time); the ids returned are the ones we still
-- hold on active instances: a missing one was cancelled, ended or taken over.
UPDATE cowork_workflow_instance
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
WHERE tenant_id = %(tenant_id)s AND instance_id IN (SELECT jsonb_array_elements_text(%(instance_ids)s))
  AND lease_owner = %(owner)s AND status IN ('running', 'waiting')
RETURNING instance_id;

-- name: wf_instance_still_held
-- Which of our running steps we still hold on active instances (read-only; a cancel or a
-- takeover elsewhere makes an id disappear).
SELECT instance_id FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND instance_id IN (SELECT jsonb_array_elements_text(%(instance_ids)s))
  AND lease_owner = %(owner)s AND status IN ('running', 'waiting');

-- name: wf_pending_actions
-- Steps due for at least min_age seconds that no worker has taken, by action.
SELECT action, count(*) AS steps, min(wake_at) AS due_since
FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND status = 'running' AND action IS NOT NULL
  AND wake_at <= now() - make_interval(secs => %(min_age)s)
  AND (lease_owner IS NULL OR lease_expires_at < now())
GROUP BY action
ORDER BY action;

-- name: wf_next_wake
-- When the next instance of a tenant becomes due (or a held lease expires).
SELECT min(CASE WHEN lease_owner IS NOT NULL AND lease_expires_at > %(now)s
                THEN lease_expires_at ELSE wake_at END) AS wake_at
FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s AND status IN ('running', 'waiting') AND wake_at IS NOT NULL
  AND (action IS NULL OR action IN (SELECT jsonb_array_elements_text(%(actions)s)));

-- name: wf_horizon
-- The tenant's read horizon (see cowork_event_horizon) and the snapshot's xmax: every
-- transaction that could append the tenant's events below the horizon has ended; ids from
-- xmax on had not ended when this snapshot was taken.
SELECT cowork_event_horizon(%(tenant_id)s) AS xmin,
       pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax;

-- name: wf_instance_update
-- Write an instance's new state: compare-and-set on row_version and, when given, on the
-- lease owner.
UPDATE cowork_workflow_instance
SET status = %(status)s, step_index = %(step_index)s, state = %(state)s,
    attempts = %(attempts)s, last_error = %(last_error)s, wake_at = %(wake_at)s,
    event_tx_id = %(event_tx_id)s, event_position = %(event_position)s,
    lease_owner = %(lease_owner)s, lease_expires_at = %(lease_expires_at)s,
    updated_at = %(now)s, ended_at = %(ended_at)s, action = %(action)s,
    row_version = row_version + 1
WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s
  AND row_version = %(row_version)s
  AND (%(expect_owner)s::text IS NULL OR lease_owner = %(expect_owner)s::text)
RETURNING *;

-- name: wf_instance_list
-- Instances of a tenant, newest first, optionally filtered.
SELECT * FROM cowork_workflow_instance
WHERE tenant_id = %(tenant_id)s
  AND (%(workflow_id)s::text IS NULL OR workflow_id = %(workflow_id)s::text)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY created_at DESC, instance_id DESC
LIMIT %(limit)s;

-- name: wf_history_insert_batch
-- Append several history rows in order (seq continues from the instance's last one).
INSERT INTO cowork_workflow_history
    (tenant_id, instance_id, seq, kind, step_index, step_name, from_status, to_status,
     event_id, actor, detail, created_at)
SELECT %(tenant_id)s, %(instance_id)s,
       (SELECT coalesce(max(seq), 0) FROM cowork_workflow_history
         WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s) + h.ord,
       h.kind, h.step_index, h.step_name, h.from_status, h.to_status, h.event_id, h.actor,
       coalesce(h.detail, '{}'::jsonb), %(now)s
FROM ROWS FROM (jsonb_to_recordset(%(entries)s) AS (
         kind text, step_index integer, step_name text, from_status text, to_status text,
         event_id text, actor text, detail jsonb))
     WITH ORDINALITY AS h(kind, step_index, step_name, from_status, to_status, event_id,
                          actor, detail, ord);

-- name: wf_save
-- A transition's writes in one statement: the instance (compare-and-set on row_version and,
-- when given, on the lease owner), then its history rows and events, written only if the
-- instance row was (a lost compare-and-set returns no row and writes nothing). Returns the
-- stored instance and, in "appended", [event_id, position, tx_id, recorded_at] per event
-- stored (an event id stored before is skipped, as in event_append_batch).
WITH updated AS (
    UPDATE cowork_workflow_instance
    SET status = %(status)s, step_index = %(step_index)s, state = %(state)s,
        attempts = %(attempts)s, last_error = %(last_error)s, wake_at = %(wake_at)s,
        event_tx_id = %(event_tx_id)s, event_position = %(event_position)s,
        lease_owner = %(lease_owner)s, lease_expires_at = %(lease_expires_at)s,
        updated_at = %(now)s, ended_at = %(ended_at)s, action = %(action)s,
        row_version = row_version + 1
    WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s
      AND row_version = %(row_version)s
      AND (%(expect_owner)s::text IS NULL OR lease_owner = %(expect_owner)s::text)
    RETURNING *
), history AS (
    INSERT INTO cowork_workflow_history
        (tenant_id, instance_id, seq, kind, step_index, step_name, from_status, to_status,
         event_id, actor, detail, created_at)
    SELECT u.tenant_id, u.instance_id,
           (SELECT coalesce(max(seq), 0) FROM cowork_workflow_history
             WHERE tenant_id = %(tenant_id)s AND instance_id = %(instance_id)s) + h.ord,
           h.kind, h.step_index, h.step_name, h.from_status, h.to_status, h.event_id, h.actor,
           coalesce(h.detail, '{}'::jsonb), %(now)s
    FROM updated AS u,
         ROWS FROM (jsonb_to_recordset(%(entries)s) AS (
             kind text, step_index integer, step_name text, from_status text, to_status text,
             event_id text, actor text, detail jsonb))
         WITH ORDINALITY AS h(kind, step_index, step_name, from_status, to_status, event_id,
                              actor, detail, ord)
), appended AS (
    INSERT INTO cowork_event_log
        ({{event_columns}})
    SELECT u.tenant_id, b.event_id, b.event_type, b.aggregate_type, b.aggregate_id, b.payload,
           b.metadata, b.correlation_id, b.causation_id, b.occurred_at
    FROM updated AS u,
         ROWS FROM (jsonb_to_recordset(%(batch)s) AS (
             event_id text, event_type text, aggregate_type text, aggregate_id text,
             payload jsonb, metadata jsonb, correlation_id text, causation_id text,
             occurred_at timestamptz))
         WITH ORDINALITY AS b(event_id, event_type, aggregate_type, aggregate_id, payload,
                              metadata, correlation_id, causation_id, occurred_at, ord)
    ORDER BY b.ord
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING event_id, position, tx_id, recorded_at
)
SELECT updated.*,
       (SELECT coalesce(json_agg(json_build_array(a.event_id, a.position, a.tx_id,
                                                  a.recorded_at) ORDER BY a.position),
                        '[]'::json)
        FROM appended AS a) AS appended
FROM updated;

-- name: wf_start
-- A start in one statement: the instance (idempotent on its start key), then its history
-- rows and events, written only if the instance was. With at_head the instance's event
-- cursor is the log head a reader can see now (see event_head). Returns as wf_save.
WITH inserted AS (
    INSERT INTO cowork_workflow_instance
        (tenant_id, instance_id, workflow_id, workflow_version, owner_id, status,
         correlation_key, start_key, step_index, state, attempts, last_error, wake_at,
         event_tx_id, event_position, lease_owner, lease_expires_at, created_at, updated_at,
         ended_at, action)
    SELECT %(tenant_id)s, %(instance_id)s, %(workflow_id)s, %(workflow_version)s, %(owner_id)s,
           %(status)s, %(correlation_key)s, %(start_key)s, %(step_index)s, %(state)s,
           %(attempts)s, %(last_error)s, %(wake_at)s,
           CASE WHEN %(at_head)s THEN coalesce(head.tx_id, 0) ELSE %(event_tx_id)s END,
           CASE WHEN %(at_head)s THEN coalesce(head.position, 0) ELSE %(event_position)s END,
           %(lease_owner)s, %(lease_expires_at)s, %(now)s, %(now)s, %(ended_at)s, %(action)s
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT tx_id, position FROM cowork_event_log
        WHERE %(at_head)s AND tenant_id = %(tenant_id)s
          AND tx_id < (SELECT cowork_event_horizon(%(tenant_id)s))
        ORDER BY tx_id DESC, position DESC
        LIMIT 1) AS head ON true
    ON CONFLICT (tenant_id, workflow_id, start_key) DO NOTHING
    RETURNING *
), history AS (
    INSERT INTO cowork_workflow_history
        (tenant_id, instance_id, seq, kind, step_index, step_name, from_status, to_status,
         event_id, actor, detail, created_at)
    SELECT i.tenant_id, i.instance_id, h.ord,
           h.kind, h.step_index, h.step_name, h.from_status, h.to_status, h.event_id, h.actor,
           coalesce(h.detail, '{}'::jsonb), %(now)s
    FROM inserted AS i,
         ROWS FROM (jsonb_to_recordset(%(entries)s) AS (
             kind text, step_index integer, step_name text, from_status text, to_status text,
             event_id text, actor text, detail jsonb))
         WITH ORDINALITY AS h(kind, step_index, step_name, from_status, to_status, event_id,
                              actor, detail, ord)
), appended AS (
    INSERT INTO cowork_event_log
        ({{event_columns}})
    SELECT i.tenant_id, b.event_id, b.event_type, b.aggregate_type, b.aggregate_id, b.payload,
           b.metadata, b.correlation_id, b.causation_id, b.occurred_at
    FROM inserted AS i,
         ROWS FROM (jsonb_to_recordset(%(batch)s) AS (
             event_id text, event_type text, aggregate_type text, aggregate_id text,
             payload jsonb, metadata jsonb, correlation_id text, causation_id text,
             occurred_at timestamptz))
         WITH ORDINALITY AS b(event_id, event_type, aggregate_type, aggregate_id, payload,
                              metadata, correlation_id, causation_id, occurred_at, ord)
    ORDER BY b.ord
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING event_id, position, tx_id, recorded_at
)
SELECT inserted.*,
       (SELECT coalesce(json_agg(json_build_array(a.event_id, a.position, a.tx_id,
                                                  a.recorded_at) ORDER BY a.position),
                        '[]'::json)
        FROM appended AS a) AS appended
FROM inserted;
