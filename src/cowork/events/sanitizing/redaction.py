"""Redaction by key: which mapping keys are secret, so that their values are stored as
:data:`REDACTED` whatever they were."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cowork.events.sanitizing.policy import SanitizePolicy

__all__ = [
    "REDACTED",
    "SECRET_KEY_NAMES",
    "SECRET_KEY_SUFFIXES",
    "builtin_secret",
    "is_secret_key",
    "normalize_key",
]

REDACTED = "[REDACTED]"

#: Normalised key names whose values are always redacted.
SECRET_KEY_NAMES: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "xapikey",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "bearertoken",
        "clientsecret",
        "authorization",
        "proxyauthorization",
        "auth",
        "cookie",
        "setcookie",
        "privatekey",
        "secretkey",
        "accesskey",
        "secretaccesskey",
        "signingkey",
        "encryptionkey",
        "session",
        "sessionid",
        "sessionkey",
        "credential",
        "credentials",
        "dsn",
        "connectionstring",
    }
)

#: A normalised key ending with one of these is secret (``dbPassword``, ``githubToken``).
SECRET_KEY_SUFFIXES: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "secretkey",
    "secretaccesskey",
    "credential",
    "credentials",
)

_KEY_NORMALISER = str.maketrans("", "", "_-. ")


def normalize_key(key: str) -> str:
    """Lowercase ``key`` and drop ``_``, ``-``, ``.`` and spaces (``"API-Key"`` -> ``"apikey"``)."""
    return key.lower().translate(_KEY_NORMALISER)


@functools.lru_cache(maxsize=4096)
def builtin_secret(key: str) -> bool:
    """Whether ``key`` is secret by the built-in names and suffixes (cached: keys repeat)."""
    norm = normalize_key(key)
    return norm in SECRET_KEY_NAMES or norm.endswith(SECRET_KEY_SUFFIXES)


def is_secret_key(key: str, *, policy: SanitizePolicy | None = None) -> bool:
    """Whether the value stored under ``key`` is redacted (see the module docs for the rules)."""
    if builtin_secret(key):
        return True
    return policy is not None and bool(policy.extra_secret_keys) and policy._is_extra_secret(key)
