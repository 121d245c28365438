"""The one retry delay: exponential backoff, capped, with optional jitter.

Every wait that grows after a failure or an empty re-check uses it: a durable consumer's
handler retries and reconnects, its quick re-reads after a wake-up, a workflow action's
retries, the workflow executor's pause after a failed claim, a wait step's re-check of the
read horizon. The cap holds for every delay, jitter included.
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]

# The exponent stops growing at 30, so that no attempt number can overflow a float: 2**30
# times a consumer's smallest initial delay (1 ms) is past the largest cap (a day), and
# workflow action retries were always bounded this way.
_MAX_EXPONENT = 30


def backoff_delay(attempt: int, *, initial: float, cap: float, jitter: float = 0.0) -> float:
    """The delay before retry number ``attempt`` (1-based; lower counts as 1): ``initial``
    doubled per attempt, at most ``cap``; with ``jitter`` (a fraction, 0.2 for ±20%) that
    delay is scaled by a random factor and capped again, so it never exceeds ``cap``."""
    delay = min(cap, initial * 2.0 ** min(max(0, attempt - 1), _MAX_EXPONENT))
    if jitter:
        factor = random.uniform(1.0 - jitter, 1.0 + jitter)  # noqa: S311 - jitter, not security
        delay = min(cap, delay * factor)
    return delay
