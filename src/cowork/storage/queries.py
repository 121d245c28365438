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
_SETTINGS_LINE = re.compile(r"^--\s*settings:\s*(.+)$")
_SETTING = re.compile(r"^[a-z_]+=[a-z0-9_]+$")


class QuerySet(dict[str, str]):
    """Query text by name; a missing name is a programming error that says which file.

    ``settings`` holds planner settings a query asks for with a ``-- settings: a=b, c=d``
    line (applied with SET LOCAL in the query's transaction by adapters that support it)."""

    def __init__(
        self, source: str, queries: dict[str, str], settings: dict[str, str] | None = None
    ) -> None:
        super().__init__(queries)
        self.source = source
        self.settings = settings or {}

    def __missing__(self, key: str) -> str:
        raise KeyError(f"no query named {key!r} in {self.source}")


def parse_queries(text: str, *, source: str = "<string>") -> QuerySet:
    queries: dict[str, str] = {}
    settings: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        for line in body:
            match = _SETTINGS_LINE.match(line.strip())
            if match:
                pairs = [p.strip() for p in match.group(1).split(",") if p.strip()]
                if not all(_SETTING.match(p) for p in pairs):
                    raise ValueError(f"{source}: query {name!r} has a malformed settings line")
                settings[name] = "; ".join(
                    "SET LOCAL {} = {}".format(*p.split("=", 1)) for p in pairs
                )
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
    return QuerySet(source, queries, settings)


def load_queries(package: str, folder: str = "queries") -> QuerySet:
    """Every query of every ``*.sql`` file in ``package/folder`` (names unique across files)."""
    merged: dict[str, str] = {}
    settings: dict[str, str] = {}
    directory = resources.files(package).joinpath(folder)
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        source = f"{package}/{folder}/{entry.name}"
        parsed = parse_queries(entry.read_text(encoding="utf-8"), source=source)
        for name, sql in parsed.items():
            if name in merged:
                raise ValueError(f"{source}: query {name!r} is also defined in another file")
            merged[name] = sql
        settings.update(parsed.settings)
    return QuerySet(f"{package}/{folder}", merged, settings)
