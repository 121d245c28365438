"""The event log: validating, sanitising, appending and reading events through the port.

These functions work inside a transaction the caller owns, so a domain operation appends its
events in the same transaction as its state change (transactional outbox).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cowork.arguments import timestamp_arg
from cowork.errors import NotFound, ValidationError
from cowork.events.envelope import EventEnvelope, NewEvent
from cowork.events.patterns import validate_event_type
from cowork.events.sanitize import (
    DEFAULT_POLICY,
    SanitizePolicy,
    record_truncation,
    sanitize_object_encoded,
)
from cowork.ids import new_id
from cowork.storage.port import Database, Json, JsonText, Pending, Row, Transaction
from cowork.tenancy import validate_id, validate_limit

__all__ = [
    "Appended",
    "Cursor",
    "PendingAppend",
    "PreparedEvent",
    "append_alone",
    "append_events",
    "count_events",
    "cursor_of_position",
    "envelope_from_row",
    "event_at_position",
    "existing_events",
    "head_cursor",
    "prepare_and_append",
    "prepare_event",
    "read_events",
    "read_events_before",
    "submit_append",
]

Cursor = tuple[int, int]  # (tx_id, position) in commit order
START: Cursor = (0, 0)
END: Cursor = (2**63 - 1, 2**63 - 1)  # after every event: "before END" is the end of the log
MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event that passed validation and sanitisation, ready to append."""

    event_id: str
    event_type: str
    aggregate_type: str | None
    aggregate_id: str | None
    payload: dict[str, Any]
    metadata: dict[str, Any]
    correlation_id: str | None
    causation_id: str | None
    occurred_at: datetime
    payload_json: str  # the payload's and metadata's JSON text, encoded once by the sanitiser
    metadata_json: str

    def params(self, tenant_id: str, now: datetime) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "payload": JsonText(self.payload_json),
            "metadata": JsonText(self.metadata_json),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "occurred_at": self.occurred_at,
            "now": now,
        }

    def batch_item(self) -> str:
        """This event as one JSON object of a batch. Written by hand around the encoded
        payload and metadata: every other value is a validated id or type (letters, digits
        and ``._:@/+=-``, nothing JSON must escape) or a timestamp."""
        return (
            f'{{"event_id":"{self.event_id}","event_type":"{self.event_type}",'
            f'"aggregate_type":{_quoted(self.aggregate_type)},'
            f'"aggregate_id":{_quoted(self.aggregate_id)},'
            f'"payload":{self.payload_json},"metadata":{self.metadata_json},'
            f'"correlation_id":{_quoted(self.correlation_id)},'
            f'"causation_id":{_quoted(self.causation_id)},'
            # ISO 8601 with microseconds and offset: PostgreSQL's timestamptz input and
            # SQLite's converter (fromisoformat) both read it.
            f'"occurred_at":"{self.occurred_at.isoformat(timespec="microseconds")}"}}'
        )

    def envelope(self, tenant_id: str, row: Mapping[str, Any]) -> EventEnvelope:
        return EventEnvelope(
            event_id=self.event_id,
            tenant_id=tenant_id,
            position=row["position"],
            event_type=self.event_type,
            aggregate_type=self.aggregate_type,
            aggregate_id=self.aggregate_id,
            payload=self.payload,
            metadata=self.metadata,
            occurred_at=self.occurred_at,
            recorded_at=row["recorded_at"],
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            tx_id=row["tx_id"],
        )


def _quoted(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _optional_id(value: object, what: str) -> str | None:
    return None if value is None else validate_id(value, what, max_length=200)


def prepare_event(
    event: NewEvent, *, policy: SanitizePolicy = DEFAULT_POLICY, now: datetime | None = None
) -> PreparedEvent:
    """Validate names and ids, sanitise payload and metadata, fill the event id and time.

    ``policy`` sets the limits and extra secret keys; a value over a limit is rejected unless
    ``policy.truncate``, and then the metadata lists every path cut (``"truncated"``)."""
    if event.occurred_at is not None:
        occurred = timestamp_arg(event.occurred_at, "occurred_at")
    else:
        occurred = now or datetime.now(UTC)
    payload = sanitize_object_encoded(event.payload, policy=policy, what="payload")
    metadata = sanitize_object_encoded(event.metadata, policy=policy, what="metadata")
    if payload.truncated or metadata.truncated:
        metadata = record_truncation(
            metadata, payload.truncated + metadata.truncated, policy=policy
        )
    return PreparedEvent(
        event_id=new_id() if event.event_id is None else validate_id(event.event_id, "event_id"),
        event_type=validate_event_type(event.event_type),
        aggregate_type=_optional_id(event.aggregate_type, "aggregate_type"),
        aggregate_id=_optional_id(event.aggregate_id, "aggregate_id"),
        payload=payload.value,
        metadata=metadata.value,
        correlation_id=_optional_id(event.correlation_id, "correlation_id"),
        causation_id=_optional_id(event.causation_id, "causation_id"),
        occurred_at=occurred.astimezone(UTC),
        payload_json=payload.text,
        metadata_json=metadata.text,
    )


def envelope_from_row(row: Row) -> EventEnvelope:
    return EventEnvelope(
        event_id=row["event_id"],
        tenant_id=row["tenant_id"],
        position=row["position"],
        event_type=row["event_type"],
        aggregate_type=row["aggregate_type"],
        aggregate_id=row["aggregate_id"],
        payload=row["payload"],
        metadata=row["metadata"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        tx_id=row["tx_id"],
    )


@dataclass(frozen=True, slots=True)
class Appended:
    """Result of an append: one envelope per event given, and which of them are new."""

    envelopes: list[EventEnvelope]
    new: list[EventEnvelope]


async def append_events(
    tx: Transaction, tenant_id: str, events: Sequence[PreparedEvent]
) -> Appended:
    """Append in order; an event id already stored yields the stored (original) envelope and
    is not new (so it is not dispatched again)."""
    return await (await submit_append(tx, tenant_id, events)).finish()


async def append_alone(
    database: Database, tenant_id: str, event: PreparedEvent, now: datetime
) -> EventEnvelope | None:
    """Append one event in a transaction of its own (one round trip on PostgreSQL): its
    envelope, or None when its id was stored before. After-commit work is the caller's."""
    rows = await database.run_alone(
        "event_append_alone", event.params(tenant_id, now), tenant_id=tenant_id
    )
    return event.envelope(tenant_id, rows[0]) if rows else None


async def prepare_and_append(
    tx: Transaction,
    tenant_id: str,
    events: Sequence[NewEvent],
    *,
    policy: SanitizePolicy = DEFAULT_POLICY,
    chunk: int = 100,
) -> Appended:
    """Prepare (validate, sanitise with ``policy``) and append ``events`` in order, streaming
    them in chunks: the database inserts one chunk while the next is prepared, and all
    replies are read at the end. A rejected event raises before the caller commits, so
    nothing is appended."""
    prepared: list[PreparedEvent] = []
    pending: list[PendingAppend] = []
    for start in range(0, len(events), chunk):
        part = [prepare_event(e, policy=policy) for e in events[start : start + chunk]]
        prepared.extend(part)
        pending.append(await submit_append(tx, tenant_id, part))
    if len(pending) == 1:
        return await pending[0].finish()
    rows: list[Row] = []
    for item in pending:
        rows.extend(await item.rows())
    return await _appended(tx, tenant_id, prepared, rows, batch=True)


class PendingAppend:
    """An append sent to the database; :meth:`finish` reads what it stored."""

    __slots__ = ("_events", "_pending", "_tenant_id", "_tx")

    def __init__(
        self,
        tx: Transaction,
        tenant_id: str,
        events: Sequence[PreparedEvent],
        pending: Pending | None,
    ) -> None:
        self._tx = tx
        self._tenant_id = tenant_id
        self._events = events
        self._pending = pending

    async def rows(self) -> list[Row]:
        return [] if self._pending is None else await self._pending.rows()

    async def finish(self) -> Appended:
        if self._pending is None:
            return Appended([], [])
        rows = await self._pending.rows()
        return await _appended(
            self._tx, self._tenant_id, self._events, rows, batch=len(self._events) > 1
        )


async def submit_append(
    tx: Transaction, tenant_id: str, events: Sequence[PreparedEvent]
) -> PendingAppend:
    """Start :func:`append_events`; statements sent before ``finish`` share its round trip."""
    if not events:
        return PendingAppend(tx, tenant_id, events, None)
    now = datetime.now(UTC)
    if len(events) == 1:
        pending = await tx.submit("event_append", events[0].params(tenant_id, now))
    else:
        pending = await tx.submit(
            "event_append_batch",
            {
                "tenant_id": tenant_id,
                "batch": batch_json(events),
                "now": now,
            },
        )
    return PendingAppend(tx, tenant_id, events, pending)


def batch_json(events: Sequence[PreparedEvent]) -> JsonText:
    """The events as one JSON array parameter (the ``batch`` of event_append_batch)."""
    return JsonText(f"[{','.join([e.batch_item() for e in events])}]")


async def appended_from(
    tx: Transaction, tenant_id: str, events: Sequence[PreparedEvent], stored: list[Any]
) -> Appended:
    """What a statement that appended ``events`` stored, from its ``[event_id, position,
    tx_id, recorded_at]`` items (JSON): events it skipped were stored before."""
    rows: list[Row] = [
        {
            "event_id": item[0],
            "position": item[1],
            "tx_id": item[2],
            "recorded_at": datetime.fromisoformat(item[3]),
        }
        for item in stored
    ]
    return await _appended(tx, tenant_id, events, rows, batch=True)


async def _appended(
    tx: Transaction,
    tenant_id: str,
    events: Sequence[PreparedEvent],
    rows: list[Row],
    *,
    batch: bool,
) -> Appended:
    if not batch:
        event = events[0]
        if rows:
            envelope = event.envelope(tenant_id, rows[0])
            return Appended([envelope], [envelope])
        existing = await existing_events(tx, tenant_id, [event.event_id])
        return Appended([existing[event.event_id]], [])
    inserted = {r["event_id"]: r for r in rows}
    missing = [e.event_id for e in events if e.event_id not in inserted]
    existing = await existing_events(tx, tenant_id, missing) if missing else {}
    result: list[EventEnvelope] = []
    new: list[EventEnvelope] = []
    for event in events:
        row = inserted.pop(event.event_id, None)
        if row is not None:
            envelope = event.envelope(tenant_id, row)
            new.append(envelope)
        else:  # stored before, or earlier in this same batch
            envelope = existing.get(event.event_id) or next(
                e for e in result if e.event_id == event.event_id
            )
        result.append(envelope)
    return Appended(result, new)


async def existing_events(
    tx: Transaction, tenant_id: str, event_ids: list[str]
) -> dict[str, EventEnvelope]:
    rows = await tx.fetch_all(
        "event_get_by_ids", {"tenant_id": tenant_id, "event_ids": Json(sorted(set(event_ids)))}
    )
    return {r["event_id"]: envelope_from_row(r) for r in rows}


async def event_at_position(tx: Transaction, tenant_id: str, position: int) -> EventEnvelope | None:
    """The stored event at ``position``, if any."""
    row = await tx.fetch_one(
        "event_get_by_position", {"tenant_id": tenant_id, "position": position}
    )
    return None if row is None else envelope_from_row(row)


async def count_events(tx: Transaction, tenant_id: str) -> int:
    """How many events the tenant's log holds."""
    row = await tx.fetch_one("event_count", {"tenant_id": tenant_id})
    return 0 if row is None else int(row["n"])


async def read_events(
    tx: Transaction, tenant_id: str, after: Cursor = START, limit: int = 500
) -> list[EventEnvelope]:
    """A page of events after ``after`` in commit order (gap-free on PostgreSQL)."""
    validate_limit(limit, maximum=MAX_PAGE)
    rows = await tx.fetch_all(
        "event_read_after",
        {"tenant_id": tenant_id, "after_tx": after[0], "after_position": after[1], "limit": limit},
    )
    return [envelope_from_row(r) for r in rows]


async def read_events_before(
    tx: Transaction, tenant_id: str, before: Cursor = END, limit: int = 500
) -> list[EventEnvelope]:
    """The page of up to ``limit`` events just before ``before``, in commit order (oldest
    first); an index scan backwards from ``before`` reads only those rows. On PostgreSQL only
    events below the tenant's commit horizon, so the newest one is a gap-free cursor to follow
    on from with :func:`read_events`."""
    validate_limit(limit, maximum=MAX_PAGE)
    rows = await tx.fetch_all(
        "event_read_before",
        {
            "tenant_id": tenant_id,
            "before_tx": before[0],
            "before_position": before[1],
            "limit": limit,
        },
    )
    return [envelope_from_row(r) for r in reversed(rows)]


async def cursor_of_position(tx: Transaction, tenant_id: str, position: int) -> Cursor:
    """The cursor just at ``position`` (0 means the start of the log)."""
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise ValidationError(f"position must be a non-negative integer, got {position!r}")
    if position == 0:
        return START
    row = await tx.fetch_one(
        "event_cursor_of_position", {"tenant_id": tenant_id, "position": position}
    )
    if row is None:
        raise NotFound(f"no event at position {position} in tenant {tenant_id!r}'s log")
    return (row["tx_id"], row["position"])


async def head_cursor(tx: Transaction, tenant_id: str) -> Cursor:
    """The cursor of the last event a reader can see now (START for an empty log)."""
    row = await tx.fetch_one("event_head", {"tenant_id": tenant_id})
    return START if row is None else (row["tx_id"], row["position"])
