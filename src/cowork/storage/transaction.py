"""Behaviour shared by every adapter's transaction object."""

from __future__ import annotations

import inspect
import logging

from cowork.storage.port import AfterCommit

__all__ = ["AfterCommitHooks"]

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
