"""The composition root: where configuration, an adapter and the domain services are joined.

``cowork.open`` (:func:`open_runtime`) builds the shared :class:`~cowork.kernel.core.Core`,
wires the durable-consumer and workflow machinery into it, and hands out tenant views
(:class:`Runtime`), their transactions (:class:`TransactionContext`) and the operator API
(:mod:`cowork.runtime.operator`). Nothing below this package imports it.
"""

from __future__ import annotations

from cowork.runtime.runtime import (
    HORIZON_WARN_SECONDS,
    Runtime,
    open_runtime,
    refuse_distributed_event_log,
)

__all__ = ["HORIZON_WARN_SECONDS", "Runtime", "open_runtime", "refuse_distributed_event_log"]
