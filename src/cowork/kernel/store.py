"""The base of the aggregate stores: a tenant's transaction and the parameters every one of
its queries takes (the tenant and the owner its rows record)."""

from __future__ import annotations

from typing import Any

from cowork.storage.port import Transaction
from cowork.tenancy import TenantScope

__all__ = ["TenantStore"]


class TenantStore:
    def __init__(self, tx: Transaction, scope: TenantScope) -> None:
        self.tx = tx
        self.scope = scope

    def _params(self, **values: Any) -> dict[str, Any]:
        return {"tenant_id": self.scope.tenant_id, "owner_id": self.scope.owner_id, **values}
