"""``cowork consumers list|parked|redrive|retry|reset``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cowork.cli.context import CliContext, pass_cli
from cowork.cli.lookup import require_consumer

if TYPE_CHECKING:
    from cowork.consumers.service import ConsumerInfo, ParkedEvent


@click.group("consumers")
def consumers_group() -> None:
    """Inspect and operate durable consumers."""


@consumers_group.command("list")
@pass_cli
def list_command(cli: CliContext) -> None:
    """Consumers with their checkpoint, lag, parked count and lease holder."""

    async def run() -> list[ConsumerInfo]:
        async with await cli.runtime() as rt:
            return await rt.consumers.list()

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
        return
    cli.table(
        "consumers",
        ("consumer", "pattern", "position", "lag", "parked", "lease holder", "updated"),
        (
            (
                c.consumer_id,
                c.pattern,
                c.last_position,
                c.lag,
                c.parked,
                c.lease_owner,
                c.updated_at.isoformat(timespec="seconds"),
            )
            for c in items
        ),
    )


@consumers_group.command("parked")
@click.argument("consumer_id", required=False)
@pass_cli
def parked_command(cli: CliContext, consumer_id: str | None) -> None:
    """Parked (dead-lettered) events, of one consumer or all."""

    async def run() -> list[ParkedEvent]:
        async with await cli.runtime() as rt:
            if consumer_id is not None:
                await require_consumer(rt, consumer_id)
            return await rt.consumers.parked(consumer_id)

    items = cli.run(run)
    if cli.as_json:
        cli.emit_json(items)
        return
    cli.table(
        "parked events",
        ("consumer", "position", "type", "attempts", "status", "error"),
        (
            (p.consumer_id, p.position, p.event_type, p.attempts, p.status, p.last_error[:80])
            for p in items
        ),
    )


def _redrive(cli: CliContext, consumer_id: str, position: int | None) -> None:
    async def run() -> int:
        async with await cli.runtime() as rt:
            await require_consumer(rt, consumer_id)
            return await rt.consumers.redrive(consumer_id, position=position)

    count = cli.run(run)
    if cli.as_json:
        cli.emit_json({"consumer_id": consumer_id, "queued": count})
    else:
        cli.console.print(f"{count} parked event(s) queued for redelivery to {consumer_id}")


@consumers_group.command("redrive")
@click.argument("consumer_id")
@click.option("--position", type=int, help="Only this event (default: every parked one).")
@pass_cli
def redrive_command(cli: CliContext, consumer_id: str, position: int | None) -> None:
    """Deliver parked events again."""
    _redrive(cli, consumer_id, position)


@consumers_group.command("retry")
@click.argument("consumer_id")
@click.option("--position", type=int, help="Only this event (default: every parked one).")
@pass_cli
def retry_command(cli: CliContext, consumer_id: str, position: int | None) -> None:
    """Same as redrive."""
    _redrive(cli, consumer_id, position)


@consumers_group.command("reset")
@click.argument("consumer_id")
@click.option(
    "--to",
    "target",
    default="beginning",
    show_default=True,
    help="'beginning', 'now', or a position to resume after.",
)
@click.option("--pattern", help="A new pattern for the consumer.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def reset_command(
    cli: CliContext, consumer_id: str, target: str, pattern: str | None, yes: bool
) -> None:
    """Move a consumer's checkpoint (it will re-handle or skip events)."""
    to: str | int
    if target in ("beginning", "now"):
        to = target
    else:
        try:
            to = int(target)
        except ValueError:
            raise click.BadParameter("--to must be 'beginning', 'now' or a position") from None
    if not yes and not cli.as_json:
        click.confirm(f"reset consumer {consumer_id!r} to {target}?", abort=True)

    async def run() -> None:
        async with await cli.runtime() as rt:
            await require_consumer(rt, consumer_id)
            await rt.consumers.reset(consumer_id, to=to, pattern=pattern)  # type: ignore[arg-type]

    cli.run(run)
    if cli.as_json:
        cli.emit_json({"consumer_id": consumer_id, "reset_to": target, "pattern": pattern})
    else:
        cli.console.print(f"consumer {consumer_id} reset to {target}")
