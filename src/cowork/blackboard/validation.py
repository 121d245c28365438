"""Argument checks shared by the blackboard operations."""

from __future__ import annotations

import re

from cowork.errors import InvalidExpectedVersion, ValidationError

__all__ = ["check_expected_version", "check_key", "check_label"]

MAX_KEY = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(value: object, what: str = "artifact_key") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{what} must not be empty")
    if len(value) > MAX_KEY:
        raise ValidationError(f"{what} is {len(value)} characters long; the limit is {MAX_KEY}")
    if _CONTROL.search(value):
        raise ValidationError(f"{what} must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} is not valid Unicode (lone surrogate)") from None
    return value


def check_label(value: object, what: str, limit: int = 100) -> str:
    """Short free-text labels (artifact type, source)."""
    text = check_key(value, what)
    if len(text) > limit:
        raise ValidationError(f"{what} is {len(text)} characters long; the limit is {limit}")
    return text


def check_expected_version(value: object) -> int | None:
    """None (unconditional), 0 (create only) or N > 0 (only if the current version is N)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidExpectedVersion(
            f"expected_version must be None, 0 or a positive integer, got {value!r} "
            f"({type(value).__name__})"
        )
    if value < 0:
        raise InvalidExpectedVersion(f"expected_version must not be negative, got {value}")
    return value
