"""Behaviour shared by every adapter's transaction object."""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from cowork.storage.port import AfterCommit

__all__ = ["AfterCommitHooks", "savepoint_scope"]

_names = itertools.count(1)


@asynccontextmanager
async def savepoint_scope(run: Callable[[str], Awaitable[object]]) -> AsyncIterator[None]:
    """SAVEPOINT / RELEASE, or ROLLBACK TO on an exception (then re-raised); ``run`` executes
    one SQL command on the transaction's connection."""
    name = f"cowork_sp_{next(_names)}"
    await run(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        await run(f"ROLLBACK TO SAVEPOINT {name}")
        await run(f"RELEASE SAVEPOINT {name}")
        raise
    await run(f"RELEASE SAVEPOINT {name}")


_log = logging.getLogger("cowork.storage")


class AfterCommitHooks:
    """Collects callbacks to run once the transaction has committed."""

    __slots__ = ("_hooks",)

    def __init__(self) -> None:
        self._hooks: list[AfterCommit] | None = None

    def after_commit(self, callback: AfterCommit) -> None:
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(callback)

    async def run_after_commit(self) -> None:
        hooks, self._hooks = self._hooks, None
        for hook in hooks or ():
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # The transaction is committed; a failing hook must not turn it into an error.
                _log.exception("after-commit callback failed")
