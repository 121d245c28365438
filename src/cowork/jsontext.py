"""JSON text as Cowork writes it, in one place: what is stored (compact, UTF-8, no NaN,
integral floats kept as floats), its size, and the canonical forms used for checksums and
ordering."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

__all__ = ["ENCODER", "canonical", "dumps", "encoded_size", "sort_key"]

# Compact, UTF-8, no NaN: the stored form (``dumps`` adds the float spelling).
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_SORTING = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``. An integral float of 1e16 or more is written with a
    decimal point ("10000000000000000.0", not "1e+16"), so that PostgreSQL's jsonb keeps a
    scale and reads it back as a float."""
    text = ENCODER.encode(value)
    if "e+" in text:  # maybe such a float (or only a string containing "e+": checked below)
        text = _keeping_floats(value)
    return text


def encoded_size(value: Any) -> int:
    """Size in bytes of ``value`` as compact UTF-8 JSON (what the size limits count)."""
    text = ENCODER.encode(value)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def canonical(value: Any) -> str:
    """Sorted keys, compact, ASCII: the text a checksum is taken of. Never change it: stored
    workflow definitions are compared by the checksum of this text."""
    return _CANONICAL.encode(value)


def sort_key(value: Any) -> str:
    """A text that orders JSON values deterministically (members of a set, say)."""
    return _SORTING.encode(value)


def _keeping_floats(value: Any) -> str:
    spelled: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer() and "e" in repr(item):
            spelled.append(f"{Decimal(repr(item)):f}.0")
            return f"\x00{len(spelled) - 1}\x00"  # NUL never occurs in stored strings
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [mark(v) for v in item]
        return item

    text = ENCODER.encode(mark(value))
    for index, number in enumerate(spelled):
        text = text.replace(f'"\\u0000{index}\\u0000"', number)
    return text
