"""Identifiers are RFC 9562 UUIDv7 text: valid, unique, ordered by creation time."""

from __future__ import annotations

import time
import uuid

from cowork.ids import new_id


def test_new_id_is_a_canonical_version_7_uuid() -> None:
    text = new_id()
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_do_not_collide_and_follow_the_clock() -> None:
    first = new_id()
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    time.sleep(0.002)
    later = new_id()
    assert first[:13] <= later[:13]  # the 48-bit millisecond prefix never goes back
    assert later > first
