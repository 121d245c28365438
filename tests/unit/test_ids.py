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


def _random_bits(text: str) -> str:
    """The 74 random bits' hex digits (the version nibble and variant bits excluded)."""
    hexdigits = text.replace("-", "")
    return hexdigits[13:16] + hexdigits[17:]


def test_a_forked_child_does_not_repeat_its_parents_random_bits() -> None:
    # Random bytes are drawn from the OS in chunks; a child must not reuse the parent's.
    import multiprocessing

    new_id()  # make sure the parent holds a partly used chunk
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        child = pool.apply(_ids, (50,))
    parent = _ids(50)
    assert not {_random_bits(i) for i in child} & {_random_bits(i) for i in parent}


def test_ids_across_many_chunks_stay_unique() -> None:
    ids = {_random_bits(new_id()) for _ in range(5_000)}  # about 12 chunks of OS randomness
    assert len(ids) == 5_000


def _ids(count: int) -> list[str]:
    return [new_id() for _ in range(count)]
