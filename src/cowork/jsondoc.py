"""Validation of JSON documents stored verbatim (artifact payloads, metadata).

Unlike event payloads, artifact content is not redacted or masked: it is the user's data and
must round-trip exactly. It must be plain JSON (dict, list, str, int, float, bool, None; finite
floats; string keys), free of NUL characters and lone surrogates (PostgreSQL's jsonb cannot
store them), not cyclic, and under a size cap.
"""

from __future__ import annotations

import math
from typing import Any

from cowork.errors import PayloadRejected
from cowork.jsontext import encoded_size

__all__ = ["DEFAULT_DOCUMENT_BYTES", "encoded_size", "validate_document"]

DEFAULT_DOCUMENT_BYTES = 1024 * 1024
MAX_NESTING = 64


def _check_string(text: str, path: str, what: str) -> None:
    if "\x00" in text:
        raise PayloadRejected(f"{what}{path}: strings may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadRejected(
            f"{what}{path}: string holds a lone surrogate (not valid Unicode)"
        ) from None


def _walk(value: Any, path: str, depth: int, what: str, seen: set[int]) -> None:
    if depth > MAX_NESTING:
        raise PayloadRejected(f"{what}{path}: nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadRejected(f"{what}{path}: {value} is not a JSON number")
        return
    if isinstance(value, str):
        _check_string(value, path, what)
        return
    if isinstance(value, dict | list):
        marker = id(value)
        if marker in seen:
            raise PayloadRejected(f"{what}{path}: cyclic reference")
        seen.add(marker)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise PayloadRejected(
                        f"{what}{path}: object keys must be strings, got {type(key).__name__}"
                    )
                _check_string(key, path, what)
                _walk(item, f"{path}.{key}", depth + 1, what, seen)
        else:
            for index, item in enumerate(value):
                _walk(item, f"{path}[{index}]", depth + 1, what, seen)
        seen.discard(marker)
        return
    raise PayloadRejected(
        f"{what}{path}: cannot store a {type(value).__name__} as JSON; convert it to "
        "dict/list/str/int/float/bool/None first"
    )


def validate_document(
    value: Any, *, what: str = "payload", max_bytes: int = DEFAULT_DOCUMENT_BYTES
) -> Any:
    """Return ``value`` unchanged if it is a storable JSON document, else raise PayloadRejected."""
    _walk(value, "", 1, what, set())
    size = encoded_size(value)
    if size > max_bytes:
        raise PayloadRejected(
            f"{what} is {size} bytes encoded; the limit is {max_bytes}. Split it into several "
            "artifacts or store a reference to external storage"
        )
    return value
