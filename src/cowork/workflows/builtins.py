"""The built-in workflows of the seed's runtime (MISSION 4.9), auto-registered per tenant."""

from __future__ import annotations

from cowork.workflows.definition import WaitStep, WorkflowDefinition

__all__ = ["BLACKBOARD_ENTRY_REVIEW_PUBLISH", "BUILTIN_WORKFLOWS", "WORKSPACE_PROVISIONING"]

WORKSPACE_PROVISIONING = WorkflowDefinition(
    workflow_id="workspace-provisioning",
    version=1,
    name="Workspace provisioning",
    description="A new workspace gets its first member and its first artifact.",
    trigger="workspace:created",
    correlation=("workspaceId",),
    steps=(
        WaitStep(name="created", event="workspace:created"),
        WaitStep(name="member-added", event="workspace:member:added"),
        WaitStep(name="artifact-updated", event="workspace:artifact:updated"),
    ),
)

BLACKBOARD_ENTRY_REVIEW_PUBLISH = WorkflowDefinition(
    workflow_id="blackboard-entry-review-publish",
    version=1,
    name="Blackboard entry review and publish",
    description="A new entry is reviewed (feedback) and then revised (updated).",
    trigger="blackboard:entry:created",
    correlation=("workspaceId", "artifactKey"),
    steps=(
        WaitStep(name="created", event="blackboard:entry:created"),
        WaitStep(name="feedback-added", event="feedback:added"),
        WaitStep(name="entry-updated", event="blackboard:entry:updated"),
    ),
)

BUILTIN_WORKFLOWS = (WORKSPACE_PROVISIONING, BLACKBOARD_ENTRY_REVIEW_PUBLISH)
