"""Group commit: one-statement writes of concurrent callers share one transaction.

A workflow start or a step's checkpoint is a single statement that needs nothing read first
(:meth:`Database.run_in_one_trip`). When many arrive at once (a worker's lanes finishing
steps, an application starting instances from several tasks), each paying for its own
transaction spends most of its time on BEGIN, the tenant scope, COMMIT and the WAL flush.
:class:`GroupedTrips` sends the statements that arrived while a trip of the same tenant was
in flight together, in the next trip: one transaction, one flush, one round trip.

- **No added latency.** A statement that finds no trip in flight goes at once; only
  statements that would have waited for a connection anyway are grouped.
- **Same outcome per caller.** Each caller gets its own statement's rows once the shared
  transaction has committed, and nothing before: a checkpoint is durable when its lane goes on.
  Statements of one group run in arrival order in one transaction, as if one after the other.
- **One bad statement fails only its caller.** A statement error (a constraint, a value the
  database refuses) rolls the group back, and each of its statements is then sent alone, so
  the others commit and the culprit gets its own error. A lost connection is not retried: the
  group's outcome is unknown, and every caller gets the error, as it would have alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cowork.errors import PersistenceUnavailable

if TYPE_CHECKING:
    from cowork.storage.port import Database, Params, Row

__all__ = ["MAX_GROUP", "GroupedTrips"]

MAX_GROUP = 64  # statements per shared transaction at most


@dataclass(eq=False, slots=True)
class _Call:
    query: str
    params: Params
    done: asyncio.Future[list[Row]]


@dataclass(eq=False, slots=True)
class _Tenant:
    waiting: deque[_Call] = field(default_factory=deque)
    flusher: asyncio.Task[None] | None = None


class GroupedTrips:
    """Per tenant, at most one trip in flight; what arrives meanwhile goes in the next one."""

    def __init__(self, database: Database, *, max_group: int = MAX_GROUP) -> None:
        self._database = database
        self._max_group = max_group
        self._tenants: dict[str, _Tenant] = {}
        self.trips = 0  # shared transactions sent (tests and benchmarks read it)
        self.statements = 0

    async def run(self, query: str, params: Params, *, tenant_id: str) -> list[Row]:
        """Run one named statement in a committed write transaction of ``tenant_id``,
        possibly shared with other callers' statements; returns its rows."""
        call = _Call(query, params, asyncio.get_running_loop().create_future())
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = _Tenant()
        tenant.waiting.append(call)
        if tenant.flusher is None:
            tenant.flusher = asyncio.get_running_loop().create_task(
                self._flush(tenant_id, tenant), name=f"cowork-group-commit-{tenant_id}"
            )
        # The flusher finishes the trip even if this caller is cancelled: the statement
        # may commit (as a cancelled single trip may), and the others must not lose theirs.
        return await asyncio.shield(call.done)

    async def _flush(self, tenant_id: str, tenant: _Tenant) -> None:
        try:
            while tenant.waiting:
                group = [
                    tenant.waiting.popleft()
                    for _ in range(min(self._max_group, len(tenant.waiting)))
                ]
                await self._send(tenant_id, group)
        finally:
            tenant.flusher = None
            if not tenant.waiting:
                self._tenants.pop(tenant_id, None)
            else:  # cancelled (closing): nobody will send these
                for call in tenant.waiting:
                    _settle(call, exc=PersistenceUnavailable("the runtime is closing"))
                tenant.waiting.clear()

    async def _send(self, tenant_id: str, group: list[_Call]) -> None:
        self.trips += 1
        self.statements += len(group)
        try:
            results = await self._database.run_in_one_trip(
                [(c.query, c.params) for c in group], tenant_id=tenant_id
            )
        except asyncio.CancelledError:
            for call in group:
                _settle(call, exc=PersistenceUnavailable("the runtime is closing"))
            raise
        except Exception as exc:
            if len(group) == 1 or isinstance(exc, PersistenceUnavailable):
                for call in group:
                    _settle(call, exc=exc)
                return
            # A statement error rolled the group back: each alone, so only the culprit fails.
            for call in group:
                await self._send(tenant_id, [call])
            return
        for call, rows in zip(group, results, strict=True):
            _settle(call, rows=rows)

    async def close(self) -> None:
        """Finish the trips in flight (their callers are waiting for them)."""
        flushers = [t.flusher for t in self._tenants.values() if t.flusher is not None]
        for flusher in flushers:
            with contextlib.suppress(Exception):
                await flusher


def _settle(
    call: _Call, *, rows: list[Row] | None = None, exc: BaseException | None = None
) -> None:
    if call.done.done():
        return
    if exc is not None:
        call.done.set_exception(exc)
    else:
        call.done.set_result(rows if rows is not None else [])
