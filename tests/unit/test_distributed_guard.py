"""The runtime refuses an event log that Citus distributes (docs/operations.md): its
commit-order reads rely on one node's transaction ids and locks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from cowork.errors import ConfigError
from cowork.runtime import refuse_distributed_event_log


class _Tx:
    def __init__(self, answers: dict[str, bool], asked: list[str]) -> None:
        self.answers = answers
        self.asked = asked

    async def fetch_one(self, query: str, params: Any = None) -> dict[str, bool]:
        self.asked.append(query)
        return {"present": self.answers[query]}


class _Db:
    def __init__(self, **answers: bool) -> None:
        self.answers = answers
        self.asked: list[str] = []

    @asynccontextmanager
    async def transaction(self, **_: Any) -> AsyncIterator[_Tx]:
        yield _Tx(self.answers, self.asked)


async def test_a_distributed_event_log_is_refused_with_a_pointer_to_the_docs() -> None:
    db = _Db(citus_installed=True, event_log_distributed=True)
    with pytest.raises(ConfigError, match=r"distributed by Citus.*docs/operations\.md"):
        await refuse_distributed_event_log(db)  # type: ignore[arg-type]


async def test_citus_with_local_tables_is_fine() -> None:
    db = _Db(citus_installed=True, event_log_distributed=False)
    await refuse_distributed_event_log(db)  # type: ignore[arg-type]
    assert db.asked == ["citus_installed", "event_log_distributed"]


async def test_without_citus_the_partition_catalogue_is_not_queried() -> None:
    db = _Db(citus_installed=False, event_log_distributed=True)
    await refuse_distributed_event_log(db)  # type: ignore[arg-type]
    assert db.asked == ["citus_installed"]


@pytest.mark.postgres
async def test_a_plain_postgresql_database_passes(pg_url: str) -> None:
    from cowork.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg_url)
    await db.open()
    try:
        await refuse_distributed_event_log(db)
    finally:
        await db.close()
