"""Fixtures of the CLI tests: a database seeded through the Python API, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from tests.cli.support import Seed, seed


@pytest.fixture
def seeded(database_url: str) -> Seed:
    """A migrated database (SQLite, then PostgreSQL) holding a little of everything."""
    return asyncio.run(asyncio.wait_for(seed(database_url), timeout=120))
