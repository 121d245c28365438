"""Both adapters offer the same named queries, each with its one-line comment."""

from __future__ import annotations

from importlib import resources

import pytest

from cowork.storage.queries import load_queries, parse_queries


def test_both_backends_define_the_same_query_names() -> None:
    postgres = load_queries("cowork.storage.postgres")
    sqlite = load_queries("cowork.storage.sqlite")
    postgres_only = {
        "migration_lock",  # SQLite serialises migrations with its write lock
        # One-statement workflow saves (data-modifying CTEs, which SQLite lacks; the store
        # checks has_query and runs the same writes as several statements there).
        "wf_save",
        "wf_start",
    }
    assert set(postgres) - postgres_only == set(sqlite)
    assert len(postgres) > 50


@pytest.mark.parametrize("package", ["cowork.storage.postgres", "cowork.storage.sqlite"])
def test_every_query_has_a_comment_line(package: str) -> None:
    folder = resources.files(package).joinpath("queries")
    for entry in folder.iterdir():
        lines = entry.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if line.startswith("-- name:"):
                assert lines[index + 1].startswith("-- "), f"{entry.name}: {line} has no comment"


def test_parse_rejects_duplicates_and_empty_queries() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(ValueError, match="empty"):
        parse_queries("-- name: a\n-- just a comment\n")
    queries = parse_queries("-- name: a\n-- the answer\nSELECT 42;\n")
    assert queries["a"] == "SELECT 42"
    with pytest.raises(KeyError, match="no query named 'b'"):
        _ = queries["b"]
