"""Rejecting and truncating: a value that is over a limit (or cannot be stored) is rejected
with its path and never its value, or, when the policy truncates, replaced and its path
recorded."""

from __future__ import annotations

import json
import re

from cowork import jsontext
from cowork.errors import PayloadRejected
from cowork.events.sanitizing.policy import JsonValue, SanitizePolicy

__all__ = [
    "MAX_DEPTH_MARKER",
    "TRUNCATION_SUFFIX",
    "UNSETTLED_MARKER",
    "Limits",
    "Reject",
    "checked_text",
    "key_segment",
    "type_name",
]

MAX_DEPTH_MARKER = "[max depth]"
TRUNCATION_SUFFIX = "…[truncated]"
UNSETTLED_MARKER = "[unrepresentable]"

# Where each limit is configured, for error messages (environment variable / setting).
_BYTES_SETTING = "COWORK_EVENT_MAX_BYTES / event_max_bytes"
_STRING_SETTING = "COWORK_EVENT_MAX_STRING_LENGTH / event_max_string_length"
_DEPTH_SETTING = "COWORK_EVENT_MAX_DEPTH / event_max_depth"


class Reject(Exception):
    """Internal: carries the reason and the path (innermost first) up to :func:`sanitize`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_segment(key: object) -> str:
    """The path segment of a mapping key: ``.name``, or ``["odd key"]`` (shortened)."""
    if isinstance(key, str) and _IDENTIFIER_RE.fullmatch(key):
        return "." + key
    text = repr(key) if not isinstance(key, str) else json.dumps(key)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"[{text}]"


def type_name(value: object) -> str:
    """The name of ``value``'s type for messages (qualified unless it is a builtin)."""
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class Limits:
    """The string and depth limits of one walk, and what happens over them: reject (the path
    is collected while the :class:`Reject` unwinds), or, when truncating, replace the value
    and record its path (:attr:`cut`).

    The walker subclasses it and sets these fields in its own ``__init__`` (one constructor,
    no chained call: a walker is made for every payload and metadata published)."""

    __slots__ = ("cut", "max_depth", "max_string", "track", "what")

    max_string: int
    max_depth: int
    what: str
    """Names the value in paths and messages (``"payload"``, ``"metadata"``)."""
    track: list[str | int] | None
    """Only when truncating: the keys and list indexes leading to the value being walked, so
    that every change can be named. Rejecting needs no bookkeeping: the path of an error is
    collected while its exception unwinds (the common case stays fast)."""
    cut: dict[str, None]
    """Paths changed by truncation, in walk order."""

    def _path(self) -> str:
        assert self.track is not None
        return self.what + "".join(
            f"[{p}]" if isinstance(p, int) else key_segment(p) for p in self.track
        )

    def too_long(self, s: str) -> str:
        """``s`` (masked) is over the string limit: reject, or cut it when truncating."""
        limit = self.max_string
        if self.track is None:
            raise Reject(
                f"a string of {len(s)} characters is over the limit of {limit} characters "
                f"({_STRING_SETTING}); raise the limit, publish with truncate=True to store it "
                "cut (the event's metadata then lists the path), or store the text as a "
                "blackboard artifact and send its key"
            )
        self.cut[self._path()] = None
        return s[: limit - len(TRUNCATION_SUFFIX)] + TRUNCATION_SUFFIX

    def too_deep(self, depth: int) -> JsonValue:
        """A container at ``depth`` is over the depth limit: reject, or replace it when
        truncating."""
        if self.track is None:
            raise Reject(
                f"a container at nesting level {depth} is over the limit of {self.max_depth} "
                f"levels ({_DEPTH_SETTING}; the top-level value is level 1); flatten the value, "
                "raise the limit, or publish with truncate=True to store "
                f"{MAX_DEPTH_MARKER!r} in its place (the event's metadata then lists the path)"
            )
        self.cut[self._path()] = None
        return MAX_DEPTH_MARKER

    def unsettled(self) -> str:
        """Masking did not settle in 8 rounds (chained token-like text such as ``eyJa.eyJa.…``,
        where each mask exposes a new match): reject, or replace it when truncating."""
        if self.track is None:
            raise Reject(
                "this text keeps exposing new matches for the masking patterns (e-mail, card, "
                "SSN, AWS key, JWT), so it cannot be masked to a stable result; remove the "
                "token-like parts, store the text as a blackboard artifact, or publish with "
                f"truncate=True to store {UNSETTLED_MARKER!r} in its place"
            )
        self.cut[self._path()] = None
        return UNSETTLED_MARKER


def checked_text(result: JsonValue, policy: SanitizePolicy, what: str) -> str:
    """The JSON text of ``result`` as stored, after checking it against the byte limit (which
    truncation never lifts)."""
    text = jsontext.ENCODER.encode(result)
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > policy.max_bytes:
        raise PayloadRejected(
            f"{what} is {size} bytes as JSON, over the limit of {policy.max_bytes} bytes "
            f"({_BYTES_SETTING}); store large content as a blackboard artifact and send its "
            "key, reduce the payload, or raise the limit"
        )
    if "e+" in text:
        text = jsontext.dumps(result)
    return text
