"""The built-in workflows, auto-registered per tenant.

Version 2 of each gives its waits a timeout (BUILTIN_WAIT_TIMEOUT_SECONDS, seven days): an
instance whose workspace never gets its member, artifact, feedback or revision ends as
``failed`` (history kind ``timed_out``) instead of waiting forever. Instances of version 1 keep
their version. A workspace created with initial members adds and events them, so its
provisioning instance passes the member step at once.
"""

from __future__ import annotations

from cowork.workflows.definition import WaitStep, WorkflowDefinition

__all__ = [
    "BLACKBOARD_ENTRY_REVIEW_PUBLISH",
    "BUILTIN_WAIT_TIMEOUT_SECONDS",
    "BUILTIN_WORKFLOWS",
    "WORKSPACE_PROVISIONING",
]

BUILTIN_WAIT_TIMEOUT_SECONDS = 7 * 86_400.0


def _wait(name: str, event: str) -> WaitStep:
    return WaitStep(
        name=name, event=event, timeout_seconds=BUILTIN_WAIT_TIMEOUT_SECONDS, on_timeout="fail"
    )


WORKSPACE_PROVISIONING = WorkflowDefinition(
    workflow_id="workspace-provisioning",
    version=2,
    name="Workspace provisioning",
    description="A new workspace gets its first member and its first artifact.",
    trigger="workspace:created",
    correlation=("workspaceId",),
    steps=(
        WaitStep(name="created", event="workspace:created"),
        _wait("member-added", "workspace:member:added"),
        _wait("artifact-updated", "workspace:artifact:updated"),
    ),
)

BLACKBOARD_ENTRY_REVIEW_PUBLISH = WorkflowDefinition(
    workflow_id="blackboard-entry-review-publish",
    version=2,
    name="Blackboard entry review and publish",
    description="A new entry is reviewed (feedback) and then revised (updated).",
    trigger="blackboard:entry:created",
    correlation=("workspaceId", "artifactKey"),
    steps=(
        WaitStep(name="created", event="blackboard:entry:created"),
        _wait("feedback-added", "feedback:added"),
        _wait("entry-updated", "blackboard:entry:updated"),
    ),
)

BUILTIN_WORKFLOWS = (WORKSPACE_PROVISIONING, BLACKBOARD_ENTRY_REVIEW_PUBLISH)
