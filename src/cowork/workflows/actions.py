"""Actions: the Python handlers that workflow action steps run."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cowork.errors import ValidationError
from cowork.tenancy import validate_id

if TYPE_CHECKING:
    from cowork.events.envelope import EventEnvelope
    from cowork.transaction import TransactionContext
    from cowork.workflows.records import WorkflowInstance

__all__ = ["ActionContext", "ActionHandler", "ActionRegistry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionContext:
    """What an action handler receives.

    ``tx`` is the transition's transaction: writes through it (``tx.blackboard.put(...)``,
    ``tx.events.publish(...)``) commit together with the step's completion, so an action that
    writes only through ``tx`` takes effect exactly once. The mapping the handler returns is
    merged into the instance's ``data``.
    """

    instance: WorkflowInstance
    step_name: str
    attempt: int
    tx: TransactionContext
    trigger: EventEnvelope | None = None

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.instance.data)

    @property
    def input(self) -> dict[str, Any]:
        value: dict[str, Any] = self.instance.state.get("input", {})
        return dict(value)


ActionHandler = Callable[[ActionContext], Awaitable[Mapping[str, Any] | None]]


class ActionRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, ActionHandler] = {}

    def register(self, name: str, handler: ActionHandler) -> None:
        validate_id(name, "action name", max_length=100)
        if not inspect.iscoroutinefunction(handler):
            raise ValidationError(f"action {name!r} must be an async function (ctx) -> dict|None")
        existing = self._handlers.get(name)
        if existing is not None and existing is not handler:
            raise ValidationError(f"another handler is already registered for action {name!r}")
        self._handlers[name] = handler

    def get(self, name: str) -> ActionHandler | None:
        return self._handlers.get(name)
