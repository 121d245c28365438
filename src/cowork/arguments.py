"""Checks of argument shapes shared by the services (a wrong type is a ValidationError)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cowork.errors import ValidationError

__all__ = ["mapping_arg", "number_arg", "string_list_arg", "text_arg", "timestamp_arg"]


def mapping_arg(value: object, what: str) -> dict[str, Any]:
    """None → {}; a mapping → a dict copy; anything else is refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be a mapping (dict), got {type(value).__name__}")
    return dict(value)


def string_list_arg(value: object, what: str) -> list[str]:
    """A list, tuple or set of strings (not a single string)."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError(f"{what} must be a list of strings, got {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise ValidationError(f"{what} must hold strings, got {type(item).__name__}")
    return items


def number_arg(
    value: object, what: str, *, minimum: float, maximum: float, integer: bool = False
) -> float:
    """A finite number (an int when ``integer``) within bounds; bools are refused."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise ValidationError(f"{what} must be {kind}, got {type(value).__name__}")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ValidationError(f"{what} must be between {minimum:g} and {maximum:g}, got {value!r}")
    return value


def timestamp_arg(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValidationError(f"{what} must be timezone-aware (use datetime.now(UTC))")
    return value


def text_arg(value: object, what: str, limit: int) -> str:
    """Free text: a non-blank string within ``limit`` characters, storable anywhere (no NUL,
    no lone surrogate)."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValidationError(f"{what} is {len(value)} characters; the limit is {limit}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} is not valid Unicode (lone surrogate)") from None
    return value
