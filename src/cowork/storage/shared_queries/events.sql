-- Shared queries: the event log. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- fragment: event_columns
-- The event log columns an append supplies, in this order (every dialect's event inserts
-- include it as ({{event_columns}}); SQLite adds the position, tx_id and recorded_at it sets).
tenant_id, event_id, event_type, aggregate_type, aggregate_id, payload, metadata,
correlation_id, causation_id, occurred_at

-- name: event_cursor_of_position
-- The commit-order cursor of one stored event.
SELECT tx_id, position FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s AND position = %(position)s;

-- name: event_get_by_position
-- One stored event by position.
SELECT tenant_id, position, tx_id, event_id, event_type, aggregate_type, aggregate_id, payload,
       metadata, correlation_id, causation_id, occurred_at, recorded_at
FROM cowork_event_log
WHERE tenant_id = %(tenant_id)s AND position = %(position)s;

-- name: event_count
-- Number of events of a tenant.
SELECT count(*) AS n FROM cowork_event_log WHERE tenant_id = %(tenant_id)s;
