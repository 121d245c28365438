-- 0003_agent_steps: workflow steps sized for agents (see the PostgreSQL twin for the why).
-- cowork_workflow_instance.action: the action a running instance waits to run (routing);
-- cowork_workflow_definition.registered_*: the log cursor of the version's registration event.
ALTER TABLE cowork_workflow_instance ADD COLUMN action text;
ALTER TABLE cowork_workflow_definition ADD COLUMN registered_tx_id integer NOT NULL DEFAULT 0;
ALTER TABLE cowork_workflow_definition ADD COLUMN registered_position integer NOT NULL DEFAULT 0;
