"""Validation problems as one :class:`~cowork.errors.ConfigError` message that says what to do.

Each problem names where its value came from (the environment variable, ``name (from config
file F)``, ``name (explicit argument)``) and what the setting must be. A secret setting's value,
or one resolved from a ``${secret:…}`` placeholder, is never shown: only its type.
"""

from __future__ import annotations

from typing import Any, cast, get_args

import pydantic
from pydantic import SecretStr, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings

from cowork.config.sources import Loading, field_of

__all__ = ["describe"]

_BOOLEAN = "a boolean (true/false/1/0/yes/no/on/off)"
_INTEGER = "an integer"
_NUMBER = "a number"
#: pydantic's error type -> what the value must be.
_EXPECTED = {
    "string_type": "a string",
    "bool_type": _BOOLEAN,
    "bool_parsing": _BOOLEAN,
    "int_type": _INTEGER,
    "int_parsing": _INTEGER,
    "int_parsing_size": _INTEGER,
    "int_from_float": _INTEGER,
    "float_type": _NUMBER,
    "float_parsing": _NUMBER,
    "finite_number": _NUMBER,
    "path_type": "a directory path",
}
#: pydantic's bound error type -> (its context key, the comparison it wanted).
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _number(value: Any) -> str:
    """A bound as documented: ``0`` not ``0.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parsed(info: FieldInfo, raw: Any) -> Any:
    """``raw`` as the setting's number type reads it (``"+3"`` is 3), to show beside a bound."""
    try:
        return TypeAdapter(cast(Any, info.annotation)).validate_python(raw)
    except pydantic.ValidationError:  # pragma: no cover - a bound error means it parsed
        return raw


def _problem(error: ErrorDetails, info: FieldInfo, label: str, secret: bool) -> str:
    kind, raw = error["type"], error["input"]
    got = f", got a {type(raw).__name__}" if secret else f", got {raw!r}"
    if kind in _EXPECTED:
        return f"{label} must be {_EXPECTED[kind]}{got}"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        bound = (error.get("ctx") or {}).get(key)
        shown = "" if secret else f", got {_parsed(info, raw)}"
        return f"{label} must be {op} {_number(bound)}{shown}"
    if kind == "string_too_short":
        return f"{label} must not be empty"
    if kind == "key_name":  # raised by the redact_keys validator, with the key in its context
        key = (error.get("ctx") or {}).get("key", "")
        return f"{label}: {'a key' if secret else repr(key)} {error['msg']}"
    if kind in ("choice", "keys_type"):  # our validators' own messages ("must be one of …")
        return f"{label} {error['msg']}{got}"
    return f"{label} is not valid ({kind})"


def describe(
    settings_cls: type[BaseSettings], exc: pydantic.ValidationError | None, loading: Loading
) -> str:
    """Every problem of one resolution, in the settings' order, joined by ``"; "``."""
    found: dict[str, list[str]] = {name: [p] for name, p in loading.problems.items()}
    overall: list[str] = []
    for error in exc.errors(include_url=False) if exc is not None else ():
        name = field_of(settings_cls, str(error["loc"][0])) if error["loc"] else None
        if name is None:
            overall.append(_overall(settings_cls, error, loading))
            continue
        info = settings_cls.model_fields[name]
        secret = SecretStr in (info.annotation, *get_args(info.annotation))
        secret = secret or name in loading.hidden
        label = loading.label(settings_cls, name)
        found.setdefault(name, []).append(_problem(error, info, label, secret))
    order = list(settings_cls.model_fields)
    problems = [p for name in sorted(found, key=order.index) for p in found[name]]
    # A check across settings means nothing when one of them was not resolved.
    return "; ".join(problems or overall)


def _overall(settings_cls: type[BaseSettings], error: ErrorDetails, loading: Loading) -> str:
    """A problem of the settings together (the pool bounds), naming both labels."""
    ctx = error.get("ctx") or {}
    if error["type"] != "pool_bounds":
        return f"invalid settings ({error['type']})"
    low, high = (loading.label(settings_cls, n) for n in ("pool_min_size", "pool_max_size"))
    hidden = loading.hidden & {"pool_min_size", "pool_max_size"}
    shown = "" if hidden else f" ({ctx.get('low')} > {ctx.get('high')})"
    return f"{low} must not exceed {high}{shown}"
