"""Rows into records: a frozen dataclass built from a query's row, each field read from the
column of the same name unless the caller gives it (a renamed column, a converted value)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from cowork.storage.port import Row

__all__ = ["from_row"]

R = TypeVar("R")


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return names


def from_row(cls: type[R], row: Row, **given: Any) -> R:
    """``cls(**fields)``: ``given`` values first, the rest from ``row[field name]``."""
    values = {name: row[name] for name in _field_names(cls) if name not in given}
    return cls(**values, **given)
