"""Query names live in the stores: a service calls a typed store (``WorkspaceStore``,
``BlackboardStore``, ``ConsumerStore``, …) and never names a query itself.

A query name is the first argument of a call that runs one (``tx.fetch_one("workspace_get",
…)``, ``database.run_alone(…)``, ``core.trips.run(…)``). Written as a literal, it may appear
only in a store module: a file named ``store.py`` or ``*_store.py``, the event log's store
``events/log.py``, or the storage layer itself (``storage/**``). ``tests/unit/test_queries.py``
scans the same calls to check that every name exists in both dialects.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import cowork

ROOT = Path(cowork.__file__).parent
RUNS_A_QUERY = frozenset(
    {"execute", "execute_many", "fetch_one", "fetch_all", "send", "submit", "run_alone"}
)


def is_store(relative: PurePosixPath) -> bool:
    """Whether a module (its path under ``src/cowork``) may name queries."""
    return (
        relative.name == "store.py"
        or relative.name.endswith("_store.py")
        or relative.as_posix() == "events/log.py"
        or relative.parts[0] == "storage"
    )


def _runs_a_query(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr in RUNS_A_QUERY:
        return True
    # ``GroupedTrips.run``: only on something called ``trips`` (``cli.run``, ``executor.run``
    # and the like run no query).
    receiver = func.value
    named_trips = (isinstance(receiver, ast.Name) and receiver.id == "trips") or (
        isinstance(receiver, ast.Attribute) and receiver.attr == "trips"
    )
    return func.attr == "run" and named_trips


def _literals(node: ast.expr) -> Iterator[tuple[int, str]]:
    """The string literals an argument can be: a literal (an f-string too), or either branch
    of a conditional expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.lineno, node.value
    elif isinstance(node, ast.JoinedStr):
        yield node.lineno, ast.unparse(node)
    elif isinstance(node, ast.IfExp):
        yield from _literals(node.body)
        yield from _literals(node.orelse)


def query_literals(source: str) -> list[tuple[int, str]]:
    """(line, name) of every literal query name passed to a query-running call."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _runs_a_query(node) and node.args:
            found.extend(_literals(node.args[0]))
    return sorted(found)


def _scan() -> tuple[list[tuple[str, int, str]], int]:
    """Literal query names outside the stores as (module, line, name), and how many the
    stores hold."""
    outside: list[tuple[str, int, str]] = []
    in_stores = 0
    for path in sorted(ROOT.rglob("*.py")):
        relative = PurePosixPath(path.relative_to(ROOT).as_posix())
        found = query_literals(path.read_text(encoding="utf-8"))
        if is_store(relative):
            in_stores += len(found)
        else:
            outside.extend((relative.as_posix(), line, name) for line, name in found)
    return outside, in_stores


def test_only_stores_name_queries() -> None:
    outside, in_stores = _scan()
    assert in_stores > 50, "the scan found too few query names to be looking in the right place"
    offenders = [f"src/cowork/{module}:{line}: {name!r}" for module, line, name in outside]
    assert offenders == [], (
        "name queries in a store (store.py / *_store.py), not in a service:\n"
        + "\n".join(offenders)
    )


def test_the_detector_finds_query_names_in_calls() -> None:
    snippet = textwrap.dedent(
        """
        async def work(tx, core, database, trips, cli, query):
            await tx.fetch_one("workspace_get", {})
            await tx.execute(
                "workspace_update",
                {"row_version": 1},
            )
            await tx.fetch_all("wf_a" if query else "wf_b")
            await core.trips.run("wf_save", {}, tenant_id="t")
            await trips.run(f"wf_{query}", {}, tenant_id="t")
            await database.run_alone("event_append_alone", {}, tenant_id="t")
            await (await tx.submit("event_append", {})).rows()
            await tx.send("parked_resolve")
            await tx.execute_many("wf_history_insert", [])
            await tx.fetch_one(query)               # not a literal: the store passes names
            cli.run("not a query")                  # run, but not on trips
            core.executor.run()
            print("workspace_get")                  # a literal, but no query runs
        """
    )
    assert query_literals(snippet) == [
        (3, "workspace_get"),
        (5, "workspace_update"),
        (8, "wf_a"),
        (8, "wf_b"),
        (9, "wf_save"),
        (10, "f'wf_{query}'"),
        (11, "event_append_alone"),
        (12, "event_append"),
        (13, "parked_resolve"),
        (14, "wf_history_insert"),
    ]


def test_store_modules_are_recognised_by_name() -> None:
    stores = [
        "workspaces/store.py",
        "blackboard/feedback_store.py",
        "kernel/database_store.py",
        "events/log.py",
        "storage/postgres/adapter.py",
    ]
    services = [
        "workspaces/service.py",
        "snapshots/restore.py",
        "events/bus.py",
        "runtime/events.py",
    ]
    assert all(is_store(PurePosixPath(p)) for p in stores)
    assert not any(is_store(PurePosixPath(p)) for p in services)
