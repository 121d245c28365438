"""The worker: durable consumers and the workflow engine for one, several or all tenants.

``cowork worker`` runs :func:`run_worker` until SIGTERM/SIGINT; shutdown finishes the current
transition of every engine and consumer and releases their leases, so another worker takes over
at once. Application code (durable consumer handlers, workflow actions) is loaded with
``--app module:function``: the function is called with each tenant's runtime view.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cowork.errors import ConfigError, CoworkError
from cowork.runtime.operator import Operator, open_operator
from cowork.runtime.runtime import Runtime

__all__ = ["Setup", "load_setup", "run_worker"]

_log = logging.getLogger("cowork.runtime.worker")
Setup = Callable[[Runtime], Awaitable[None] | None]


def load_setup(spec: str) -> Setup:
    """``package.module:function`` → the function. The current directory is searched first,
    as ``python -m`` does, so a module next to where the worker starts is found."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"--app must look like package.module:function, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for --app: {exc}") from None
    setup = getattr(module, attribute, None)
    if not callable(setup):
        raise ConfigError(f"{spec!r} is not a callable in {module_name!r}")
    return setup  # type: ignore[no-any-return]


async def run_worker(
    stop: asyncio.Event,
    *,
    database_url: str | None = None,
    tenants: Sequence[str] = (),
    setup: Setup | None = None,
    discover_interval: float = 5.0,
    ready: Callable[[Operator], None] | None = None,
    **config: Any,
) -> None:
    """Serve ``tenants`` (or every tenant found in the log, and new ones as they appear)."""
    op = await open_operator(database_url, required=True, worker=True, **config)
    served: dict[str, Runtime] = {}

    async def serve(tenant_id: str) -> None:
        if tenant_id in served:
            return
        view = await op.serve(tenant_id)
        if setup is not None:
            result = setup(view)
            if inspect.isawaitable(result):
                await result
        served[tenant_id] = view
        _log.info("serving tenant %s", tenant_id)

    try:
        for tenant_id in tenants or [op.settings.tenant_id]:
            await serve(tenant_id)
        if ready is not None:
            ready(op)
        while not stop.is_set():
            if not tenants:
                try:
                    for tenant_id in await op.tenants():
                        await serve(tenant_id)
                except CoworkError as exc:
                    _log.warning("tenant discovery failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), discover_interval)
        _log.info("stopping: finishing current transitions and releasing leases")
    finally:
        await op.close()
