"""Event records: what a publisher hands in and what the log hands back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["EventEnvelope", "NewEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event to publish (used by ``publish_many`` and transactional publishing)."""

    event_type: str
    payload: Mapping[str, Any] | None = None
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    event_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEnvelope:
    """A stored event.

    ``position`` is the event's global sequence number. Reads deliver a tenant's events in
    commit order, which on PostgreSQL can differ from position order when transactions commit
    out of order; a reader that has seen an event never later finds one that commits before it.
    """

    event_id: str
    tenant_id: str
    position: int
    event_type: str
    aggregate_type: str | None
    aggregate_id: str | None
    payload: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str | None
    causation_id: str | None
    # Commit-order cursor component (PostgreSQL transaction id; 0 on SQLite). Internal.
    tx_id: int = field(default=0, repr=False, compare=False)

    @property
    def cursor(self) -> tuple[int, int]:
        """Where this event sits in commit order: ``(tx_id, position)``."""
        return (self.tx_id, self.position)
