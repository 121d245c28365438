"""Shared queries (written once for every dialect) and {{fragment}} includes in the loader."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from cowork.storage.queries import (
    SHARED_QUERIES,
    load_queries,
    load_query_folders,
    parse_queries,
)

_PACKAGES = ["cowork.storage.postgres", "cowork.storage.sqlite"]


def _folders(tmp_path: Path, shared: str, own: str) -> tuple[Path, Path]:
    (tmp_path / "shared").mkdir()
    (tmp_path / "own").mkdir()
    (tmp_path / "shared" / "a.sql").write_text(shared, encoding="utf-8")
    (tmp_path / "own" / "b.sql").write_text(own, encoding="utf-8")
    return tmp_path / "shared", tmp_path / "own"


def test_a_name_in_shared_and_dialect_files_is_refused(tmp_path: Path) -> None:
    shared, own = _folders(
        tmp_path,
        "-- name: q\n-- shared\nSELECT %(x)s;\n",
        "-- name: q\n-- dialect\nSELECT :x;\n",
    )
    for style in ("pyformat", "named"):
        with pytest.raises(ValueError, match=r"query 'q' is also defined in shared/a\.sql"):
            load_query_folders(own, shared=shared, paramstyle=style, source="own")


def test_a_fragment_in_shared_and_dialect_files_is_refused(tmp_path: Path) -> None:
    shared, own = _folders(
        tmp_path,
        "-- fragment: cols\n-- shared\na, b\n",
        "-- fragment: cols\n-- dialect\na, b\n-- name: q\n-- uses it\nSELECT {{cols}} FROM t;\n",
    )
    with pytest.raises(ValueError, match="fragment 'cols' is also defined"):
        load_query_folders(own, shared=shared, paramstyle="named", source="own")


def test_shared_queries_are_converted_once_for_the_named_style(tmp_path: Path) -> None:
    shared, own = _folders(
        tmp_path,
        "-- name: q\n-- shared\nSELECT * FROM t WHERE a = %(a)s AND b LIKE 'x%%' AND c = %(a)s;\n",
        "-- name: r\n-- dialect text is left as written\nSELECT '%' || :y;\n",
    )
    named = load_query_folders(own, shared=shared, paramstyle="named", source="own")
    assert named["q"] == "SELECT * FROM t WHERE a = :a AND b LIKE 'x%' AND c = :a"
    assert named["r"] == "SELECT '%' || :y"
    pyformat = load_query_folders(own, shared=shared, paramstyle="pyformat", source="own")
    assert pyformat["q"] == "SELECT * FROM t WHERE a = %(a)s AND b LIKE 'x%%' AND c = %(a)s"


@pytest.mark.parametrize("text", ["SELECT :x", "SELECT 5 % 2", "SELECT %s"])
def test_shared_sql_takes_only_pyformat_placeholders(tmp_path: Path, text: str) -> None:
    shared, own = _folders(tmp_path, f"-- name: q\n-- shared\n{text};\n", "")
    with pytest.raises(ValueError, match="placeholders only"):
        load_query_folders(own, shared=shared, paramstyle="named", source="own")


def test_a_fragment_expands_at_its_column() -> None:
    queries = parse_queries(
        "-- fragment: cols\n"
        "-- Two lines.\n"
        "a, b,\n"
        "c\n"
        "-- name: q\n"
        "-- Uses it twice.\n"
        "INSERT INTO t\n"
        "    ({{cols}}, d)\n"
        "SELECT {{ cols }} FROM u;\n"
    )
    assert queries["q"] == "INSERT INTO t\n    (a, b,\n     c, d)\nSELECT a, b,\n       c FROM u"
    assert "cols" not in queries  # a fragment is not a query


def test_a_shared_fragment_expands_in_dialect_queries(tmp_path: Path) -> None:
    shared, own = _folders(
        tmp_path,
        "-- fragment: cols\n-- shared columns\na, b\n",
        "-- name: q\n-- dialect\nSELECT {{cols}}, c FROM t WHERE a = :a;\n",
    )
    queries = load_query_folders(own, shared=shared, paramstyle="named", source="own")
    assert queries["q"] == "SELECT a, b, c FROM t WHERE a = :a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: q\n-- c\nSELECT {{nope}};\n", "unknown fragment 'nope'"),
        ("-- name: q\n-- c\nSELECT {{Bad}};\n", "malformed"),
        ("-- fragment: f\n-- c\n-- only a comment\n", "fragment 'f' is empty"),
        ("-- fragment: f\n-- c\na\n-- fragment: f\n-- c\nb\n", "fragment 'f' defined twice"),
        ("-- fragment: f\n-- c\na\n-- fragment: g\n-- c\n{{f}}\n", "includes a fragment"),
    ],
)
def test_bad_fragments_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_queries(text)


@pytest.mark.parametrize("package", _PACKAGES)
def test_every_query_of_each_adapter_loads(package: str) -> None:
    queries = load_queries(package)
    assert len(queries) > 80
    shared = set(
        load_query_folders(_shared_folder(), shared=None, paramstyle="pyformat", source="")
    )
    assert len(shared) > 30 and shared <= set(queries)
    for name, text in queries.items():
        assert text.strip(), name
        assert "{{" not in text and "}}" not in text, name
        if package.endswith("sqlite"):
            assert "%(" not in text, name
        else:
            assert not re.search(r"(?<!:):[a-z_]", text), name


def test_every_sqlite_query_compiles_against_the_schema() -> None:
    conn = sqlite3.connect(":memory:")
    migrations = resources.files("cowork.storage.sqlite").joinpath("migrations")
    for entry in sorted(migrations.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            conn.executescript(entry.read_text(encoding="utf-8"))
    queries = load_queries("cowork.storage.sqlite")
    conn.execute(queries["ledger_create"])
    for name, text in queries.items():
        params = dict.fromkeys(re.findall(r"(?<!:):([a-z_][a-z0-9_]*)", text))
        conn.execute(f"EXPLAIN {text}", params)  # compiles the statement, runs nothing
        assert name


def test_the_event_insert_columns_are_written_once() -> None:
    """Every event-log INSERT names its columns with the shared fragment."""
    inserts = 0
    for folder in [_shared_folder(), *(resources.files(p).joinpath("queries") for p in _PACKAGES)]:
        for entry in folder.iterdir():
            text = entry.read_text(encoding="utf-8")
            for match in re.finditer(r"INSERT INTO cowork_event_log\s*\(([^)]*)", text):
                assert match.group(1).startswith("{{event_columns}}"), entry.name
                inserts += 1
    assert inserts == 8
    for package in _PACKAGES:
        for name in ("event_append", "event_append_batch", "event_append_alone"):
            assert "correlation_id, causation_id, occurred_at" in load_queries(package)[name]


def test_every_shared_query_has_a_comment_line() -> None:
    for entry in _shared_folder().iterdir():
        lines = entry.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if line.startswith(("-- name:", "-- fragment:")):
                assert lines[index + 1].startswith("-- "), f"{entry.name}: {line} has no comment"


def _shared_folder() -> Path:
    package, folder = SHARED_QUERIES
    return Path(str(resources.files(package).joinpath(folder)))
