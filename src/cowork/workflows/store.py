"""Workflow persistence inside a transaction: definitions, instances, history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cowork.errors import DefinitionConflict, StorageConflict
from cowork.kernel.service import utcnow
from cowork.kernel.store import TenantStore
from cowork.storage.port import Json, JsonText, Pending
from cowork.tenancy import TenantScope
from cowork.workflows.definition import WorkflowDefinition
from cowork.workflows.records import HistoryEntry, InstanceStatus, WorkflowInstance

__all__ = ["PendingAction", "WorkflowStore", "save_statement"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingAction:
    """Workflow steps that wait for a worker offering ``action``."""

    action: str
    steps: int
    due_since: datetime
    waiting_seconds: float


class WorkflowStore(TenantStore):
    # -- definitions --------------------------------------------------------------------------
    async def register(self, definition: WorkflowDefinition) -> bool:
        """Store a definition; True if new. Same content again is a no-op; other content under
        an existing version raises DefinitionConflict."""
        inserted = await self.tx.execute(
            "wf_definition_insert",
            self._params(
                workflow_id=definition.workflow_id,
                version=definition.version,
                name=definition.name,
                trigger_pattern=definition.trigger,
                definition=Json(definition.to_json()),
                checksum=definition.checksum,
                now=utcnow(),
            ),
        )
        if inserted:
            return True
        row = await self.tx.fetch_one(
            "wf_definition_get",
            self._params(workflow_id=definition.workflow_id, version=definition.version),
        )
        if row is not None and row["checksum"] != definition.checksum:
            raise DefinitionConflict(
                f"workflow {definition.workflow_id!r} version {definition.version} is already "
                "registered with different content; definitions are immutable per version: "
                f"register the change as version {definition.version + 1}"
            )
        return False

    async def definitions(self) -> list[WorkflowDefinition]:
        return [definition for definition, _ in await self.registered()]

    async def registered(self) -> list[tuple[WorkflowDefinition, tuple[int, int]]]:
        """Every version with the log cursor of its registration event ((0, 0): registered
        without one, like the built-ins, or before cursors were kept)."""
        rows = await self.tx.fetch_all("wf_definition_list", self._params())
        return [
            (
                WorkflowDefinition.from_json(r["definition"]),
                (int(r["registered_tx_id"]), int(r["registered_position"])),
            )
            for r in rows
        ]

    async def set_registered(self, definition: WorkflowDefinition, cursor: tuple[int, int]) -> None:
        await self.tx.execute(
            "wf_definition_set_registered",
            self._params(
                workflow_id=definition.workflow_id,
                version=definition.version,
                registered_tx_id=cursor[0],
                registered_position=cursor[1],
            ),
        )

    # -- instances ----------------------------------------------------------------------------
    async def insert_instance(
        self, instance: WorkflowInstance, *, at_head: bool = False
    ) -> WorkflowInstance | None:
        """Insert a new instance as it stands; None when its start key was used already
        (idempotent start). ``at_head``: its event cursor is the log's visible head instead."""
        row = await self.tx.fetch_one(
            "wf_instance_insert_at_head" if at_head else "wf_instance_insert",
            self._params(
                instance_id=instance.instance_id,
                workflow_id=instance.workflow_id,
                workflow_version=instance.workflow_version,
                status=instance.status.value,
                correlation_key=instance.correlation_key,
                start_key=instance.start_key,
                step_index=instance.step_index,
                state=Json(instance.state),
                attempts=instance.attempts,
                last_error=instance.last_error,
                wake_at=instance.wake_at,
                event_tx_id=instance.event_cursor[0],
                event_position=instance.event_cursor[1],
                lease_owner=instance.lease_owner,
                lease_expires_at=instance.lease_expires_at,
                ended_at=instance.ended_at,
                action=instance.action,
                now=instance.created_at,
            ),
        )
        return None if row is None else WorkflowInstance.from_row(row)

    async def get(self, instance_id: str) -> WorkflowInstance | None:
        row = await self.tx.fetch_one("wf_instance_get", self._params(instance_id=instance_id))
        return None if row is None else WorkflowInstance.from_row(row)

    async def lock(self, instance_id: str) -> WorkflowInstance | None:
        row = await self.tx.fetch_one("wf_instance_lock", self._params(instance_id=instance_id))
        return None if row is None else WorkflowInstance.from_row(row)

    async def by_start_key(self, workflow_id: str, start_key: str) -> WorkflowInstance | None:
        row = await self.tx.fetch_one(
            "wf_instance_by_start_key", self._params(workflow_id=workflow_id, start_key=start_key)
        )
        return None if row is None else WorkflowInstance.from_row(row)

    async def correlated(self, workflow_id: str, correlation_key: str) -> list[WorkflowInstance]:
        rows = await self.tx.fetch_all(
            "wf_instances_correlated",
            self._params(workflow_id=workflow_id, correlation_key=correlation_key),
        )
        return [WorkflowInstance.from_row(r) for r in rows]

    async def claim(
        self,
        owner: str,
        lease_seconds: float,
        *,
        at: datetime,
        limit: int = 1,
        actions: tuple[str, ...] = (),
        now: datetime | None = None,
    ) -> list[WorkflowInstance]:
        """Lease up to ``limit`` due instances nobody holds whose pending action, if any, is
        one of ``actions``. Lease expiry is the database's time on PostgreSQL (``at``, the
        database clock as this process sees it, serves SQLite); ``now`` overrides both (tests)."""
        moment = now or at
        rows = await self.tx.fetch_all(
            "wf_instance_claim",
            self._params(
                owner=owner,
                now=now,
                at=moment,
                expires=moment + timedelta(seconds=lease_seconds),
                lease_seconds=lease_seconds,
                limit=limit,
                actions=Json(list(actions)),
            ),
        )
        return [WorkflowInstance.from_row(r) for r in rows]

    async def heartbeat(
        self, instance_ids: list[str], owner: str, lease_seconds: float, *, at: datetime
    ) -> set[str]:
        """Renew our leases; returns the ids still held on active instances."""
        rows = await self.tx.fetch_all(
            "wf_instance_heartbeat",
            self._params(
                instance_ids=Json(instance_ids),
                owner=owner,
                lease_seconds=lease_seconds,
                expires=at + timedelta(seconds=lease_seconds),
            ),
        )
        return {r["instance_id"] for r in rows}

    async def still_held(self, instance_ids: list[str], owner: str) -> set[str]:
        rows = await self.tx.fetch_all(
            "wf_instance_still_held", self._params(instance_ids=Json(instance_ids), owner=owner)
        )
        return {r["instance_id"] for r in rows}

    async def release(self, instance_id: str, owner: str) -> None:
        await self.tx.execute(
            "wf_instance_release", self._params(instance_id=instance_id, owner=owner)
        )

    async def await_worker(self, instance_id: str, owner: str, action: str) -> None:
        """Hand back a claimed step whose action this worker lacks, recording the action."""
        await self.tx.execute(
            "wf_instance_await_worker",
            self._params(instance_id=instance_id, owner=owner, action=action),
        )

    async def pending_actions(self, min_age: float, *, at: datetime) -> list[PendingAction]:
        """Steps due for at least ``min_age`` seconds that no worker has taken, by action."""
        rows = await self.tx.fetch_all(
            "wf_pending_actions",
            self._params(min_age=min_age, at=at, cutoff=at - timedelta(seconds=min_age)),
        )
        return [
            PendingAction(
                action=r["action"],
                steps=int(r["steps"]),
                due_since=r["due_since"],
                waiting_seconds=max(0.0, (at - r["due_since"]).total_seconds()),
            )
            for r in rows
        ]

    async def next_wake(self, *, at: datetime, actions: tuple[str, ...]) -> datetime | None:
        """When the next instance this worker could run becomes due (or a lease expires)."""
        row = await self.tx.fetch_one(
            "wf_next_wake", self._params(now=at, actions=Json(list(actions)))
        )
        value: datetime | None = None if row is None else row["wake_at"]
        return value

    async def horizon(self) -> tuple[int, int]:
        """(the tenant's read horizon, the snapshot's xmax) (see the wf_horizon query)."""
        row = await self.tx.fetch_one("wf_horizon", {"tenant_id": self.scope.tenant_id})
        assert row is not None
        return int(row["xmin"]), int(row["xmax"])

    async def update(
        self, instance: WorkflowInstance, *, expect_owner: str | None = None, **fields: Any
    ) -> PendingUpdate:
        """Compare-and-set on ``row_version``; ``await (...).saved()`` returns the stored row
        (statements sent in between share the round trip)."""
        values = {
            "status": instance.status.value,
            "step_index": instance.step_index,
            "state": instance.state,
            "attempts": instance.attempts,
            "last_error": instance.last_error,
            "wake_at": instance.wake_at,
            "event_cursor": instance.event_cursor,
            "ended_at": instance.ended_at,
            "lease_owner": None,
            "lease_expires_at": None,
            "action": instance.action,
            **fields,
        }
        pending = await self.tx.submit(
            "wf_instance_update",
            self._params(
                instance_id=instance.instance_id,
                status=InstanceStatus(values["status"]).value,
                step_index=values["step_index"],
                state=Json(values["state"]),
                attempts=values["attempts"],
                last_error=values["last_error"],
                wake_at=values["wake_at"],
                event_tx_id=values["event_cursor"][0],
                event_position=values["event_cursor"][1],
                lease_owner=values["lease_owner"],
                lease_expires_at=values["lease_expires_at"],
                ended_at=values["ended_at"],
                action=values["action"],
                row_version=instance.row_version,
                expect_owner=expect_owner,
                now=values.get("updated_at", instance.updated_at),
            ),
        )
        return PendingUpdate(instance, pending)

    async def add_history_batch(self, instance_id: str, entries: list[dict[str, Any]]) -> None:
        """Append history rows in order, in one statement."""
        if not entries:
            return
        await self.tx.send(
            "wf_history_insert_batch",
            self._params(
                instance_id=instance_id,
                entries=Json(history_items(entries)),
                now=utcnow(),
            ),
        )

    async def instances(
        self, *, workflow_id: str | None, status: str | None, limit: int
    ) -> list[WorkflowInstance]:
        """Instances, newest first, optionally of one workflow and one status."""
        rows = await self.tx.fetch_all(
            "wf_instance_list",
            self._params(workflow_id=workflow_id, status=status, limit=limit),
        )
        return [WorkflowInstance.from_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Instances by status."""
        rows = await self.tx.fetch_all("wf_instance_counts", self._params())
        return {r["status"]: int(r["n"]) for r in rows}

    async def history(self, instance_id: str) -> list[HistoryEntry]:
        rows = await self.tx.fetch_all("wf_history_list", self._params(instance_id=instance_id))
        return [HistoryEntry.from_row(r) for r in rows]


class PendingUpdate:
    __slots__ = ("_instance", "_pending")

    def __init__(self, instance: WorkflowInstance, pending: Pending) -> None:
        self._instance = instance
        self._pending = pending

    async def saved(self) -> WorkflowInstance:
        rows = await self._pending.rows()
        if not rows:
            raise StorageConflict(
                f"workflow instance {self._instance.instance_id!r} changed concurrently (row "
                f"version {self._instance.row_version})"
            )
        return WorkflowInstance.from_row(rows[0])


def save_statement(
    scope: TenantScope,
    instance: WorkflowInstance,
    *,
    new: bool,
    entries: list[dict[str, Any]],
    batch: JsonText,
    expect_owner: str | None = None,
    at_head: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The one statement (``wf_start`` or ``wf_save``) and parameters that write an instance
    with its history and events, to run in a transaction or in one trip."""
    common = {
        "tenant_id": scope.tenant_id,
        "owner_id": scope.owner_id,
        "instance_id": instance.instance_id,
        "status": instance.status.value,
        "step_index": instance.step_index,
        "state": Json(instance.state),
        "attempts": instance.attempts,
        "last_error": instance.last_error,
        "wake_at": instance.wake_at,
        "event_tx_id": instance.event_cursor[0],
        "event_position": instance.event_cursor[1],
        # A start may lease the instance to an executor; a saved transition releases it
        # unless the executor keeps it for the instance's next step.
        "lease_owner": instance.lease_owner,
        "lease_expires_at": instance.lease_expires_at,
        "ended_at": instance.ended_at,
        "action": instance.action,
        "entries": Json(history_items(entries)),
        "batch": batch,
    }
    if new:
        return "wf_start", {
            **common,
            "workflow_id": instance.workflow_id,
            "workflow_version": instance.workflow_version,
            "correlation_key": instance.correlation_key,
            "start_key": instance.start_key,
            "at_head": at_head,
            "now": instance.created_at,
        }
    return "wf_save", {
        **common,
        "row_version": instance.row_version,
        "expect_owner": expect_owner,
        "now": instance.updated_at,
    }


def history_items(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History entries as the JSON items the history insert queries read."""
    return [
        {
            "kind": e["kind"],
            "step_index": e.get("step_index"),
            "step_name": e.get("step_name"),
            "from_status": _status_value(e.get("from_status")),
            "to_status": _status_value(e["to_status"]),
            "event_id": e.get("event_id"),
            "actor": e.get("actor"),
            "detail": e.get("detail") or {},
        }
        for e in entries
    ]


def _status_value(status: InstanceStatus | str | None) -> str | None:
    return None if status is None else InstanceStatus(status).value
