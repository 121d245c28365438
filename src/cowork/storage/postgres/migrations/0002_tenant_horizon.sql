-- 0002_tenant_horizon: a commit-order read horizon per tenant.
--
-- Readers used to wait for pg_snapshot_xmin(), the oldest transaction holding an xid anywhere
-- on the server: a transaction in another database, another tenant's, or any batch job held
-- back every tenant's consumers. Now every tenant-scoped transaction announces its scope with
-- a shared, transaction-level advisory lock taken when it enters the scope (its first
-- statement, before it can hold an xid), and a reader of tenant T waits only for in-progress
-- transactions that hold T's lock (or the cross-tenant '*' lock), or whose scope it cannot
-- tell. See docs/architecture.md ("Commit-order horizon") for the argument.

-- The advisory lock key of a scope: (1668249451 = 'cowk', hashtext(scope)). Two tenants whose
-- names hash alike only wait for each other's writers; they never read each other's rows.
CREATE FUNCTION cowork_scope_lock_key(p_scope text) RETURNS oid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT (hashtext(p_scope)::bigint & 4294967295)::oid
$fn$;

-- Enters the tenant scope of a transaction: sets cowork.tenant_id (read by the policies) and,
-- when the session's role would bypass row-level security, switches to cowork_tenant. With
-- p_appends the transaction may append events: it says so to readers with a shared advisory
-- lock on its scope and sets cowork.appends, which the event log's insert policy requires.
-- That must happen before the transaction writes anything: a transaction that holds an xid
-- before it announces its scope could append events below a horizon a reader has passed.
-- Without p_appends (reads, checkpoints, leases) it takes no lock and holds no reader back.
CREATE FUNCTION cowork_enter_tenant(p_tenant text, p_appends boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cowork_enter_tenant(%) must run before the transaction writes', p_tenant
            USING ERRCODE = '25001',
                  HINT = 'call it as the first statement of the transaction';
    END IF;
    PERFORM set_config('cowork.tenant_id', p_tenant, true);
    IF p_appends THEN
        PERFORM set_config('cowork.appends', 'on', true);
        PERFORM pg_advisory_xact_lock_shared(1668249451, hashtext(p_tenant));
    ELSE
        PERFORM set_config('cowork.appends', 'off', true);
    END IF;
    IF p_tenant <> '*'
       AND EXISTS (SELECT 1 FROM pg_roles
                   WHERE rolname = current_user AND (rolsuper OR rolbypassrls))
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cowork_tenant')
       AND pg_has_role('cowork_tenant', 'MEMBER') THEN
        PERFORM set_config('role', 'cowork_tenant', true);
    END IF;
END
$fn$;

-- The one-argument form of 0001: a scope that may append events.
CREATE OR REPLACE FUNCTION cowork_enter_tenant(p_tenant text) RETURNS void
LANGUAGE sql AS $fn$
    SELECT cowork_enter_tenant(p_tenant, true)
$fn$;

-- Only a transaction that announced itself (cowork_enter_tenant with p_appends, or the
-- adapter's '*' scope) may append events; any other would be invisible to readers' horizons.
CREATE POLICY cowork_event_append ON cowork_event_log AS RESTRICTIVE FOR INSERT
    WITH CHECK (current_setting('cowork.appends', true) = 'on');

-- The commit-order horizon of a tenant in the calling statement's snapshot: every event of
-- p_tenant with tx_id below it is visible in that snapshot or will never exist.
--
-- It is the snapshot's xmax, lowered to every transaction in progress (the snapshot's xip)
-- unless that transaction is provably foreign: at the moment pg_locks is read (after the
-- snapshot was taken), it still holds its xid and holds neither p_tenant's scope lock nor
-- the '*' scope lock in this database. A scope lock is taken before the transaction's xid
-- exists and kept until it ends, so a transaction seen holding its xid without p_tenant's
-- lock never writes p_tenant's rows (row-level security allows only its own scope). A
-- transaction that ended between the snapshot and the lock read is not provably foreign and
-- so still holds the horizon back, for this one read. pg_locks is read once, so every fact
-- comes from one consistent view of the lock table.
CREATE FUNCTION cowork_event_horizon(p_tenant text) RETURNS bigint
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
        SELECT l.locktype, l.database, l.classid, l.objid, l.objsubid, l.transactionid,
               l.virtualtransaction
        FROM pg_lock_status() AS l
        WHERE l.granted AND l.locktype IN ('advisory', 'transactionid')
    ), scoped AS (
        SELECT l.virtualtransaction FROM locks AS l
        WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = 1668249451::oid
          AND l.objid IN (cowork_scope_lock_key(p_tenant), cowork_scope_lock_key('*'))
          AND l.database = (SELECT d.oid FROM pg_database AS d
                            WHERE d.datname = current_database())
    ), foreign_xids AS (
        SELECT l.transactionid::text::bigint AS xid FROM locks AS l
        WHERE l.locktype = 'transactionid'
          AND l.virtualtransaction NOT IN (SELECT s.virtualtransaction FROM scoped AS s)
    )
    SELECT min(x.xid) INTO lowest
    FROM (SELECT xip::text::bigint AS xid FROM pg_snapshot_xip(snap) AS xip) AS x
    WHERE (x.xid & 4294967295) NOT IN (SELECT f.xid FROM foreign_xids AS f);
    RETURN least(top, lowest);
END
$fn$;

-- The transactions that hold p_tenant's horizon back now: in progress, holding an xid, and
-- in p_tenant's scope (or the '*' scope), oldest first. For `cowork status` and rt.health().
CREATE FUNCTION cowork_horizon_holders(p_tenant text)
RETURNS TABLE (pid integer, xid bigint, scope text, xact_start timestamptz,
               age_seconds double precision, application_name text, state text)
LANGUAGE sql STABLE AS $fn$
    WITH locks AS MATERIALIZED (
        SELECT l.locktype, l.database, l.classid, l.objid, l.objsubid, l.transactionid,
               l.virtualtransaction, l.pid
        FROM pg_lock_status() AS l
        WHERE l.granted AND l.locktype IN ('advisory', 'transactionid')
    ), scoped AS (
        SELECT l.virtualtransaction, l.pid,
               CASE WHEN l.objid = cowork_scope_lock_key(p_tenant) THEN p_tenant ELSE '*' END
                   AS scope
        FROM locks AS l
        WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = 1668249451::oid
          AND l.objid IN (cowork_scope_lock_key(p_tenant), cowork_scope_lock_key('*'))
          AND l.database = (SELECT d.oid FROM pg_database AS d
                            WHERE d.datname = current_database())
    ), holders AS (
        SELECT DISTINCT ON (s.virtualtransaction) s.pid, s.scope,
               min(t.transactionid::text::bigint) OVER (PARTITION BY s.virtualtransaction)
                   AS xid
        FROM scoped AS s
        JOIN locks AS t ON t.locktype = 'transactionid'
                       AND t.virtualtransaction = s.virtualtransaction
    )
    SELECT h.pid, h.xid, h.scope, a.xact_start,
           extract(epoch FROM clock_timestamp() - a.xact_start)::double precision,
           a.application_name, a.state
    FROM holders AS h
    LEFT JOIN pg_stat_activity AS a ON a.pid = h.pid
    WHERE h.pid IS DISTINCT FROM pg_backend_pid()
    ORDER BY a.xact_start NULLS LAST, h.pid
$fn$;
