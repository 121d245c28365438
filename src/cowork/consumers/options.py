"""Tuning of durable consumers."""

from __future__ import annotations

from dataclasses import dataclass

from cowork.arguments import number_arg
from cowork.kernel.backoff import backoff_delay

__all__ = ["ConsumerOptions"]

_JITTER = 0.2  # retries of processes that failed together spread over ±20%


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
        number_arg(self.max_attempts, "max_attempts", minimum=1, maximum=1000, integer=True)
        number_arg(self.batch_size, "batch_size", minimum=1, maximum=10_000, integer=True)
        for name in ("backoff_initial", "backoff_max", "poll_interval", "lease_ttl"):
            number_arg(getattr(self, name), name, minimum=0.001, maximum=86_400)
        for name in ("checkpoint_interval", "redrive_interval"):
            number_arg(getattr(self, name), name, minimum=0, maximum=86_400)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), with ±20% jitter, never over
        ``backoff_max``."""
        return backoff_delay(
            attempt, initial=self.backoff_initial, cap=self.backoff_max, jitter=_JITTER
        )
