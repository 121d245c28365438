"""The walk: one pass that converts a value to JSON (strings fixed and masked, secret keys
redacted, other types converted), applying the limits on the way."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
import uuid
from collections.abc import Mapping, Sequence, Set
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from cowork import jsontext
from cowork.events.sanitizing.limits import Limits, Reject, key_segment, type_name
from cowork.events.sanitizing.masking import MIN_MATCH_LEN, mask, precheck
from cowork.events.sanitizing.policy import JsonValue, SanitizePolicy
from cowork.events.sanitizing.redaction import REDACTED, builtin_secret, normalize_key

__all__ = ["Walker", "fix_unicode"]


def fix_unicode(s: str) -> str:
    """Drop NUL characters and replace lone surrogates by U+FFFD (valid pairs are joined)."""
    if "\x00" in s:
        s = s.replace("\x00", "")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


_sort_key = jsontext.sort_key


class Walker(Limits):
    """Sanitises one value (:meth:`value`); raises :class:`Reject` for what it cannot store."""

    __slots__ = ("active", "extra")

    def __init__(self, policy: SanitizePolicy, what: str) -> None:
        self.max_string = policy.max_string
        self.max_depth = policy.max_depth
        self.extra = policy._extra_normalised
        self.what = what
        self.active: set[int] = set()  # ids of the containers on the current path
        self.track = [] if policy.truncate else None  # the rest: see Limits
        self.cut = {}

    # -- scalars ------------------------------------------------------------------------------

    def string(self, s: str) -> str:
        if "\x00" in s or not s.isascii():
            s = fix_unicode(s)
        max_string = self.max_string
        if len(s) < MIN_MATCH_LEN:
            return s  # max_string >= 32, so within the limit too
        if len(s) <= max_string and precheck(s) is None:
            return s  # nothing mask could act on
        # Iterate to a fixed point so that a second sanitisation changes nothing (truncating
        # can, in theory, leave a digit run that now stands alone). Each round that changes
        # anything removes raw text; the bound keeps adversarial chains, where every mask
        # exposes the next match, from costing a round per match (see unsettled).
        for _ in range(8):
            out = mask(s)
            if len(out) > max_string:
                out = self.too_long(out)
            if out == s:
                return s
            s = out
        return self.unsettled()

    def key(self, key: object) -> str:
        t = type(key)
        if t is str:
            return fix_unicode(key)  # type: ignore[arg-type]
        if isinstance(key, enum.Enum):
            return self.key(key.value)
        if isinstance(key, str):
            return fix_unicode(str.__str__(key))
        if key is None or isinstance(key, bool | int | float):
            if isinstance(key, float) and not math.isfinite(key):
                raise Reject(f"mapping key {key!r} cannot be represented in JSON")
            return json.dumps(key)
        raise Reject(
            f"mapping keys must be str, int, float, bool, None or an Enum, "
            f"not {type_name(key)}; convert the key to a string first"
        )

    # -- containers and everything else -------------------------------------------------------

    def value(self, v: object, depth: int) -> JsonValue:
        """Sanitise ``v``, which sits at ``depth`` (the top-level value is at depth 1)."""
        t = type(v)
        if t is str:
            return self.string(v)  # type: ignore[arg-type]
        if t is int or t is bool or v is None:
            return v  # type: ignore[return-value]
        if t is dict:
            return self.mapping(v, depth)  # type: ignore[arg-type]
        if t is list:
            return self.sequence(v, depth)  # type: ignore[arg-type]
        if t is float:
            if math.isfinite(v):  # type: ignore[arg-type]
                return v  # type: ignore[return-value]
            raise Reject(
                f"float {v!r} is not valid JSON; send None or a string such as 'NaN' instead"
            )
        if isinstance(v, enum.Enum):
            return self.value(v.value, depth)
        if isinstance(v, str):
            return self.string(str.__str__(v))
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self.value(float(v), depth)
        if isinstance(v, _dt.datetime):
            if v.tzinfo is not None and v.utcoffset() is not None:
                v = v.astimezone(_dt.UTC)
            return self.string(v.isoformat())
        if isinstance(v, _dt.date | _dt.time):
            return self.string(v.isoformat())
        if isinstance(v, uuid.UUID):
            return self.string(str(v))
        if isinstance(v, Decimal):
            return self.string(str(v))
        if isinstance(v, bytes | bytearray | memoryview):
            raise Reject(
                f"cannot store {type_name(v)} in an event; encode it as text (e.g. base64) "
                "or store it as a blackboard artifact and send its key"
            )
        if isinstance(v, Mapping):
            return self.mapping(v, depth)
        if isinstance(v, list | tuple):
            return self.sequence(v, depth)
        if isinstance(v, Set):
            return self.set_(v, depth)
        if isinstance(v, BaseModel):
            return self.model(v, depth)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return self.dataclass(v, depth)
        if isinstance(v, Sequence):  # str, bytes and bytearray were handled above
            return self.sequence(v, depth)
        raise Reject(
            f"cannot represent object of type {type_name(v)} as JSON; convert it to a dict, "
            "list, str, number, bool or None first"
        )

    def _enter(self, v: object) -> int:
        ident = id(v)
        if ident in self.active:
            raise Reject("cyclic reference: this value contains itself")
        self.active.add(ident)
        return ident

    def mapping(self, m: Mapping[Any, Any], depth: int) -> JsonValue:
        if depth > self.max_depth:
            return self.too_deep(depth)
        ident = self._enter(m)
        out: dict[str, JsonValue] = {}
        extra = self.extra
        string = self.string
        track = self.track
        child = depth + 1
        k: object = None
        if track is not None:
            track.append("")
        try:
            for k, item in m.items():
                key = k if type(k) is str and k.isascii() and "\x00" not in k else self.key(k)
                if key in out:
                    raise Reject(f"two keys both become {key!r} once converted to JSON; rename one")
                if builtin_secret(key) or (extra and normalize_key(key) in extra):
                    out[key] = REDACTED
                    continue
                if track is not None:
                    track[-1] = key
                t = type(item)
                if t is str:
                    out[key] = string(item)
                elif t is int or t is bool or item is None:
                    out[key] = item
                else:
                    out[key] = self.value(item, child)
        except Reject as exc:
            exc.path.append(key_segment(k))
            raise
        finally:
            self.active.discard(ident)
            if track is not None:
                track.pop()
        return out

    def sequence(self, items: Sequence[Any], depth: int) -> JsonValue:
        if depth > self.max_depth:
            return self.too_deep(depth)
        ident = self._enter(items)
        out: list[JsonValue] = []
        append = out.append
        value = self.value
        string = self.string
        track = self.track
        child = depth + 1
        if track is not None:
            track.append(0)
        try:
            for item in items:
                if track is not None:
                    track[-1] = len(out)
                t = type(item)
                if t is str:
                    append(string(item))
                elif t is int or t is bool or item is None:
                    append(item)
                else:
                    append(value(item, child))
        except Reject as exc:
            exc.path.append(f"[{len(out)}]")
            raise
        finally:
            self.active.discard(ident)
            if track is not None:
                track.pop()
        return out

    def set_(self, items: Set[Any], depth: int) -> JsonValue:
        if depth > self.max_depth:
            return self.too_deep(depth)
        try:
            ordered: list[Any] = sorted(items)
        except TypeError:
            converted = self.sequence(list(items), depth)
            assert isinstance(converted, list)
            return sorted(converted, key=_sort_key)
        return self.sequence(ordered, depth)

    def model(self, m: BaseModel, depth: int) -> JsonValue:
        if depth > self.max_depth:
            return self.too_deep(depth)
        try:
            dumped: Any = m.model_dump(mode="json")
        except Exception as exc:  # pydantic raises several types; all mean "cannot"
            raise Reject(
                f"pydantic model {type_name(m)} cannot be dumped to JSON: {type(exc).__name__}"
            ) from None
        return self.mapping(dumped, depth)

    def dataclass(self, d: Any, depth: int) -> JsonValue:
        if depth > self.max_depth:
            return self.too_deep(depth)
        ident = self._enter(d)
        try:
            fields = {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
            return self.mapping(fields, depth)
        finally:
            self.active.discard(ident)
