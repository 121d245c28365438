"""Services adapt to what the database can do (``Database.capabilities``), never to a backend
name or to which queries an adapter happens to define."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cowork.storage.port import Capabilities
from cowork.storage.queries import load_queries

SRC = Path(__file__).resolve().parents[2] / "src" / "cowork"
# Everything above the storage port that is not the composition root or an interface.
SERVICE_PACKAGES = (
    "kernel",
    "events",
    "consumers",
    "workspaces",
    "blackboard",
    "snapshots",
    "workflows",
)
BACKEND_CHECK = re.compile(r"\.backend\s*[!=]=|has_query\(|\"postgresql\"|'postgresql'")


def test_no_service_asks_for_a_backend_by_name() -> None:
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for package in SERVICE_PACKAGES
        for path in sorted((SRC / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BACKEND_CHECK.search(line)
    ]
    assert not found, "use database.capabilities instead:\n" + "\n".join(found)


def test_the_check_sees_a_backend_test() -> None:
    assert BACKEND_CHECK.search('poll = 1.0 if db.backend == "postgresql" else 0.25')
    assert BACKEND_CHECK.search('if self.ctx.tx.has_query("wf_save"):')
    assert not BACKEND_CHECK.search("if db.capabilities.one_statement_saves:")


@pytest.mark.parametrize("package", ["cowork.storage.postgres", "cowork.storage.sqlite"])
def test_one_statement_saves_match_the_queries(package: str) -> None:
    """An adapter that says it saves in one statement defines those statements, and the other
    way round."""
    if package.endswith("postgres"):
        from cowork.storage.postgres.adapter import _CAPABILITIES
    else:
        from cowork.storage.sqlite.adapter import _CAPABILITIES
    capabilities: Capabilities = _CAPABILITIES
    queries = load_queries(package)
    one_statement = {"wf_save", "wf_start"} <= set(queries)
    assert capabilities.one_statement_saves is one_statement
    assert capabilities.poll_interval > 0
