"""Workflow definitions as data: validation, JSON round trip, checksum, correlation.

Pure unit tests: no database, no runtime.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import cowork
from cowork import (
    ActionStep,
    BranchCase,
    BranchStep,
    CompleteStep,
    FailStep,
    WaitStep,
    WorkflowDefinition,
)
from cowork.errors import InvalidEventType, ValidationError
from cowork.workflows.builtins import (
    BLACKBOARD_ENTRY_REVIEW_PUBLISH,
    BUILTIN_WORKFLOWS,
    WORKSPACE_PROVISIONING,
)
from cowork.workflows.definition import step_from_json


def _definition(**overrides: Any) -> WorkflowDefinition:
    """A definition that uses every step kind."""
    values: dict[str, Any] = {
        "workflow_id": "order-flow",
        "version": 1,
        "name": "Order flow",
        "description": "placed, classified, then shipped or refunded",
        "trigger": "order:placed",
        "correlation": ("tenantOrg", "orderId"),
        "steps": (
            WaitStep(name="placed", event="order:placed"),
            ActionStep(
                name="classify", action="orders.classify", max_attempts=4, backoff_seconds=0.5
            ),
            BranchStep(
                name="route",
                cases=(
                    BranchCase(path="data.route", equals="ship", goto="wait-shipped"),
                    BranchCase(path="data.route", equals={"nested": [1, 2]}, goto="refund"),
                ),
                default="refund",
            ),
            WaitStep(
                name="wait-shipped", event="order:*", timeout_seconds=30.5, on_timeout="refund"
            ),
            CompleteStep(name="done"),
            FailStep(name="refund", reason="refunded"),
        ),
    }
    values.update(overrides)
    return WorkflowDefinition(**values)


# -- validation ---------------------------------------------------------------------------------
def test_a_valid_definition_indexes_its_steps() -> None:
    definition = _definition()
    assert [definition.index_of(s.name) for s in definition.steps] == list(range(6))
    with pytest.raises(KeyError):
        definition.index_of("nope")


def test_duplicate_step_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="two steps are named 'a'"):
        WorkflowDefinition(
            workflow_id="dup",
            version=1,
            name="Dup",
            steps=(
                WaitStep(name="a", event="x:y"),
                ActionStep(name="b", action="act"),
                CompleteStep(name="a"),
            ),
        )


@pytest.mark.parametrize(
    "bad_step",
    [
        pytest.param(
            BranchStep(name="br", cases=(BranchCase(path="data.x", equals=1, goto="nowhere"),)),
            id="branch-case-goto",
        ),
        pytest.param(BranchStep(name="br", cases=(), default="nowhere"), id="branch-default"),
        pytest.param(
            WaitStep(name="br", event="x:y", timeout_seconds=1, on_timeout="nowhere"),
            id="wait-on-timeout",
        ),
    ],
)
def test_a_goto_to_an_unknown_step_is_rejected(bad_step: Any) -> None:
    with pytest.raises(ValidationError, match="unknown step 'nowhere'"):
        WorkflowDefinition(
            workflow_id="bad-goto",
            version=1,
            name="Bad goto",
            steps=(bad_step, CompleteStep(name="end")),
        )


@pytest.mark.parametrize("target", ["complete", "fail", "end"])
def test_gotos_may_name_a_step_or_an_end(target: str) -> None:
    definition = WorkflowDefinition(
        workflow_id="gotos",
        version=1,
        name="Gotos",
        steps=(
            WaitStep(name="w", event="x:y", timeout_seconds=1, on_timeout=target),
            BranchStep(
                name="br",
                cases=(BranchCase(path="input.k", equals=1, goto=target),),
                default=target,
            ),
            CompleteStep(name="end"),
        ),
    )
    assert definition.index_of("end") == 2


@pytest.mark.parametrize(
    "trigger",
    ["Order:Placed", "order::placed", "order:", "order placed", "order:pla*", "order:**", ""],
)
def test_a_bad_trigger_pattern_is_rejected(trigger: str) -> None:
    with pytest.raises(InvalidEventType):
        _definition(trigger=trigger)


@pytest.mark.parametrize("event", ["Order:Paid", "order:pa?d", "order:[a-z]", ":paid", "a b"])
def test_a_bad_wait_pattern_is_rejected(event: str) -> None:
    with pytest.raises(InvalidEventType):
        WorkflowDefinition(
            workflow_id="bad-wait",
            version=1,
            name="Bad wait",
            steps=(WaitStep(name="w", event=event),),
        )


def test_wildcard_patterns_are_accepted() -> None:
    definition = WorkflowDefinition(
        workflow_id="wild",
        version=1,
        name="Wild",
        trigger="order:*",
        steps=(WaitStep(name="w", event="*:paid"), WaitStep(name="v", event="*")),
    )
    assert definition.trigger == "order:*"


def test_on_timeout_needs_a_timeout() -> None:
    with pytest.raises(ValidationError, match="on_timeout needs timeout_seconds"):
        WorkflowDefinition(
            workflow_id="no-timeout",
            version=1,
            name="No timeout",
            steps=(WaitStep(name="w", event="x:y", on_timeout="end"), CompleteStep(name="end")),
        )


@pytest.mark.parametrize("seconds", [0, -1, -0.5])
def test_timeout_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValidationError, match="timeout_seconds must be positive"):
        WorkflowDefinition(
            workflow_id="t",
            version=1,
            name="T",
            steps=(WaitStep(name="w", event="x:y", timeout_seconds=seconds),),
        )


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"version": 0}, id="version-0"),
        pytest.param({"version": -2}, id="version-negative"),
        pytest.param({"version": True}, id="version-bool"),
        pytest.param({"version": "1"}, id="version-str"),
        pytest.param({"version": 1.0}, id="version-float"),
        pytest.param({"name": "  "}, id="blank-name"),
        pytest.param({"steps": ()}, id="no-steps"),
        pytest.param({"workflow_id": ""}, id="empty-id"),
        pytest.param({"workflow_id": "has space"}, id="bad-id"),
        pytest.param({"correlation": ("orderId", "")}, id="empty-correlation-key"),
    ],
)
def test_bad_definition_fields_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _definition(**overrides)


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(ActionStep(name="a", action="act", max_attempts=0), id="zero-attempts"),
        pytest.param(ActionStep(name="a", action="act", backoff_seconds=-1), id="neg-backoff"),
        pytest.param(ActionStep(name="a", action="bad action"), id="bad-action-name"),
        pytest.param(CompleteStep(name="bad name"), id="bad-step-name"),
        pytest.param(CompleteStep(name=""), id="empty-step-name"),
    ],
)
def test_bad_steps_are_rejected(step: Any) -> None:
    with pytest.raises(ValidationError):
        WorkflowDefinition(workflow_id="s", version=1, name="S", steps=(step,))


def test_unknown_step_kind_in_json_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown step kind"):
        step_from_json({"kind": "teleport", "name": "x"})


def test_definitions_and_steps_are_immutable() -> None:
    definition = _definition()
    with pytest.raises(AttributeError):
        definition.version = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        definition.steps[0].name = "other"  # type: ignore[misc]


# -- JSON round trip ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "definition",
    [
        pytest.param(_definition(), id="every-kind"),
        pytest.param(WORKSPACE_PROVISIONING, id="workspace-provisioning"),
        pytest.param(BLACKBOARD_ENTRY_REVIEW_PUBLISH, id="blackboard-review"),
        pytest.param(
            WorkflowDefinition(
                workflow_id="manual", version=7, name="Manual", steps=(CompleteStep(name="c"),)
            ),
            id="manual-minimal",
        ),
    ],
)
def test_json_round_trip(definition: WorkflowDefinition) -> None:
    data = definition.to_json()
    # What is stored is plain JSON: it survives a serialisation round trip unchanged.
    reloaded_json = json.loads(json.dumps(data))
    assert reloaded_json == data
    again = WorkflowDefinition.from_json(reloaded_json)
    assert again == definition
    assert again.to_json() == data
    assert again.checksum == definition.checksum
    assert [again.index_of(s.name) for s in again.steps] == list(range(len(again.steps)))


def test_json_uses_camel_case_and_step_kinds() -> None:
    data = _definition().to_json()
    assert data["workflowId"] == "order-flow"
    assert data["correlation"] == ["tenantOrg", "orderId"]
    assert [s["kind"] for s in data["steps"]] == [
        "wait",
        "action",
        "branch",
        "wait",
        "complete",
        "fail",
    ]
    assert data["steps"][1]["maxAttempts"] == 4
    assert data["steps"][1]["backoffSeconds"] == 0.5
    assert data["steps"][3]["timeoutSeconds"] == 30.5
    assert data["steps"][3]["onTimeout"] == "refund"
    assert data["steps"][2]["cases"][1] == {
        "path": "data.route",
        "equals": {"nested": [1, 2]},
        "goto": "refund",
    }


def test_from_json_applies_step_defaults() -> None:
    definition = WorkflowDefinition.from_json(
        {
            "workflowId": "defaults",
            "version": 1,
            "name": "Defaults",
            "steps": [
                {"kind": "action", "name": "a", "action": "act"},
                {"kind": "fail", "name": "f"},
            ],
        }
    )
    action, fail = definition.steps
    assert isinstance(action, ActionStep)
    assert (action.max_attempts, action.backoff_seconds) == (3, 1.0)
    assert isinstance(fail, FailStep) and fail.reason == "failed"
    assert definition.trigger is None and definition.correlation == ()


def test_from_json_validates_like_the_constructor() -> None:
    data = _definition().to_json()
    data["steps"].append(dict(data["steps"][0]))  # a second step named "placed"
    with pytest.raises(ValidationError, match="two steps"):
        WorkflowDefinition.from_json(data)


# -- checksum -----------------------------------------------------------------------------------
def test_checksum_is_stable() -> None:
    first, second = _definition(), _definition()
    assert first is not second
    assert first.checksum == second.checksum
    assert len(first.checksum) == 64
    int(first.checksum, 16)
    # Independent of the order of keys in the stored JSON.
    shuffled = json.loads(json.dumps(dict(reversed(list(first.to_json().items())))))
    assert WorkflowDefinition.from_json(shuffled).checksum == first.checksum


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"version": 2}, id="version"),
        pytest.param({"name": "Order flow v2"}, id="name"),
        pytest.param({"description": None}, id="description"),
        pytest.param({"trigger": "order:created"}, id="trigger"),
        pytest.param({"trigger": None}, id="no-trigger"),
        pytest.param({"correlation": ("orderId", "tenantOrg")}, id="correlation-order"),
        pytest.param({"correlation": ("orderId",)}, id="correlation-keys"),
    ],
)
def test_checksum_changes_with_definition_fields(change: dict[str, Any]) -> None:
    assert _definition(**change).checksum != _definition().checksum


def _with_step(index: int, step: Any) -> WorkflowDefinition:
    steps = list(_definition().steps)
    steps[index] = step
    return _definition(steps=tuple(steps))


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(
            lambda: _with_step(0, WaitStep(name="placed", event="order:created")), id="ev"
        ),
        pytest.param(
            lambda: _with_step(
                1, ActionStep(name="classify", action="orders.classify", max_attempts=5)
            ),
            id="attempts",
        ),
        pytest.param(
            lambda: _with_step(
                1,
                ActionStep(
                    name="classify",
                    action="orders.classify",
                    max_attempts=4,
                    backoff_seconds=0.25,
                ),
            ),
            id="backoff",
        ),
        pytest.param(
            lambda: _with_step(
                3,
                WaitStep(
                    name="wait-shipped", event="order:*", timeout_seconds=31, on_timeout="refund"
                ),
            ),
            id="timeout",
        ),
        pytest.param(lambda: _with_step(5, FailStep(name="refund", reason="other")), id="reason"),
        pytest.param(
            lambda: _definition(steps=(*_definition().steps, CompleteStep(name="extra"))),
            id="extra-step",
        ),
        pytest.param(
            lambda: _definition(steps=tuple(reversed(_definition().steps))), id="step-order"
        ),
    ],
)
def test_checksum_changes_with_steps(changed: Any) -> None:
    assert changed().checksum != _definition().checksum


def test_equality_ignores_nothing_but_the_index() -> None:
    assert _definition() == _definition()
    assert _definition() != replace(_definition(), name="Other")


# -- correlation keys ---------------------------------------------------------------------------
def test_correlation_key_from_payload_fields_in_definition_order() -> None:
    definition = _definition()  # correlation ("tenantOrg", "orderId")
    key = definition.correlation_key({"orderId": "o-1", "tenantOrg": "acme", "other": 3})
    assert key is not None
    assert json.loads(key) == ["acme", "o-1"]
    assert definition.correlation_key({"tenantOrg": "acme", "orderId": "o-1"}) == key
    assert definition.correlation_key({"tenantOrg": "acme", "orderId": "o-2"}) != key
    assert definition.correlation_key({"tenantOrg": "o-1", "orderId": "acme"}) != key


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"orderId": "o-1"}, id="missing-field"),
        pytest.param({"tenantOrg": None, "orderId": "o-1"}, id="null-field"),
        pytest.param({"tenantOrg": {"a": 1}, "orderId": "o-1"}, id="object-value"),
        pytest.param({"tenantOrg": ["a"], "orderId": "o-1"}, id="list-value"),
        pytest.param({}, id="empty"),
    ],
)
def test_correlation_key_is_none_when_a_field_is_missing_or_not_scalar(
    payload: dict[str, Any],
) -> None:
    assert _definition().correlation_key(payload) is None


def test_correlation_key_distinguishes_types_and_values() -> None:
    definition = WorkflowDefinition(
        workflow_id="typed",
        version=1,
        name="Typed",
        correlation=("id",),
        steps=(CompleteStep(name="c"),),
    )
    keys = {definition.correlation_key({"id": value}) for value in (1, "1", 1.5, True, "true", "é")}
    assert None not in keys
    assert len(keys) == 6
    # Separators inside values cannot make two different tuples collide.
    two = WorkflowDefinition(
        workflow_id="two",
        version=1,
        name="Two",
        correlation=("a", "b"),
        steps=(CompleteStep(name="c"),),
    )
    assert two.correlation_key({"a": "x,y", "b": "z"}) != two.correlation_key(
        {"a": "x", "b": "y,z"}
    )
    assert two.correlation_key({"a": 'x"', "b": "y"}) != two.correlation_key({"a": "x", "b": '"y'})


def test_without_correlation_every_event_has_the_empty_key() -> None:
    definition = WorkflowDefinition(
        workflow_id="global", version=1, name="Global", steps=(CompleteStep(name="c"),)
    )
    assert definition.correlation_key({}) == ""
    assert definition.correlation_key({"workspaceId": "w1"}) == ""


def test_builtins_correlate_like_the_seed() -> None:
    assert {d.workflow_id for d in BUILTIN_WORKFLOWS} == {
        "workspace-provisioning",
        "blackboard-entry-review-publish",
    }
    ws = WORKSPACE_PROVISIONING
    assert ws.trigger == "workspace:created" and ws.correlation == ("workspaceId",)
    assert [(s.name, getattr(s, "event", None)) for s in ws.steps] == [
        ("created", "workspace:created"),
        ("member-added", "workspace:member:added"),
        ("artifact-updated", "workspace:artifact:updated"),
    ]
    assert ws.correlation_key({"workspaceId": "w1", "memberId": "m"}) == ws.correlation_key(
        {"workspaceId": "w1"}
    )
    assert ws.correlation_key({"workspaceId": "w1"}) != ws.correlation_key({"workspaceId": "w2"})
    bb = BLACKBOARD_ENTRY_REVIEW_PUBLISH
    assert bb.trigger == "blackboard:entry:created"
    assert bb.correlation == ("workspaceId", "artifactKey")
    assert [(s.name, getattr(s, "event", None)) for s in bb.steps] == [
        ("created", "blackboard:entry:created"),
        ("feedback-added", "feedback:added"),
        ("entry-updated", "blackboard:entry:updated"),
    ]
    # Feedback on the workspace (no artifactKey) belongs to no entry's review.
    assert bb.correlation_key({"workspaceId": "w1", "artifactKey": None}) is None
    assert bb.correlation_key({"workspaceId": "w1", "artifactKey": "a"}) != bb.correlation_key(
        {"workspaceId": "w1", "artifactKey": "b"}
    )


def test_public_names_are_exported() -> None:
    for name in (
        "WorkflowDefinition",
        "WaitStep",
        "ActionStep",
        "BranchStep",
        "BranchCase",
        "CompleteStep",
        "FailStep",
        "DefinitionConflict",
        "WorkflowInstance",
        "HistoryEntry",
        "InstanceStatus",
        "ActionContext",
    ):
        assert hasattr(cowork, name), name
