"""Identifiers: UUIDv7 strings (time-ordered, 74 random bits; never from a clock alone)."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id"]

_CHUNK = 4096  # random bytes drawn from the OS at a time (one system call per 409 ids)
_lock = threading.Lock()
_pool = b""
_used = _CHUNK


def _reset_after_fork() -> None:
    # A forked child must not hand out the bytes its parent will use too.
    global _pool, _used
    _pool, _used = b"", _CHUNK


os.register_at_fork(after_in_child=_reset_after_fork)


def _random80() -> int:
    global _pool, _used
    with _lock:
        if _used + 10 > len(_pool):
            _pool, _used = os.urandom(_CHUNK), 0
        start = _used
        _used = start + 10
        return int.from_bytes(_pool[start : start + 10], "big")


def new_id() -> str:
    """A new RFC 9562 version-7 UUID as text: sortable by creation time, collision-free."""
    millis = time.time_ns() // 1_000_000
    rand = _random80()  # 80 random bits from the OS's generator, 74 used
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & 0x3FFF_FFFF_FFFF_FFFF
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"  # formatted by hand: uuid.UUID would cost twice as much
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
