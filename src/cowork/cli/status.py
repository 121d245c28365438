"""``cowork status``: database, schema version, durability."""

from __future__ import annotations

import sys
from typing import Any

import click

from cowork.cli import exit_codes
from cowork.cli.context import CliContext, pass_cli
from cowork.errors import PersistenceUnavailable


async def _gather(cli: CliContext) -> dict[str, Any]:
    from cowork.migrations import migrate
    from cowork.runtime import open_runtime
    from cowork.runtime.factory import create_database

    settings = cli.settings()
    db = create_database(settings.effective_database_url(), settings)
    info: dict[str, Any] = {
        "database": db.display_url,
        "backend": db.backend,
        "durable": db.durable,
        "tenant_id": settings.tenant_id,
        "persistence_required": settings.persistence_required,
    }
    try:
        await db.open()
    except PersistenceUnavailable as exc:
        info.update(healthy=False, error=str(exc))
        return info
    try:
        health = await db.health()
        info.update(healthy=health.healthy, latency_ms=health.latency_ms, error=health.error)
        report = await migrate(db, check_only=True)
    finally:
        await db.close()
    info.update(
        schema_version=report.schema_version,
        migrations_applied=len(report.already_applied),
        migrations_pending=list(report.pending),
    )
    if report.up_to_date and report.already_applied:
        async with await open_runtime(
            settings.effective_database_url(),
            tenant_id=settings.tenant_id,
            config_file=cli.config_file,
            required=True,
            worker=False,
            auto_migrate=False,
        ) as rt:
            consumers = await rt.consumers.list()
            health = await rt.health()
            pending = await rt.workflows.pending_actions()
            info.update(
                consumer_lag={c.consumer_id: c.lag for c in consumers},
                parked_events=sum(c.parked for c in consumers),
                workflows=await rt.workflows.counts(),
                steps_waiting_for_a_worker=[
                    {
                        "action": p.action,
                        "steps": p.steps,
                        "waiting_seconds": round(p.waiting_seconds, 1),
                        "summary": f"{p.steps} step(s) with action {p.action!r}, "
                        f"oldest waiting {p.waiting_seconds:.0f} s",
                    }
                    for p in pending
                ],
                horizon_held_by=[
                    {
                        "pid": h.pid,
                        "xid": h.xid,
                        "scope": h.scope,
                        "age_seconds": h.age_seconds,
                        "application_name": h.application_name,
                        "state": h.state,
                        "summary": h.describe(),
                    }
                    for h in health.horizon_held_by
                ],
            )
    return info


@click.command("status")
@pass_cli
def status_command(cli: CliContext) -> None:
    """Show the database, its health, schema version and durability."""
    info = cli.run(lambda: _gather(cli))
    if cli.as_json:
        cli.emit_json(info)
    else:
        from rich.table import Table

        table = Table(title="cowork status", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        for key, value in info.items():
            if value is None:
                continue
            if key == "latency_ms":
                value = f"{value:.2f}"
            if key == "steps_waiting_for_a_worker":
                value = "\n".join(p["summary"] for p in value) if value else "none"
            if key == "horizon_held_by":
                # Readers of this tenant wait for these transactions.
                value = "\n".join(h["summary"] for h in value) if value else "nothing"
            table.add_row(key.replace("_", " "), str(value))
        cli.console.print(table)
    if not info["healthy"]:
        sys.exit(exit_codes.UNAVAILABLE)
