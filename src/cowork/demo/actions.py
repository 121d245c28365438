"""Actions of the demo's ``demo-publish`` workflow, loaded by ``cowork worker --app``.

``demo.publish`` is slow on purpose: the demo kills the worker while it runs. Both actions run
outside any database transaction and register their writes with ``ctx.at_completion``, so they
commit with the step's checkpoint: the killed attempt leaves nothing behind and the resumed one
takes effect exactly once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cowork.runtime import Runtime
from cowork.runtime.actions import ActionContext
from cowork.runtime.transaction import TransactionContext

MARKER_ENV = "COWORK_DEMO_MARKER"
PUBLISH_SECONDS = 2.0


async def render(ctx: ActionContext) -> Mapping[str, Any]:
    workspace_id = ctx.input["workspaceId"]

    @ctx.at_completion
    async def write_notes(tx: TransactionContext) -> None:
        spec = await tx.blackboard.get(workspace_id, "spec")
        notes = {"title": "Release notes", "basedOnSpecVersion": spec.version if spec else None}
        await tx.blackboard.put(workspace_id, "release-notes", notes, actor="renderer")

    return {"renderedBy": os.getpid()}


async def publish(ctx: ActionContext) -> Mapping[str, Any]:
    marker = os.environ.get(MARKER_ENV)
    if marker:
        text = f"{os.getpid()} attempt {ctx.attempt}\n"
        await asyncio.to_thread(Path(marker).write_text, text, encoding="utf-8")
    await asyncio.sleep(PUBLISH_SECONDS)  # the slow part: no transaction, no connection held
    workspace_id = ctx.input["workspaceId"]

    @ctx.at_completion
    async def mark_published(tx: TransactionContext) -> None:
        current = await tx.blackboard.get(workspace_id, "release-notes")
        payload = {**(current.payload if current else {}), "published": True}
        await tx.blackboard.put(workspace_id, "release-notes", payload, actor="publisher")

    return {"publishedBy": os.getpid()}


def setup(rt: Runtime) -> None:
    rt.workflows.register_action("demo.render", render)
    rt.workflows.register_action("demo.publish", publish)
