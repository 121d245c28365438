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

This module holds the entry points and re-exports every public name; the parts live in
:mod:`cowork.events.sanitizing` (policy, redaction, masking, limits and the walk).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel

from cowork import jsontext
from cowork.errors import PayloadRejected
from cowork.events.sanitizing.limits import (
    MAX_DEPTH_MARKER,
    TRUNCATION_SUFFIX,
    Reject,
    checked_text,
    type_name,
)
from cowork.events.sanitizing.masking import (
    MASK_AWS_KEY,
    MASK_CARD,
    MASK_EMAIL,
    MASK_JWT,
    MASK_SSN,
)
from cowork.events.sanitizing.policy import DEFAULT_POLICY, JsonValue, SanitizePolicy
from cowork.events.sanitizing.redaction import (
    REDACTED,
    SECRET_KEY_NAMES,
    SECRET_KEY_SUFFIXES,
    is_secret_key,
    normalize_key,
)
from cowork.events.sanitizing.walker import Walker

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

#: The metadata key under which the event log lists the paths that ``truncate=True`` changed.
TRUNCATED_KEY = "truncated"

encoded_size = jsontext.encoded_size


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
    walker = Walker(policy, what)
    try:
        result = walker.value(value, 1)
    except Reject as exc:
        where = what + "".join(reversed(exc.path))
        raise PayloadRejected(f"{where}: {exc.reason}") from None
    return result, checked_text(result, policy, what), list(walker.cut)


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
            f"{what} must be a JSON object (a mapping of string keys), not {type_name(value)}; "
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
        text=checked_text(value, policy, "metadata"),
        truncated=metadata.truncated,
    )
