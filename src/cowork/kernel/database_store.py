"""What the database says about itself and across tenants: its clock, the tenants it knows,
whether Citus distributes the event log, and the transactions holding a tenant's read horizon.

The one place that names these queries. Most of them read outside any tenant's scope, so the
caller opens the transaction (``tenant_id=None``) and says why; each function runs in it.
"""

from __future__ import annotations

from datetime import datetime

from cowork.storage.port import HorizonHolder, Transaction

__all__ = ["database_time", "event_log_distributed", "horizon_holders", "known_tenants"]


async def database_time(tx: Transaction) -> datetime | None:
    """The database server's clock now (None if it answered with no time)."""
    row = await tx.fetch_one("database_clock")
    server = None if row is None else row["now"]
    return server if isinstance(server, datetime) else None


async def known_tenants(tx: Transaction) -> list[str]:
    """Every tenant with events, in id order (a cross-tenant read)."""
    rows = await tx.fetch_all("tenants_known")
    return [r["tenant_id"] for r in rows]


async def event_log_distributed(tx: Transaction) -> bool:
    """Whether Citus distributes the event log (asked only where Citus is installed)."""
    citus = await tx.fetch_one("citus_installed")
    if citus is None or not citus["present"]:
        return False
    distributed = await tx.fetch_one("event_log_distributed")
    return distributed is not None and bool(distributed["present"])


async def horizon_holders(
    tx: Transaction, tenant_id: str, *, min_age_seconds: float
) -> list[HorizonHolder]:
    """Open transactions that have held ``tenant_id``'s read horizon back for at least
    ``min_age_seconds``, oldest first (none on SQLite)."""
    rows = await tx.fetch_all(
        "horizon_holders", {"tenant_id": tenant_id, "min_age": float(min_age_seconds)}
    )
    return [
        HorizonHolder(
            pid=int(r["pid"]),
            xid=int(r["xid"]),
            scope=str(r["scope"]),
            started_at=r["xact_start"],
            age_seconds=None if r["age_seconds"] is None else float(r["age_seconds"]),
            application_name=r["application_name"],
            state=r["state"],
        )
        for r in rows
    ]
