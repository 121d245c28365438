"""How the PostgreSQL adapter sends :class:`Json` and :class:`JsonText` values: as ``jsonb``."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import DictRow

from cowork.jsontext import dumps
from cowork.storage.port import Json, JsonText

__all__ = ["configure_json"]


class _JsonDumper(Dumper):
    """Dumps :class:`Json` as ``jsonb`` text: lists stay JSON arrays, never PG arrays."""

    format = Format.TEXT

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self.oid = self._get_jsonb_oid()

    @staticmethod
    def _get_jsonb_oid() -> int:
        info = psycopg.adapters.types.get("jsonb")
        assert info is not None
        return info.oid

    def dump(self, obj: Any) -> bytes:
        try:
            return dumps(obj.value).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise psycopg.DataError(f"value is not JSON-serialisable: {exc}") from None


class _JsonTextDumper(_JsonDumper):
    """Dumps :class:`JsonText` (encoded already) as ``jsonb``."""

    def dump(self, obj: Any) -> bytes:
        text: str = obj.text
        return text.encode("utf-8")


async def configure_json(conn: psycopg.AsyncConnection[DictRow]) -> None:
    """Register the jsonb dumpers on a new connection (the pool's configure callback)."""
    conn.adapters.register_dumper(Json, _JsonDumper)
    conn.adapters.register_dumper(JsonText, _JsonTextDumper)
