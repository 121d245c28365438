-- 0004_horizon_by_backend: associate a transaction's locks by backend pid, not by virtual
-- transaction id.
--
-- pg_lock_status() reports each lock's virtualtransaction from the holder's current local
-- transaction id, read without synchronisation: while a transaction commits, its locks can be
-- reported under two different virtual transaction ids in one read (the xid lock under
-- "7/173472", the scope lock under "7/0"). 0002 matched the xid lock to the scope lock by
-- virtual transaction id, so a committing tenant writer could look foreign, and a reader whose
-- snapshot still saw it in progress passed its events (found by a stress test; a durable
-- consumer missed one event in about a dozen load runs). A backend runs one transaction at a
-- time and releases a transaction's locks before it starts the next, so within one read of
-- the lock table the pid ties them together; a lock without a pid (a prepared transaction)
-- makes no xid foreign. Only a backend's own xid locks count (ExclusiveLock): the ShareLock
-- another backend is granted for an instant on an ended transaction's xid (after waiting for
-- it) says nothing about that transaction's scope.
CREATE OR REPLACE FUNCTION cowork_event_horizon(p_tenant text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    snap pg_snapshot := pg_current_snapshot();
    top bigint := pg_snapshot_xmax(snap)::text::bigint;
    lowest bigint;
BEGIN
    IF pg_snapshot_xmin(snap)::text::bigint = top THEN
        RETURN top;  -- nothing in progress
    END IF;
    WITH locks AS MATERIALIZED (
        SELECT l.locktype, l.database, l.classid, l.objid, l.objsubid, l.transactionid, l.pid
        FROM pg_lock_status() AS l
        WHERE l.granted AND (l.locktype = 'advisory'
                             OR (l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock'))
    ), scoped AS (
        SELECT l.pid FROM locks AS l
        WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = 1668249451::oid
          AND l.objid IN (cowork_scope_lock_key(p_tenant), cowork_scope_lock_key('*'))
          AND l.database = (SELECT d.oid FROM pg_database AS d
                            WHERE d.datname = current_database())
    ), foreign_xids AS (
        SELECT l.transactionid::text::bigint AS xid FROM locks AS l
        WHERE l.locktype = 'transactionid' AND l.pid IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM scoped AS s WHERE s.pid = l.pid OR s.pid IS NULL)
    )
    SELECT min(x.xid) INTO lowest
    FROM (SELECT xip::text::bigint AS xid FROM pg_snapshot_xip(snap) AS xip) AS x
    WHERE NOT EXISTS (SELECT 1 FROM foreign_xids AS f WHERE f.xid = (x.xid & 4294967295));
    RETURN least(top, lowest);
END
$fn$;

CREATE OR REPLACE FUNCTION cowork_horizon_holders(p_tenant text)
RETURNS TABLE (pid integer, xid bigint, scope text, xact_start timestamptz,
               age_seconds double precision, application_name text, state text)
LANGUAGE sql STABLE AS $fn$
    WITH locks AS MATERIALIZED (
        SELECT l.locktype, l.database, l.classid, l.objid, l.objsubid, l.transactionid, l.pid
        FROM pg_lock_status() AS l
        WHERE l.granted AND l.pid IS NOT NULL
          AND (l.locktype = 'advisory'
               OR (l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock'))
    ), scoped AS (
        SELECT l.pid,
               min(CASE WHEN l.objid = cowork_scope_lock_key(p_tenant) THEN p_tenant ELSE '*' END)
                   AS scope
        FROM locks AS l
        WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = 1668249451::oid
          AND l.objid IN (cowork_scope_lock_key(p_tenant), cowork_scope_lock_key('*'))
          AND l.database = (SELECT d.oid FROM pg_database AS d
                            WHERE d.datname = current_database())
        GROUP BY l.pid
    ), holders AS (
        SELECT s.pid, s.scope, min(t.transactionid::text::bigint) AS xid
        FROM scoped AS s
        JOIN locks AS t ON t.locktype = 'transactionid' AND t.pid = s.pid
        GROUP BY s.pid, s.scope
    )
    SELECT h.pid, h.xid, h.scope, a.xact_start,
           extract(epoch FROM clock_timestamp() - a.xact_start)::double precision,
           a.application_name, a.state
    FROM holders AS h
    LEFT JOIN pg_stat_activity AS a ON a.pid = h.pid
    WHERE h.pid IS DISTINCT FROM pg_backend_pid()
    ORDER BY a.xact_start NULLS LAST, h.pid
$fn$;
