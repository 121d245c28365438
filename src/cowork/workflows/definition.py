"""Workflow definitions as data: immutable per (workflow_id, version).

A definition has a trigger (an event pattern; None for manual starts only), correlation keys
(payload fields whose values tie events to an instance, e.g. ``("workspaceId",)``) and steps:

- :class:`WaitStep` waits for an event matching ``event`` whose payload has the instance's
  correlation values; with ``timeout_seconds`` it goes to ``on_timeout`` (a step name, or
  ``"complete"`` / ``"fail"``) when nothing arrives in time. The trigger event itself is offered
  to the first step, so a first wait step on the trigger's type completes at once.
- :class:`ActionStep` runs a Python handler registered under ``action`` (an agent's model or
  tool call: seconds to minutes) **outside any database transaction**, holding no connection
  while it awaits; its result is checkpointed when it returns, so a crash re-runs only the step
  in flight (with the same ``ctx.idempotency_key``). It is retried with backoff up to
  ``max_attempts`` times, each attempt limited to ``timeout_seconds``. Writes that must commit
  exactly once with the step's completion go through ``ctx.at_completion(...)``; with
  ``transactional=True`` the whole handler runs inside the completion's transaction instead
  (``ctx.tx``: short database work only, never a model call).
- :class:`BranchStep` jumps to the ``goto`` of the first case whose ``path`` (dotted, into the
  instance state ``{"input", "data", "trigger"}``) equals its value, else to ``default`` (or on).
- :class:`CompleteStep` / :class:`FailStep` end the instance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from cowork.arguments import number_arg, string_list_arg
from cowork.errors import ValidationError
from cowork.events.patterns import EventPattern
from cowork.jsondoc import validate_document
from cowork.jsontext import canonical, dumps
from cowork.tenancy import validate_id

__all__ = [
    "ActionStep",
    "BranchCase",
    "BranchStep",
    "CompleteStep",
    "FailStep",
    "Step",
    "WaitStep",
    "WorkflowDefinition",
]

END_TARGETS = ("complete", "fail")
_MAX_SECONDS = 10 * 365 * 86_400  # ten years: beyond that a timer is a mistake


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitStep:
    name: str
    event: str
    timeout_seconds: float | None = None
    on_timeout: str | None = None
    kind: Literal["wait"] = "wait"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "wait",
            "name": self.name,
            "event": self.event,
            "timeoutSeconds": self.timeout_seconds,
            "onTimeout": self.on_timeout,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionStep:
    name: str
    action: str
    max_attempts: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float | None = None
    transactional: bool = False
    kind: Literal["action"] = "action"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": "action",
            "name": self.name,
            "action": self.action,
            "maxAttempts": self.max_attempts,
            "backoffSeconds": self.backoff_seconds,
        }
        # Written only when set, so that definitions registered before these options existed
        # keep their checksums.
        if self.timeout_seconds is not None:
            data["timeoutSeconds"] = self.timeout_seconds
        if self.transactional is not False:
            data["transactional"] = self.transactional
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchCase:
    path: str
    equals: Any
    goto: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "equals": self.equals, "goto": self.goto}


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchStep:
    name: str
    cases: tuple[BranchCase, ...]
    default: str | None = None
    kind: Literal["branch"] = "branch"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "branch",
            "name": self.name,
            "cases": [c.to_json() for c in self.cases],
            "default": self.default,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteStep:
    name: str
    kind: Literal["complete"] = "complete"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "complete", "name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class FailStep:
    name: str
    reason: str = "failed"
    kind: Literal["fail"] = "fail"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "fail", "name": self.name, "reason": self.reason}


Step = WaitStep | ActionStep | BranchStep | CompleteStep | FailStep
_STEP_TYPES = (WaitStep, ActionStep, BranchStep, CompleteStep, FailStep)


def _check_text(value: str, what: str) -> None:
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} is not valid Unicode (lone surrogate)") from None


def step_from_json(data: dict[str, Any]) -> Step:
    kind = data.get("kind")
    if kind == "wait":
        return WaitStep(
            name=data["name"],
            event=data["event"],
            timeout_seconds=data.get("timeoutSeconds"),
            on_timeout=data.get("onTimeout"),
        )
    if kind == "action":
        return ActionStep(
            name=data["name"],
            action=data["action"],
            max_attempts=data.get("maxAttempts", 3),
            backoff_seconds=data.get("backoffSeconds", 1.0),
            timeout_seconds=data.get("timeoutSeconds"),
            transactional=data.get("transactional", False),
        )
    if kind == "branch":
        return BranchStep(
            name=data["name"],
            cases=tuple(
                BranchCase(path=c["path"], equals=c["equals"], goto=c["goto"])
                for c in data.get("cases", [])
            ),
            default=data.get("default"),
        )
    if kind == "complete":
        return CompleteStep(name=data["name"])
    if kind == "fail":
        return FailStep(name=data["name"], reason=data.get("reason", "failed"))
    raise ValidationError(f"unknown step kind {kind!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowDefinition:
    workflow_id: str
    version: int
    name: str
    steps: tuple[Step, ...]
    trigger: str | None = None
    correlation: tuple[str, ...] = ()
    description: str | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_id(self.workflow_id, "workflow_id")
        number_arg(self.version, "version", minimum=1, maximum=2**31 - 1, integer=True)
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("a workflow needs a name (a non-empty string)")
        _check_text(self.name, "name")
        if self.description is not None:
            if not isinstance(self.description, str):
                raise ValidationError("description must be a string")
            _check_text(self.description, "description")
        if not isinstance(self.steps, tuple | list) or not self.steps:
            raise ValidationError(f"workflow {self.workflow_id!r} needs a non-empty list of steps")
        if self.trigger is not None:
            EventPattern.parse(self.trigger)
        for key in string_list_arg(self.correlation, "correlation"):
            if not key:
                raise ValidationError("correlation keys must be non-empty strings")
            _check_text(key, "correlation key")
        for position, step in enumerate(self.steps):
            if not isinstance(step, _STEP_TYPES):
                raise ValidationError(
                    f"step {position + 1} must be a WaitStep, ActionStep, BranchStep, "
                    f"CompleteStep or FailStep, got {type(step).__name__}"
                )
            validate_id(step.name, "step name", max_length=100)
            if step.name in self._index:
                raise ValidationError(f"two steps are named {step.name!r}")
            self._index[step.name] = position
        for step in self.steps:
            self._check_step(step)
        validate_document(self.to_json(), what=f"workflow {self.workflow_id!r}")

    def _check_target(self, target: str | None, where: str) -> None:
        if target is not None and (
            not isinstance(target, str) or (target not in self._index and target not in END_TARGETS)
        ):
            raise ValidationError(f"{where} goes to unknown step {target!r}")

    def _check_step(self, step: Step) -> None:
        where = f"step {step.name!r}"
        if isinstance(step, WaitStep):
            EventPattern.parse(step.event)
            if step.timeout_seconds is not None:
                number_arg(
                    step.timeout_seconds,
                    f"{where}: timeout_seconds",
                    minimum=-_MAX_SECONDS,
                    maximum=_MAX_SECONDS,
                )
                if step.timeout_seconds <= 0:
                    raise ValidationError(f"{where}: timeout_seconds must be positive")
            if step.on_timeout is not None and step.timeout_seconds is None:
                raise ValidationError(f"{where}: on_timeout needs timeout_seconds")
            self._check_target(step.on_timeout, where)
        elif isinstance(step, ActionStep):
            validate_id(step.action, "action name", max_length=100)
            number_arg(
                step.max_attempts, f"{where}: max_attempts", minimum=1, maximum=1000, integer=True
            )
            number_arg(step.backoff_seconds, f"{where}: backoff_seconds", minimum=0, maximum=86_400)
            if step.timeout_seconds is not None:
                number_arg(
                    step.timeout_seconds,
                    f"{where}: timeout_seconds",
                    minimum=0,
                    maximum=_MAX_SECONDS,
                )
                if step.timeout_seconds <= 0:
                    raise ValidationError(f"{where}: timeout_seconds must be positive")
            if not isinstance(step.transactional, bool):
                raise ValidationError(f"{where}: transactional must be True or False")
        elif isinstance(step, BranchStep):
            if not isinstance(step.cases, tuple | list):
                raise ValidationError(f"{where}: cases must be a list of BranchCase")
            for case in step.cases:
                if not isinstance(case, BranchCase) or not isinstance(case.path, str):
                    raise ValidationError(f"{where}: cases must be BranchCase(path=..., ...)")
                self._check_target(case.goto, where)
            self._check_target(step.default, where)
        elif isinstance(step, FailStep) and not isinstance(step.reason, str):
            raise ValidationError(f"{where}: reason must be a string")

    def index_of(self, name: str) -> int:
        return self._index[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "workflowId": self.workflow_id,
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "trigger": self.trigger,
            "correlation": list(self.correlation),
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowDefinition:
        return cls(
            workflow_id=data["workflowId"],
            version=data["version"],
            name=data["name"],
            description=data.get("description"),
            trigger=data.get("trigger"),
            correlation=tuple(data.get("correlation", ())),
            steps=tuple(step_from_json(s) for s in data["steps"]),
        )

    @property
    def checksum(self) -> str:
        return hashlib.sha256(canonical(self.to_json()).encode("utf-8")).hexdigest()

    def correlation_key(self, payload: dict[str, Any]) -> str | None:
        """The instance key for an event payload (None if a correlation field is missing)."""
        if not self.correlation:
            return ""
        values = []
        for key in self.correlation:
            value = payload.get(key)
            if value is None or isinstance(value, dict | list):
                return None
            values.append(value)
        return dumps(values)
