"""Shared helpers for the event-log and durable-consumer contract tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import cowork
from cowork.consumers.manager import ConsumerManager
from cowork.events.patterns import EventPattern

DEFAULT_TIMEOUT = 2.5


async def eventually(
    condition: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.01,
    what: str = "condition",
) -> Any:
    """Poll ``condition`` (sync or async) until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def fast_options(**overrides: Any) -> cowork.ConsumerOptions:
    """Consumer options with small backoffs and poll intervals so that tests stay fast."""
    values: dict[str, Any] = {
        "max_attempts": 3,
        "backoff_initial": 0.01,
        "backoff_max": 0.02,
        "poll_interval": 0.05,
        "checkpoint_interval": 0.05,
        "redrive_interval": 0.05,
    }
    values.update(overrides)
    return cowork.ConsumerOptions(**values)


def subscribe_fast(
    rt: cowork.Runtime,
    consumer_id: str,
    pattern: str,
    handler: Callable[..., Any],
    *,
    start: Literal["beginning", "now"] = "beginning",
    transactional: bool = False,
    **overrides: Any,
) -> cowork.DurableSubscription:
    """A durable subscription with test-sized options.

    ``rt.events.subscribe`` does not take ``ConsumerOptions``, so this goes through the
    runtime's internal consumer manager (acceptable in tests only).
    """
    return ConsumerManager.of(rt._core).subscribe(
        rt.scope,
        consumer_id=consumer_id,
        pattern=EventPattern.parse(pattern),
        handler=handler,
        start=start,
        transactional=transactional,
        options=fast_options(**overrides),
    )


async def consumer_info(rt: cowork.Runtime, consumer_id: str) -> cowork.ConsumerInfo:
    [info] = [c for c in await rt.consumers.list() if c.consumer_id == consumer_id]
    return info


async def all_events(rt: cowork.Runtime) -> list[cowork.EventEnvelope]:
    return await rt.events.read(limit=10_000)


async def read_through(
    rt: cowork.Runtime, last: cowork.EventEnvelope, *, timeout: float = 5.0
) -> list[cowork.EventEnvelope]:
    """The tenant's whole log, read once ``last`` has become readable.

    On PostgreSQL a reader sees only transactions below its snapshot's xmin horizon (gap-free
    reads), and any open writer in the cluster holds that horizon back, so a committed event
    can become readable a moment after ``publish`` returns. Reads are gap-free and in commit
    order, so once ``last`` (the last event committed) is visible every earlier one is too.
    """

    async def visible() -> list[cowork.EventEnvelope] | None:
        events = await all_events(rt)
        return events if any(e.event_id == last.event_id for e in events) else None

    result: list[cowork.EventEnvelope] = await eventually(
        visible, timeout=timeout, what=f"event {last.event_id} to become readable"
    )
    return result
