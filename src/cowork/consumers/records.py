"""Durable consumer records: a consumer as its holder and its operators see it, parked events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cowork.events.log import Cursor
from cowork.storage.port import Row
from cowork.storage.records import from_row

__all__ = ["ConsumerCheckpoint", "ConsumerInfo", "ParkedEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerCheckpoint:
    """What a consumer's holder reads of its row: the pattern it was registered with, where
    it has got to, and the generation that fences its checkpoint writes."""

    pattern: str
    cursor: Cursor
    generation: int

    @classmethod
    def from_row(cls, row: Row) -> ConsumerCheckpoint:
        return cls(
            pattern=row["pattern"],
            cursor=(row["last_tx_id"], row["last_position"]),
            generation=row["generation"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerInfo:
    consumer_id: str
    pattern: str
    last_position: int
    lag: int
    parked: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ConsumerInfo:
        return from_row(cls, row)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkedEvent:
    consumer_id: str
    position: int
    event_id: str
    event_type: str | None
    attempts: int
    last_error: str
    status: str
    parked_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> ParkedEvent:
        return from_row(cls, row)
