"""The kinds of setting values and how a raw value (text from the environment, a value from a
file or an argument) becomes one: pydantic types with the few rules pydantic does not have.

Booleans are the documented spellings only (``true/false/1/0/yes/no/on/off``, any case); a
boolean is never a number; text is stripped; a blank optional value is unset; key names come
comma-separated or as a list. Bounds are not here: each setting states its own (``Field``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    FiniteFloat,
    SecretStr,
    Strict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode

__all__ = [
    "LOG_LEVELS",
    "Count",
    "Directory",
    "Flag",
    "Format",
    "KeyNames",
    "LogFormat",
    "LogLevel",
    "Seconds",
    "Secret",
    "Text",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LogFormat = Literal["plain", "json"]
_BOOLS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLS |= {"false": False, "0": False, "no": False, "off": False}


def _flag(value: Any) -> Any:
    """The documented spellings of a boolean, in any case; anything else fails (strict)."""
    if isinstance(value, str):
        return _BOOLS.get(value.strip().lower(), value)
    return bool(value) if type(value) is int and value in (0, 1) else value


def _not_bool(kind: Literal["int", "float"]) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, bool):  # pydantic would read True as 1
            raise PydanticCustomError(f"{kind}_type", "a boolean is not a number")
        return value

    return BeforeValidator(check)


def _choice(allowed: tuple[str, ...], normalise: Callable[[str], str]) -> BeforeValidator:
    """One of ``allowed``, compared after ``normalise`` (which gives the stored form)."""

    def check(value: Any) -> Any:
        chosen = normalise(value.strip()) if isinstance(value, str) else None
        if chosen not in allowed:
            raise PydanticCustomError(
                "choice", "must be one of {allowed}", {"allowed": ", ".join(allowed)}
            )
        return chosen

    return BeforeValidator(check)


def _optional_text(value: Any) -> Any:
    """A string, stripped; blank is unset."""
    if isinstance(value, str):
        return value.strip() or None
    if value is None or isinstance(value, SecretStr):
        return value
    raise PydanticCustomError("string_type", "Input should be a valid string")


def _optional_path(value: Any) -> Any:
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    return None if isinstance(text, str) and not text.strip() else text


def _key_names(value: Any) -> tuple[str, ...]:
    """Key names: a comma-separated string or a list of strings; blanks between commas are
    skipped, duplicates dropped."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, set | frozenset):
        items = sorted(items, key=str)
    if not isinstance(items, list | tuple) or not all(isinstance(k, str) for k in items):
        raise PydanticCustomError("keys_type", "must be key names separated by commas, or a list")
    keys = tuple(dict.fromkeys(k.strip() for k in items if k.strip()))
    for key in keys:
        if not key.strip("_-. "):  # compared without _ - . and spaces: nothing left
            message = "is not a key name; use letters or digits"
            raise PydanticCustomError("key_name", message, {"key": key})
    return keys


Text = Annotated[str, Strict(), StringConstraints(strip_whitespace=True)]
Flag = Annotated[bool, Strict(), BeforeValidator(_flag)]
Count = Annotated[int, _not_bool("int")]
Seconds = Annotated[FiniteFloat, _not_bool("float")]
Secret = Annotated[SecretStr | None, BeforeValidator(_optional_text)]
Directory = Annotated[
    Path | None,
    BeforeValidator(_optional_path),
    AfterValidator(lambda p: None if p is None else p.expanduser()),
]
KeyNames = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_key_names)]
LogLevel = Annotated[str, _choice(LOG_LEVELS, str.upper)]
Format = Annotated[LogFormat, _choice(get_args(LogFormat), str.lower)]
