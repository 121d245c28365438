"""Tuning of durable consumers."""

from __future__ import annotations

import random
from dataclasses import dataclass

from cowork.errors import ValidationError

__all__ = ["ConsumerOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerOptions:
    """How a durable consumer retries, polls and holds its lease.

    A failing event is tried ``max_attempts`` times with exponential backoff (from
    ``backoff_initial`` doubling up to ``backoff_max`` seconds, with jitter), then parked.
    Wake-ups make delivery immediate; ``poll_interval`` is the fallback. The lease lasts
    ``lease_ttl`` seconds and is renewed every third of it; another process takes over when it
    expires.
    """

    max_attempts: int = 5
    backoff_initial: float = 0.05
    backoff_max: float = 5.0
    batch_size: int = 200
    poll_interval: float = 1.0
    lease_ttl: float = 10.0
    checkpoint_interval: float = 1.0
    redrive_interval: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValidationError("max_attempts must be at least 1")
        if not 1 <= self.batch_size <= 10_000:
            raise ValidationError("batch_size must be from 1 to 10000")
        for name in ("backoff_initial", "backoff_max", "poll_interval", "lease_ttl"):
            if getattr(self, name) <= 0:
                raise ValidationError(f"{name} must be positive")

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), with ±20% jitter."""
        base = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security
