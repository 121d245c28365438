"""Tests of the event-name grammar and subscription patterns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cowork.errors import InvalidEventType, ValidationError
from cowork.events.patterns import (
    EVENT_TYPE_MAX_LENGTH,
    EventPattern,
    is_valid_event_type,
    validate_event_type,
)

CATALOGUE = [
    "workspace:created",
    "workspace:status:changed",
    "workspace:opened",
    "workspace:closed",
    "workspace:archived",
    "workspace:deleted",
    "workspace:member:added",
    "workspace:member:removed",
    "workspace:artifact:updated",
    "workspace:artifact:rollback",
    "workspace:feedback:added",
    "blackboard:entry:created",
    "blackboard:entry:updated",
    "blackboard:entry:deleted",
    "feedback:added",
    "feedback:status:changed",
    "snapshot:created",
    "snapshot:restored",
    "workflow:started",
    "workflow:step:completed",
    "workflow:completed",
    "workflow:failed",
    "workflow:cancelled",
]


# --------------------------------------------------------------------------------------------
# Event names


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogue_names_are_valid(name: str) -> None:
    assert validate_event_type(name) == name
    assert is_valid_event_type(name)


@pytest.mark.parametrize(
    "name", ["x", "0", "agent.v2:tool_call", "import-job:step-3:done", "a" * EVENT_TYPE_MAX_LENGTH]
)
def test_other_valid_names(name: str) -> None:
    assert validate_event_type(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Workspace:created",
        "workspace:Created",
        "workspace::created",
        "workspace:",
        ":created",
        "_x",
        "-x",
        ".x",
        "workspace created",
        "workspace:*",
        "*",
        "workspace:créé",
        "workspace:created\n",
        "a" * (EVENT_TYPE_MAX_LENGTH + 1),
    ],
)
def test_invalid_names_are_rejected_with_the_rules(name: str) -> None:
    assert not is_valid_event_type(name)
    with pytest.raises(InvalidEventType, match="lowercase segments separated by ':'"):
        validate_event_type(name)


def test_wildcard_in_name_is_explained() -> None:
    with pytest.raises(InvalidEventType, match="only allowed in subscription patterns"):
        validate_event_type("workspace:*")


def test_too_long_name_is_explained() -> None:
    with pytest.raises(InvalidEventType, match="201 characters is over the 200-character limit"):
        validate_event_type("a" * 201)


def test_non_string_name_is_rejected() -> None:
    with pytest.raises(InvalidEventType, match="must be a string"):
        validate_event_type(42)  # type: ignore[arg-type]
    assert not is_valid_event_type(None)


def test_invalid_event_type_is_a_validation_error() -> None:
    assert issubclass(InvalidEventType, ValidationError)


# --------------------------------------------------------------------------------------------
# Patterns


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ("workspace:*", "workspace:created", True),
        ("workspace:*", "workspace:member:added", True),
        ("workspace:*", "workspace:status:changed", True),
        ("workspace:*", "workspace", False),
        ("workspace:*", "workspaces:created", False),
        ("workspace:*", "blackboard:entry:created", False),
        ("workspace:*:added", "workspace:member:added", True),
        ("workspace:*:added", "workspace:feedback:added", True),
        ("workspace:*:added", "workspace:added", False),
        ("workspace:*:added", "workspace:a:b:added", False),
        ("workspace:*:added", "workspace:member:removed", False),
        ("workspace:*:*", "workspace:member:added", True),
        ("workspace:*:*", "workspace:a:b:c", True),
        ("workspace:*:*", "workspace:created", False),
        ("*:created", "workspace:created", True),
        ("*:created", "snapshot:created", True),
        ("*:created", "created", False),
        ("*:created", "blackboard:entry:created", False),
        ("*", "x", True),
        ("*", "workspace:member:added", True),
        ("workspace:created", "workspace:created", True),
        ("workspace:created", "workspace:created:x", False),
        ("workspace:created", "workspace:create", False),
        ("a.b:*", "a.b:c", True),
        ("a.b:*", "axb:c", False),  # '.' is literal, not a regex wildcard
        ("workspace:*", "workspace:Created", False),  # invalid event names never match
        ("*", "", False),
        ("*", "a::b", False),
    ],
)
def test_pattern_matching(pattern: str, event: str, expected: bool) -> None:
    assert EventPattern.parse(pattern).matches(event) is expected
    assert _reference_matches(pattern, event) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "workspace:",
        ":*",
        "workspace::*",
        "work*",
        "workspace:*x",
        "**",
        "workspace:**",
        "workspace:?",
        "workspace:[a-z]",
        "workspace:.*",
        "Workspace:*",
        "workspace:#",
        "workspace:>",
        "a" * (EVENT_TYPE_MAX_LENGTH + 1),
    ],
)
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(InvalidEventType, match="pattern"):
        EventPattern.parse(pattern)
    with pytest.raises(InvalidEventType):
        EventPattern(pattern)


def test_invalid_pattern_message_says_what_is_allowed() -> None:
    with pytest.raises(InvalidEventType) as info:
        EventPattern.parse("workspace:work*")
    message = str(info.value)
    assert "segment 2" in message
    assert "A final '*' matches one or more segments" in message


def test_non_string_pattern_is_rejected() -> None:
    with pytest.raises(InvalidEventType, match="must be a string"):
        EventPattern.parse(3)  # type: ignore[arg-type]


def test_pattern_value_semantics() -> None:
    a = EventPattern.parse("workspace:*")
    b = EventPattern("workspace:*")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, EventPattern("workspace:created")}) == 2
    assert a.text == "workspace:*"
    assert str(a) == "workspace:*"
    assert EventPattern.parse("workspace:*") is a  # cached
    with pytest.raises(AttributeError):
        a.text = "x"  # type: ignore[misc]


def test_is_exact_and_segments() -> None:
    assert EventPattern.parse("workspace:created").is_exact
    assert not EventPattern.parse("workspace:*").is_exact
    assert not EventPattern.parse("*").is_exact
    assert EventPattern.parse("workspace:*:added").segments == ("workspace", "*", "added")


@pytest.mark.parametrize(
    ("pattern", "prefix", "like"),
    [
        ("workspace:*", "workspace:", "workspace:%"),
        ("workspace:*:added", "workspace:", "workspace:%"),
        ("workspace:member:*", "workspace:member:", "workspace:member:%"),
        ("workspace:created", "workspace:created", "workspace:created%"),
        ("tool_call:*", "tool_call:", "tool\\_call:%"),
        ("*", None, None),
        ("*:created", None, None),
    ],
)
def test_sql_like_prefix(pattern: str, prefix: str | None, like: str | None) -> None:
    parsed = EventPattern.parse(pattern)
    assert parsed.sql_like_prefix() == prefix
    assert parsed.sql_like_pattern() == like


@pytest.mark.parametrize("event", CATALOGUE)
def test_catalogue_against_prefix_patterns(event: str) -> None:
    family = event.split(":")[0]
    assert EventPattern.parse(f"{family}:*").matches(event)
    assert EventPattern.parse("*").matches(event)
    assert EventPattern.parse(event).matches(event)
    prefix = EventPattern.parse(f"{family}:*").sql_like_prefix()
    assert prefix is not None
    assert event.startswith(prefix)


# --------------------------------------------------------------------------------------------
# Properties against a reference implementation


def _reference_matches(pattern: str, event: str) -> bool:
    """Straightforward segment-by-segment reading of the documented rules."""
    if not is_valid_event_type(event):
        return False
    pat = pattern.split(":")
    ev = event.split(":")
    for i, p in enumerate(pat):
        last = i == len(pat) - 1
        if p == "*" and last:
            return len(ev) > i  # one or more remaining segments
        if i >= len(ev):
            return False
        if p != "*" and p != ev[i]:
            return False
    return len(ev) == len(pat)


_segment = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,5}", fullmatch=True)
# A small alphabet so that patterns and events share segments often.
_common_segment = st.sampled_from(["a", "b", "c", "workspace", "member", "added", "x.y", "1"])
_event_segment = st.one_of(_common_segment, _segment)
_events = st.lists(_event_segment, min_size=1, max_size=6).map(":".join)
_patterns = st.lists(
    st.one_of(_common_segment, st.just("*"), _segment), min_size=1, max_size=6
).map(":".join)


@settings(max_examples=300, deadline=None)
@given(_events)
def test_property_exact_pattern_matches_only_itself(event: str) -> None:
    assert validate_event_type(event) == event
    pattern = EventPattern.parse(event)
    assert pattern.is_exact
    assert pattern.matches(event)
    assert not pattern.matches(event + ":x")
    assert not pattern.matches(event + "x")
    if ":" in event:
        assert not pattern.matches(event.rsplit(":", 1)[0])


@settings(max_examples=300, deadline=None)
@given(_events, _events)
def test_property_exact_pattern_agrees_with_equality(pattern: str, event: str) -> None:
    assert EventPattern.parse(pattern).matches(event) is (pattern == event)


@settings(max_examples=300, deadline=None)
@given(_patterns, _events)
def test_property_matches_agrees_with_reference(pattern: str, event: str) -> None:
    parsed = EventPattern.parse(pattern)
    expected = _reference_matches(pattern, event)
    assert parsed.matches(event) is expected
    prefix = parsed.sql_like_prefix()
    if expected and prefix is not None:
        assert event.startswith(prefix)


@settings(max_examples=300, deadline=None)
@given(_patterns)
def test_property_pattern_matches_its_own_instances(pattern: str) -> None:
    # Replace every '*' by a concrete segment: the pattern must match the result.
    event = ":".join("any" if segment == "*" else segment for segment in pattern.split(":"))
    assert EventPattern.parse(pattern).matches(event)
    if pattern.endswith("*"):
        assert EventPattern.parse(pattern).matches(event + ":more:segments")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_property_arbitrary_text_validates_or_raises(text: str) -> None:
    if is_valid_event_type(text):
        assert validate_event_type(text) == text
        assert EventPattern.parse(text).matches(text)
    else:
        with pytest.raises(InvalidEventType):
            validate_event_type(text)
