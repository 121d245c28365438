"""Named SQL queries loaded from an adapter's ``queries/*.sql`` files.

File format (one query per name, a one-line comment under the name)::

    -- name: health_check
    -- Cheapest round trip to the server.
    SELECT 1 AS ok;

Names are ``[a-z_][a-z0-9_]*`` and unique within a file. The text is kept verbatim (minus the
trailing semicolon); it is ``LiteralString`` in spirit: it comes from our package, never from
user input.
"""

from __future__ import annotations

import re
from importlib import resources

__all__ = ["QuerySet", "load_queries", "parse_queries"]

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")


class QuerySet(dict[str, str]):
    """Query text by name; a missing name is a programming error that says which file."""

    def __init__(self, source: str, queries: dict[str, str]) -> None:
        super().__init__(queries)
        self.source = source

    def __missing__(self, key: str) -> str:
        raise KeyError(f"no query named {key!r} in {self.source}")


def parse_queries(text: str, *, source: str = "<string>") -> QuerySet:
    queries: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        sql = "\n".join(line for line in body if not line.lstrip().startswith("--")).strip()
        sql = sql.rstrip(";").strip()
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        queries[name] = sql

    for line in text.splitlines():
        match = _NAME_LINE.match(line.strip())
        if match:
            flush()
            name = match.group(1)
            if name in queries:
                raise ValueError(f"{source}: query {name!r} defined twice")
            body = []
        elif name is not None:
            body.append(line)
    flush()
    return QuerySet(source, queries)


def load_queries(package: str, folder: str = "queries") -> QuerySet:
    """Every query of every ``*.sql`` file in ``package/folder`` (names unique across files)."""
    merged: dict[str, str] = {}
    directory = resources.files(package).joinpath(folder)
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        source = f"{package}/{folder}/{entry.name}"
        for name, sql in parse_queries(entry.read_text(encoding="utf-8"), source=source).items():
            if name in merged:
                raise ValueError(f"{source}: query {name!r} is also defined in another file")
            merged[name] = sql
    return QuerySet(f"{package}/{folder}", merged)
