-- Postgres queries: durable consumers and parked events. Parameters use psycopg's %(name)s style.
-- What reads the same in both dialects is in storage/shared_queries/ (loaded with these).

-- name: consumer_register
-- Create a durable consumer's checkpoint if it does not exist yet.
INSERT INTO cowork_event_consumer_checkpoint
    (tenant_id, consumer_id, pattern, last_tx_id, last_position, created_at, updated_at)
VALUES (%(tenant_id)s, %(consumer_id)s, %(pattern)s, %(after_tx)s, %(after_position)s,
        now(), now())
ON CONFLICT (tenant_id, consumer_id) DO NOTHING;

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

-- name: parked_resolve
-- A re-driven event was handled.
UPDATE cowork_event_parked SET status = 'resolved', updated_at = now()
WHERE tenant_id = %(tenant_id)s AND consumer_id = %(consumer_id)s AND position = %(position)s;
