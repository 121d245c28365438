"""Masking inside strings: e-mail addresses, card numbers, US SSNs, AWS access key ids and
JSON web tokens are replaced by markers (``[EMAIL]``, ``[CARD]``, ...)."""

from __future__ import annotations

import re

__all__ = [
    "MASK_AWS_KEY",
    "MASK_CARD",
    "MASK_EMAIL",
    "MASK_JWT",
    "MASK_SSN",
    "MIN_MATCH_LEN",
    "mask",
    "precheck",
]

MASK_EMAIL = "[EMAIL]"
MASK_CARD = "[CARD]"
MASK_SSN = "[SSN]"
MASK_AWS_KEY = "[AWS_KEY]"
MASK_JWT = "[JWT]"

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_JWT_RE = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+(?![A-Za-z0-9_.-])"
)
_AWS_RE = re.compile(r"(?<![A-Za-z0-9])A(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_SSN_RE = re.compile(
    r"(?<![A-Za-z0-9_-])(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![A-Za-z0-9_-])"
)
# A maximal run of digits separated by single spaces or dashes, standing alone.
# A "-" glued to a word on either side (ids like "ab12-3456-...") also disqualifies the run.
_DIGIT_RUN_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?<![A-Za-z0-9_]-)(?<![0-9] )"
    r"[0-9](?:[ -]?[0-9])*+"
    r"(?![A-Za-z_])(?!-[A-Za-z0-9_])"
)
# Cheap pre-checks: both an SSN and a card contain at least three digits in a row, and a
# string matching none of the alternatives of _PRECHECK_RE is left alone by mask.
_DIGITS_PRECHECK_RE = re.compile(r"[0-9]{3}")
_PRECHECK_RE = re.compile(r"@|eyJ|A[KS]IA|[0-9]{3}")
#: ``precheck(s) is None`` when :func:`mask` would leave ``s`` alone (a bound method, so that
#: the walker calls it without an attribute lookup per string).
precheck = _PRECHECK_RE.search
_SEPARATORS = str.maketrans("", "", " -")
#: No pattern can match a string shorter than this ("a@b.cc").
MIN_MATCH_LEN = 6


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_repl(match: re.Match[str]) -> str:
    run = match.group()
    if len(run) < 13:
        return run
    digits = run.translate(_SEPARATORS)
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_ok(digits):
        return MASK_CARD
    return run


def mask(s: str) -> str:
    """``s`` with every match of the patterns replaced by its marker (one round: a mask can
    expose a new match, so the caller repeats until nothing changes)."""
    if "eyJ" in s:
        s = _JWT_RE.sub(MASK_JWT, s)
    if "AKIA" in s or "ASIA" in s:
        s = _AWS_RE.sub(MASK_AWS_KEY, s)
    if "@" in s:
        s = _EMAIL_RE.sub(MASK_EMAIL, s)
    if _DIGITS_PRECHECK_RE.search(s) is not None:
        if "-" in s:
            s = _SSN_RE.sub(MASK_SSN, s)
        s = _DIGIT_RUN_RE.sub(_card_repl, s)
    return s
