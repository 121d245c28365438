"""PostgreSQL-only domain guarantees: concurrent writers and row-level
security on every tenant table."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

import cowork
from cowork import BlackboardEntry, Workspace, WorkspaceStatus

pytestmark = pytest.mark.postgres

WRITERS = 16


@pytest.fixture
async def rt(pg_url: str) -> AsyncIterator[cowork.Runtime]:
    async with await cowork.open(pg_url, tenant_id="t1", pool_max_size=20) as runtime:
        yield runtime


@pytest.fixture
async def wid(rt: cowork.Runtime) -> str:
    ws = await rt.workspaces.create(name="Race", actor="alice", members=[])
    return ws.workspace_id


def split(results: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    wins = [r for r in results if not isinstance(r, BaseException)]
    conflicts = [r for r in results if isinstance(r, cowork.VersionConflict)]
    other = [r for r in results if isinstance(r, BaseException) and r not in conflicts]
    return wins, conflicts, other


# -- concurrent writers -------------------------------------------------------------------------


async def test_sixteen_writers_with_one_expected_version_have_exactly_one_winner(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 0}, actor="seed")
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="seed")
    results = await asyncio.gather(
        *(
            rt.blackboard.put(wid, "doc", {"writer": i}, actor=f"w{i}", expected_version=2)
            for i in range(WRITERS)
        ),
        return_exceptions=True,
    )
    wins, conflicts, other = split(results)
    assert other == []
    assert len(wins) == 1 and len(conflicts) == WRITERS - 1
    [winner] = wins
    assert isinstance(winner, BlackboardEntry) and winner.version == 3
    assert {c.current_version for c in conflicts} == {winner.version}
    assert {c.expected_version for c in conflicts} == {2}
    history = await rt.blackboard.history(wid, "doc")
    assert [v.version for v in history] == [1, 2, 3]
    assert history[-1].payload == winner.payload


async def test_sixteen_create_only_writers_of_a_new_key_have_exactly_one_winner(
    rt: cowork.Runtime, wid: str
) -> None:
    results = await asyncio.gather(
        *(
            rt.blackboard.put(wid, "fresh", {"writer": i}, actor=f"w{i}", expected_version=0)
            for i in range(WRITERS)
        ),
        return_exceptions=True,
    )
    wins, conflicts, other = split(results)
    assert other == []
    assert len(wins) == 1 and len(conflicts) == WRITERS - 1
    assert wins[0].version == 1
    assert {c.current_version for c in conflicts} == {1}
    history = await rt.blackboard.history(wid, "fresh")
    assert [(v.version, v.payload) for v in history] == [(1, wins[0].payload)]


async def test_sixteen_unconditional_writers_all_land_with_distinct_versions(
    rt: cowork.Runtime, wid: str
) -> None:
    results = await asyncio.gather(
        *(rt.blackboard.put(wid, "free", {"writer": i}, actor=f"w{i}") for i in range(WRITERS)),
        return_exceptions=True,
    )
    wins, _, _ = split(results)
    assert len(wins) == WRITERS, [r for r in results if isinstance(r, BaseException)]
    assert sorted(w.version for w in wins) == list(range(1, WRITERS + 1))
    assert len({w.artifact_id for w in wins}) == 1
    history = await rt.blackboard.history(wid, "free")
    assert [v.version for v in history] == list(range(1, WRITERS + 1))
    assert sorted(v.payload["writer"] for v in history) == list(range(WRITERS))


async def test_sixteen_concurrent_closes_have_one_winner_and_keep_closed_at(
    rt: cowork.Runtime, wid: str
) -> None:
    results = await asyncio.gather(
        *(rt.workspaces.close(wid, actor=f"a{i}") for i in range(WRITERS)),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, Workspace)]
    refused = [r for r in results if isinstance(r, cowork.InvalidTransition)]
    assert len(wins) == 1 and len(refused) == WRITERS - 1, results
    stored = await rt.workspaces.get(wid)
    assert stored is not None and stored.status is WorkspaceStatus.CLOSED
    assert stored.closed_at is not None and stored.closed_at == wins[0].closed_at


async def test_concurrent_member_and_comment_changes_lose_nothing(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 1}, actor="s")
    thread = await rt.blackboard.add_feedback(wid, actor="bob", body="b", artifact_key="doc")
    await asyncio.gather(
        *(rt.workspaces.add_member(wid, f"m{i}") for i in range(WRITERS)),
        *(
            rt.blackboard.add_comment(
                thread.workspace_id, thread.feedback_id, actor=f"c{i}", body=f"comment {i}"
            )
            for i in range(WRITERS)
        ),
    )
    ws = await rt.workspaces.get(wid)
    assert ws is not None and sorted(ws.members) == sorted(f"m{i}" for i in range(WRITERS))
    stored = await rt.blackboard.get_feedback(thread.workspace_id, thread.feedback_id)
    assert stored is not None
    assert sorted(c.body for c in stored.comments) == sorted(f"comment {i}" for i in range(WRITERS))


async def test_writes_racing_a_close_either_land_before_it_or_are_refused(
    rt: cowork.Runtime, wid: str
) -> None:
    await rt.blackboard.put(wid, "doc", {"v": 0}, actor="s")

    async def write(i: int) -> Any:
        await asyncio.sleep(0.001 * i)
        return await rt.blackboard.put(wid, "doc", {"v": i}, actor="s")

    results = await asyncio.gather(
        *(write(i) for i in range(1, WRITERS)),
        rt.workspaces.close(wid),
        return_exceptions=True,
    )
    writes = results[:-1]
    assert isinstance(results[-1], Workspace)
    landed = [r for r in writes if isinstance(r, BlackboardEntry)]
    refused = [r for r in writes if isinstance(r, cowork.WorkspaceNotActive)]
    assert len(landed) + len(refused) == len(writes), writes
    history = await rt.blackboard.history(wid, "doc")
    assert len(history) == 1 + len(landed)
    closed_at = results[-1].closed_at
    assert closed_at is not None
    assert all(v.created_at <= closed_at for v in history), "no write after the close"


# -- row-level security ---------------------------------------------------------------------

TENANT_TABLES = """
SELECT tablename FROM pg_tables
WHERE schemaname = current_schema() AND tablename LIKE 'cowork\\_%%'
  AND tablename <> 'cowork_migrations'
ORDER BY tablename
"""

Filler = Callable[[str, str], tuple[str, tuple[Any, ...]]]

# One row per table, for a tenant, with a unique suffix; used to fill tables the API left empty
# and to try a cross-tenant INSERT inside another tenant's transaction.
FILLERS: dict[str, Filler] = {
    "cowork_workspace_state": lambda t, s: (
        "INSERT INTO cowork_workspace_state (tenant_id, workspace_id, owner_id, name, status, "
        "created_by, created_at, updated_at) VALUES (%s, %s, 'o', 'n', 'active', 'u', now(), "
        "now())",
        (t, f"ws-{s}"),
    ),
    "cowork_blackboard_entry": lambda t, s: (
        "INSERT INTO cowork_blackboard_entry (tenant_id, workspace_id, artifact_key, artifact_id, "
        "owner_id, artifact_type, source, payload, version, created_at, updated_at) VALUES "
        "(%s, 'ws', %s, %s, 'o', 'document', 's', '{}'::jsonb, 1, now(), now())",
        (t, f"k-{s}", f"a-{s}"),
    ),
    "cowork_blackboard_entry_version": lambda t, s: (
        "INSERT INTO cowork_blackboard_entry_version (tenant_id, workspace_id, artifact_key, "
        "version, artifact_id, artifact_type, source, payload, operation, created_at) VALUES "
        "(%s, 'ws', %s, 1, %s, 'document', 's', '{}'::jsonb, 'create', now())",
        (t, f"k-{s}", f"a-{s}"),
    ),
    "cowork_blackboard_feedback": lambda t, s: (
        "INSERT INTO cowork_blackboard_feedback (tenant_id, feedback_id, workspace_id, owner_id, "
        "author_id, body, severity, status, created_at, updated_at) VALUES "
        "(%s, %s, 'ws', 'o', 'u', 'b', 'minor', 'pending', now(), now())",
        (t, f"f-{s}"),
    ),
    "cowork_workspace_snapshot": lambda t, s: (
        "INSERT INTO cowork_workspace_snapshot (tenant_id, snapshot_id, workspace_id, owner_id, "
        "created_by, created_at, content) VALUES (%s, %s, 'ws', 'o', 'u', now(), '{}'::jsonb)",
        (t, f"s-{s}"),
    ),
    "cowork_event_log": lambda t, s: (
        "INSERT INTO cowork_event_log (tenant_id, event_id, event_type, payload, occurred_at) "
        "VALUES (%s, %s, 'test:raw', '{}'::jsonb, now())",
        (t, f"e-{s}"),
    ),
    "cowork_event_consumer_checkpoint": lambda t, s: (
        "INSERT INTO cowork_event_consumer_checkpoint (tenant_id, consumer_id, pattern, "
        "created_at, updated_at) VALUES (%s, %s, '*', now(), now())",
        (t, f"c-{s}"),
    ),
    "cowork_event_parked": lambda t, s: (
        "INSERT INTO cowork_event_parked (tenant_id, consumer_id, position, event_id, attempts, "
        "last_error, parked_at, updated_at) VALUES (%s, %s, 1, 'e', 1, 'x', now(), now())",
        (t, f"c-{s}"),
    ),
    "cowork_workflow_definition": lambda t, s: (
        "INSERT INTO cowork_workflow_definition (tenant_id, workflow_id, version, name, "
        "definition, checksum, created_at) VALUES (%s, %s, 1, 'n', '{}'::jsonb, 'x', now())",
        (t, f"wf-{s}"),
    ),
    "cowork_workflow_instance": lambda t, s: (
        "INSERT INTO cowork_workflow_instance (tenant_id, instance_id, workflow_id, "
        "workflow_version, owner_id, status, start_key, created_at, updated_at) VALUES "
        "(%s, %s, 'wf', 1, 'o', 'running', %s, now(), now())",
        (t, f"i-{s}", f"sk-{s}"),
    ),
    "cowork_workflow_history": lambda t, s: (
        "INSERT INTO cowork_workflow_history (tenant_id, instance_id, seq, kind, to_status, "
        "created_at) VALUES (%s, %s, 1, 'k', 'running', now())",
        (t, f"i-{s}"),
    ),
}

_GENERIC_VALUES = {
    "text": "x",
    "character varying": "x",
    "bigint": 1,
    "integer": 1,
    "smallint": 1,
    "boolean": False,
    "jsonb": "{}",
    "json": "{}",
}


def generic_filler(conn: psycopg.Connection[Any], table: str) -> Filler:
    """A row for a table this file does not know yet: every required column gets a plain value
    (text columns a unique one); fails loudly if the schema needs more than that."""
    columns = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL AND is_identity = 'NO' ORDER BY ordinal_position",
        (table,),
    ).fetchall()

    def fill(tenant: str, suffix: str) -> tuple[str, tuple[Any, ...]]:
        names: list[str] = []
        values: list[Any] = []
        for name, kind in columns:
            names.append(name)
            if name == "tenant_id":
                values.append(tenant)
            elif kind in ("text", "character varying"):
                values.append(f"{name}-{suffix}")
            elif kind.startswith("timestamp"):
                values.append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            elif kind in _GENERIC_VALUES:
                values.append(_GENERIC_VALUES[kind])
            else:
                raise AssertionError(f"add a FILLERS entry for {table} (column {name}: {kind})")
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.Placeholder() * len(names)),
        )
        return query.as_string(conn), tuple(values)

    return fill


async def _fill_through_the_api(rt: cowork.Runtime, tenant: str) -> None:
    t = rt if rt.tenant_id == tenant else rt.for_tenant(tenant, owner_id=f"owner-{tenant}")
    ws = await t.workspaces.create(name=f"ws-{tenant}", actor="u", members=["u"])
    wid = ws.workspace_id
    await t.blackboard.put(wid, "doc", {"tenant": tenant}, actor="s")
    await t.blackboard.put(wid, "doc", {"tenant": tenant, "v": 2}, actor="s")
    await t.blackboard.add_feedback(wid, actor="u", body="b", artifact_key="doc")
    await t.snapshots.create(wid, actor="u")

    async def always_fails(event: cowork.EventEnvelope) -> None:
        raise RuntimeError("park this event")

    await t.events.subscribe("test:park", always_fails, consumer_id="c", max_attempts=1)
    await t.events.publish("test:park", {"tenant": tenant})
    for _ in range(100):  # best effort: a parked row is filled by hand below if it is late
        if await t.consumers.parked("c"):
            break
        await asyncio.sleep(0.05)


class _Undo(Exception):
    """Rolls a probe transaction back."""


def _counts(conn: psycopg.Connection[Any], table: str) -> dict[str, int]:
    rows = conn.execute(
        sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY tenant_id").format(
            sql.Identifier(table)
        )
    ).fetchall()
    return {tenant: count for tenant, count in rows}


async def test_row_level_security_hides_other_tenants_in_every_table(pg_url: str) -> None:
    async with await cowork.open(pg_url, tenant_id="A", owner_id="owner-A") as rt:
        await _fill_through_the_api(rt, "A")
        await _fill_through_the_api(rt, "B")
        # the adapter's own scoped transaction: a query with no tenant filter sees only A
        async with rt._core.database.transaction(tenant_id="A") as tx:
            row = await tx.fetch_one("snapshot_count_unfiltered", {})
        assert row is not None and row["n"] == 1

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('cowork.tenant_id', '*', false)")
        tables = [r[0] for r in conn.execute(TENANT_TABLES).fetchall()]
        assert len(tables) >= 11, tables
        assert "cowork_migrations" not in tables
        fillers = {t: FILLERS.get(t) or generic_filler(conn, t) for t in tables}
        filled_directly: list[str] = []
        for table in tables:
            have = _counts(conn, table)
            for tenant in ("A", "B"):
                if not have.get(tenant):
                    conn.execute(*fillers[table](tenant, uuid.uuid4().hex))
                    filled_directly.append(f"{table}:{tenant}")
            have = _counts(conn, table)
            assert have.get("A") and have.get("B"), (table, have)
        b_before = {t: _counts(conn, t)["B"] for t in tables}

        flags: dict[str, bool] = dict(
            conn.execute(
                "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
                "WHERE relname = ANY(%s) AND relnamespace = current_schema()::regnamespace",
                (tables,),
            ).fetchall()
        )
        assert flags == dict.fromkeys(tables, True), "RLS must be enabled and forced everywhere"
        superuser = conn.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()

    with psycopg.connect(pg_url) as conn:
        for table in tables:
            ident = sql.Identifier(table)
            # reads: no row of B, filtered or not; A's own rows stay visible
            with conn.transaction():
                conn.execute("SELECT cowork_enter_tenant('A')")
                if superuser and superuser[0]:
                    assert conn.execute("SELECT current_user").fetchone() == ("cowork_tenant",)
                hidden = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = 'B'").format(ident)
                ).fetchone()
                assert hidden == (0,), f"{table}: tenant A sees rows of B"
                seen = {
                    r[0] for r in conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(ident))
                }
                assert seen == {"A"}, f"{table}: unfiltered read shows {seen}"
                for statement in (
                    "UPDATE {} SET tenant_id = tenant_id WHERE tenant_id = 'B'",
                    "DELETE FROM {} WHERE tenant_id = 'B'",
                ):
                    cur = conn.execute(sql.SQL(statement).format(ident))
                    assert cur.rowcount == 0, f"{table}: {statement} touched B's rows"
            # writes: the same insert works for A's own rows (rolled back) ...
            with pytest.raises(_Undo), conn.transaction():
                conn.execute("SELECT cowork_enter_tenant('A')")
                conn.execute(*fillers[table]("A", uuid.uuid4().hex))
                raise _Undo
            # ... but a row of B cannot be inserted inside A's transaction ...
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SELECT cowork_enter_tenant('A')")
                conn.execute(*fillers[table]("B", uuid.uuid4().hex))
            # ... nor can a row of A be moved to B
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SELECT cowork_enter_tenant('A')")
                conn.execute(sql.SQL("UPDATE {} SET tenant_id = 'B'").format(ident))
        # outside a tenant transaction the session is back to its own role
        assert conn.execute("SELECT current_setting('role')").fetchone() != ("cowork_tenant",)

    with psycopg.connect(pg_url, autocommit=True) as conn:
        after = {t: _counts(conn, t).get("B", 0) for t in tables}
    assert after == b_before, "tenant A's transactions changed B's rows"
    # most tables must have been filled through the API, not by hand
    api_filled = [t for t in tables if f"{t}:A" not in filled_directly]
    assert {
        "cowork_workspace_state",
        "cowork_blackboard_entry",
        "cowork_blackboard_entry_version",
        "cowork_blackboard_feedback",
        "cowork_workspace_snapshot",
        "cowork_event_log",
        "cowork_event_consumer_checkpoint",
    } <= set(api_filled), filled_directly


async def test_a_tenant_runtime_reads_nothing_of_another_tenant_even_by_id(pg_url: str) -> None:
    async with await cowork.open(pg_url, tenant_id="A", pool_max_size=4) as rt:
        b = rt.for_tenant("B")
        ws_b = await b.workspaces.create(name="B", actor="u", workspace_id="same-id")
        await b.blackboard.put(ws_b.workspace_id, "doc", {"b": 1}, actor="s")
        fb = await b.blackboard.add_feedback(ws_b.workspace_id, actor="u", body="x")
        snap = await b.snapshots.create(ws_b.workspace_id, actor="u")
        assert await rt.workspaces.get("same-id") is None
        assert await rt.blackboard.get("same-id", "doc") is None
        assert await rt.blackboard.history("same-id", "doc") == []
        assert await rt.blackboard.get_feedback(fb.workspace_id, fb.feedback_id) is None
        assert await rt.snapshots.get(snap.workspace_id, snap.snapshot_id) is None
        assert [e for e in await rt.events.read(limit=1000) if e.tenant_id != "A"] == []
