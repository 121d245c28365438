"""What an action handler receives, as user code sees it: ``cowork.ActionContext``, whose
``ctx.tx`` is the runtime's :class:`~cowork.runtime.transaction.TransactionContext` (with the
services bound to it). The workflow engine itself knows only the generic form."""

from __future__ import annotations

from typing import TypeAlias

from cowork.runtime.transaction import TransactionContext
from cowork.workflows.actions import ActionContext as _ActionContext

__all__ = ["ActionContext"]

ActionContext: TypeAlias = _ActionContext[TransactionContext]
