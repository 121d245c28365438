"""Row factories: dicts keyed by column name, without building psycopg ``Column`` objects.

psycopg's ``dict_row`` reads ``cursor.description``, which creates a ``Column`` per column for
every result; on a script of several statements that is most of the client cost of reading
the results. The names come straight from the result here (the database encoding is UTF-8;
the migrations create nothing else).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor
from psycopg.pq import ExecStatus
from psycopg.rows import RowMaker

__all__ = ["names_row", "returns_rows"]


def names_row(cursor: AsyncCursor[Any]) -> RowMaker[dict[str, Any]]:
    result = cursor.pgresult
    if result is None or not result.nfields:
        return _no_row
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)]

    def make(values: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(names, values, strict=True))

    return make


def returns_rows(cursor: AsyncCursor[Any]) -> bool:
    result = cursor.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK


def _no_row(_values: Sequence[Any]) -> dict[str, Any]:
    raise TypeError("the statement returned no rows")
