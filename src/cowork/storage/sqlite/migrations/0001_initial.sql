-- 0001_initial: the SQLite twin of postgres/migrations/0001_initial.sql.
-- Column types JSONTEXT, TIMESTAMPTEXT and BOOLINT carry the adapter's converters (JSON
-- documents, UTC timestamps as fixed-width ISO-8601 text that sorts in time order, booleans).
-- SQLite has one writer at a time, so position order is commit order and tx_id stays 0.

CREATE TABLE cowork_workspace_state (
    tenant_id     TEXT          NOT NULL,
    workspace_id  TEXT          NOT NULL,
    owner_id      TEXT          NOT NULL,
    project_id    TEXT,
    name          TEXT          NOT NULL,
    description   TEXT,
    status        TEXT          NOT NULL
                  CHECK (status IN ('active', 'closed', 'archived', 'deleted')),
    members       JSONTEXT      NOT NULL DEFAULT '[]',
    metadata      JSONTEXT      NOT NULL DEFAULT '{}',
    created_by    TEXT          NOT NULL,
    created_at    TIMESTAMPTEXT NOT NULL,
    updated_at    TIMESTAMPTEXT NOT NULL,
    closed_at     TIMESTAMPTEXT,
    deleted_at    TIMESTAMPTEXT,
    row_version   INTEGER       NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, workspace_id)
) WITHOUT ROWID;
CREATE INDEX cowork_workspace_state_project_idx
    ON cowork_workspace_state (tenant_id, project_id);

CREATE TABLE cowork_blackboard_entry (
    tenant_id     TEXT          NOT NULL,
    workspace_id  TEXT          NOT NULL,
    artifact_key  TEXT          NOT NULL,
    artifact_id   TEXT          NOT NULL,
    owner_id      TEXT          NOT NULL,
    artifact_type TEXT          NOT NULL,
    source        TEXT          NOT NULL,
    payload       JSONTEXT      NOT NULL,
    version       INTEGER       NOT NULL CHECK (version > 0),
    deleted       BOOLINT       NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTEXT NOT NULL,
    updated_at    TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, workspace_id, artifact_key),
    UNIQUE (tenant_id, artifact_id)
) WITHOUT ROWID;

CREATE TABLE cowork_blackboard_entry_version (
    tenant_id      TEXT          NOT NULL,
    workspace_id   TEXT          NOT NULL,
    artifact_key   TEXT          NOT NULL,
    version        INTEGER       NOT NULL CHECK (version > 0),
    artifact_id    TEXT          NOT NULL,
    artifact_type  TEXT          NOT NULL,
    source         TEXT          NOT NULL,
    payload        JSONTEXT      NOT NULL,
    operation      TEXT          NOT NULL
                   CHECK (operation IN ('create', 'update', 'rollback', 'delete', 'recreate', 'restore')),
    deleted        BOOLINT       NOT NULL DEFAULT 0,
    based_on       INTEGER,
    created_at     TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, workspace_id, artifact_key, version)
) WITHOUT ROWID;

CREATE TABLE cowork_blackboard_feedback (
    tenant_id     TEXT          NOT NULL,
    feedback_id   TEXT          NOT NULL,
    workspace_id  TEXT          NOT NULL,
    artifact_key  TEXT,
    owner_id      TEXT          NOT NULL,
    author_id     TEXT          NOT NULL,
    body          TEXT          NOT NULL,
    severity      TEXT          NOT NULL
                  CHECK (severity IN ('nit', 'minor', 'blocking', 'critical')),
    status        TEXT          NOT NULL
                  CHECK (status IN ('pending', 'in_progress', 'addressed', 'wontfix')),
    tags          JSONTEXT      NOT NULL DEFAULT '[]',
    comments      JSONTEXT      NOT NULL DEFAULT '[]',
    metadata      JSONTEXT      NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTEXT NOT NULL,
    updated_at    TIMESTAMPTEXT NOT NULL,
    row_version   INTEGER       NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, feedback_id)
) WITHOUT ROWID;
CREATE INDEX cowork_blackboard_feedback_target_idx
    ON cowork_blackboard_feedback (tenant_id, workspace_id, artifact_key);

CREATE TABLE cowork_workspace_snapshot (
    tenant_id     TEXT          NOT NULL,
    snapshot_id   TEXT          NOT NULL,
    workspace_id  TEXT          NOT NULL,
    owner_id      TEXT          NOT NULL,
    label         TEXT,
    created_by    TEXT          NOT NULL,
    created_at    TIMESTAMPTEXT NOT NULL,
    content       JSONTEXT      NOT NULL,
    PRIMARY KEY (tenant_id, snapshot_id)
) WITHOUT ROWID;
CREATE INDEX cowork_workspace_snapshot_workspace_idx
    ON cowork_workspace_snapshot (tenant_id, workspace_id, created_at);

CREATE TABLE cowork_event_log (
    tenant_id      TEXT          NOT NULL,
    position       INTEGER       NOT NULL,
    tx_id          INTEGER       NOT NULL DEFAULT 0,
    event_id       TEXT          NOT NULL,
    event_type     TEXT          NOT NULL,
    aggregate_type TEXT,
    aggregate_id   TEXT,
    payload        JSONTEXT      NOT NULL,
    metadata       JSONTEXT      NOT NULL DEFAULT '{}',
    correlation_id TEXT,
    causation_id   TEXT,
    occurred_at    TIMESTAMPTEXT NOT NULL,
    recorded_at    TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, position),
    UNIQUE (tenant_id, event_id)
);
-- Global position allocation (MAX + 1 under SQLite's single writer) reads this index.
CREATE INDEX cowork_event_log_position_idx ON cowork_event_log (position);
CREATE INDEX cowork_event_log_aggregate_idx
    ON cowork_event_log (tenant_id, aggregate_type, aggregate_id, position)
    WHERE aggregate_id IS NOT NULL;

CREATE TABLE cowork_event_consumer_checkpoint (
    tenant_id        TEXT          NOT NULL,
    consumer_id      TEXT          NOT NULL,
    pattern          TEXT          NOT NULL,
    last_tx_id       INTEGER       NOT NULL DEFAULT 0,
    last_position    INTEGER       NOT NULL DEFAULT 0,
    generation       INTEGER       NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTEXT,
    created_at       TIMESTAMPTEXT NOT NULL,
    updated_at       TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, consumer_id)
) WITHOUT ROWID;

CREATE TABLE cowork_event_parked (
    tenant_id     TEXT          NOT NULL,
    consumer_id   TEXT          NOT NULL,
    position      INTEGER       NOT NULL,
    event_id      TEXT          NOT NULL,
    attempts      INTEGER       NOT NULL,
    last_error    TEXT          NOT NULL,
    status        TEXT          NOT NULL DEFAULT 'parked'
                  CHECK (status IN ('parked', 'redrive', 'resolved')),
    parked_at     TIMESTAMPTEXT NOT NULL,
    updated_at    TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, consumer_id, position)
) WITHOUT ROWID;
CREATE INDEX cowork_event_parked_status_idx
    ON cowork_event_parked (tenant_id, consumer_id, status);

CREATE TABLE cowork_workflow_definition (
    tenant_id       TEXT          NOT NULL,
    workflow_id     TEXT          NOT NULL,
    version         INTEGER       NOT NULL CHECK (version > 0),
    name            TEXT          NOT NULL,
    trigger_pattern TEXT,
    definition      JSONTEXT      NOT NULL,
    checksum        TEXT          NOT NULL,
    created_at      TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, version)
) WITHOUT ROWID;

CREATE TABLE cowork_workflow_instance (
    tenant_id        TEXT          NOT NULL,
    instance_id      TEXT          NOT NULL,
    workflow_id      TEXT          NOT NULL,
    workflow_version INTEGER       NOT NULL,
    owner_id         TEXT          NOT NULL,
    status           TEXT          NOT NULL
                     CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
    correlation_key  TEXT,
    start_key        TEXT          NOT NULL,
    step_index       INTEGER       NOT NULL DEFAULT 0,
    state            JSONTEXT      NOT NULL DEFAULT '{}',
    attempts         INTEGER       NOT NULL DEFAULT 0,
    last_error       TEXT,
    wake_at          TIMESTAMPTEXT,
    event_tx_id      INTEGER       NOT NULL DEFAULT 0,
    event_position   INTEGER       NOT NULL DEFAULT 0,
    row_version      INTEGER       NOT NULL DEFAULT 1,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTEXT,
    created_at       TIMESTAMPTEXT NOT NULL,
    updated_at       TIMESTAMPTEXT NOT NULL,
    ended_at         TIMESTAMPTEXT,
    PRIMARY KEY (tenant_id, instance_id),
    UNIQUE (tenant_id, workflow_id, start_key)
) WITHOUT ROWID;
CREATE INDEX cowork_workflow_instance_correlation_idx
    ON cowork_workflow_instance (tenant_id, workflow_id, correlation_key)
    WHERE status IN ('running', 'waiting');
CREATE INDEX cowork_workflow_instance_due_idx
    ON cowork_workflow_instance (tenant_id, wake_at)
    WHERE status IN ('running', 'waiting');

CREATE TABLE cowork_workflow_history (
    tenant_id    TEXT          NOT NULL,
    instance_id  TEXT          NOT NULL,
    seq          INTEGER       NOT NULL,
    kind         TEXT          NOT NULL,
    step_index   INTEGER,
    step_name    TEXT,
    from_status  TEXT,
    to_status    TEXT          NOT NULL,
    event_id     TEXT,
    actor        TEXT,
    detail       JSONTEXT      NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, seq)
) WITHOUT ROWID;
