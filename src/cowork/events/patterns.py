"""Event names and subscription patterns: the grammar, validation and matching.

Event names
-----------
An event name (event type) is 1-200 characters of *segments* separated by ``:``. A segment
starts with a lowercase letter or a digit and continues with lowercase letters, digits, ``_``,
``.`` or ``-``::

    event   := segment (":" segment)*
    segment := [a-z0-9] [a-z0-9_.-]*

Valid: ``workspace:created``, ``workspace:member:added``, ``blackboard:entry:updated``,
``agent.v2:tool_call``, ``import-job:step-3:done``. Invalid: ``Workspace:Created`` (upper
case), ``workspace::created`` or ``workspace:`` (empty segment), ``:created``, ``_x`` (a segment
must start with a letter or digit), ``workspace created`` (space), ``workspace:*`` (``*`` is only
allowed in patterns). :func:`validate_event_type` raises
:class:`~cowork.errors.InvalidEventType` for them.

Patterns
--------
A subscription pattern has the same shape, except that a whole segment may be ``*``::

    pattern := psegment (":" psegment)*
    psegment := segment | "*"

* A ``*`` that is the **last** segment matches **one or more** remaining segments.
* A ``*`` anywhere else matches **exactly one** segment.
* ``*`` alone therefore matches every event.
* Every other segment matches itself only (exact, case-sensitive comparison).

There is no other wildcard syntax: ``work*``, ``**``, ``?``, ``[...]`` and regular expressions
are rejected with :class:`~cowork.errors.InvalidEventType`.

Examples (pattern: matches / does not match):

* ``workspace:created``: ``workspace:created`` only / ``workspace:created:x``
* ``workspace:*``: ``workspace:created``, ``workspace:member:added`` / ``workspace``,
  ``workspaces:created``
* ``workspace:*:added``: ``workspace:member:added`` / ``workspace:added``,
  ``workspace:a:b:added``
* ``*:created``: ``workspace:created``, ``snapshot:created`` / ``created``,
  ``workspace:x:created``
* ``workspace:*:*``: ``workspace:member:added``, ``workspace:a:b:c`` / ``workspace:created``
* ``*``: every event

:class:`EventPattern` is the parsed, hashable form; :meth:`EventPattern.sql_like_prefix` gives
the literal text before the first ``*`` so storage can pre-filter with an index-friendly
``LIKE 'prefix%'`` (escape it with :meth:`EventPattern.sql_like_pattern`, since ``_`` is a
``LIKE`` wildcard) and then confirm each row with :meth:`EventPattern.matches`.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from cowork.errors import InvalidEventType

__all__ = [
    "EVENT_TYPE_MAX_LENGTH",
    "WILDCARD",
    "EventPattern",
    "is_valid_event_type",
    "validate_event_type",
]

EVENT_TYPE_MAX_LENGTH = 200
WILDCARD = "*"

_SEGMENT = r"[a-z0-9][a-z0-9_.-]*"
_EVENT_TYPE_RE = re.compile(rf"{_SEGMENT}(?::{_SEGMENT})*")
_PATTERN_SEGMENT_RE = re.compile(rf"{_SEGMENT}|\*")

_EVENT_RULES = (
    "use 1-200 characters of lowercase segments separated by ':'; each segment starts with "
    "a-z or 0-9 and continues with a-z, 0-9, '_', '.' or '-' (e.g. 'workspace:member:added')"
)
_PATTERN_RULES = (
    "a pattern is 1-200 characters of segments separated by ':'; each segment is either '*' or "
    "starts with a-z or 0-9 and continues with a-z, 0-9, '_', '.' or '-'. A final '*' matches "
    "one or more segments, any other '*' exactly one (e.g. 'workspace:*', 'workspace:*:added', "
    "'*')"
)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_valid_event_type(name: object) -> bool:
    """Whether ``name`` is a valid event name (see the module docs for the grammar)."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= EVENT_TYPE_MAX_LENGTH
        and _EVENT_TYPE_RE.fullmatch(name) is not None
    )


def validate_event_type(name: str) -> str:
    """Return ``name`` when it is a valid event name.

    Raises:
        InvalidEventType: ``name`` is not a string or breaks the grammar; the message says
            what is allowed.
    """
    if not isinstance(name, str):
        raise InvalidEventType(
            f"event type must be a string, not {type(name).__name__}; {_EVENT_RULES}"
        )
    if not is_valid_event_type(name):
        if "*" in name:
            raise InvalidEventType(
                f"invalid event type {_show(name)}: '*' is only allowed in subscription "
                f"patterns; {_EVENT_RULES}"
            )
        if len(name) > EVENT_TYPE_MAX_LENGTH:
            raise InvalidEventType(
                f"invalid event type {_show(name)}: {len(name)} characters is over the "
                f"{EVENT_TYPE_MAX_LENGTH}-character limit; {_EVENT_RULES}"
            )
        raise InvalidEventType(f"invalid event type {_show(name)}: {_EVENT_RULES}")
    return name


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> re.Pattern[str]:
    """Validate a pattern and compile it to an anchored regular expression."""
    if not isinstance(text, str):
        raise InvalidEventType(f"event pattern must be a string, not {type(text).__name__}")
    if not 0 < len(text) <= EVENT_TYPE_MAX_LENGTH:
        raise InvalidEventType(f"invalid event pattern {_show(text)}: {_PATTERN_RULES}")
    segments = text.split(":")
    parts: list[str] = []
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if _PATTERN_SEGMENT_RE.fullmatch(segment) is None:
            raise InvalidEventType(
                f"invalid event pattern {_show(text)}: segment {i + 1} ({segment!r}) is not "
                f"allowed; {_PATTERN_RULES}"
            )
        if segment != WILDCARD:
            parts.append(re.escape(segment))
        elif i == last:
            parts.append(f"{_SEGMENT}(?::{_SEGMENT})*")  # one or more segments
        else:
            parts.append(_SEGMENT)  # exactly one segment
    return re.compile(":".join(parts))


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> EventPattern:
    return EventPattern(text)


@dataclasses.dataclass(frozen=True, slots=True)
class EventPattern:
    """A parsed subscription pattern; equal and hashable by its text.

    ``EventPattern("workspace:*")`` validates like :meth:`parse` (which also caches).
    """

    text: str
    _regex: re.Pattern[str] = dataclasses.field(
        init=False, repr=False, compare=False, hash=False, default=_EVENT_TYPE_RE
    )

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):  # before the cache, which needs a hashable key
            raise InvalidEventType(
                f"event pattern must be a string, not {type(self.text).__name__}"
            )
        object.__setattr__(self, "_regex", _compile(self.text))

    @classmethod
    def parse(cls, text: str) -> EventPattern:
        """Parse and validate ``text``; parsed patterns are cached.

        Raises:
            InvalidEventType: ``text`` is not a valid pattern; the message says what is.
        """
        if cls is EventPattern and isinstance(text, str):
            return _parse(text)
        return cls(text)

    def matches(self, event_type: str) -> bool:
        """Whether ``event_type`` matches; an invalid event name never matches."""
        return (
            isinstance(event_type, str)
            and len(event_type) <= EVENT_TYPE_MAX_LENGTH
            and self._regex.fullmatch(event_type) is not None
        )

    @property
    def is_exact(self) -> bool:
        """True when the pattern has no ``*`` and so matches exactly one event name."""
        return WILDCARD not in self.text

    @property
    def segments(self) -> tuple[str, ...]:
        """The pattern's segments (``"*"`` for a wildcard)."""
        return tuple(self.text.split(":"))

    def sql_like_prefix(self) -> str | None:
        """The literal text before the first ``*`` (``"workspace:"`` for ``workspace:*``).

        The whole name for an exact pattern, None when the pattern starts with ``*``. Use it
        as an index-friendly pre-filter (``event_type LIKE prefix || '%'``) and confirm each
        row with :meth:`matches`; note that ``_`` is a ``LIKE`` wildcard, so either escape it
        or use :meth:`sql_like_pattern`.
        """
        star = self.text.find(WILDCARD)
        if star == -1:
            return self.text
        return self.text[:star] or None

    def sql_like_pattern(self, escape: str = "\\") -> str | None:
        """:meth:`sql_like_prefix` escaped for ``LIKE ... ESCAPE '<escape>'`` plus ``%``.

        ``workspace_x:*`` gives ``workspace\\_x:%``; None when the pattern starts with ``*``.
        """
        prefix = self.sql_like_prefix()
        if prefix is None:
            return None
        for special in (escape, "%", "_"):
            prefix = prefix.replace(special, escape + special)
        return prefix + "%"

    def __str__(self) -> str:
        return self.text
