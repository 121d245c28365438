-- Shared queries: health, migration ledger. Written once for every dialect, in psycopg's
-- %(name)s style (cowork.storage.queries converts it for sqlite3's :name style).

-- name: health_check
-- Cheapest round trip to the database.
SELECT 1 AS ok;

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
