"""``cowork worker --app tests.security.log_app:setup`` for the log scan: a durable consumer
that fails (and so logs) on every ``sec:fail`` event, quoting the payload it was given."""

from __future__ import annotations

import logging

import cowork

_log = logging.getLogger("tests.security.log_app")


async def setup(rt: cowork.Runtime) -> None:
    async def handler(event: cowork.EventEnvelope) -> None:
        _log.info("handling %s with payload %s", event.event_type, event.payload)
        if event.event_type == "sec:fail":
            raise RuntimeError(f"cannot handle payload {event.payload} / {event.metadata}")

    await rt.events.subscribe("sec:*", handler, consumer_id="sec-logger", max_attempts=2)
