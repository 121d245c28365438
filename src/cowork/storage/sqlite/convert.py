"""Value conversion between Python and the SQLite column types JSONTEXT, TIMESTAMPTEXT, BOOLINT.

Timestamps are stored as fixed-width ISO-8601 UTC text (``2026-01-02T03:04:05.000006Z``), so
text order is time order and SQL comparisons on them are correct.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cowork.jsontext import dumps
from cowork.storage.port import Json, JsonText

__all__ = ["encode_params", "format_timestamp", "register_converters"]

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the storage layer; use an aware UTC datetime")
    return value.astimezone(UTC).strftime(_TS_FORMAT)


def _parse_timestamp(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode("ascii"))


def _parse_json(raw: bytes) -> Any:
    return json.loads(raw)


def _parse_bool(raw: bytes) -> bool:
    return raw not in (b"0", b"")


def register_converters() -> None:
    """Register the column converters (idempotent; names are specific to Cowork's schema)."""
    sqlite3.register_converter("JSONTEXT", _parse_json)
    sqlite3.register_converter("TIMESTAMPTEXT", _parse_timestamp)
    sqlite3.register_converter("BOOLINT", _parse_bool)


def _encode(value: Any) -> Any:
    if isinstance(value, Json):
        return dumps(value.value)
    if isinstance(value, JsonText):
        return value.text
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value


def encode_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if not params:
        return {}
    return {key: _encode(value) for key, value in params.items()}
