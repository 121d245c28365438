-- Shared queries: durable consumers and parked events. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- name: consumer_get
-- One consumer's checkpoint row.
SELECT tenant_id, consumer_id, pattern, last_tx_id, last_position, generation, lease_owner,
       lease_expires_at, created_at, updated_at
FROM cowork_event_consumer_checkpoint
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s;

-- name: consumer_release
-- Give the lease up (graceful stop) so another process can take over at once.
UPDATE cowork_event_consumer_checkpoint
SET lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND lease_owner = %(owner)s;

-- name: parked_due_redrive
-- Positions a consumer was asked to re-drive.
SELECT position FROM cowork_event_parked
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND status = 'redrive'
ORDER BY position
LIMIT %(limit)s;
