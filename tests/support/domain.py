"""Helpers shared by the domain contract tests: reading the log once it has settled."""

from __future__ import annotations

import asyncio
import time

import cowork
from cowork import EventEnvelope

SENTINEL = "test:sentinel"
NOT_OURS = (SENTINEL, "workflow:")


async def settled_log(rt: cowork.Runtime) -> list[EventEnvelope]:
    """The tenant's whole log once every earlier commit is readable, sentinels left out.

    PostgreSQL reads are gap-free (bounded by the snapshot's xmin horizon), so a committed event
    may become readable a moment later; a sentinel published now marks "everything so far".
    The embedded workflow engine reacts to these events with ``workflow:*`` events of its own,
    at its own pace: they are not this domain's and are left out too.
    """
    marker = await rt.events.publish(SENTINEL)
    deadline = time.monotonic() + 60.0  # generous: the read horizon is server-wide
    while True:
        events = await rt.events.read(limit=10_000)
        if any(e.event_id == marker.event_id for e in events):
            return [e for e in events if not e.event_type.startswith(NOT_OURS)]
        if time.monotonic() > deadline:
            raise AssertionError("the sentinel event never became readable")
        await asyncio.sleep(0.01)


async def log_since(rt: cowork.Runtime, seen: int) -> list[EventEnvelope]:
    """The settled log after its first ``seen`` events."""
    return (await settled_log(rt))[seen:]
