"""The sanitiser's policy: its limits, extra secret key names and whether to truncate, and
the JSON value type it produces."""

from __future__ import annotations

import dataclasses
from typing import TypeAlias

from cowork.events.sanitizing.redaction import normalize_key

__all__ = ["DEFAULT_POLICY", "JsonValue", "SanitizePolicy"]

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None


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
