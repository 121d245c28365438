"""Hypothesis strategies for hostile input: ids, keys, names, texts, payloads, junk types.

Every strategy that can produce an invalid value yields ``Arg(value, valid)`` so that a test
can tell "this call must succeed" (every argument valid) from "this call may be refused".
Validity here is the documented contract, not the implementation: an identifier is
``[A-Za-z0-9][A-Za-z0-9._:@/+=-]*`` up to 128 characters (``cowork.tenancy``), an event name
follows the grammar in ``cowork.events.patterns``, a stored JSON document is plain JSON with
finite floats, string keys, no NUL, no lone surrogate, no cycle and under the size cap.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "INJECTIONS",
    "Arg",
    "event_names",
    "hostile_text",
    "ids",
    "is_plain_json",
    "junk",
    "keys",
    "labels",
    "optional",
    "patterns",
    "payloads",
    "positive_ints",
]

#: SQL and format-string injection attempts, quoting and escaping edge cases.
INJECTIONS: tuple[str, ...] = (
    "'; DROP TABLE cowork_event_log; --",
    "'; DROP TABLE cowork_workspace_state; --",
    '"; DELETE FROM cowork_blackboard_entry; --',
    "' OR '1'='1",
    "' OR tenant_id = 'sentinel' --",
    "sentinel' --",
    "x' UNION SELECT * FROM cowork_event_log --",
    "1; SELECT pg_sleep(5); --",
    "%s",
    "%%s",
    "%(x)s",
    "%(tenant_id)s",
    "%(workspace_id)s",
    "%(payload)s",
    ":name",
    ":tenant_id",
    "?",
    "??",
    "$1",
    "$$",
    "$tag$ x $tag$",
    "\\",
    "\\\\",
    "\\'",
    "\\x00",
    "\\u0000",
    "''",
    "'",
    '"',
    "`",
    "--",
    "/*",
    "*/",
    "%",
    "_",
    "%_%",
    "*",
    "[^a]",
    "{}",
    "[]",
    "null",
    "NULL",
    "true",
    "${secret:PGPASSWORD}",
    "{{ tenant_id }}",
    "\u2028\u2029",
    "\ufeffbom",
    "e\u0301",
    "\u00e9",
    "\U0001d518\U0001d52b\U0001d526",
    "\U0001f600",
    "a\tb",
    "line\nbreak",
    "\r\n",
    "sentinel",
    "Sentinel",
    "sentinel ",
    " sentinel",
)

_LONE_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_ID_ALPHABET = "abcXYZ019._:@/+=-"


@dataclass(frozen=True, slots=True)
class Arg:
    """A drawn argument and whether the documented contract accepts it."""

    value: Any
    valid: bool | None  # None: depends on state (e.g. a version that may or may not exist)


@functools.cache
def _plain_text() -> st.SearchStrategy[str]:
    """Any text PostgreSQL and SQLite can store: no NUL, no lone surrogate."""
    return st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        min_size=1,
        max_size=40,
    )


@functools.cache
def hostile_text() -> st.SearchStrategy[str]:
    """Strings of every kind, valid or not (NUL, lone surrogates, injections, huge)."""
    return st.one_of(
        st.sampled_from(INJECTIONS),
        _plain_text(),
        st.text(max_size=20),
        st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=5), st.text(max_size=5)),
        st.builds(lambda a, s: a + s, st.text(max_size=5), _LONE_SURROGATES),
        st.builds(lambda a, b: a + b, st.sampled_from(INJECTIONS), st.sampled_from(INJECTIONS)),
        st.sampled_from(["", " ", "\t", "\n", "   "]),
        st.builds(lambda n: "x" * n, st.sampled_from([127, 128, 129, 200, 201, 256, 257, 5000])),
    )


@functools.cache
def _valid_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,24}\Z"),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from("aZ9"),
            st.text(_ID_ALPHABET, max_size=12),
        ),
        st.sampled_from(
            [
                "sentinel",
                "sentinel:x",
                "a/../sentinel",
                "x=1",
                "a+b@c",
                "0",
                "a" * 128,
                "x:DROP",
                "a--",
                "a/b",
            ]
        ),
    )


def _id_valid(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 128
        and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]*", value) is not None
    )


@functools.cache
def junk() -> st.SearchStrategy[Any]:
    """Values of the wrong type for a string or number argument."""
    return st.one_of(
        st.none(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.booleans(),
        st.binary(max_size=8),
        st.lists(st.text(max_size=3), max_size=2),
        st.sampled_from(
            [
                object(),
                {"a": 1},
                (1, 2),
                {1, 2},
                b"bytes",
                bytearray(b"x"),
                Decimal("1.5"),
                dt.datetime(2024, 1, 1),
                uuid.UUID(int=1),
            ]
        ),
    )


@functools.cache
def ids(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    """Identifiers: valid ones (``clean``), or also hostile strings and wrong types."""
    valid = _valid_ids().map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        hostile_text().map(lambda v: Arg(v, _id_valid(v))),
        junk().map(lambda v: Arg(v, False)),
    )


def _text_valid(value: object, limit: int) -> bool:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def texts(limit: int, *, clean: bool = False) -> st.SearchStrategy[Arg]:
    """Free text (names, descriptions, bodies) up to ``limit`` characters."""
    valid = st.one_of(
        _plain_text().filter(lambda v: _text_valid(v, limit)),
        st.sampled_from([v for v in INJECTIONS if _text_valid(v, limit)]),
        st.sampled_from(["x" * limit, " padded ", "multi\nline\ttext"]),
    ).map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        hostile_text().map(lambda v: Arg(v, _text_valid(v, limit))),
        st.just(Arg("x" * (limit + 1), False)),
        junk().map(lambda v: Arg(v, False)),
    )


def _key_valid(value: object, limit: int = 256) -> bool:
    if not _text_valid(value, limit):
        return False
    assert isinstance(value, str)
    return not any(ord(c) < 0x20 or c == "\x7f" for c in value)


@functools.cache
def keys(limit: int = 256, *, clean: bool = False) -> st.SearchStrategy[Arg]:
    """Artifact keys and labels: any printable, valid Unicode text (injections included)."""
    valid = st.one_of(
        st.sampled_from([v for v in INJECTIONS if _key_valid(v, limit)]),
        st.sampled_from(["a", "A", "a ", " a", "\u00e9", "e\u0301", "k", "K", "x" * limit]),
        _plain_text().filter(lambda v: _key_valid(v, limit)),
    ).map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        hostile_text().map(lambda v: Arg(v, _key_valid(v, limit))),
        junk().map(lambda v: Arg(v, False)),
    )


def labels(limit: int = 100, *, clean: bool = False) -> st.SearchStrategy[Arg]:
    return keys(limit, clean=clean)


@functools.cache
def optional(strategy: st.SearchStrategy[Arg]) -> st.SearchStrategy[Arg]:
    """``strategy`` or None; None is valid for an optional argument whatever drew it."""
    return st.one_of(st.just(Arg(None, True)), strategy).map(
        lambda a: Arg(None, True) if a.value is None else a
    )


_SEGMENT = r"[a-z0-9][a-z0-9_.-]{0,8}"


def _event_valid(value: object, *, pattern: bool) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        return False
    segment = r"(?:[a-z0-9][a-z0-9_.-]*|\*)" if pattern else r"[a-z0-9][a-z0-9_.-]*"
    return re.fullmatch(rf"{segment}(?::{segment})*", value) is not None


@functools.cache
def event_names(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    """Event types: valid names (including the catalogue's) and hostile strings."""
    valid = st.one_of(
        st.from_regex(rf"\A{_SEGMENT}(:{_SEGMENT}){{0,3}}\Z"),
        st.sampled_from(
            [
                "workspace:created",
                "workspace:member:added",
                "blackboard:entry:created",
                "feedback:added",
                "workflow:started",
                "hostile:thing",
                "x",
                "0:0",
                "a.b-c_d:e",
                "a" * 200,
            ]
        ),
    ).map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        hostile_text().map(lambda v: Arg(v, _event_valid(v, pattern=False))),
        st.sampled_from(
            ["Workspace:Created", "a::b", ":a", "a:", "a:*", "*", "a b", "a" * 201]
        ).map(lambda v: Arg(v, False)),
        junk().map(lambda v: Arg(v, False)),
    )


@functools.cache
def patterns(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    """Subscription patterns: valid ones with wildcards, and hostile strings."""
    valid = st.one_of(
        st.from_regex(rf"\A({_SEGMENT}|\*)(:({_SEGMENT}|\*)){{0,3}}\Z"),
        st.sampled_from(["*", "workspace:*", "*:created", "workspace:*:added", "hostile:*"]),
    ).map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        hostile_text().map(lambda v: Arg(v, _event_valid(v, pattern=True))),
        st.sampled_from(["work*", "**", "?", "[a]", "a:**", ".*", "%", "_"]).map(
            lambda v: Arg(v, False)
        ),
        junk().map(lambda v: Arg(v, False)),
    )


@functools.cache
def positive_ints(*, clean: bool = False) -> st.SearchStrategy[Arg]:
    """Versions and positions: small valid ones, and zero, negatives, huge, bools, junk."""
    valid = st.integers(1, 6).map(lambda v: Arg(v, True))
    if clean:
        return valid
    return st.one_of(
        valid,
        st.sampled_from([0, -1, -(2**63), 2**31, 2**63, 2**64, 2**70]).map(lambda v: Arg(v, None)),
        st.sampled_from([True, False, 1.0, 2.5, "1", None, float("nan")]).map(
            lambda v: Arg(v, False)
        ),
    )


class Drawer:
    """Draws a case's arguments at one hostility level, chosen per case: ``clean`` (every
    argument valid by contract, though full of injection strings), ``mixed`` (each argument
    is hostile with probability 1/4) or ``chaos`` (everything may be hostile)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.mode = data.draw(st.sampled_from(["clean", "clean", "mixed", "chaos"]))

    def _clean(self) -> bool:
        if self.mode == "clean":
            return True
        if self.mode == "chaos":
            return False
        return bool(self.data.draw(st.integers(0, 3)) > 0)

    def __call__(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
        return self.data.draw(factory(*args, clean=self._clean(), **kwargs))

    def opt(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
        """An optional argument: None or ``factory``'s value."""
        return self.data.draw(optional(factory(*args, clean=self._clean(), **kwargs)))

    def raw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.data.draw(strategy)


# -- payloads ------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: str


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.integers(),  # beyond 64 bits too
    st.sampled_from([2**63 - 1, 2**63, -(2**63), 2**64, 10**40, -(10**40)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1e16, 1e-300, 5e-324, 1.7976931348623157e308, 123.0]),
    _plain_text(),
    st.sampled_from(INJECTIONS),
)

_HOSTILE_LEAVES = st.one_of(
    _JSON_LEAVES,
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.text(max_size=8),
    st.builds(lambda a: a + "\x00", st.text(max_size=4)),
    st.builds(lambda a, s: a + s, st.text(max_size=4), _LONE_SURROGATES),
    st.sampled_from(
        [
            b"bytes",
            bytearray(b"ba"),
            memoryview(b"mv"),
            object(),
            complex(1, 2),
            {1, 2},
            frozenset({"a"}),
            (1, "two"),
            range(3),
            Decimal("1.25"),
            Decimal("NaN"),
            uuid.UUID(int=7),
            Colour.RED,
            Point(1, "y"),
            dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
            dt.datetime(2024, 5, 6, 7, 8, 9),
            dt.date(2024, 1, 2),
            Ellipsis,
            NotImplemented,
            type,
            print,
        ]
    ),
)

_PLAIN_KEYS = st.one_of(_plain_text(), st.sampled_from(INJECTIONS), st.just(""))
_HOSTILE_KEYS = st.one_of(
    _PLAIN_KEYS,
    st.text(max_size=6),
    st.sampled_from([1, 0, -1, 1.5, True, None, (1, 2), b"k", frozenset(), math.nan, Colour.RED]),
)


def _json_values(leaves: st.SearchStrategy[Any], dict_keys: st.SearchStrategy[Any]) -> Any:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(dict_keys, children, max_size=4),
        ),
        max_leaves=12,
    )


def _deep(depth: int, kind: str, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if kind == "list" or (kind == "mixed" and i % 2) else {"d": value}
    return value


def _cyclic(kind: int) -> Any:
    if kind == 0:
        d: dict[str, Any] = {"a": 1}
        d["self"] = d
        return d
    if kind == 1:
        items: list[Any] = [1]
        items.append(items)
        return {"items": items}
    if kind == 2:
        a: dict[str, Any] = {}
        b: dict[str, Any] = {"a": a}
        a["b"] = b
        return {"root": a}
    shared = {"x": 1}
    return {"first": shared, "second": shared}  # shared, not cyclic: valid JSON


def _huge(size: int, where: str) -> Any:
    if where == "string":
        return {"big": "x" * size}
    if where == "list":
        return {"items": list(range(size // 8))}
    return {f"k{i}": i for i in range(size // 12)}


@functools.cache
def payloads(*, mapping: bool = True, clean: bool = False) -> st.SearchStrategy[Any]:
    """Payloads: plain JSON (mostly objects), hostile leaves and keys, deep, huge, cyclic.

    ``clean``: plain JSON objects only (big ints, odd floats, injections and deep nesting
    included), which a store must accept and give back exactly."""
    plain = _json_values(_JSON_LEAVES, _PLAIN_KEYS)
    if clean:
        return st.one_of(
            st.dictionaries(_PLAIN_KEYS, plain, max_size=5),
            st.dictionaries(_PLAIN_KEYS, plain, max_size=5),
            st.builds(
                _deep,
                st.integers(1, 7),
                st.sampled_from(["list", "dict", "mixed"]),
                st.sampled_from([1, "leaf", None]),
            ).map(lambda v: v if isinstance(v, dict) else {"deep": v}),
            st.builds(_cyclic, st.just(3)),
            st.builds(_huge, st.just(3000), st.sampled_from(["string", "list", "dict"])),
        )
    hostile = _json_values(_HOSTILE_LEAVES, _HOSTILE_KEYS)
    objects = st.dictionaries(_PLAIN_KEYS, plain, max_size=5)
    hostile_objects = st.dictionaries(_HOSTILE_KEYS, hostile, max_size=5)
    return st.one_of(
        objects,
        objects,
        hostile_objects,
        hostile_objects,
        plain if not mapping else objects,
        hostile,
        st.builds(
            _deep,
            st.integers(1, 90),
            st.sampled_from(["list", "dict", "mixed"]),
            st.sampled_from([1, "leaf", None]),
        ).map(lambda v: v if isinstance(v, dict) else {"deep": v}),
        st.builds(_cyclic, st.integers(0, 3)),
        st.builds(_huge, st.sampled_from([5000, 70_000, 1_100_000]), st.just("string")),
        st.builds(_huge, st.just(70_000), st.sampled_from(["list", "dict"])),
        st.sampled_from([None, [], [1, 2], "text", 5, 1.5, True, (1,), b"x"]),
    )


def is_plain_json(value: Any, *, max_depth: int = 64, _depth: int = 1, _seen: Any = None) -> bool:
    """Whether ``value`` is a storable JSON document (not counting the size cap)."""
    seen: set[int] = set() if _seen is None else _seen
    if _depth > max_depth:
        return False
    if value is None or type(value) in (bool, int):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is str:
        return _storable_string(value)
    if type(value) in (list, dict):
        if id(value) in seen:
            return False
        seen.add(id(value))
        try:
            if type(value) is dict:
                return all(
                    type(k) is str
                    and _storable_string(k)
                    and is_plain_json(v, max_depth=max_depth, _depth=_depth + 1, _seen=seen)
                    for k, v in value.items()
                )
            return all(
                is_plain_json(v, max_depth=max_depth, _depth=_depth + 1, _seen=seen) for v in value
            )
        finally:
            seen.discard(id(value))
    return False


def _storable_string(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
