-- Named queries of the SQLite adapter. Parameters use sqlite3's :name style.

-- name: health_check
-- Cheapest round trip to the database.
SELECT 1 AS ok;

-- name: ledger_create
-- The migration ledger (the one table without tenant_id).
CREATE TABLE IF NOT EXISTS cowork_migrations (
    name          TEXT PRIMARY KEY,
    checksum      TEXT NOT NULL,
    applied_at    TIMESTAMPTEXT NOT NULL
                  DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    execution_ms  REAL
);

-- name: ledger_exists
-- Whether the ledger table exists yet.
SELECT count(*) > 0 AS present FROM sqlite_master WHERE type = 'table' AND name = 'cowork_migrations';

-- name: ledger_select
-- Every applied migration in name order.
SELECT name, checksum, applied_at FROM cowork_migrations ORDER BY name;

-- name: ledger_has
-- Whether one migration is already recorded.
SELECT 1 AS present FROM cowork_migrations WHERE name = :name;

-- name: ledger_insert
-- Record one applied migration.
INSERT INTO cowork_migrations (name, checksum, execution_ms)
VALUES (:name, :checksum, :execution_ms);

-- name: schema_tables
-- The cowork tables present in the database.
SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cowork%' ORDER BY name;

-- name: snapshot_insert
-- Store a workspace snapshot.
INSERT INTO cowork_workspace_snapshot
    (tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content)
VALUES (:tenant_id, :snapshot_id, :workspace_id, :owner_id, :label, :created_by, :now, :content);

-- name: snapshot_get
-- One snapshot by id.
SELECT tenant_id, snapshot_id, workspace_id, owner_id, label, created_by, created_at, content
FROM cowork_workspace_snapshot
WHERE tenant_id = :tenant_id AND snapshot_id = :snapshot_id;

-- name: snapshot_count_unfiltered
-- Counts snapshots with NO tenant filter (SQLite has no row-level security).
SELECT count(*) AS n FROM cowork_workspace_snapshot;

-- name: event_append
-- Append one event; an existing event_id inserts nothing and returns no row. One writer at a
-- time, so MAX(position) + 1 is safe and position order is commit order.
INSERT INTO cowork_event_log
    (tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
     metadata, correlation_id, causation_id, occurred_at, recorded_at)
VALUES (:tenant_id, (SELECT coalesce(max(position), 0) + 1 FROM cowork_event_log), 0,
        :event_id, :event_type, :aggregate_type, :aggregate_id, :payload, :metadata,
        :correlation_id, :causation_id, :occurred_at, :now)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING position, tx_id, recorded_at;

-- name: event_append_batch
-- Append a batch given as one JSON array, in array order; existing event_ids are skipped.
INSERT INTO cowork_event_log
    (tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
     metadata, correlation_id, causation_id, occurred_at, recorded_at)
SELECT :tenant_id,
       (SELECT coalesce(max(position), 0) FROM cowork_event_log) + b.key + 1, 0,
       json_extract(b.value, '$.event_id'), json_extract(b.value, '$.event_type'),
       json_extract(b.value, '$.aggregate_type'), json_extract(b.value, '$.aggregate_id'),
       json(json_extract(b.value, '$.payload')), json(json_extract(b.value, '$.metadata')),
       json_extract(b.value, '$.correlation_id'), json_extract(b.value, '$.causation_id'),
       json_extract(b.value, '$.occurred_at'), :now
FROM json_each(:batch) AS b
WHERE true
ORDER BY b.key
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING event_id, position, tx_id, recorded_at;

-- name: event_get_by_ids
-- Stored events by event id (the ids come as one JSON array).
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = :tenant_id AND event_id IN (SELECT value FROM json_each(:event_ids));

-- name: event_read_after
-- Commit-ordered page: tx_id is always 0 here and position order is commit order under
-- SQLite's single writer, so the primary key serves the read.
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = :tenant_id AND position > :after_position
ORDER BY position
LIMIT :limit;

-- name: event_cursor_of_position
-- The commit-order cursor of one stored event.
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = :tenant_id AND position = :position;

-- name: event_head
-- The cursor of the last event of a tenant.
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = :tenant_id
ORDER BY position DESC
LIMIT 1;

-- name: event_get_by_position
-- One stored event by position.
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = :tenant_id AND position = :position;

-- name: event_count
-- Number of events of a tenant.
SELECT count(*) AS n FROM cowork_event_log WHERE tenant_id = :tenant_id;

-- name: consumer_register
-- Create a durable consumer's checkpoint if it does not exist yet.
INSERT INTO cowork_event_consumer_checkpoint
    (tenant_id, consumer_id, pattern, last_tx_id, last_position, created_at, updated_at)
VALUES (:tenant_id, :consumer_id, :pattern, :after_tx, :after_position, :now, :now)
ON CONFLICT (tenant_id, consumer_id) DO NOTHING;

-- name: consumer_get
-- One consumer's checkpoint row.
SELECT tenant_id, consumer_id, pattern, last_tx_id, last_position, generation, lease_owner,
       lease_expires_at, created_at, updated_at
FROM cowork_event_consumer_checkpoint
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id;

-- name: consumer_acquire
-- Take (or keep) the lease if it is free, ours, or expired; returns the checkpoint.
UPDATE cowork_event_consumer_checkpoint
SET lease_owner = :owner, lease_expires_at = :expires
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id
  AND (lease_owner IS NULL OR lease_owner = :owner OR lease_expires_at < :now)
RETURNING last_tx_id, last_position, generation, pattern;

-- name: consumer_heartbeat
-- Extend our lease; no row means we lost it.
UPDATE cowork_event_consumer_checkpoint
SET lease_expires_at = :expires
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id AND lease_owner = :owner;

-- name: consumer_checkpoint
-- Move the checkpoint forward, fenced by lease owner and generation; never backwards.
UPDATE cowork_event_consumer_checkpoint
SET last_tx_id = :after_tx, last_position = :after_position, updated_at = :now,
    lease_expires_at = :expires
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id
  AND lease_owner = :owner AND generation = :generation
  AND (last_tx_id, last_position) <= (:after_tx, :after_position);

-- name: consumer_release
-- Give the lease up (graceful stop) so another process can take over at once.
UPDATE cowork_event_consumer_checkpoint
SET lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id AND lease_owner = :owner;

-- name: consumer_reset
-- Explicitly move a checkpoint and/or change the pattern; bumps the generation.
UPDATE cowork_event_consumer_checkpoint
SET last_tx_id = :after_tx, last_position = :after_position,
    pattern = coalesce(:pattern, pattern), generation = generation + 1, updated_at = :now
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id;

-- name: consumer_list
-- Every consumer of a tenant with its parked count and lag (events after its checkpoint).
SELECT c.consumer_id, c.pattern, c.last_tx_id, c.last_position, c.generation, c.lease_owner,
       c.lease_expires_at, c.created_at, c.updated_at,
       (SELECT count(*) FROM cowork_event_parked p
         WHERE p.tenant_id = c.tenant_id AND p.consumer_id = c.consumer_id
           AND p.status IN ('parked', 'redrive')) AS parked,
       (SELECT count(*) FROM cowork_event_log e
         WHERE e.tenant_id = c.tenant_id AND e.position > c.last_position) AS lag
FROM cowork_event_consumer_checkpoint c
WHERE c.tenant_id = :tenant_id
ORDER BY c.consumer_id;

-- name: parked_upsert
-- Park an event for a consumer (dead letter) with its error.
INSERT INTO cowork_event_parked
    (tenant_id, consumer_id, position, event_id, attempts, last_error, status, parked_at,
     updated_at)
VALUES (:tenant_id, :consumer_id, :position, :event_id, :attempts, :last_error, 'parked',
        :now, :now)
ON CONFLICT (tenant_id, consumer_id, position) DO UPDATE
SET attempts = cowork_event_parked.attempts + excluded.attempts,
    last_error = excluded.last_error, status = 'parked', updated_at = excluded.updated_at;

-- name: parked_list
-- Parked (and re-drive pending) events of a tenant, optionally of one consumer.
SELECT p.consumer_id, p.position, p.event_id, p.attempts, p.last_error, p.status, p.parked_at,
       p.updated_at, e.event_type
FROM cowork_event_parked p
LEFT JOIN cowork_event_log e ON e.tenant_id = p.tenant_id AND e.position = p.position
WHERE p.tenant_id = :tenant_id
  AND (:consumer_id IS NULL OR p.consumer_id = :consumer_id)
  AND p.status IN ('parked', 'redrive')
ORDER BY p.consumer_id, p.position;

-- name: parked_mark_redrive
-- Ask the consumer to deliver parked events again (one position, or all when null).
UPDATE cowork_event_parked SET status = 'redrive', updated_at = :now
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id AND status = 'parked'
  AND (:position IS NULL OR position = :position);

-- name: parked_due_redrive
-- Positions a consumer was asked to re-drive.
SELECT position FROM cowork_event_parked
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id AND status = 'redrive'
ORDER BY position
LIMIT :limit;

-- name: parked_resolve
-- A re-driven event was handled.
UPDATE cowork_event_parked SET status = 'resolved', updated_at = :now
WHERE tenant_id = :tenant_id AND consumer_id = :consumer_id AND position = :position;
