"""A ``cowork worker --app tests.cli.slow_app:setup`` module for the SIGTERM tests.

``clitest.slow`` records that it started (a line ``<pid> <attempt>`` appended to the file named
by ``COWORK_TEST_MARKER``), sleeps ``COWORK_TEST_SLOW_SECONDS`` (default 3) and then publishes a
``clitest:slow:done`` event registered with ``ctx.at_completion``, so its effect commits exactly
when the step completes. ``clitest.finish`` returns the pid of the worker that ran it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cowork import ActionContext, Runtime, TransactionContext

MARKER_ENV = "COWORK_TEST_MARKER"
SECONDS_ENV = "COWORK_TEST_SLOW_SECONDS"


def _append(path: str, text: str) -> None:
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


async def slow(ctx: ActionContext) -> Mapping[str, Any]:
    marker = os.environ.get(MARKER_ENV)
    if marker:
        await asyncio.to_thread(_append, marker, f"{os.getpid()} {ctx.attempt}\n")
    done = {"runId": ctx.input["runId"], "pid": os.getpid(), "attempt": ctx.attempt}

    @ctx.at_completion  # commits exactly when the step completes
    async def publish(tx: TransactionContext) -> None:
        await tx.events.publish("clitest:slow:done", done)

    await asyncio.sleep(float(os.environ.get(SECONDS_ENV, "3")))
    return {"slowPid": os.getpid(), "slowAttempt": ctx.attempt}


async def finish(ctx: ActionContext) -> Mapping[str, Any]:
    return {"finishPid": os.getpid()}


def setup(rt: Runtime) -> None:
    rt.workflows.register_action("clitest.slow", slow)
    rt.workflows.register_action("clitest.finish", finish)
