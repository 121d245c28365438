"""Payload sanitisation: turn an event payload (or metadata) into safe, bounded JSON.

:func:`sanitize` is applied to every payload and every metadata mapping before it is written
to the event log. It does four things, in one pass over the value:

**Redacts secrets by key.** The value of a mapping entry whose key looks secret is replaced by
``"[REDACTED]"`` (whatever the value was: a string, a number, a whole nested object). Keys are
compared after *normalisation*: lowercased, with ``_``, ``-``, ``.`` and spaces removed, so
``api_key``, ``apiKey``, ``API-KEY`` and ``api.key`` are the same key. A key is secret when its
normalised form

* is one of :data:`SECRET_KEY_NAMES` (``password``, ``pwd``, ``secret``, ``token``, ``apikey``,
  ``accesstoken``, ``clientsecret``, ``authorization``, ``auth``, ``cookie``, ``setcookie``,
  ``privatekey``, ``session``, ``credential``, ``xapikey``, ...), or
* ends with one of :data:`SECRET_KEY_SUFFIXES` (``password``, ``passwd``, ``secret``, ``token``,
  ``apikey``, ``privatekey``, ``secretkey``, ``secretaccesskey``, ``credential``,
  ``credentials``), so ``dbPassword``, ``githubToken`` and ``aws_secret_access_key`` are secret
  too, or
* is in :attr:`SanitizePolicy.extra_secret_keys` (normalised the same way; exact names only;
  the runtime takes them from ``COWORK_REDACT_KEYS``).

Counters and look-alikes are *not* secret: ``token_count``, ``tokens_used``, ``max_tokens``,
``author``, ``authorId``, ``sessions``, ``passwordPolicy`` keep their values.

**Masks personal data and credentials inside strings** (string values at any depth; mapping
*keys* are left alone):

=====================  ===============================================================
``[EMAIL]``            e-mail addresses (``local@domain.tld``)
``[CARD]``             card numbers: a run of 13-19 digits, optionally grouped by single
                       spaces or dashes, starting with 2-6 (the issuer ranges of real
                       cards) and passing the Luhn check
``[SSN]``              US social security numbers ``ddd-dd-dddd`` (area not 000, 666, 9xx)
``[AWS_KEY]``          AWS access key ids (``AKIA``/``ASIA`` + 16 upper-case letters/digits)
``[JWT]``              JSON web tokens (three base64url segments, the first starting ``eyJ``)
=====================  ===============================================================

Plain numbers are never masked: an epoch timestamp such as ``"1700000000"`` or
``"1700000000123"``, an order number, a phone number or a Luhn-invalid 16-digit number stay as
they are, and ``int``/``float`` values are never touched. A digit run only counts as a card when
it stands alone (not glued to letters, ``_`` or more digits).

**Converts** what JSON cannot hold directly: ``datetime`` to ISO 8601 (aware datetimes are
converted to UTC first; naive ones are kept as they are), ``date``/``time`` to ISO 8601,
``UUID`` and ``Decimal`` to their exact string, an ``Enum`` to its (sanitised) value, dataclass
instances to a mapping of their fields, pydantic models through ``model_dump(mode="json")``,
tuples and other sequences to lists, sets to lists (sorted when the elements are sortable, else
in a stable order of their JSON text). Mapping keys that are ``int``, ``float``, ``bool``,
``None`` or an ``Enum`` become strings the way :func:`json.dumps` would write them (``1`` ->
``"1"``, ``True`` -> ``"true"``, ``None`` -> ``"null"``, an enum -> its value). Strings lose NUL
characters (PostgreSQL ``jsonb`` cannot store ``\\u0000``) and lone surrogates become U+FFFD, so
the result always encodes to UTF-8.

**Enforces limits, never silently.** By default a value over a limit is rejected with
:class:`~cowork.errors.PayloadRejected`, whose message names the path (``payload.items[3].text``),
the limit, the actual size and what to do:

* a string longer than :attr:`SanitizePolicy.max_string` characters (counted after masking,
  which is what would be stored);
* a container (mapping, list, dataclass, model) nested deeper than
  :attr:`SanitizePolicy.max_depth`. Depth counts containers: the top-level value is at depth 1,
  its children at depth 2, and so on, so with the default ``max_depth=8`` a value may have 8
  levels of nesting;
* a result whose compact UTF-8 JSON encoding (:func:`encoded_size`) is larger than
  :attr:`SanitizePolicy.max_bytes`.

Only a policy with ``truncate=True`` changes such values instead: a long string is cut to
exactly ``max_string`` characters ending with ``"…[truncated]"``, a container that is too deep
is replaced by the string ``"[max depth]"`` (and a string that masking cannot settle, see
below, by ``"[unrepresentable]"``), and the path of every change is returned
(:attr:`Sanitized.truncated`; the event log lists them in the event's metadata under
``"truncated"``, see :func:`record_truncation`). The byte limit is enforced in both modes.

**Rejects** (:class:`~cowork.errors.PayloadRejected`, the message names the path such as
``payload.items[3]`` and never includes the value): ``bytes``-like values, NaN and infinite
floats, mapping keys of other types, keys that collide after conversion (``1`` and ``"1"``),
cyclic references (a container that contains itself within the depth limit; a longer cycle
meets the depth limit instead, there is never a ``RecursionError``) and any other object type.

Sanitising is idempotent: ``sanitize(sanitize(x)) == sanitize(x)`` (with the same policy).
Markers are never masked again, and a masked string is re-checked until nothing changes, so
masking or truncating cannot expose a new match the next time round. A string that still
changes after 8 rounds (adversarial chains such as ``"eyJa." * 1000``, where every mask exposes
the next match) is rejected like a value over a limit.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence, Set
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import BaseModel

from cowork import jsontext
from cowork.errors import PayloadRejected

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_POLICY",
    "MASK_AWS_KEY",
    "MASK_CARD",
    "MASK_EMAIL",
    "MASK_JWT",
    "MASK_SSN",
    "MAX_DEPTH_MARKER",
    "REDACTED",
    "SECRET_KEY_NAMES",
    "SECRET_KEY_SUFFIXES",
    "TRUNCATED_KEY",
    "TRUNCATION_SUFFIX",
    "JsonValue",
    "SanitizePolicy",
    "Sanitized",
    "encoded_size",
    "is_secret_key",
    "normalize_key",
    "record_truncation",
    "sanitize",
    "sanitize_object",
    "sanitize_object_encoded",
]

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

REDACTED = "[REDACTED]"
MASK_EMAIL = "[EMAIL]"
MASK_CARD = "[CARD]"
MASK_SSN = "[SSN]"
MASK_AWS_KEY = "[AWS_KEY]"
MASK_JWT = "[JWT]"
MAX_DEPTH_MARKER = "[max depth]"
TRUNCATION_SUFFIX = "…[truncated]"
#: The metadata key under which the event log lists the paths that ``truncate=True`` changed.
TRUNCATED_KEY = "truncated"
_UNSETTLED_MARKER = "[unrepresentable]"

# Where each limit is configured, for error messages (environment variable / setting).
_BYTES_SETTING = "COWORK_EVENT_MAX_BYTES / event_max_bytes"
_STRING_SETTING = "COWORK_EVENT_MAX_STRING_LENGTH / event_max_string_length"
_DEPTH_SETTING = "COWORK_EVENT_MAX_DEPTH / event_max_depth"

#: Normalised key names whose values are always redacted.
SECRET_KEY_NAMES: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "xapikey",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "bearertoken",
        "clientsecret",
        "authorization",
        "proxyauthorization",
        "auth",
        "cookie",
        "setcookie",
        "privatekey",
        "secretkey",
        "accesskey",
        "secretaccesskey",
        "signingkey",
        "encryptionkey",
        "session",
        "sessionid",
        "sessionkey",
        "credential",
        "credentials",
        "dsn",
        "connectionstring",
    }
)

#: A normalised key ending with one of these is secret (``dbPassword``, ``githubToken``).
SECRET_KEY_SUFFIXES: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "secretkey",
    "secretaccesskey",
    "credential",
    "credentials",
)

_KEY_NORMALISER = str.maketrans("", "", "_-. ")


def normalize_key(key: str) -> str:
    """Lowercase ``key`` and drop ``_``, ``-``, ``.`` and spaces (``"API-Key"`` -> ``"apikey"``)."""
    return key.lower().translate(_KEY_NORMALISER)


@functools.lru_cache(maxsize=4096)
def _builtin_secret(key: str) -> bool:
    norm = normalize_key(key)
    return norm in SECRET_KEY_NAMES or norm.endswith(SECRET_KEY_SUFFIXES)


def is_secret_key(key: str, *, policy: SanitizePolicy | None = None) -> bool:
    """Whether the value stored under ``key`` is redacted (see the module docs for the rules)."""
    if _builtin_secret(key):
        return True
    return policy is not None and bool(policy.extra_secret_keys) and policy._is_extra_secret(key)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SanitizePolicy:
    """Limits and extra secret key names used by :func:`sanitize`."""

    max_bytes: int = 65536
    """Limit on the compact UTF-8 JSON encoding of the sanitised value (always rejected)."""
    max_string: int = 4096
    """Longest string, in characters; a longer one is rejected (cut only with ``truncate``)."""
    max_depth: int = 8
    """Deepest container nesting (the top-level value is depth 1); deeper is rejected (replaced
    by ``"[max depth]"`` only with ``truncate``)."""
    extra_secret_keys: frozenset[str] = frozenset()
    """More exact key names to redact (normalised like the built-in ones)."""
    truncate: bool = False
    """Cut long strings and replace too-deep containers instead of rejecting them; the paths
    changed are reported (:attr:`Sanitized.truncated`)."""
    _extra_normalised: frozenset[str] = dataclasses.field(
        init=False, repr=False, compare=False, hash=False, default=frozenset()
    )

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("max_bytes", self.max_bytes, 16, 1 << 30),
            ("max_string", self.max_string, 32, 1 << 28),
            ("max_depth", self.max_depth, 1, 100),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(
                    f"SanitizePolicy.{name} must be an integer from {low} to {high}, got {value!r}"
                )
        if not isinstance(self.truncate, bool):
            raise ValueError(f"SanitizePolicy.truncate must be a bool, got {self.truncate!r}")
        keys = frozenset(self.extra_secret_keys)
        if not all(isinstance(k, str) for k in keys):
            raise ValueError("SanitizePolicy.extra_secret_keys must contain only strings")
        object.__setattr__(self, "extra_secret_keys", keys)
        object.__setattr__(self, "_extra_normalised", frozenset(normalize_key(k) for k in keys))

    def _is_extra_secret(self, key: str) -> bool:
        return normalize_key(key) in self._extra_normalised


DEFAULT_POLICY = SanitizePolicy()


encoded_size = jsontext.encoded_size


# --------------------------------------------------------------------------------------------
# String masking

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_JWT_RE = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+(?![A-Za-z0-9_.-])"
)
_AWS_RE = re.compile(r"(?<![A-Za-z0-9])A(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_SSN_RE = re.compile(
    r"(?<![A-Za-z0-9_-])(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![A-Za-z0-9_-])"
)
# A maximal run of digits separated by single spaces or dashes, standing alone.
# A "-" glued to a word on either side (ids like "ab12-3456-...") also disqualifies the run.
_DIGIT_RUN_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?<![A-Za-z0-9_]-)(?<![0-9] )"
    r"[0-9](?:[ -]?[0-9])*+"
    r"(?![A-Za-z_])(?!-[A-Za-z0-9_])"
)
# Cheap pre-checks: both an SSN and a card contain at least three digits in a row, and a
# string matching none of the alternatives of _PRECHECK_RE is left alone by _mask.
_DIGITS_PRECHECK_RE = re.compile(r"[0-9]{3}")
_PRECHECK_RE = re.compile(r"@|eyJ|A[KS]IA|[0-9]{3}")
_SEPARATORS = str.maketrans("", "", " -")
# No pattern can match a string shorter than this ("a@b.cc").
_MIN_MATCH_LEN = 6


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_repl(match: re.Match[str]) -> str:
    run = match.group()
    if len(run) < 13:
        return run
    digits = run.translate(_SEPARATORS)
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits):
        return MASK_CARD
    return run


def _mask(s: str) -> str:
    if "eyJ" in s:
        s = _JWT_RE.sub(MASK_JWT, s)
    if "AKIA" in s or "ASIA" in s:
        s = _AWS_RE.sub(MASK_AWS_KEY, s)
    if "@" in s:
        s = _EMAIL_RE.sub(MASK_EMAIL, s)
    if _DIGITS_PRECHECK_RE.search(s) is not None:
        if "-" in s:
            s = _SSN_RE.sub(MASK_SSN, s)
        s = _DIGIT_RUN_RE.sub(_card_repl, s)
    return s


def _fix_unicode(s: str) -> str:
    """Drop NUL characters and replace lone surrogates by U+FFFD (valid pairs are joined)."""
    if "\x00" in s:
        s = s.replace("\x00", "")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


# --------------------------------------------------------------------------------------------
# The walk


class _Reject(Exception):
    """Internal: carries the reason and the path (innermost first) up to :func:`sanitize`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key_segment(key: object) -> str:
    if isinstance(key, str) and _IDENTIFIER_RE.fullmatch(key):
        return "." + key
    text = repr(key) if not isinstance(key, str) else json.dumps(key)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"[{text}]"


def _type_name(value: object) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


_sort_key = jsontext.sort_key


class _Walker:
    __slots__ = ("active", "cut", "extra", "max_depth", "max_string", "track", "what")

    def __init__(self, policy: SanitizePolicy, what: str) -> None:
        self.max_string = policy.max_string
        self.max_depth = policy.max_depth
        self.extra = policy._extra_normalised
        self.what = what
        self.active: set[int] = set()  # ids of the containers on the current path
        # Only when truncating: the keys and list indexes leading to the value being walked,
        # so that every change can be named. Rejecting needs no bookkeeping: the path of an
        # error is collected while its exception unwinds (the common case stays fast).
        self.track: list[str | int] | None = [] if policy.truncate else None
        self.cut: dict[str, None] = {}  # paths changed by truncation, in walk order

    # -- limits -------------------------------------------------------------------------------

    def _path(self) -> str:
        assert self.track is not None
        return self.what + "".join(
            f"[{p}]" if isinstance(p, int) else _key_segment(p) for p in self.track
        )

    def too_long(self, s: str) -> str:
        """``s`` (masked) is over the string limit: reject, or cut it when truncating."""
        limit = self.max_string
        if self.track is None:
            raise _Reject(
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
            raise _Reject(
                f"a container at nesting level {depth} is over the limit of {self.max_depth} "
                f"levels ({_DEPTH_SETTING}; the top-level value is level 1); flatten the value, "
                "raise the limit, or publish with truncate=True to store "
                f"{MAX_DEPTH_MARKER!r} in its place (the event's metadata then lists the path)"
            )
        self.cut[self._path()] = None
        return MAX_DEPTH_MARKER

    # -- scalars ------------------------------------------------------------------------------

    def string(self, s: str) -> str:
        if "\x00" in s or not s.isascii():
            s = _fix_unicode(s)
        max_string = self.max_string
        if len(s) < _MIN_MATCH_LEN:
            return s  # max_string >= 32, so within the limit too
        if len(s) <= max_string and _PRECHECK_RE.search(s) is None:
            return s  # nothing _mask could act on
        # Iterate to a fixed point so that a second sanitisation changes nothing (truncating
        # can, in theory, leave a digit run that now stands alone). Each round that changes
        # anything removes raw text; the bound keeps adversarial chains, where every mask
        # exposes the next match, from costing a round per match (see unsettled).
        for _ in range(8):
            out = _mask(s)
            if len(out) > max_string:
                out = self.too_long(out)
            if out == s:
                return s
            s = out
        return self.unsettled()

    def unsettled(self) -> str:
        """Masking did not settle in 8 rounds (chained token-like text such as ``eyJa.eyJa.…``,
        where each mask exposes a new match): reject, or replace it when truncating."""
        if self.track is None:
            raise _Reject(
                "this text keeps exposing new matches for the masking patterns (e-mail, card, "
                "SSN, AWS key, JWT), so it cannot be masked to a stable result; remove the "
                "token-like parts, store the text as a blackboard artifact, or publish with "
                f"truncate=True to store {_UNSETTLED_MARKER!r} in its place"
            )
        self.cut[self._path()] = None
        return _UNSETTLED_MARKER

    def key(self, key: object) -> str:
        t = type(key)
        if t is str:
            return _fix_unicode(key)  # type: ignore[arg-type]
        if isinstance(key, enum.Enum):
            return self.key(key.value)
        if isinstance(key, str):
            return _fix_unicode(str.__str__(key))
        if key is None or isinstance(key, bool | int | float):
            if isinstance(key, float) and not math.isfinite(key):
                raise _Reject(f"mapping key {key!r} cannot be represented in JSON")
            return json.dumps(key)
        raise _Reject(
            f"mapping keys must be str, int, float, bool, None or an Enum, "
            f"not {_type_name(key)}; convert the key to a string first"
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
            raise _Reject(
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
            raise _Reject(
                f"cannot store {_type_name(v)} in an event; encode it as text (e.g. base64) "
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
        raise _Reject(
            f"cannot represent object of type {_type_name(v)} as JSON; convert it to a dict, "
            "list, str, number, bool or None first"
        )

    def _enter(self, v: object) -> int:
        ident = id(v)
        if ident in self.active:
            raise _Reject("cyclic reference: this value contains itself")
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
                    raise _Reject(
                        f"two keys both become {key!r} once converted to JSON; rename one"
                    )
                if _builtin_secret(key) or (extra and normalize_key(key) in extra):
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
        except _Reject as exc:
            exc.path.append(_key_segment(k))
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
        except _Reject as exc:
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
            raise _Reject(
                f"pydantic model {_type_name(m)} cannot be dumped to JSON: {type(exc).__name__}"
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


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Sanitized:
    """A sanitised JSON object, its JSON text as stored, and what truncation changed."""

    value: dict[str, JsonValue]
    text: str
    """The compact JSON text of :attr:`value` (see :func:`cowork.jsontext.dumps`)."""
    truncated: tuple[str, ...] = ()
    """Paths (``payload.items[3].text``) cut or replaced; empty unless the policy truncates."""


def _run(value: object, policy: SanitizePolicy, what: str) -> tuple[JsonValue, str, list[str]]:
    """The sanitised value, its JSON text as stored and the paths truncation changed."""
    walker = _Walker(policy, what)
    try:
        result = walker.value(value, 1)
    except _Reject as exc:
        where = what + "".join(reversed(exc.path))
        raise PayloadRejected(f"{where}: {exc.reason}") from None
    return result, _checked_text(result, policy, what), list(walker.cut)


def _checked_text(result: JsonValue, policy: SanitizePolicy, what: str) -> str:
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


def sanitize(
    value: object, *, policy: SanitizePolicy = DEFAULT_POLICY, what: str = "payload"
) -> JsonValue:
    """Return ``value`` as safe JSON within the policy's limits (see the module docs).

    ``what`` names the value in error messages (``"payload"``, ``"metadata"``). With
    ``policy.truncate`` the result may be cut; :func:`sanitize_object_encoded` says where.

    Raises:
        PayloadRejected: the value cannot be represented as JSON, or is over a limit of the
            policy. The message names the path and the limit, and never the value.
    """
    return _run(value, policy, what)[0]


def sanitize_object(
    value: Mapping[str, object] | BaseModel | DataclassInstance | None,
    *,
    policy: SanitizePolicy = DEFAULT_POLICY,
    what: str = "payload",
) -> dict[str, JsonValue]:
    """Like :func:`sanitize` for a value that must be a JSON object; ``None`` gives ``{}``.

    Dataclass instances and pydantic models are accepted too (they become objects).

    Raises:
        PayloadRejected: as :func:`sanitize`, or when the value is not a mapping.
    """
    return sanitize_object_encoded(value, policy=policy, what=what).value


def sanitize_object_encoded(
    value: Mapping[str, object] | BaseModel | DataclassInstance | None,
    *,
    policy: SanitizePolicy = DEFAULT_POLICY,
    what: str = "payload",
) -> Sanitized:
    """:func:`sanitize_object`, the result's JSON text as stored (encoded once: the size check
    and the database share it) and the paths that truncation changed."""
    if value is None:
        return Sanitized(value={}, text="{}")
    is_object = isinstance(value, Mapping | BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )
    if not is_object:
        raise PayloadRejected(
            f"{what} must be a JSON object (a mapping of string keys), not {_type_name(value)}; "
            "wrap the value, e.g. {'items': [...]}"
        )
    result, text, cut = _run(value, policy, what)
    assert isinstance(result, dict)
    return Sanitized(value=result, text=text, truncated=tuple(cut))


def record_truncation(
    metadata: Sanitized, paths: Sequence[str], *, policy: SanitizePolicy = DEFAULT_POLICY
) -> Sanitized:
    """``metadata`` (sanitised) with ``paths`` listed under :data:`TRUNCATED_KEY`, so that a
    reader of the event sees what was cut. A list already there (an event read back and
    published again) is kept and extended.

    Raises:
        PayloadRejected: the metadata already uses the key for something else, or the list
            takes it over ``policy.max_bytes``.
    """
    if not paths:
        return metadata
    value = dict(metadata.value)
    listed: list[str] = []
    if TRUNCATED_KEY in value:
        existing = value[TRUNCATED_KEY]
        if not isinstance(existing, list) or not all(isinstance(p, str) for p in existing):
            raise PayloadRejected(
                f"metadata.{TRUNCATED_KEY}: this key is reserved for the list of truncated "
                "paths when truncation is asked for; rename the metadata key"
            )
        listed = [p for p in existing if isinstance(p, str)]
    merged: list[JsonValue] = list(dict.fromkeys([*listed, *paths]))
    value[TRUNCATED_KEY] = merged
    return Sanitized(
        value=value,
        text=_checked_text(value, policy, "metadata"),
        truncated=metadata.truncated,
    )
