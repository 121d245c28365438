"""Several statements as one simple-query text, parameters bound on the client.

psycopg's client-side cursor re-parses a query longer than its cache limit on every call; a
transaction script of several statements is always that long. Here each named query is split
once into literal text and parameter names, and a call only joins the parts with each value's
SQL literal (quoted by the same dumpers psycopg uses, so the text is what a client cursor sends).

A named query can also run as ``EXECUTE cowork_q_<name>(literals)`` of a statement prepared once
per connection: the simple protocol still carries the whole transaction in one message, and the
server plans the statement once per connection instead of on every call (planning the workflow
save took longer than running it: 0.67 ms against 0.54 ms, EXPLAIN ANALYZE on PostgreSQL 15).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.abc import Transformer

__all__ = ["Script", "ScriptCompiler", "prepared_name"]

_PLACEHOLDER = re.compile(r"%\(([a-z_][a-z0-9_]*)\)s")

# A template: literal bytes and parameter names in turn, always starting and ending with bytes.
_Template = tuple[tuple[bytes, ...], tuple[str, ...]]


def _template(query: str) -> _Template:
    pieces = _PLACEHOLDER.split(query)
    texts = tuple(piece.replace("%%", "%").encode() for piece in pieces[0::2])
    names = tuple(pieces[1::2])
    return texts, names


def prepared_name(query: str) -> str:
    return f"cowork_q_{query}"


def _prepare_text(name: str, query: str) -> tuple[bytes, tuple[str, ...]]:
    """``PREPARE`` for the query with its parameters numbered by first appearance."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    body = _PLACEHOLDER.sub(number, query).replace("%%", "%")
    return f"PREPARE {prepared_name(name)} AS {body}".encode(), tuple(order)


def _execute_template(name: str, params: tuple[str, ...]) -> _Template:
    head = f"EXECUTE {prepared_name(name)}"
    if not params:
        return (head.encode(),), ()
    texts = (f"{head}(".encode(), *([b", "] * (len(params) - 1)), b")")
    return texts, params


class Script:
    """A transaction's statements in order, ready to bind with a connection's adapters."""

    __slots__ = ("_templates", "_values", "prepared")

    def __init__(
        self,
        templates: list[_Template],
        values: list[Mapping[str, Any]],
        prepared: tuple[str, ...] = (),
    ) -> None:
        self._templates = templates
        self._values = values
        # The named queries this script EXECUTEs: prepare them on the connection first.
        self.prepared = prepared

    def bind(self, transformer: Transformer) -> bytes:
        out: list[bytes] = []
        literal = transformer.as_literal
        for (texts, names), values in zip(self._templates, self._values, strict=True):
            out.append(texts[0])
            for name, text in zip(names, texts[1:], strict=True):
                out.append(literal(values[name]))
                out.append(text)
            out.append(b";\n")
        return b"".join(out)


class ScriptCompiler:
    """Splits each query once; builds scripts of named queries and their parameters."""

    __slots__ = ("_executes", "_prepares", "_queries", "_templates", "unpreparable")

    def __init__(self, queries: Mapping[str, str]) -> None:
        self._queries = queries
        self._templates: dict[str, _Template] = {}
        self._prepares: dict[str, bytes] = {}
        self._executes: dict[str, _Template] = {}
        # Queries the server would not prepare (a parameter whose type it cannot infer):
        # those are sent inline.
        self.unpreparable: set[str] = set()

    def prepare(self, query: str) -> bytes:
        """The ``PREPARE`` statement for a named query."""
        found = self._prepares.get(query)
        if found is None:
            found, params = _prepare_text(query, self._queries[query])
            self._prepares[query] = found
            self._executes[query] = _execute_template(query, params)
        return found

    def _execute(self, query: str) -> _Template:
        found = self._executes.get(query)
        if found is None:
            self.prepare(query)
            found = self._executes[query]
        return found

    def template(self, query: str) -> _Template:
        found = self._templates.get(query)
        if found is None:
            found = self._templates[query] = _template(self._queries[query])
        return found

    def script(
        self,
        head: Sequence[tuple[str, Mapping[str, Any]]],
        statements: Sequence[tuple[str, Mapping[str, Any]]],
        tail: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        prepare: bool = True,
    ) -> Script:
        """``head`` and ``tail`` are raw SQL texts with their parameters (BEGIN, the tenant
        scope, COMMIT); ``statements`` are named queries, EXECUTEd when ``prepare`` (and the
        query could be prepared), else inline."""
        templates: list[_Template] = []
        values: list[Mapping[str, Any]] = []
        prepared: list[str] = []
        for text, params in head:
            templates.append(self._raw(text))
            values.append(params)
        for name, params in statements:
            if prepare and name not in self.unpreparable:
                templates.append(self._execute(name))
                if name not in prepared:
                    prepared.append(name)
            else:
                templates.append(self.template(name))
            values.append(params)
        for text, params in tail:
            templates.append(self._raw(text))
            values.append(params)
        return Script(templates, values, tuple(prepared))

    def _raw(self, text: str) -> _Template:
        key = "\0raw\0" + text
        found = self._templates.get(key)
        if found is None:
            found = self._templates[key] = _template(text)
        return found
