"""Where a transition runs: a tenant's transaction (a :class:`~cowork.kernel.unit.UnitOfWork`)
or, for a write sent in one trip without a transaction of its own, a :class:`DetachedContext`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from cowork.events.envelope import EventEnvelope
from cowork.kernel.unit import CoreBound
from cowork.storage.port import Capabilities, Transaction
from cowork.tenancy import TenantScope

if TYPE_CHECKING:
    from cowork.events.sanitize import SanitizePolicy
    from cowork.kernel.clock import DatabaseClock
    from cowork.kernel.core import Core

__all__ = ["DetachedContext", "TransitionContext"]


class TransitionContext(Protocol):
    """Where a transition runs: a transaction context, or a :class:`DetachedContext`."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def clock(self) -> DatabaseClock: ...

    @property
    def truncating_event_policy(self) -> SanitizePolicy: ...

    @property
    def scope(self) -> TenantScope: ...

    @property
    def tx(self) -> Transaction: ...

    def record_published(self, envelopes: list[EventEnvelope]) -> None: ...


class DetachedContext(CoreBound):
    """A transition prepared outside a transaction, to be written in one trip
    (:meth:`~cowork.workflows.machine.Transition.save_statement`); reading the log (a wait's
    scan) needs a real one."""

    def __init__(self, core: Core, scope: TenantScope) -> None:
        self._core = core
        self.scope = scope
        self.published: list[EventEnvelope] = []

    @property
    def tx(self) -> Transaction:
        raise RuntimeError("this transition is detached: it cannot read or write by itself")

    def record_published(self, envelopes: list[EventEnvelope]) -> None:
        self.published.extend(envelopes)
