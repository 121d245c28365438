-- Named queries of the PostgreSQL adapter. Parameters use psycopg's %(name)s style.

-- name: health_check
-- Cheapest round trip to the server.
SELECT 1 AS ok;

-- name: migration_lock
-- Session-level advisory lock held while migrations run (waits up to lock_timeout).
SELECT pg_advisory_lock(%(key)s);

-- name: ledger_create
-- The migration ledger (the one table without tenant_id).
CREATE TABLE IF NOT EXISTS cowork_migrations (
    name          text PRIMARY KEY,
    checksum      text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    execution_ms  double precision
);

-- name: ledger_exists
-- Whether the ledger table exists yet.
SELECT to_regclass('cowork_migrations') IS NOT NULL AS present;

-- name: ledger_select
-- Every applied migration in name order.
SELECT name, checksum, applied_at FROM cowork_migrations ORDER BY name;

-- name: ledger_has
-- Whether one migration is already recorded.
SELECT 1 AS present FROM cowork_migrations WHERE name = %(name)s;

-- name: ledger_insert
-- Record one applied migration.
INSERT INTO cowork_migrations (name, checksum, execution_ms)
VALUES (%(name)s, %(checksum)s, %(execution_ms)s);

-- name: schema_tables
-- The cowork tables present in the current schema.
SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name LIKE 'cowork%%'
ORDER BY table_name;

-- name: snapshot_insert
-- Store a workspace snapshot.
INSERT INTO cowork_workspace_snapshot
    (tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content)
VALUES (%(tenant_id)s, %(snapshot_id)s, %(workspace_id)s, %(owner_id)s, %(label)s,
        %(created_by)s, %(now)s, %(content)s);

-- name: snapshot_get
-- One snapshot by id.
SELECT tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content
FROM cowork_workspace_snapshot
WHERE tenant_id = %(tenant_id)s AND snapshot_id = %(snapshot_id)s;

-- name: snapshot_count_unfiltered
-- Counts snapshots with NO tenant filter: row-level security alone must scope it.
SELECT count(*) AS n FROM cowork_workspace_snapshot;

-- name: event_append
-- Append one event; an existing event_id (idempotency key) inserts nothing and returns no row.
INSERT INTO cowork_event_log
    (tenant_id, event_id, event_type, aggregate_type, aggregate_id, payload, metadata,
     correlation_id, causation_id, occurred_at)
VALUES (%(tenant_id)s, %(event_id)s, %(event_type)s, %(aggregate_type)s, %(aggregate_id)s,
        %(payload)s, %(metadata)s, %(correlation_id)s, %(causation_id)s, %(occurred_at)s)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING position, tx_id, recorded_at;

-- name: event_append_batch
-- Append a batch given as one JSON array, in array order; existing event_ids are skipped.
INSERT INTO cowork_event_log
    (tenant_id, event_id, event_type, aggregate_type, aggregate_id, payload, metadata,
     correlation_id, causation_id, occurred_at)
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
-- Gap-free, commit-ordered page: only transactions below this snapshot's xmin, which have all
-- ended, so nothing can later commit before the last row returned.
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s
  AND (tx_id, position) > (%(after_tx)s, %(after_position)s)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY tx_id, position
LIMIT %(limit)s;

-- name: event_cursor_of_position
-- The commit-order cursor of one stored event.
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s AND position = %(position)s;

-- name: event_head
-- The cursor of the last event a reader can see now (commit order).
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY tx_id DESC, position DESC
LIMIT 1;

-- name: event_get_by_position
-- One stored event by position.
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s AND position = %(position)s;

-- name: event_count
-- Number of events of a tenant.
SELECT count(*) AS n FROM cowork_event_log WHERE tenant_id = %(tenant_id)s;

-- name: consumer_register
-- Create a durable consumer's checkpoint if it does not exist yet.
INSERT INTO cowork_event_consumer_checkpoint
    (tenant_id, consumer_id, pattern, last_tx_id, last_position, created_at, updated_at)
VALUES (%(tenant_id)s, %(consumer_id)s, %(pattern)s, %(after_tx)s, %(after_position)s,
        now(), now())
ON CONFLICT (tenant_id, consumer_id) DO NOTHING;

-- name: consumer_get
-- One consumer's checkpoint row.
SELECT tenant_id, consumer_id, pattern, last_tx_id, last_position, generation, lease_owner,
       lease_expires_at, created_at, updated_at
FROM cowork_event_consumer_checkpoint
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s;

-- name: consumer_acquire
-- Take (or keep) the lease if it is free, ours, or expired; returns the checkpoint.
UPDATE cowork_event_consumer_checkpoint
SET lease_owner = %(owner)s,
    lease_expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s
  AND (lease_owner IS NULL OR lease_owner = %(owner)s OR lease_expires_at < clock_timestamp())
RETURNING last_tx_id, last_position, generation, pattern;

-- name: consumer_heartbeat
-- Extend our lease; no row means we lost it.
UPDATE cowork_event_consumer_checkpoint
SET lease_expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s
  AND lease_owner = %(owner)s;

-- name: consumer_checkpoint
-- Move the checkpoint forward, fenced by lease owner and generation; never backwards.
UPDATE cowork_event_consumer_checkpoint
SET last_tx_id = %(after_tx)s, last_position = %(after_position)s, updated_at = now(),
    lease_expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s
  AND lease_owner = %(owner)s AND generation = %(generation)s
  AND (last_tx_id, last_position) <= (%(after_tx)s::bigint, %(after_position)s::bigint);

-- name: consumer_release
-- Give the lease up (graceful stop) so another process can take over at once.
UPDATE cowork_event_consumer_checkpoint
SET lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND lease_owner = %(owner)s;

-- name: consumer_reset
-- Explicitly move a checkpoint (possibly backwards) and/or change the pattern; bumps the
-- generation so that a running holder notices and reloads.
UPDATE cowork_event_consumer_checkpoint
SET last_tx_id = %(after_tx)s, last_position = %(after_position)s,
    pattern = coalesce(%(pattern)s::text, pattern), generation = generation + 1, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s;

-- name: consumer_list
-- Every consumer of a tenant with its parked count and lag (events after its checkpoint).
SELECT c.consumer_id, c.pattern, c.last_tx_id, c.last_position, c.generation, c.lease_owner,
       c.lease_expires_at, c.created_at, c.updated_at,
       (SELECT count(*) FROM cowork_event_parked p
         WHERE p.tenant_id = c.tenant_id AND p.consumer_id = c.consumer_id
           AND p.status IN ('parked', 'redrive')) AS parked,
       (SELECT count(*) FROM cowork_event_log e
         WHERE e.tenant_id = c.tenant_id
           AND (e.tx_id, e.position) > (c.last_tx_id, c.last_position)) AS lag
FROM cowork_event_consumer_checkpoint c
WHERE c.tenant_id = %(tenant_id)s
ORDER BY c.consumer_id;

-- name: parked_upsert
-- Park an event for a consumer (dead letter) with its error.
INSERT INTO cowork_event_parked
    (tenant_id, consumer_id, position, event_id, attempts, last_error, status, parked_at,
     updated_at)
VALUES (%(tenant_id)s, %(consumer_id)s, %(position)s, %(event_id)s, %(attempts)s,
        %(last_error)s, 'parked', now(), now())
ON CONFLICT (tenant_id, consumer_id, position) DO UPDATE
SET attempts = cowork_event_parked.attempts + excluded.attempts,
    last_error = excluded.last_error, status = 'parked', updated_at = now();

-- name: parked_list
-- Parked (and re-drive pending) events of a tenant, optionally of one consumer.
SELECT p.consumer_id, p.position, p.event_id, p.attempts, p.last_error, p.status, p.parked_at,
       p.updated_at, e.event_type
FROM cowork_event_parked p
LEFT JOIN cowork_event_log e ON e.tenant_id = p.tenant_id AND e.position = p.position
WHERE p.tenant_id = %(tenant_id)s
  AND (%(consumer_id)s::text IS NULL OR p.consumer_id = %(consumer_id)s::text)
  AND p.status IN ('parked', 'redrive')
ORDER BY p.consumer_id, p.position;

-- name: parked_mark_redrive
-- Ask the consumer to deliver parked events again (one position, or all when null).
UPDATE cowork_event_parked SET status = 'redrive', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND status = 'parked'
  AND (%(position)s::bigint IS NULL OR position = %(position)s::bigint);

-- name: parked_due_redrive
-- Positions a consumer was asked to re-drive.
SELECT position FROM cowork_event_parked
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND status = 'redrive'
ORDER BY position
LIMIT %(limit)s;

-- name: parked_resolve
-- A re-driven event was handled.
UPDATE cowork_event_parked SET status = 'resolved', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND position = %(position)s;
