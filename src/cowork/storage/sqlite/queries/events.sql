-- Sqlite queries: the event log. Parameters use sqlite3's :name style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: event_append
-- Append one event; an existing event_id inserts nothing and returns no row. One writer at a
-- time, so MAX(position) + 1 is safe and position order is commit order.
INSERT INTO cowork_event_log
    ({{event_columns}}, position, tx_id, recorded_at)
VALUES (:tenant_id, :event_id, :event_type, :aggregate_type, :aggregate_id, :payload, :metadata,
        :correlation_id, :causation_id, :occurred_at,
        (SELECT coalesce(max(position), 0) + 1 FROM cowork_event_log), 0, :now)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING position, tx_id, recorded_at;

-- name: event_append_batch
-- Append a batch given as one JSON array, in array order; existing event_ids are skipped.
INSERT INTO cowork_event_log
    ({{event_columns}}, position, tx_id, recorded_at)
SELECT :tenant_id,
       json_extract(b.value, '$.event_id'), json_extract(b.value, '$.event_type'),
       json_extract(b.value, '$.aggregate_type'), json_extract(b.value, '$.aggregate_id'),
       json(json_extract(b.value, '$.payload')), json(json_extract(b.value, '$.metadata')),
       json_extract(b.value, '$.correlation_id'), json_extract(b.value, '$.causation_id'),
       json_extract(b.value, '$.occurred_at'),
       (SELECT coalesce(max(position), 0) FROM cowork_event_log) + b.key + 1, 0, :now
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

-- name: event_read_before
-- The newest events before a cursor, newest first (the primary key read backwards; position
-- order is commit order here).
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = :tenant_id AND position < :before_position
ORDER BY position DESC
LIMIT :limit;

-- name: event_head
-- The cursor of the last event of a tenant.
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = :tenant_id
ORDER BY position DESC
LIMIT 1;

-- name: event_append_alone
-- event_append as a statement of its own (the adapter wraps it in BEGIN IMMEDIATE/COMMIT).
INSERT INTO cowork_event_log
    ({{event_columns}}, position, tx_id, recorded_at)
VALUES (:tenant_id, :event_id, :event_type, :aggregate_type, :aggregate_id, :payload, :metadata,
        :correlation_id, :causation_id, :occurred_at,
        (SELECT coalesce(max(position), 0) + 1 FROM cowork_event_log), 0, :now)
ON CONFLICT (tenant_id, event_id) DO NOTHING
RETURNING position, tx_id, recorded_at;

-- name: horizon_holders
-- SQLite has one writer and no read horizon to hold back: never any row.
SELECT 0 AS pid, 0 AS xid, '' AS scope, NULL AS xact_start, 0.0 AS age_seconds,
       NULL AS application_name, NULL AS state
WHERE 0 AND :tenant_id = :tenant_id AND :min_age = :min_age;
