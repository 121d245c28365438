"""Named SQL queries loaded from ``*.sql`` files: the shared ones and an adapter's own.

File format (one query per name, a one-line comment under the name)::

    -- name: health_check
    -- Cheapest round trip to the server.
    SELECT 1 AS ok;

Names are ``[a-z_][a-z0-9_]*`` and unique within a file. The text is kept verbatim (minus the
trailing semicolon); it is ``LiteralString`` in spirit: it comes from our package, never from
user input.

**Shared queries.** A query that reads the same in every dialect is written once, in
``cowork/storage/shared_queries/*.sql``, with psycopg's ``%(name)s`` placeholders (and no other
``%``, no ``:name``). An adapter package that declares its placeholder style in its
``__init__`` (``QUERY_PARAMSTYLE = "pyformat"`` for psycopg, ``"named"`` for sqlite3's
``:name``) gets them together with its own ``queries/*.sql`` files; for ``named`` they are
converted once, here, at load (``%(x)s`` becomes ``:x``, ``%%`` becomes ``%``). A name defined
both in a shared file and in a dialect file is an error at load: nothing silently overrides.

**Fragments.** SQL repeated in several queries (the event log's insert columns) is written
once, as a fragment, and included where it is needed with a ``{{name}}`` token::

    -- fragment: event_columns
    -- The columns of an event that every append supplies.
    tenant_id, event_id, event_type, aggregate_type, aggregate_id, payload, metadata,
    correlation_id, causation_id, occurred_at

    -- name: event_append
    -- Append one event.
    INSERT INTO cowork_event_log
        ({{event_columns}})
    VALUES (...);

Tokens are expanded at load, after the placeholder conversion, with the fragments of the shared
and the dialect files together; a fragment's second and later lines continue at the column of
its token, so the expanded text reads as if written in place. A fragment cannot include another
one, and an unknown fragment name is an error.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal, get_args

__all__ = [
    "SHARED_QUERIES",
    "ParamStyle",
    "QuerySet",
    "load_queries",
    "load_query_folders",
    "parse_queries",
]

ParamStyle = Literal["pyformat", "named"]

# Package and folder of the queries written once for every dialect.
SHARED_QUERIES = ("cowork.storage", "shared_queries")

_NAME_LINE = re.compile(r"^--\s*(name|fragment):\s*([a-z_][a-z0-9_]*)\s*$")
_SETTINGS_LINE = re.compile(r"^--\s*settings:\s*(.+)$")
_SETTING = re.compile(r"^[a-z_]+=[a-z0-9_]+$")
_TOKEN = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
# In shared text: a placeholder, an escaped percent sign, or what is neither (refused).
_SHARED_MARK = re.compile(r"%\(([a-z_][a-z0-9_]*)\)s|%%|%|(?<!:):(?=[A-Za-z_])")


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


@dataclass
class _File:
    """One file's queries, settings and fragments, tokens not yet expanded."""

    source: str
    queries: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    fragments: dict[str, str] = field(default_factory=dict)


def _parse(text: str, source: str) -> _File:
    parsed = _File(source)
    kind = name = None
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        settings = [m for m in (_SETTINGS_LINE.match(line.strip()) for line in body) if m]
        if kind == "fragment":
            if settings:
                raise ValueError(f"{source}: fragment {name!r} has a settings line")
            code = [line.rstrip() for line in body if not line.lstrip().startswith("--")]
            sql = textwrap.dedent("\n".join(code)).strip()
            if not sql:
                raise ValueError(f"{source}: fragment {name!r} is empty")
            parsed.fragments[name] = sql
            return
        for match in settings:
            pairs = [p.strip() for p in match.group(1).split(",") if p.strip()]
            if not all(_SETTING.match(p) for p in pairs):
                raise ValueError(f"{source}: query {name!r} has a malformed settings line")
            parsed.settings[name] = "; ".join(
                "SET LOCAL {} = {}".format(*p.split("=", 1)) for p in pairs
            )
        sql = "\n".join(line for line in body if not line.lstrip().startswith("--")).strip()
        sql = sql.rstrip(";").strip()
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        parsed.queries[name] = sql

    for line in text.splitlines():
        match = _NAME_LINE.match(line.strip())
        if match:
            flush()
            kind, name = match.groups()
            if name in (parsed.fragments if kind == "fragment" else parsed.queries):
                raise ValueError(f"{source}: {kind} {name!r} defined twice")
            body = []
        elif name is not None:
            body.append(line)
    flush()
    return parsed


def _expand(sql: str, fragments: dict[str, str], where: str) -> str:
    """``sql`` with each ``{{name}}`` replaced by that fragment, later lines at its column."""
    out: list[str] = []
    done = 0
    for match in _TOKEN.finditer(sql):
        fragment = fragments.get(match.group(1))
        if fragment is None:
            raise ValueError(f"{where} includes an unknown fragment {match.group(1)!r}")
        out.append(sql[done : match.start()])
        written = "".join(out)
        column = len(written) - (written.rfind("\n") + 1)
        out.append(fragment.replace("\n", "\n" + " " * column))
        done = match.end()
    out.append(sql[done:])
    expanded = "".join(out)
    if "{{" in expanded:
        raise ValueError(f"{where} has a malformed {{{{fragment}}}} token")
    return expanded


def _convert(text: str, style: ParamStyle, where: str) -> str:
    """Shared text (``%(name)s`` placeholders) in the placeholder style ``style``."""

    def one(match: re.Match[str]) -> str:
        mark = match.group(0)
        if match.group(1) is not None:
            return mark if style == "pyformat" else f":{match.group(1)}"
        if mark == "%%":
            return mark if style == "pyformat" else "%"
        found = "a lone '%' (write '%%')" if mark == "%" else "a ':name' placeholder"
        raise ValueError(f"{where}: shared SQL uses %(name)s placeholders only, found {found}")

    return _SHARED_MARK.sub(one, text)


def _convert_file(parsed: _File, style: ParamStyle) -> _File:
    return _File(
        parsed.source,
        {n: _convert(t, style, f"{parsed.source}: query {n!r}") for n, t in parsed.queries.items()},
        parsed.settings,
        {
            n: _convert(t, style, f"{parsed.source}: fragment {n!r}")
            for n, t in parsed.fragments.items()
        },
    )


def _assemble(source: str, files: list[_File]) -> QuerySet:
    """The files' queries, names unique across all of them, tokens expanded."""
    origin: dict[str, str] = {}
    fragment_origin: dict[str, str] = {}
    fragments: dict[str, str] = {}
    settings: dict[str, str] = {}
    for parsed in files:
        for name in parsed.queries:
            if name in origin:
                raise ValueError(
                    f"{parsed.source}: query {name!r} is also defined in {origin[name]}"
                )
            origin[name] = parsed.source
        for name, text in parsed.fragments.items():
            if name in fragment_origin:
                raise ValueError(
                    f"{parsed.source}: fragment {name!r} is also defined in {fragment_origin[name]}"
                )
            if _TOKEN.search(text):
                raise ValueError(f"{parsed.source}: fragment {name!r} includes a fragment")
            fragment_origin[name] = parsed.source
            fragments[name] = text
        settings.update(parsed.settings)
    queries = {
        name: _expand(sql, fragments, f"{parsed.source}: query {name!r}")
        for parsed in files
        for name, sql in parsed.queries.items()
    }
    return QuerySet(source, queries, settings)


def parse_queries(text: str, *, source: str = "<string>") -> QuerySet:
    """The queries of one file's text, with the fragments it defines expanded."""
    return _assemble(source, [_parse(text, source)])


def _read_folder(folder: Traversable, label: str) -> list[_File]:
    return [
        _parse(entry.read_text(encoding="utf-8"), f"{label}/{entry.name}")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".sql")
    ]


def load_query_folders(
    own: Traversable,
    *,
    shared: Traversable | None,
    paramstyle: ParamStyle,
    source: str,
    shared_source: str = "shared",
) -> QuerySet:
    """Every query of the ``*.sql`` files in ``own`` and (converted to ``paramstyle``) in
    ``shared``; a name defined twice anywhere is an error."""
    files = []
    if shared is not None:
        files = [_convert_file(f, paramstyle) for f in _read_folder(shared, shared_source)]
    return _assemble(source, [*files, *_read_folder(own, source)])


def _declared_paramstyle(package: str) -> ParamStyle | None:
    style: object = getattr(importlib.import_module(package), "QUERY_PARAMSTYLE", None)
    if style is None:
        return None
    if style == "pyformat":
        return "pyformat"
    if style == "named":
        return "named"
    raise ValueError(
        f"{package}.QUERY_PARAMSTYLE is {style!r}, not one of {', '.join(get_args(ParamStyle))}"
    )


def load_queries(package: str, folder: str = "queries") -> QuerySet:
    """Every query of every ``*.sql`` file in ``package/folder`` (names unique across files),
    and the shared queries when the package declares its ``QUERY_PARAMSTYLE``."""
    style = _declared_paramstyle(package)
    own = resources.files(package).joinpath(folder)
    source = f"{package}/{folder}"
    if style is None:
        return load_query_folders(own, shared=None, paramstyle="pyformat", source=source)
    shared_package, shared_folder = SHARED_QUERIES
    return load_query_folders(
        own,
        shared=resources.files(shared_package).joinpath(shared_folder),
        paramstyle=style,
        source=source,
        shared_source=f"{shared_package}/{shared_folder}",
    )
