"""Actions: the Python handlers that workflow action steps run, and what they receive.

An action is an agent's step: a model call, a tool call, a search. It runs outside any database
transaction and holds no connection while it awaits. Its returned mapping is checkpointed
(merged into the instance's ``data``) in one short transaction when it returns; a crash re-runs
only the step in flight, with the same :attr:`ActionContext.idempotency_key`.

Database writes that must commit exactly once with the step's completion are registered with
:meth:`ActionContext.at_completion`: they run inside the completion's transaction, after the
action returned, and commit with it or not at all (a cancelled, timed-out, failed or superseded
attempt commits none of them). A step declared ``transactional=True`` runs its whole handler
inside that transaction instead, with ``ctx.tx`` (short database work only).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cowork.errors import ValidationError, WorkflowError
from cowork.kernel.unit import UnitOfWork
from cowork.tenancy import validate_id

if TYPE_CHECKING:
    from cowork.events.envelope import EventEnvelope
    from cowork.kernel.core import Core
    from cowork.workflows.records import WorkflowInstance

__all__ = ["ActionContext", "ActionHandler", "ActionRegistry", "CompletionWrite"]

# The transaction an action sees: the runtime's TransactionContext (``cowork.ActionContext``
# is ActionContext[TransactionContext], so ``ctx.tx.blackboard`` type-checks in user code).
Tx = TypeVar("Tx", bound=UnitOfWork)
CompletionWrite = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionContext(Generic[Tx]):
    """What an action handler receives.

    - ``trigger``: the event that started the instance (None for a manual start);
    - ``input``: the start's input, or the trigger's payload for a trigger-started instance;
    - ``data``: what earlier steps returned, merged;
    - ``attempt``: 1 for the first try of this step, 2 after one failure, ...;
    - ``idempotency_key``: the same for every attempt and takeover of this step (and different
      for the next visit of the step, when a branch loops back): pass it to external APIs so
      that a re-run after a crash does not do their work twice;
    - ``at_completion(write)``: run ``await write(tx)`` in the step's completion transaction;
    - ``tx``: only for ``transactional=True`` steps, the completion's transaction.
    """

    instance: WorkflowInstance
    step_name: str
    attempt: int
    idempotency_key: str
    trigger: EventEnvelope | None = None
    transaction: Tx | None = None
    completions: list[CompletionWrite] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.instance.data)

    @property
    def input(self) -> dict[str, Any]:
        value: dict[str, Any] = self.instance.state.get("input") or {}
        if not value and self.trigger is not None:
            return dict(self.trigger.payload)
        return dict(value)

    @property
    def tx(self) -> Tx:
        if self.transaction is None:
            raise WorkflowError(
                f"step {self.step_name!r} runs outside any database transaction (an action may "
                "await a model call for minutes). For writes that must commit exactly once with "
                "the step, register them with ctx.at_completion(write), where "
                "`async def write(tx)` uses tx.blackboard, tx.events...; or declare the step "
                "ActionStep(..., transactional=True) for short database-only work."
            )
        return self.transaction

    def at_completion(
        self, write: Callable[[Tx], Awaitable[Any]]
    ) -> Callable[[Tx], Awaitable[Any]]:
        """Run ``await write(tx)`` inside the transaction that checkpoints this step, after
        the action returns: its writes commit exactly once, together with the step's
        completion, or not at all. Usable as a decorator."""
        if not callable(write) or not inspect.iscoroutinefunction(write):
            raise ValidationError("at_completion takes an async function: async def write(tx)")
        self.completions.append(write)
        return write


ActionHandler = Callable[[ActionContext[Any]], Awaitable[Mapping[str, Any] | None]]


class ActionRegistry:
    """The action handlers of this process, per tenant: a worker claims a tenant's step only
    if it has registered the step's action for that tenant."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], ActionHandler] = {}
        self._names: dict[str, tuple[str, ...]] = {}

    @classmethod
    def of(cls, core: Core) -> ActionRegistry:
        """The process's action registry (one per core, made on first use)."""
        return core.part(cls, lambda _core: cls())

    def register(self, tenant_id: str, name: str, handler: ActionHandler) -> None:
        validate_id(name, "action name", max_length=100)
        if not inspect.iscoroutinefunction(handler):
            raise ValidationError(f"action {name!r} must be an async function (ctx) -> dict|None")
        key = (tenant_id, name)
        existing = self._handlers.get(key)
        if existing is not None and existing is not handler and not _same_code(existing, handler):
            raise ValidationError(
                f"another handler is already registered for action {name!r} in tenant {tenant_id!r}"
            )
        # The same function again (or the same code, e.g. a closure an --app setup defines
        # per call) replaces it: registering the app once more is harmless.
        self._handlers[key] = handler
        self._names[tenant_id] = tuple(sorted({*self._names.get(tenant_id, ()), name}))

    def get(self, tenant_id: str, name: str) -> ActionHandler | None:
        return self._handlers.get((tenant_id, name))

    def names(self, tenant_id: str) -> tuple[str, ...]:
        """The actions registered for ``tenant_id``, sorted."""
        return self._names.get(tenant_id, ())


def _same_code(a: ActionHandler, b: ActionHandler) -> bool:
    code_a = getattr(a, "__code__", None)
    return code_a is not None and code_a is getattr(b, "__code__", None)
