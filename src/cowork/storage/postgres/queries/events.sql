-- Postgres queries: the event log. Parameters use psycopg's %(name)s style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: event_append
-- Append one event; an existing event_id (idempotency key) inserts nothing and returns no row.
INSERT INTO cowork_event_log
    ({{event_columns}})
VALUES (%(tenant_id)s, %(event_id)s, %(event_type)s, %(aggregate_type)s, %(aggregate_id)s,
        %(payload)s, %(metadata)s, %(correlation_id)s, %(causation_id)s, %(occurred_at)s)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING position, tx_id, recorded_at;

-- name: event_append_batch
-- Append a batch given as one JSON array, in array order; existing event_ids are skipped.
INSERT INTO cowork_event_log
    ({{event_columns}})
SELECT %(tenant_id)s, b.event_id, b.event_type, b.aggregate_type, b.aggregate_id, b.payload,
       b.metadata, b.correlation_id, b.causation_id, b.occurred_at
FROM jsonb_to_recordset(%(batch)s) AS b(
    event_id text, event_type text, aggregate_type text, aggregate_id text, payload jsonb,
    metadata jsonb, correlation_id text, causation_id text, occurred_at timestamptz)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING event_id, position, tx_id, recorded_at;

-- name: event_get_by_ids
-- Stored events by event id (to answer a repeated idempotency key with the original).
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s
  AND event_id IN (SELECT jsonb_array_elements_text(%(event_ids)s));

-- name: event_read_after
-- Gap-free, commit-ordered page: only rows below the tenant's commit horizon (see
-- cowork_event_horizon), so nothing can later commit before the last row returned.
-- settings: enable_bitmapscan=off, enable_sort=off
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s
  AND (tx_id, position) > (%(after_tx)s, %(after_position)s)
  AND tx_id < (SELECT cowork_event_horizon(%(tenant_id)s))
ORDER BY tx_id, position
LIMIT %(limit)s;

-- name: event_read_before
-- The newest events before a cursor, newest first (a backward scan of the commit-order index),
-- below the tenant's commit horizon like event_read_after.
-- settings: enable_bitmapscan=off, enable_sort=off
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s
  AND (tx_id, position) < (%(before_tx)s, %(before_position)s)
  AND tx_id < (SELECT cowork_event_horizon(%(tenant_id)s))
ORDER BY tx_id DESC, position DESC
LIMIT %(limit)s;

-- name: event_head
-- The cursor of the last event a reader can see now (commit order).
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s
  AND tx_id < (SELECT cowork_event_horizon(%(tenant_id)s))
ORDER BY tx_id DESC, position DESC
LIMIT 1;

-- name: event_append_alone
-- event_append as a statement of its own (autocommit, one round trip): it enters the tenant
-- scope (the setting row-level security reads, and the scope lock readers' horizons look
-- for; see cowork_enter_tenant) before the insert gives the transaction an xid.
WITH scope AS MATERIALIZED (
    SELECT set_config('cowork.tenant_id', %(tenant_id)s, true) AS t,
           set_config('cowork.appends', 'on', true) AS appends,
           pg_advisory_xact_lock_shared(1668249451, hashtext(%(tenant_id)s)) AS announced)
INSERT INTO cowork_event_log
    ({{event_columns}})
SELECT scope.t, %(event_id)s, %(event_type)s, %(aggregate_type)s, %(aggregate_id)s,
       %(payload)s, %(metadata)s, %(correlation_id)s, %(causation_id)s, %(occurred_at)s
FROM scope
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING position, tx_id, recorded_at;

-- name: horizon_holders
-- Open transactions holding the tenant's read horizon back for at least min_age seconds.
SELECT pid, xid, scope, xact_start, age_seconds, application_name, state
FROM cowork_horizon_holders(%(tenant_id)s)
WHERE age_seconds >= %(min_age)s;
