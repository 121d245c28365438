-- 0003_agent_steps: workflow steps sized for agents.
--
-- cowork_workflow_instance.action names the action an instance waits to run (status running at
-- an action step), so that a worker claims only steps whose action it has registered. NULL means
-- any worker may take the instance (timers, starts, waits), or a row written before this
-- migration: a worker that claims such a row without the handler fills the column in.
--
-- cowork_workflow_definition.registered_tx_id/registered_position hold the log cursor of the
-- version's workflow:definition:registered event: a trigger starts the latest version
-- registered before it in log order. (0, 0) for versions registered before this migration and
-- for built-ins, which every engine registers when it starts.
ALTER TABLE cowork_workflow_instance ADD COLUMN action text;
ALTER TABLE cowork_workflow_definition
    ADD COLUMN registered_tx_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN registered_position bigint NOT NULL DEFAULT 0;
