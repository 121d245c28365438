"""The cross-tenant scope is not reachable from a tenant's runtime; operators use
``cowork.open_operator``.

The ``'*'`` scope (a transaction with ``tenant_id=None``) is honoured by the row-level security
policies and reads every tenant's rows. A tenant's runtime, its services and the transaction
contexts it hands out expose nothing that opens it (no database, no core), and a raw statement
run in a tenant's transaction cannot name another tenant (on SQLite, which has no row-level
security, the adapter refuses it; on PostgreSQL the policies hide the rows).

Runs on both backends through ``database_url``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cowork
from cowork.kernel.core import Core

SERVICES = ("events", "consumers", "workspaces", "blackboard", "snapshots", "workflows")


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(database_url, tenant_id="alpha", worker=False) as runtime:
        yield runtime


def _public_values(obj: object) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        if not inspect.ismethod(value) and not inspect.isfunction(value):
            values[name] = value
    return values


def _reaches_the_database(value: object) -> bool:
    """A core or an operator, or anything that opens a transaction for a tenant it is told
    (a database adapter: its ``transaction(tenant_id=None)`` is the cross-tenant scope)."""
    if isinstance(value, Core | cowork.Operator):
        return True
    opener = getattr(value, "transaction", None)
    if not callable(opener):
        return False
    try:
        return "tenant_id" in inspect.signature(opener).parameters
    except (TypeError, ValueError):
        return False


async def test_nothing_public_on_a_runtime_reaches_the_database(rt: cowork.Runtime) -> None:
    holders: dict[str, object] = {"rt": rt}
    holders.update({f"rt.{name}": getattr(rt, name) for name in SERVICES})
    async with rt.transaction() as tx:
        holders["tx"] = tx
        holders.update({f"tx.{name}": getattr(tx, name) for name in SERVICES if hasattr(tx, name)})
        leaks = [
            f"{where}.{name}"
            for where, holder in holders.items()
            for name, value in _public_values(holder).items()
            if _reaches_the_database(value)
        ]
    assert leaks == []
    # The check itself sees a database when one is there.
    assert _reaches_the_database(rt._core.database) and _reaches_the_database(rt._core)
    assert not hasattr(rt, "database") and not hasattr(rt, "tenants")
    assert rt.display_url  # what status lines need, without the database behind it


async def test_a_tenant_transaction_cannot_read_another_tenants_rows(
    rt: cowork.Runtime, backend: str
) -> None:
    beta = rt.for_tenant("beta")
    theirs = await beta.workspaces.create(name="Theirs", actor="bob")
    await rt.workspaces.create(name="Mine", actor="alice")
    async with rt.transaction() as tx:
        params = {
            "tenant_id": "beta",
            "owner_id": "owner",
            "project_id": None,
            "status": None,
            "include_deleted": True,
            "limit": 100,
        }
        try:
            rows = await tx.tx.fetch_all("workspace_list", params)
        except cowork.TenantViolation:
            assert backend == "sqlite"  # no row-level security: the adapter refuses
        else:
            assert backend == "postgresql"
            assert rows == [], "a tenant's transaction read another tenant's workspaces"
    assert await rt.workspaces.get(theirs.workspace_id) is None


async def test_the_operator_lists_tenants_and_hands_out_tenant_runtimes(
    database_url: str,
) -> None:
    async with await cowork.open(database_url, tenant_id="alpha", worker=False) as rt:
        await rt.workspaces.create(name="A", actor="alice")
        await rt.for_tenant("beta").workspaces.create(name="B", actor="bob")
    async with await cowork.open_operator(database_url) as op:
        assert op.display_url
        tenants = await op.tenants()
        assert {"alpha", "beta"} <= set(tenants)
        assert tenants == sorted(tenants)
        beta = op.runtime("beta")
        assert beta.tenant_id == "beta"
        assert [w.name for w in await beta.workspaces.list()] == ["B"]
        served = await op.serve("alpha")
        assert [w.name for w in await served.workspaces.list()] == ["A"]
        with pytest.raises(cowork.ValidationError):
            op.runtime("not a tenant id")
    assert op.closed
    with pytest.raises(cowork.RuntimeClosed):
        await op.tenants()
