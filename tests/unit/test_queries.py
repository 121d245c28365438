"""Both adapters offer the same named queries, each with its one-line comment."""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

import pytest

import cowork
from cowork.storage.queries import load_queries, parse_queries


def test_both_backends_define_the_same_query_names() -> None:
    postgres = load_queries("cowork.storage.postgres")
    sqlite = load_queries("cowork.storage.sqlite")
    postgres_only = {
        "migration_lock",  # SQLite serialises migrations with its write lock
        # One-statement workflow saves (data-modifying CTEs, which SQLite lacks; the store
        # asks capabilities.one_statement_saves and runs the same writes as several
        # statements there).
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


_QUERY_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RUNS_A_QUERY = {
    "execute",
    "execute_many",
    "fetch_one",
    "fetch_all",
    "send",
    "submit",
    "run_alone",
    "has_query",
}


def _names_in(node: ast.expr) -> list[str]:
    """The query names a call's first argument can be: a literal, or either branch of a
    conditional expression of literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        # SQL text run on a driver connection inside an adapter is not a query name.
        return [node.value] if _QUERY_NAME.fullmatch(node.value) else []
    if isinstance(node, ast.IfExp):
        return _names_in(node.body) + _names_in(node.orelse)
    return []


def _query_names_used_in_code() -> dict[str, list[str]]:
    root = Path(cowork.__file__).parent
    used: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _RUNS_A_QUERY
                and node.args
            ):
                for name in _names_in(node.args[0]):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    used.setdefault(name, []).append(where)
    return used


def test_every_query_name_used_in_code_exists_in_both_dialects() -> None:
    postgres = set(load_queries("cowork.storage.postgres"))
    sqlite = set(load_queries("cowork.storage.sqlite"))
    used = _query_names_used_in_code()
    assert len(used) > 50, "the scan found too few query names to be looking in the right place"
    missing = {
        name: places
        for name, places in used.items()
        if name not in postgres or (name not in sqlite and not _postgres_only(name, places))
    }
    assert missing == {}, f"query names used in code but not defined: {missing}"


def _postgres_only(name: str, places: list[str]) -> bool:
    """A PostgreSQL-only query is fine where only the PostgreSQL adapter uses it, or where the
    code asks ``capabilities.one_statement_saves`` first (the workflow store's saves)."""
    return name in {"migration_lock", "wf_save", "wf_start"} and all(
        "postgres" in place or "workflows" in place for place in places
    )
