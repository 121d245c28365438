"""Shared CLI state: settings, output mode, and running async commands."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from cowork.cli import exit_codes
from cowork.errors import CoworkError

if TYPE_CHECKING:
    # Imported where used: ``cowork --help`` and usage errors never load rich, pydantic, the
    # drivers or the runtime (tests/cli/test_fast_start.py holds this).
    from rich.console import Console

    from cowork.config import Settings
    from cowork.runtime import Runtime
    from cowork.runtime.operator import Operator

T = TypeVar("T")

__all__ = ["CliContext", "fail", "pass_cli", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Records (frozen dataclasses), enums, tuples and datetimes as JSON-friendly values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_") and f.repr
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


@dataclass
class CliContext:
    database_url: str | None
    config_file: str | None
    tenant_id: str | None
    as_json: bool
    _consoles: dict[bool, Console] = field(default_factory=dict, repr=False)

    @property
    def console(self) -> Console:
        """Rich output on stdout (created on first use)."""
        return self._console(stderr=False)

    @property
    def err_console(self) -> Console:
        """Rich output on stderr: progress, notes beside machine-readable stdout."""
        return self._console(stderr=True)

    def _console(self, *, stderr: bool) -> Console:
        if stderr not in self._consoles:
            from rich.console import Console

            self._consoles[stderr] = Console(stderr=stderr)
        return self._consoles[stderr]

    def settings(self) -> Settings:
        from cowork.config import load_settings

        return load_settings(
            config_file=self.config_file,
            database_url=self.database_url,
            tenant_id=self.tenant_id,
        )

    def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        import asyncio

        with user_errors(self):
            return asyncio.run(_call(factory))

    def run_sync(self, work: Callable[[], T]) -> T:
        with user_errors(self):
            return work()

    def emit_json(self, data: Any) -> None:
        click.echo(json.dumps(to_jsonable(data), indent=2, default=str, sort_keys=True))

    async def runtime(self) -> Runtime:
        """A runtime for a command: required mode (never a silent memory fallback), no worker."""
        from cowork.runtime import open_runtime

        return await open_runtime(
            self.database_url,
            tenant_id=self.tenant_id,
            config_file=self.config_file,
            required=True,
            worker=False,
        )

    async def operator(self) -> Operator:
        """An operator (cross-tenant work such as listing tenants): required mode, no worker."""
        from cowork.runtime.operator import open_operator

        return await open_operator(
            self.database_url, config_file=self.config_file, required=True, worker=False
        )

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")  # ids wrap, never "…"-truncated
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        self.console.print(table)


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
