"""JSON text as Cowork stores it: compact, UTF-8, no NaN, integral floats kept as floats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

__all__ = ["dumps"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``. An integral float of 1e16 or more is written with a
    decimal point ("10000000000000000.0", not "1e+16"), so that PostgreSQL's jsonb keeps a
    scale and reads it back as a float."""
    text = _ENCODER.encode(value)
    if "e+" in text:  # maybe such a float (or only a string containing "e+": checked below)
        text = _keeping_floats(value)
    return text


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

    text = _ENCODER.encode(mark(value))
    for index, number in enumerate(spelled):
        text = text.replace(f'"\\u0000{index}\\u0000"', number)
    return text
