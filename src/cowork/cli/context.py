"""Shared CLI state: settings, output mode, and running async commands."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from cowork.cli import exit_codes
from cowork.config import Settings, load_settings
from cowork.errors import CoworkError

T = TypeVar("T")

__all__ = ["CliContext", "fail", "pass_cli"]


@dataclass
class CliContext:
    database_url: str | None
    config_file: str | None
    tenant_id: str | None
    as_json: bool
    console: Console
    err_console: Console

    def settings(self) -> Settings:
        return load_settings(
            config_file=self.config_file,
            database_url=self.database_url,
            tenant_id=self.tenant_id,
        )

    def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        with user_errors(self):
            return asyncio.run(_call(factory))

    def emit_json(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, default=str, sort_keys=True))


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


@contextmanager
def user_errors(ctx: CliContext) -> Iterator[None]:
    """Turn a CoworkError into a one-line message and an exit code: no traceback."""
    try:
        yield
    except CoworkError as exc:
        fail(ctx, str(exc), exit_codes.for_error(exc))


def fail(ctx: CliContext, message: str, code: int) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    if ctx.as_json:
        click.echo(json.dumps({"error": first, "exit_code": code}), err=True)
    else:
        click.echo(f"error: {first}", err=True)
    sys.exit(code)


pass_cli = click.make_pass_decorator(CliContext)
