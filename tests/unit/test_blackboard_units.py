"""Pure units of the collaboration domain: JSON diff, argument checks, the workspace transition
table and JSON document validation. No database."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

import pytest

import cowork
from cowork.blackboard.diff import json_diff
from cowork.blackboard.records import DiffChange
from cowork.blackboard.validation import (
    MAX_KEY,
    check_expected_version,
    check_key,
    check_label,
)
from cowork.jsondoc import DEFAULT_DOCUMENT_BYTES, MAX_NESTING, encoded_size, validate_document
from cowork.workspaces.records import TRANSITIONS, WorkspaceStatus, next_status

# -- json_diff -----------------------------------------------------------------------------------


def _as_tuples(changes: list[DiffChange]) -> list[tuple[str, str, Any, Any]]:
    return [(c.op, c.path, c.old, c.new) for c in changes]


@pytest.mark.parametrize(
    "doc",
    [None, 0, 1.5, "x", True, [], {}, [1, [2, {}]], {"a": {"b": [1, 2, {"c": None}]}}],
)
def test_diff_of_equal_documents_is_empty(doc: Any) -> None:
    assert json_diff(doc, doc) == []


def test_diff_reports_added_removed_and_replaced_object_members_sorted_by_path() -> None:
    old = {"keep": 1, "gone": "x", "changed": 1, "nested": {"inner": "a", "drop": []}}
    new = {"keep": 1, "added": [1], "changed": 2, "nested": {"inner": "b", "extra": {}}}
    assert _as_tuples(json_diff(old, new)) == [
        ("add", "/added", None, [1]),
        ("replace", "/changed", 1, 2),
        ("remove", "/gone", "x", None),
        ("remove", "/nested/drop", [], None),
        ("add", "/nested/extra", None, {}),
        ("replace", "/nested/inner", "a", "b"),
    ]


def test_diff_of_lists_goes_by_index() -> None:
    assert _as_tuples(json_diff([1, 2, 3], [1, 5])) == [
        ("replace", "/1", 2, 5),
        ("remove", "/2", 3, None),
    ]
    assert _as_tuples(json_diff([1], [1, {"a": 1}, []])) == [
        ("add", "/1", None, {"a": 1}),
        ("add", "/2", None, []),
    ]
    assert _as_tuples(json_diff({"l": [{"a": 1}]}, {"l": [{"a": 2}]})) == [
        ("replace", "/l/0/a", 1, 2),
    ]


def test_diff_escapes_pointer_tokens_per_rfc_6901() -> None:
    changes = json_diff({"a/b": 1, "c~d": 1}, {"a/b": 2, "c~d": 2})
    assert sorted(c.path for c in changes) == ["/a~1b", "/c~0d"]


@pytest.mark.parametrize(
    ("old", "new"),
    [(1, True), (0, False), (1, 1.0), ([], {}), ("1", 1), (None, 0), ({"a": 1}, [1])],
)
def test_diff_treats_a_type_change_as_a_replace_even_when_python_says_equal(
    old: Any, new: Any
) -> None:
    [change] = json_diff({"v": old}, {"v": new})
    assert (change.op, change.path, change.old, change.new) == ("replace", "/v", old, new)
    assert change.old is old and change.new is new


def test_diff_root_replacement_and_empty_key_change_have_distinct_pointers() -> None:
    """RFC 6901: the whole document is the pointer "" and "/" names the member with key ""."""
    root = json_diff(1, 2)
    member = json_diff({"": 1}, {"": 2})
    assert [c.path for c in member] == ["/"]
    assert [c.path for c in root] == [""], "a whole-document replace must use the pointer ''"


# -- argument checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["a", "notes/plan.md", "ünïcödé 键", "with space", "x" * MAX_KEY, "a:b@c"]
)
def test_check_key_accepts_ordinary_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "   ",
        "x" * (MAX_KEY + 1),
        "k" * 10_000,
        "a\x00b",
        "a\nb",
        "tab\there",
        "bell\x07",
        "del\x7f",
        "\ud800lone",
        None,
        5,
        b"bytes",
    ],
)
def test_check_key_rejects_bad_keys_with_validation_error(key: object) -> None:
    with pytest.raises(cowork.ValidationError):
        check_key(key)


def test_check_label_applies_its_own_limit() -> None:
    assert check_label("x" * 100, "source") == "x" * 100
    with pytest.raises(cowork.ValidationError, match="source"):
        check_label("x" * 101, "source")
    with pytest.raises(cowork.ValidationError):
        check_label("", "artifact_type")


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0), (1, 1), (10**12, 10**12)])
def test_check_expected_version_accepts_none_zero_and_positive_ints(
    value: int | None, expected: int | None
) -> None:
    assert check_expected_version(value) == expected


@pytest.mark.parametrize("value", [-1, -100, 1.5, 1.0, True, False, "2", "0", [1], Decimal(1)])
def test_check_expected_version_rejects_everything_else(value: object) -> None:
    with pytest.raises(cowork.InvalidExpectedVersion) as info:
        check_expected_version(value)
    assert isinstance(info.value, cowork.ValidationError)


# -- the workspace transition table --------------------------------------------------------------

ALLOWED = {
    ("active", "close"): "closed",
    ("active", "archive"): "archived",
    ("active", "delete"): "deleted",
    ("closed", "open"): "active",
    ("closed", "archive"): "archived",
    ("closed", "delete"): "deleted",
    ("archived", "open"): "active",
    ("archived", "delete"): "deleted",
}
STATUSES = ["active", "closed", "archived", "deleted"]
ACTIONS = ["open", "close", "archive", "delete"]


def test_transition_table_names_exactly_the_four_actions() -> None:
    assert set(TRANSITIONS) == set(ACTIONS)
    assert {s.value for s in WorkspaceStatus} == set(STATUSES)


@pytest.mark.parametrize(("status", "action"), list(itertools.product(STATUSES, ACTIONS)))
def test_transition_matrix(status: str, action: str) -> None:
    current = WorkspaceStatus(status)
    if (status, action) in ALLOWED:
        assert next_status(current, action) is WorkspaceStatus(ALLOWED[status, action])
    else:
        with pytest.raises(cowork.InvalidTransition) as info:
            next_status(current, action)
        assert not isinstance(info.value, cowork.WorkspaceNotActive)
        assert (info.value.current, info.value.action) == (status, action)
        assert status in str(info.value) and action in str(info.value)


# -- JSON documents ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        None,
        True,
        0,
        -(2**63),
        1.25,
        "",
        "ünïcödé ✓ 键",
        [],
        {},
        {"empty_list": [], "empty_obj": {}, "nested": [[], {}, [None, False, 0.0]]},
    ],
)
def test_validate_document_returns_plain_json_unchanged(doc: Any) -> None:
    assert validate_document(doc) is doc


@pytest.mark.parametrize(
    "doc",
    [
        {1, 2},
        object(),
        float("nan"),
        float("inf"),
        float("-inf"),
        {"x": math.nan},
        [1, {"deep": [float("inf")]}],
        {1: "int key"},
        {("t",): 1},
        {"s": "nul\x00"},
        {"nul\x00key": 1},
        {"s": "\udc00"},
        b"bytes",
        Decimal("1.5"),
        {"set": {"a"}},
    ],
    ids=lambda d: type(d).__name__,
)
def test_validate_document_rejects_what_json_cannot_hold(doc: Any) -> None:
    with pytest.raises(cowork.PayloadRejected):
        validate_document(doc)


def test_validate_document_rejects_cycles_but_accepts_shared_subtrees() -> None:
    shared: list[Any] = [1]
    assert validate_document({"a": shared, "b": shared}) is not None
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(cowork.PayloadRejected, match="cyclic"):
        validate_document(cyclic)


def test_validate_document_limits_nesting() -> None:
    def nest(depth: int) -> Any:
        doc: Any = 0
        for _ in range(depth - 1):
            doc = [doc]
        return doc

    assert validate_document(nest(MAX_NESTING)) is not None
    with pytest.raises(cowork.PayloadRejected, match="nested"):
        validate_document(nest(MAX_NESTING + 1))


def test_validate_document_size_cap_is_exact_and_counts_utf8_bytes() -> None:
    overhead = encoded_size("")  # the two quotes
    assert encoded_size("é") == overhead + 2
    at_cap = "x" * (DEFAULT_DOCUMENT_BYTES - overhead)
    assert validate_document(at_cap) is at_cap
    with pytest.raises(cowork.PayloadRejected, match="limit"):
        validate_document(at_cap + "x")
    with pytest.raises(cowork.PayloadRejected):
        validate_document({"k": "é" * (DEFAULT_DOCUMENT_BYTES // 2)})
    with pytest.raises(cowork.PayloadRejected, match="metadata"):
        validate_document({"k": "x" * 100}, what="metadata", max_bytes=50)
