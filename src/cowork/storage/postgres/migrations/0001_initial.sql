-- 0001_initial: the nine tables of the seed, plus artifact version history, parked events and
-- the columns later features need (leases, row versions, commit-order transaction ids).
-- Every primary key and unique constraint leads with tenant_id (ready for a tenant-sharded
-- PostgreSQL); every table has row-level security keyed on the per-transaction setting
-- cowork.tenant_id ('*' is the explicit operator/worker scope).

CREATE TABLE cowork_workspace_state (
    tenant_id     text        NOT NULL,
    workspace_id  text        NOT NULL,
    owner_id      text        NOT NULL,
    project_id    text,
    name          text        NOT NULL,
    description   text,
    status        text        NOT NULL
                  CHECK (status IN ('active', 'closed', 'archived', 'deleted')),
    members       jsonb       NOT NULL DEFAULT '[]'::jsonb,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    deleted_at    timestamptz,
    row_version   bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, workspace_id)
);
CREATE INDEX cowork_workspace_state_project_idx
    ON cowork_workspace_state (tenant_id, project_id);

-- Current version of each artifact; every version (tombstones included) is also in
-- cowork_blackboard_entry_version.
CREATE TABLE cowork_blackboard_entry (
    tenant_id     text        NOT NULL,
    workspace_id  text        NOT NULL,
    artifact_key  text        NOT NULL,
    artifact_id   text        NOT NULL,
    owner_id      text        NOT NULL,
    artifact_type text        NOT NULL,
    source        text        NOT NULL,
    payload       jsonb       NOT NULL,
    version       bigint      NOT NULL CHECK (version > 0),
    deleted       boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, workspace_id, artifact_key),
    UNIQUE (tenant_id, artifact_id)
);

CREATE TABLE cowork_blackboard_entry_version (
    tenant_id      text        NOT NULL,
    workspace_id   text        NOT NULL,
    artifact_key   text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    artifact_id    text        NOT NULL,
    artifact_type  text        NOT NULL,
    source         text        NOT NULL,
    payload        jsonb       NOT NULL,
    operation      text        NOT NULL
                   CHECK (operation IN ('create', 'update', 'rollback', 'delete', 'recreate', 'restore')),
    deleted        boolean     NOT NULL DEFAULT false,
    based_on       bigint,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, workspace_id, artifact_key, version)
);

CREATE TABLE cowork_blackboard_feedback (
    tenant_id     text        NOT NULL,
    feedback_id   text        NOT NULL,
    workspace_id  text        NOT NULL,
    artifact_key  text,
    owner_id      text        NOT NULL,
    author_id     text        NOT NULL,
    body          text        NOT NULL,
    severity      text        NOT NULL
                  CHECK (severity IN ('nit', 'minor', 'blocking', 'critical')),
    status        text        NOT NULL
                  CHECK (status IN ('pending', 'in_progress', 'addressed', 'wontfix')),
    tags          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    comments      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    row_version   bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, feedback_id)
);
CREATE INDEX cowork_blackboard_feedback_target_idx
    ON cowork_blackboard_feedback (tenant_id, workspace_id, artifact_key);

CREATE TABLE cowork_workspace_snapshot (
    tenant_id     text        NOT NULL,
    snapshot_id   text        NOT NULL,
    workspace_id  text        NOT NULL,
    owner_id      text        NOT NULL,
    label         text,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    content       jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, snapshot_id)
);
CREATE INDEX cowork_workspace_snapshot_workspace_idx
    ON cowork_workspace_snapshot (tenant_id, workspace_id, created_at);

-- Append-only event log. position is a global identity; tx_id is the 64-bit id of the writing
-- transaction. Readers order by (tx_id, position) and read only rows whose tx_id is below the
-- xmin of their snapshot: every such transaction has ended, so no event can later commit
-- before a position a reader has seen (gap-free, commit-ordered, writers never serialised).
CREATE TABLE cowork_event_log (
    tenant_id      text        NOT NULL,
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    tx_id          bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    aggregate_type text,
    aggregate_id   text,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    correlation_id text,
    causation_id   text,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, position),
    UNIQUE (tenant_id, event_id)
);
CREATE INDEX cowork_event_log_commit_order_idx
    ON cowork_event_log (tenant_id, tx_id, position);
CREATE INDEX cowork_event_log_aggregate_idx
    ON cowork_event_log (tenant_id, aggregate_type, aggregate_id, position)
    WHERE aggregate_id IS NOT NULL;

-- One row per durable consumer and tenant: its pattern (part of its identity), its
-- checkpoint as the (tx_id, position) pair of the last handled-or-parked event, and the lease
-- that keeps one runner active across processes.
CREATE TABLE cowork_event_consumer_checkpoint (
    tenant_id        text        NOT NULL,
    consumer_id      text        NOT NULL,
    pattern          text        NOT NULL,
    last_tx_id       bigint      NOT NULL DEFAULT 0,
    last_position    bigint      NOT NULL DEFAULT 0,
    generation       bigint      NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, consumer_id)
);

-- Dead letters: events a consumer failed to handle after its retries.
CREATE TABLE cowork_event_parked (
    tenant_id     text        NOT NULL,
    consumer_id   text        NOT NULL,
    position      bigint      NOT NULL,
    event_id      text        NOT NULL,
    attempts      integer     NOT NULL,
    last_error    text        NOT NULL,
    status        text        NOT NULL DEFAULT 'parked'
                  CHECK (status IN ('parked', 'redrive', 'resolved')),
    parked_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, consumer_id, position)
);
CREATE INDEX cowork_event_parked_status_idx
    ON cowork_event_parked (tenant_id, consumer_id, status);

-- Workflow definitions are immutable per (workflow_id, version); checksum guards re-registration.
CREATE TABLE cowork_workflow_definition (
    tenant_id       text        NOT NULL,
    workflow_id     text        NOT NULL,
    version         integer     NOT NULL CHECK (version > 0),
    name            text        NOT NULL,
    trigger_pattern text,
    definition      jsonb       NOT NULL,
    checksum        text        NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, version)
);

CREATE TABLE cowork_workflow_instance (
    tenant_id        text        NOT NULL,
    instance_id      text        NOT NULL,
    workflow_id      text        NOT NULL,
    workflow_version integer     NOT NULL,
    owner_id         text        NOT NULL,
    status           text        NOT NULL
                     CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
    correlation_key  text,
    start_key        text        NOT NULL,
    step_index       integer     NOT NULL DEFAULT 0,
    state            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    wake_at          timestamptz,
    event_tx_id      bigint      NOT NULL DEFAULT 0,
    event_position   bigint      NOT NULL DEFAULT 0,
    row_version      bigint      NOT NULL DEFAULT 1,
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    PRIMARY KEY (tenant_id, instance_id),
    UNIQUE (tenant_id, workflow_id, start_key)
);
CREATE INDEX cowork_workflow_instance_correlation_idx
    ON cowork_workflow_instance (tenant_id, workflow_id, correlation_key)
    WHERE status IN ('running', 'waiting');
CREATE INDEX cowork_workflow_instance_due_idx
    ON cowork_workflow_instance (tenant_id, wake_at)
    WHERE status IN ('running', 'waiting');

CREATE TABLE cowork_workflow_history (
    tenant_id    text        NOT NULL,
    instance_id  text        NOT NULL,
    seq          integer     NOT NULL,
    kind         text        NOT NULL,
    step_index   integer,
    step_name    text,
    from_status  text,
    to_status    text        NOT NULL,
    event_id     text,
    actor        text,
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, seq)
);

-- Row-level security: a transaction sees only the tenant named by cowork.tenant_id; '*' is the
-- explicit cross-tenant scope of operator and worker code. FORCE applies it to the table owner
-- too (superusers and BYPASSRLS roles are exempt by PostgreSQL's design; production connects
-- as an ordinary role).
DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'cowork_workspace_state', 'cowork_blackboard_entry', 'cowork_blackboard_entry_version',
        'cowork_blackboard_feedback', 'cowork_workspace_snapshot', 'cowork_event_log',
        'cowork_event_consumer_checkpoint', 'cowork_event_parked', 'cowork_workflow_definition',
        'cowork_workflow_instance', 'cowork_workflow_history'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY cowork_tenant_isolation ON %I '
            'USING (tenant_id = current_setting(''cowork.tenant_id'', true) '
            '       OR current_setting(''cowork.tenant_id'', true) = ''*'') '
            'WITH CHECK (tenant_id = current_setting(''cowork.tenant_id'', true) '
            '       OR current_setting(''cowork.tenant_id'', true) = ''*'')',
            t);
    END LOOP;
END
$rls$;

-- Isolation must hold even when the application connects as a role that bypasses row-level
-- security (a superuser in development, a BYPASSRLS role by mistake): tenant-scoped
-- transactions then switch to the unprivileged role cowork_tenant for their duration.
DO $role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cowork_tenant') THEN
        CREATE ROLE cowork_tenant NOLOGIN NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database of this cluster created it at the same moment
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'cowork: cannot create role cowork_tenant; connect as an ordinary role so '
                     'that row-level security applies';
END
$role$;

DO $grant$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cowork_tenant') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO cowork_tenant', current_schema());
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON cowork_workspace_state, '
                'cowork_blackboard_entry, cowork_blackboard_entry_version, '
                'cowork_blackboard_feedback, cowork_workspace_snapshot, cowork_event_log, '
                'cowork_event_consumer_checkpoint, cowork_event_parked, '
                'cowork_workflow_definition, cowork_workflow_instance, cowork_workflow_history '
                'TO cowork_tenant';
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO cowork_tenant',
                       pg_get_serial_sequence('cowork_event_log', 'position'));
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                       'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO cowork_tenant',
                       current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                       'GRANT USAGE ON SEQUENCES TO cowork_tenant', current_schema());
    END IF;
END
$grant$;

-- Opens the tenant scope of a transaction: sets cowork.tenant_id (read by the policies) and,
-- when the session's role would bypass row-level security, switches to cowork_tenant.
-- '*' is the explicit cross-tenant scope of operator and worker code.
CREATE FUNCTION cowork_enter_tenant(p_tenant text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('cowork.tenant_id', p_tenant, true);
    IF p_tenant <> '*'
       AND EXISTS (SELECT 1 FROM pg_roles
                   WHERE rolname = current_user AND (rolsuper OR rolbypassrls))
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cowork_tenant')
       AND pg_has_role('cowork_tenant', 'MEMBER') THEN
        PERFORM set_config('role', 'cowork_tenant', true);
    END IF;
END
$fn$;
