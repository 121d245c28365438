"""Tests of payload sanitisation."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import re
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cowork.errors import PayloadRejected, ValidationError
from cowork.events.sanitize import (
    DEFAULT_POLICY,
    MASK_AWS_KEY,
    MASK_CARD,
    MASK_EMAIL,
    MASK_JWT,
    MASK_SSN,
    MAX_DEPTH_MARKER,
    REDACTED,
    TRUNCATED_KEY,
    TRUNCATION_SUFFIX,
    JsonValue,
    Sanitized,
    SanitizePolicy,
    encoded_size,
    is_secret_key,
    normalize_key,
    record_truncation,
    sanitize,
    sanitize_object,
    sanitize_object_encoded,
)

TRUNCATE = SanitizePolicy(truncate=True)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


# --------------------------------------------------------------------------------------------
# Secret keys


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apiKey",
        "API-KEY",
        "api.key",
        "Api Key",
        "apikey",
        "x-api-key",
        "X-Api-Key",
        "access_token",
        "accessToken",
        "refresh_token",
        "id_token",
        "client_secret",
        "clientSecret",
        "Authorization",
        "auth",
        "cookie",
        "Set-Cookie",
        "private_key",
        "privateKey",
        "session",
        "credential",
        "credentials",
        "dbPassword",
        "db_password",
        "githubToken",
        "GITHUB_TOKEN",
        "aws_secret_access_key",
        "webhookSecret",
        "stripe_api_key",
        "ssh_private_key",
        "google_credentials",
        "secret_key",
    ],
)
def test_secret_keys_are_redacted(key: str) -> None:
    assert is_secret_key(key)
    out = sanitize({key: "hunter2", "other": "visible"})
    assert out == {key: REDACTED, "other": "visible"}


@pytest.mark.parametrize(
    "key",
    [
        "token_count",
        "tokens_used",
        "max_tokens",
        "maxTokens",
        "total_tokens",
        "prompt_tokens",
        "author",
        "authorId",
        "author_name",
        "authority",
        "sessions",
        "session_count",
        "password_policy",
        "passwordLength",
        "secretary",
        "tokenizer",
        "keyboard",
        "key",
        "name",
        "workspaceId",
    ],
)
def test_look_alike_keys_are_not_redacted(key: str) -> None:
    assert not is_secret_key(key)
    assert sanitize({key: 42}) == {key: 42}


def test_secret_values_are_redacted_whatever_their_type() -> None:
    out = sanitize({"token": {"nested": "x"}, "password": 1234, "secret": ["a", "b"], "auth": None})
    assert out == {"token": REDACTED, "password": REDACTED, "secret": REDACTED, "auth": REDACTED}


def test_password_nested_in_lists_of_dicts_is_redacted() -> None:
    payload = {
        "users": [
            {"name": "ann", "password": "p1"},
            {"name": "bob", "credentials": {"user": "bob", "password": "p2"}},
            [{"apiKey": "k"}, {"inner": [{"Authorization": "Bearer abc"}]}],
        ]
    }
    assert sanitize(payload) == {
        "users": [
            {"name": "ann", "password": REDACTED},
            {"name": "bob", "credentials": REDACTED},
            [{"apiKey": REDACTED}, {"inner": [{"Authorization": REDACTED}]}],
        ]
    }


def test_redacted_value_does_not_appear_anywhere() -> None:
    out = sanitize({"config": {"api_key": "sk-live-SUPERSECRET"}})
    assert "SUPERSECRET" not in json.dumps(out)


def test_extra_secret_keys() -> None:
    policy = SanitizePolicy(extra_secret_keys=frozenset({"ssn_hint", "Pin-Code"}))
    out = sanitize({"SSN-Hint": "x", "pin_code": "1234", "pin": "1"}, policy=policy)
    assert out == {"SSN-Hint": REDACTED, "pin_code": REDACTED, "pin": "1"}
    assert is_secret_key("pinCode", policy=policy)
    assert not is_secret_key("pinCode")


def test_normalize_key() -> None:
    assert normalize_key("API-Key") == "apikey"
    assert normalize_key("x.api_key ") == "xapikey"


# --------------------------------------------------------------------------------------------
# Masking inside strings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob@example.com", MASK_EMAIL),
        ("mail Ann.Lee+tag@mail.example.co.uk now", f"mail {MASK_EMAIL} now"),
        ("4111 1111 1111 1111", MASK_CARD),
        ("4111-1111-1111-1111", MASK_CARD),
        ("4111111111111111", MASK_CARD),
        ("card: 5500 0000 0000 0004, thanks", f"card: {MASK_CARD}, thanks"),
        ("amex 378282246310005", f"amex {MASK_CARD}"),
        ("ssn 123-45-6789.", f"ssn {MASK_SSN}."),
        ("AKIAIOSFODNN7EXAMPLE", MASK_AWS_KEY),
        ("key=ASIAY34FZKBOKMUTVV7A;", f"key={MASK_AWS_KEY};"),
        (JWT, MASK_JWT),
        (f"Bearer {JWT}", f"Bearer {MASK_JWT}"),
        (
            "bob@example.com paid with 4111111111111111, ssn 123-45-6789",
            f"{MASK_EMAIL} paid with {MASK_CARD}, ssn {MASK_SSN}",
        ),
    ],
)
def test_sensitive_text_is_masked(text: str, expected: str) -> None:
    assert sanitize(text) == expected
    assert sanitize({"note": text}) == {"note": expected}
    assert sanitize({"notes": [[text]]}) == {"notes": [[expected]]}


@pytest.mark.parametrize(
    "text",
    [
        "1700000000",  # epoch seconds
        "1700000000123",  # epoch milliseconds (13 digits)
        "1700000000123456",  # epoch microseconds (16 digits)
        "1700000000123456789",  # epoch nanoseconds (19 digits)
        "4111111111111112",  # Luhn-invalid 16 digits
        "4111 1111 1111 1112",
        "+1 555-123-4567",
        "(555) 123-4567",
        "+44 20 7946 0958",
        "order 000123456789",
        "000-12-3456",  # SSN with area 000
        "666-12-3456",  # SSN with area 666
        "900-12-3456",  # SSN with area 9xx
        "123-00-4567",
        "2024-01-31",
        "2024-01-31T12:34:56.789+00:00",
        "6f1c1d3e-8b1a-4c47-9a3e-2d3f1c9b7a10",
        "abcdefab-abcd-abcd-1234-123456789012",
        "12345678901234567890123",  # too long to be a card
        "sha 4111111111111111aa",  # glued to letters: part of an id, not a card
        "AKIA-not-a-key",
        "eyJ-not.a-jwt",
        "@handle",
        "user@localhost",
        "[EMAIL] [CARD] [SSN] [AWS_KEY] [JWT] [REDACTED] [max depth]",
    ],
)
def test_plain_text_and_numbers_are_not_masked(text: str) -> None:
    assert sanitize(text) == text


def test_numbers_are_never_masked() -> None:
    payload = {"at": 1700000000, "ms": 1700000000123, "card": 4111111111111111, "f": 1.5e15}
    assert sanitize(payload) == payload


def test_keys_are_not_masked() -> None:
    assert sanitize({"bob@example.com": 1}) == {"bob@example.com": 1}


# --------------------------------------------------------------------------------------------
# Conversions


class Colour(enum.Enum):
    RED = "red"
    NESTED = ("a", 1)


class Level(enum.IntEnum):
    HIGH = 3


class Kind(enum.StrEnum):
    AGENT = "agent"


@dataclasses.dataclass
class Actor:
    id: str
    kind: Kind
    joined: dt.date
    email: str = "ann@example.com"


class Model(BaseModel):
    name: str
    at: dt.datetime
    token: str
    tags: list[str]


def test_conversions() -> None:
    when = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    out = sanitize(
        {
            "aware": when,
            "naive": dt.datetime(2024, 5, 1, 12, 0),
            "date": dt.date(2024, 5, 1),
            "time": dt.time(12, 30),
            "id": ident,
            "amount": Decimal("12.3400"),
            "big": Decimal("1E+30"),
            "colour": Colour.RED,
            "nested_enum": Colour.NESTED,
            "level": Level.HIGH,
            "kind": Kind.AGENT,
            "actor": Actor("a1", Kind.AGENT, dt.date(2024, 1, 2)),
            "model": Model(name="m", at=when, token="t0k", tags=["x"]),
            "tuple": (1, 2),
            "set": {"b", "c", "a"},
            "frozen": frozenset({3, 1, 2}),
            "mixed_set": {1, "a"},
        }
    )
    assert out == {
        "aware": "2024-05-01T12:00:00+00:00",
        "naive": "2024-05-01T12:00:00",
        "date": "2024-05-01",
        "time": "12:30:00",
        "id": "12345678-1234-5678-1234-567812345678",
        "amount": "12.3400",
        "big": "1E+30",
        "colour": "red",
        "nested_enum": ["a", 1],
        "level": 3,
        "kind": "agent",
        "actor": {"id": "a1", "kind": "agent", "joined": "2024-01-02", "email": MASK_EMAIL},
        # pydantic's own JSON dump keeps the offset
        "model": {"name": "m", "at": "2024-05-01T14:00:00+02:00", "token": REDACTED, "tags": ["x"]},
        "tuple": [1, 2],
        "set": ["a", "b", "c"],
        "frozen": [1, 2, 3],
        "mixed_set": ["a", 1],  # unsortable: ordered by JSON text
    }
    assert isinstance(out, dict)
    assert type(out["level"]) is int
    assert type(out["kind"]) is str


def test_non_string_keys() -> None:
    out = sanitize({1: "a", 2.5: "b", None: "d", Colour.RED: "e", Level.HIGH: "f"})
    assert out == {"1": "a", "2.5": "b", "null": "d", "red": "e", "3": "f"}
    assert sanitize({True: 1, False: 0}) == {"true": 1, "false": 0}


def test_colliding_keys_are_rejected() -> None:
    with pytest.raises(PayloadRejected, match="both become '1'"):
        sanitize({1: "a", "1": "b"})


def test_unsupported_key_type_is_rejected() -> None:
    with pytest.raises(PayloadRejected, match=r"payload\.a\[\(1, 2\)\]: mapping keys must be"):
        sanitize({"a": {(1, 2): "x"}})


def test_unsupported_object_is_rejected_with_type_and_path() -> None:
    class Foo:
        pass

    with pytest.raises(PayloadRejected) as info:
        sanitize({"items": [1, 2, 3, Foo()]})
    message = str(info.value)
    assert message.startswith("payload.items[3]: cannot represent object of type ")
    assert "Foo" in message
    with pytest.raises(PayloadRejected, match=r"^metadata\[\"odd key\"\]: "):
        sanitize({"odd key": object()}, what="metadata")


def test_bytes_are_rejected() -> None:
    with pytest.raises(PayloadRejected, match=r"payload\.blob: cannot store bytes.*base64"):
        sanitize({"blob": b"\x00\x01"})


def test_bytes_under_a_secret_key_are_just_redacted() -> None:
    assert sanitize({"private_key": b"\x00"}) == {"private_key": REDACTED}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_rejected(bad: float) -> None:
    with pytest.raises(PayloadRejected, match=r"payload\.x\[1\]: float .* is not valid JSON"):
        sanitize({"x": [1.0, bad]})


def test_payload_rejected_is_a_validation_error() -> None:
    assert issubclass(PayloadRejected, ValidationError)


# --------------------------------------------------------------------------------------------
# Cycles, depth, size, strings


def test_cyclic_dict_is_rejected() -> None:
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    with pytest.raises(PayloadRejected, match=r"payload\.self: cyclic reference"):
        sanitize(d)


def test_cyclic_list_is_rejected() -> None:
    lst: list[Any] = [1]
    lst.append({"back": lst})
    with pytest.raises(PayloadRejected, match=r"payload\[1\]\.back: cyclic reference"):
        sanitize(lst)


def test_cyclic_dataclass_is_rejected() -> None:
    @dataclasses.dataclass
    class Node:
        next: Any = None

    node = Node()
    node.next = node
    with pytest.raises(PayloadRejected, match="cyclic reference"):
        sanitize({"n": node})


def test_shared_but_acyclic_references_are_fine() -> None:
    shared = {"x": 1}
    assert sanitize({"a": shared, "b": [shared, shared]}) == {
        "a": {"x": 1},
        "b": [{"x": 1}, {"x": 1}],
    }


def test_very_deep_nesting_is_rejected_not_recursion_error() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"d": deep}
    with pytest.raises(PayloadRejected) as info:
        sanitize(deep)
    message = str(info.value)
    # The path of the first container over the limit, the limit, the level and what to do.
    assert message.startswith("payload" + ".d" * DEFAULT_POLICY.max_depth + ": ")
    assert "nesting level 9 is over the limit of 8 levels" in message
    assert "COWORK_EVENT_MAX_DEPTH" in message
    assert "truncate=True" in message


def test_very_deep_nesting_is_cut_when_truncation_is_asked_for() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"d": deep}
    result = sanitize_object_encoded(deep, policy=TRUNCATE)
    out: JsonValue = result.value
    assert _depth(out) == DEFAULT_POLICY.max_depth
    inner = out
    for _ in range(DEFAULT_POLICY.max_depth - 1):
        assert isinstance(inner, dict)
        inner = inner["d"]
    assert inner == {"d": MAX_DEPTH_MARKER}
    assert result.truncated == ("payload" + ".d" * DEFAULT_POLICY.max_depth,)
    assert sanitize(out, policy=TRUNCATE) == out


def test_depth_counts_from_the_top_level() -> None:
    policy = SanitizePolicy(max_depth=2)
    assert sanitize({"a": {"b": 1}}, policy=policy) == {"a": {"b": 1}}
    with pytest.raises(PayloadRejected, match=r"^payload\.a\.b: a container at nesting level 3"):
        sanitize({"a": {"b": {"c": 1}}}, policy=policy)
    with pytest.raises(PayloadRejected, match=r"^payload\[0\]\[0\]: .* level 3 .* limit of 2"):
        sanitize([[[1]], 2], policy=policy)
    cut = SanitizePolicy(max_depth=2, truncate=True)
    assert sanitize({"a": {"b": {"c": 1}}}, policy=cut) == {"a": {"b": MAX_DEPTH_MARKER}}
    assert sanitize([[[1]], 2], policy=cut) == [[MAX_DEPTH_MARKER], 2]


@pytest.mark.parametrize(
    "inner",
    [
        frozenset({"x"}),
        ("x",),
        Model(name="n", at=dt.datetime(2024, 1, 1), token="t", tags=[]),
        Actor("a1", Kind.AGENT, dt.date(2024, 1, 2)),
    ],
    ids=["set", "tuple", "model", "dataclass"],
)
def test_every_kind_of_container_counts_for_depth(inner: Any) -> None:
    with pytest.raises(PayloadRejected, match=r"^payload\.c: .* level 2 is over the limit of 1"):
        sanitize({"c": inner}, policy=SanitizePolicy(max_depth=1))
    result = sanitize_object_encoded(
        {"c": inner}, policy=SanitizePolicy(max_depth=1, truncate=True)
    )
    assert result.value == {"c": MAX_DEPTH_MARKER}
    assert result.truncated == ("payload.c",)


def test_a_long_string_is_rejected_naming_path_limit_and_size() -> None:
    text = "x" * (100 * 1024)
    with pytest.raises(PayloadRejected) as info:
        sanitize({"items": [{}, {}, {}, {"text": text}]})
    message = str(info.value)
    assert message.startswith("payload.items[3].text: ")
    assert "a string of 102400 characters is over the limit of 4096 characters" in message
    assert "COWORK_EVENT_MAX_STRING_LENGTH" in message  # how to raise it
    assert "truncate=True" in message  # or how to ask for truncation
    assert "xxxx" not in message  # never the value
    with pytest.raises(PayloadRejected, match=r"^metadata\.note: a string of 4097 characters"):
        sanitize({"note": "y" * 4097}, what="metadata")
    with pytest.raises(PayloadRejected, match=r"^payload: a string of 5000 characters"):
        sanitize("z" * 5000)


def test_a_string_at_the_limit_is_kept_whole() -> None:
    text = "x" * DEFAULT_POLICY.max_string
    assert sanitize({"text": text}) == {"text": text}


def test_the_string_limit_counts_what_is_stored_after_masking() -> None:
    # 800 six-character addresses become 800 seven-character markers: 5600 characters, not
    # 5600 - 800; the stored text is what must fit (so that sanitising again changes nothing).
    policy = SanitizePolicy(max_string=5000)
    text = " ".join(["a@b.cc"] * 800)
    assert len(text) < 5600
    with pytest.raises(PayloadRejected, match="a string of 6399 characters"):
        sanitize(text, policy=policy)


def test_a_secret_over_the_limit_is_redacted_not_rejected() -> None:
    assert sanitize({"token": "t" * 10_000}) == {"token": REDACTED}


def test_long_strings_are_truncated_only_when_asked_and_the_paths_are_reported() -> None:
    payload = {"text": "x" * 10_000, "items": [1, {"odd key": "y" * 5000}], "short": "ok"}
    result = sanitize_object_encoded(payload, policy=TRUNCATE)
    assert isinstance(result, Sanitized)
    text = result.value["text"]
    assert isinstance(text, str)
    assert len(text) == DEFAULT_POLICY.max_string
    assert text.endswith(TRUNCATION_SUFFIX)
    assert text.startswith("x" * 100)
    assert result.value["short"] == "ok"
    assert result.truncated == ("payload.text", 'payload.items[1]["odd key"]')
    assert json.loads(result.text) == result.value
    again = sanitize_object_encoded(result.value, policy=TRUNCATE)
    assert again.value == result.value
    assert again.truncated == ()  # nothing left to cut
    with pytest.raises(PayloadRejected, match=r"^payload\.text: a string of 10000 characters"):
        sanitize_object_encoded(payload)  # the default policy rejects


def test_truncation_of_a_top_level_string() -> None:
    out = sanitize("z" * 5000, policy=TRUNCATE)
    assert isinstance(out, str) and len(out) == DEFAULT_POLICY.max_string


def test_truncating_keeps_the_byte_limit() -> None:
    policy = SanitizePolicy(max_bytes=1000, truncate=True)
    with pytest.raises(PayloadRejected, match="over the limit of 1000 bytes"):
        sanitize({f"k{i}": "x" * 100 for i in range(20)}, policy=policy)


def test_record_truncation_lists_paths_in_metadata() -> None:
    metadata = sanitize_object_encoded({"by": "agent-1"}, what="metadata")
    marked = record_truncation(metadata, ["payload.text", "metadata.note"])
    assert marked.value == {"by": "agent-1", TRUNCATED_KEY: ["payload.text", "metadata.note"]}
    assert json.loads(marked.text) == marked.value
    assert record_truncation(metadata, []) is metadata
    # A list already there (an event read back and published again) is extended, not lost.
    again = record_truncation(
        sanitize_object_encoded(marked.value, what="metadata"), ["payload.text", "payload.b"]
    )
    assert again.value[TRUNCATED_KEY] == ["payload.text", "metadata.note", "payload.b"]


@pytest.mark.parametrize("taken", ["yes", None, 3, ["ok", 1], {"a": 1}])
def test_record_truncation_refuses_to_overwrite_other_metadata(taken: Any) -> None:
    metadata = sanitize_object_encoded({TRUNCATED_KEY: taken}, what="metadata")
    with pytest.raises(PayloadRejected, match=r"^metadata\.truncated: this key is reserved"):
        record_truncation(metadata, ["payload.text"])


def test_record_truncation_keeps_the_byte_limit() -> None:
    policy = SanitizePolicy(max_bytes=64)
    metadata = sanitize_object_encoded({"a": "x" * 40}, policy=policy, what="metadata")
    with pytest.raises(PayloadRejected, match="^metadata is .* over the limit of 64 bytes"):
        record_truncation(metadata, ["payload.some.long.path"], policy=policy)


def test_large_payload_is_rejected_with_clear_message() -> None:
    payload = {"chunks": ["y" * 1000 for _ in range(100)]}  # ~100 KiB
    with pytest.raises(PayloadRejected) as info:
        sanitize(payload)
    message = str(info.value)
    assert "over the limit of 65536 bytes" in message
    assert "COWORK_EVENT_MAX_BYTES" in message
    assert "blackboard artifact" in message
    assert "payload is 10" in message  # the actual size, about 100 KB


def test_size_cap_is_configurable() -> None:
    policy = SanitizePolicy(max_bytes=100)
    sanitize({"a": "x" * 50}, policy=policy)
    with pytest.raises(PayloadRejected, match="over the limit of 100 bytes"):
        sanitize({"a": "x" * 100}, policy=policy)


def test_lone_surrogates_and_nul() -> None:
    out = sanitize({"s": "a\ud800b", "pair": "\ud83d\ude00", "nul": "a\x00b", "k\x00ey\udc00": 1})
    assert out == {"s": "a\ufffdb", "pair": "😀", "nul": "ab", "key\ufffd": 1}
    json.dumps(out, ensure_ascii=False).encode("utf-8")


def test_nul_removal_then_masking() -> None:
    assert sanitize("bob@exa\x00mple.com") == MASK_EMAIL


def test_encoded_size() -> None:
    assert encoded_size({"a": [1, "é"]}) == len('{"a":[1,"é"]}'.encode())


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        SanitizePolicy(max_depth=0)
    with pytest.raises(ValueError, match="max_string"):
        SanitizePolicy(max_string=5)
    with pytest.raises(ValueError, match="truncate"):
        SanitizePolicy(truncate=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# sanitize_object


def test_sanitize_object() -> None:
    assert sanitize_object(None) == {}
    assert sanitize_object({"a": 1}) == {"a": 1}
    assert sanitize_object(Model(name="n", at=dt.datetime(2024, 1, 1), token="x", tags=[]))[
        "token"
    ] == (REDACTED)
    with pytest.raises(PayloadRejected, match="metadata must be a JSON object"):
        sanitize_object([1, 2], what="metadata")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Speed (loose bound: the target is well under 100 µs; this only catches pathologies)


def _typical_payload() -> dict[str, Any]:
    return {
        "workspaceId": "ws_01HX5Z8Q4B8Y9V2N3M4K5J6H7G",
        "artifactKey": "design/notes.md",
        "version": 3,
        "actor": {"id": "agent-42", "kind": "agent", "name": "Planner"},
        "tags": ["alpha", "beta", "gamma"],
        "summary": "Updated the design notes with the retry policy and backoff schedule. " * 6,
        "items": [
            {"id": i, "title": f"Step {i}: do the thing", "done": i % 2 == 0, "score": 0.5 * i}
            for i in range(12)
        ],
        "at": "2024-05-01T12:00:00Z",
        "count": 1700000000,
    }


def test_typical_payload_is_fast() -> None:
    payload = _typical_payload()
    assert 1200 < encoded_size(sanitize(payload)) < 2500
    rounds = 300
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            sanitize(payload)
        best = min(best, (time.perf_counter() - start) / rounds)
    assert best < 1e-3, f"{best * 1e6:.0f} µs per payload"


@pytest.mark.parametrize(
    "text",
    ["a@" * 20000, "a." * 30000 + "@", "1 " * 30000, "eyJa." * 10000, "a@" + "b." * 30000],
)
def test_adversarial_strings_are_not_slow(text: str) -> None:
    policy = SanitizePolicy(max_string=1 << 20, max_bytes=1 << 24)
    start = time.perf_counter()
    with contextlib.suppress(PayloadRejected):  # a chain masking cannot settle is refused
        sanitize(text, policy=policy)
    assert time.perf_counter() - start < 0.5


def test_text_that_masking_cannot_settle_is_rejected_not_replaced() -> None:
    # Every round masks the last two segments and exposes the next pair as a new match. This
    # used to become "[unrepresentable]" without a word.
    chain = "eyJa." * 40
    with pytest.raises(PayloadRejected) as info:
        sanitize({"note": chain})
    message = str(info.value)
    assert message.startswith("payload.note: this text keeps exposing new matches")
    assert "eyJa" not in message
    result = sanitize_object_encoded({"note": chain}, policy=TRUNCATE)
    assert result.value == {"note": "[unrepresentable]"}
    assert result.truncated == ("payload.note",)


# --------------------------------------------------------------------------------------------
# Properties

_interesting_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "bob@example.com",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "1700000000",
            "1700000000123",
            "123-45-6789",
            "AKIAIOSFODNN7EXAMPLE",
            JWT,
            "a\ud800",
            "\x00",
            "…[truncated]",
            "[EMAIL]",
        ]
    ),
    st.lists(
        st.one_of(
            st.sampled_from(["@", ".", "-", " ", "a", "x.y", "com", "AKIA", "eyJ", "\x00"]),
            st.from_regex(r"[0-9]{1,19}", fullmatch=True),
            st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=1),
        ),
        max_size=30,
    ).map("".join),
    st.integers(min_value=0, max_value=200).map(lambda n: "4111 1111 1111 1111 " * n),
)

_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["password", "apiKey", "token_count", "email", "author", "Set-Cookie"]),
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    _interesting_text,
)

_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(_keys, children, max_size=5),
        st.tuples(children, children),
    ),
    max_leaves=40,
)

_SMALL = SanitizePolicy(max_bytes=2048, max_string=64, max_depth=4)


def _depth(value: JsonValue) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _strings(value: JsonValue) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check(value: Any, policy: SanitizePolicy) -> None:
    try:
        out = sanitize(value, policy=policy)
    except PayloadRejected as exc:
        message = str(exc)
        assert (
            "is not valid JSON" in message
            or "over the limit of" in message
            or "both become" in message
            or "cannot be masked to a stable result" in message
        )
        return
    _assert_bounded(out, policy)
    assert sanitize(out, policy=policy) == out


def _assert_bounded(out: JsonValue, policy: SanitizePolicy) -> None:
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text) == out
    assert encoded_size(out) <= policy.max_bytes
    assert _depth(out) <= policy.max_depth
    assert all(len(s) <= policy.max_string for s in _strings(out))
    assert "\x00" not in text


def _check_truncating(value: dict[str, Any], policy: SanitizePolicy) -> None:
    """Truncation changes a value exactly when the default (rejecting) policy refuses it for
    a limit, and then names at least one path; what it cannot fix is still rejected."""
    cut = dataclasses.replace(policy, truncate=True)
    try:
        result = sanitize_object_encoded(value, policy=cut)
    except PayloadRejected as exc:
        message = str(exc)
        assert (
            "is not valid JSON" in message
            or "both become" in message
            or re.search(r"over the limit of \d+ bytes", message)
        ), message
        return
    _assert_bounded(result.value, cut)
    assert sanitize_object_encoded(result.value, policy=cut) == Sanitized(
        value=result.value, text=result.text
    )
    try:
        strict = sanitize_object(value, policy=policy)
    except PayloadRejected as exc:
        reason = str(exc)
        assert "over the limit of" in reason or "stable result" in reason
        assert result.truncated
    else:
        assert result.truncated == ()
        assert strict == result.value


@settings(max_examples=300, deadline=None)
@given(_values)
def test_property_output_is_bounded_json_and_idempotent(value: Any) -> None:
    _check(value, DEFAULT_POLICY)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_property_small_caps(value: Any) -> None:
    _check(value, _SMALL)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=4))
def test_property_truncation_only_where_a_limit_is_over_and_named(value: Any) -> None:
    _check_truncating(value, _SMALL)


@settings(max_examples=300, deadline=None)
@given(st.lists(_interesting_text, max_size=8).map(" ".join))
def test_property_text_masking_is_idempotent(text: str) -> None:
    policy = SanitizePolicy(max_string=48, truncate=True)
    once = sanitize(text, policy=policy)
    assert sanitize(once, policy=policy) == once
    assert isinstance(once, str)
    assert len(once) <= 48
    once.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**19))
def test_property_digit_strings_without_card_prefix_are_kept(n: int) -> None:
    text = str(n)
    if text[0] not in "23456":
        assert sanitize(text) == text
