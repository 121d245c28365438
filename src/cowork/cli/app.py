"""The ``cowork`` command group and its global options.

Start-up stays fast: a subcommand's module (and with it rich, pydantic, the drivers and the
runtime) is imported only when that subcommand runs. ``cowork --help`` lists the commands
from :data:`COMMANDS` without importing any of them; ``tests/cli/test_fast_start.py`` checks
that each summary there matches its command's own help.

The global options (``--database-url``, ``--config``, ``--tenant``, ``--json``) are accepted
before the subcommand (``cowork --json workspace list``) and after it
(``cowork workspace list --json``); the value given last wins.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import click

from cowork.cli.context import CliContext

__all__ = ["COMMANDS", "cli", "main"]

# name -> ("module:attribute", the one-line summary `cowork --help` shows).
COMMANDS: Mapping[str, tuple[str, str]] = {
    "blackboard": (
        "cowork.cli.blackboard:blackboard_group",
        "Inspect and write blackboard artifacts.",
    ),
    "consumers": ("cowork.cli.consumers:consumers_group", "Inspect and operate durable consumers."),
    "demo": (
        "cowork.cli.demo:demo_command",
        "Show the whole system on the configured database (default: the embedded SQLite file).",
    ),
    "events": ("cowork.cli.events:events_group", "Read and publish events."),
    "migrate": (
        "cowork.cli.migrate:migrate_command",
        "Apply pending schema migrations (forward-only, checksummed).",
    ),
    "release-check": (
        "cowork.cli.release:release_check_command",
        "Check that a release tree holds code, docs and tests only (exit 1 if not).",
    ),
    "status": (
        "cowork.cli.status:status_command",
        "Show the database, its health, schema version and durability.",
    ),
    "tenants": (
        "cowork.cli.tenants:tenants_command",
        "Tenants in the database, with their workspaces, events and workflows.",
    ),
    "worker": (
        "cowork.cli.worker:worker_command",
        "Run durable consumers and workflows until SIGTERM/SIGINT (then exit 0).",
    ),
    "workflow": ("cowork.cli.workflow:workflow_group", "Inspect and operate workflows."),
    "workspace": ("cowork.cli.workspace:workspace_group", "Inspect and change workspaces."),
}

_DATABASE_URL_HELP = (
    "postgresql://…, sqlite:///path or memory:// (default: COWORK_DATABASE_URL, "
    "else the embedded SQLite file)."
)
_CONFIG_HELP = "TOML, JSON or YAML config file."
_TENANT_HELP = "Tenant to act for (COWORK_TENANT_ID)."
_JSON_HELP = "Machine-readable JSON output."


def _global_options() -> list[click.Option]:
    """The global options, for a subcommand: each stores its value in the CliContext."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        cli_context = ctx.find_object(CliContext)
        if cli_context is not None and value not in (None, False) and param.name:
            setattr(cli_context, param.name, value)

    def option(decls: list[str], **kwargs: Any) -> click.Option:
        return click.Option(decls, expose_value=False, callback=store, **kwargs)

    return [
        option(["--database-url", "database_url"], metavar="URL", help=_DATABASE_URL_HELP),
        option(["--config", "config_file"], metavar="FILE", help=_CONFIG_HELP),
        option(["--tenant", "tenant_id"], metavar="ID", help=_TENANT_HELP),
        option(["--json", "as_json"], is_flag=True, help=_JSON_HELP),
    ]


def with_global_options(command: click.Command) -> click.Command:
    """Add the global options to ``command`` and, for a group, to every command under it.

    An option name the command defines itself is left to it: ``worker --tenant`` (repeatable)
    keeps its meaning."""
    taken = {opt for param in command.params for opt in param.opts}
    command.params.extend(o for o in _global_options() if not set(o.opts) & taken)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_global_options(sub)
    return command


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module_name, _, attribute = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(with_global_options(command), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The summaries from the table, so that ``--help`` imports no subcommand."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # An unloaded command stands in as a bare one with the summary as its help, so
            # that click shortens it as it would the real one.
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name][1])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _lazy_group(**attrs: Any) -> Callable[[Callable[..., Any]], LazyGroup]:
    def decorate(f: Callable[..., Any]) -> LazyGroup:
        group = click.group(cls=LazyGroup, lazy=COMMANDS, **attrs)(f)
        assert isinstance(group, LazyGroup)
        return group

    return decorate


@_lazy_group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", metavar="URL", help=_DATABASE_URL_HELP)
@click.option("--config", "config_file", metavar="FILE", help=_CONFIG_HELP)
@click.option("--tenant", "tenant_id", metavar="ID", help=_TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.version_option(package_name="cowork-foundation", prog_name="cowork")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    config_file: str | None,
    tenant_id: str | None,
    as_json: bool,
) -> None:
    """Cowork foundation: durable workspaces, blackboard, event log and workflows.

    Global options may also follow the subcommand (cowork workspace list --json)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = CliContext(
        database_url=database_url,
        config_file=config_file,
        tenant_id=tenant_id,
        as_json=as_json,
    )


def main() -> None:
    cli(prog_name="cowork")
