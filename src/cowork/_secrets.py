"""Secrets in configuration: ``${secret:NAME}`` placeholders, URL redaction and scrubbing.

Redaction errs on the side of hiding too much: when a connection string is ambiguous (a raw,
un-encoded password holding ``/``, ``?``, ``#`` or ``@``), everything that could be the
password is masked, so that no way of writing a URL leaks its password into a log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote

from cowork.errors import ConfigError

__all__ = [
    "MASK",
    "SecretResolver",
    "redact_url",
    "scrub",
    "url_secrets",
]

MASK = "***"
UNPARSEABLE = "<unparseable url>"

_PLACEHOLDER = re.compile(r"\$\{secret:([^}]*)\}")
_SECRET_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_CONNINFO = re.compile(r"\s*[A-Za-z_]\w*\s*=")
_CONNINFO_PASSWORD = re.compile(r"(?i)\b(?:password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'?|\S*)")
_PARAM = re.compile(r"[?&]([^=&?#]*)=")
_NEXT_PARAM = re.compile(r"&[A-Za-z0-9_.\-%]+=")
_SECRET_KEY_WORDS = ("password", "passwd", "secret", "token", "apikey", "credential")
_SECRET_KEYS = frozenset({"pwd", "pass", "authorization"})


def _is_secret_key(key: str) -> bool:
    norm = re.sub(r"[\s_\-.]", "", unquote(key)).lower()
    return norm in _SECRET_KEYS or any(word in norm for word in _SECRET_KEY_WORDS)


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Index ranges of ``url`` that hold secrets (userinfo password, secret query values)."""
    spans: list[tuple[int, int]] = []
    scheme = _SCHEME.match(url)
    if scheme is None and _CONNINFO.match(url):
        # libpq key=value connection string: host=db password=... dbname=...
        return [m.span(1) for m in _CONNINFO_PASSWORD.finditer(url)]
    start = scheme.end() if scheme else 0
    rest = url[start:]
    if "@" in rest:
        auth_end = len(rest)
        for delimiter in "/?#":
            index = rest.find(delimiter)
            if index != -1:
                auth_end = min(auth_end, index)
        # An "@" after the authority is ambiguous (raw "/?#@" in a password, or "@" in the
        # path or query): then mask up to the last "@", so no spelling of a password survives.
        ambiguous = "@" in rest[auth_end:]
        at = rest.rindex("@") if ambiguous else rest.rfind("@", 0, auth_end)
        if at != -1:
            colon = rest.find(":", 0, at)
            if colon != -1:
                spans.append((start + colon + 1, start + at))
    # Secret query parameters, searched in the whole string: a raw "@" or "?" in a value must
    # not hide them. A value runs to the next "&key=" (a raw "&" inside it stays masked).
    for param in _PARAM.finditer(url):
        if _is_secret_key(param.group(1)):
            following = _NEXT_PARAM.search(url, param.end())
            spans.append((param.end(), following.start() if following else len(url)))
    return [(a, b) for a, b in spans if b > a]


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``.

    ``postgresql://u:pw@h/db?sslmode=require&password=x`` becomes
    ``postgresql://u:***@h/db?sslmode=require&password=***``. URLs without a secret come back
    unchanged (``sqlite:///path``, ``memory://``). Never raises: anything that is not a string,
    or cannot be analysed, becomes ``<unparseable url>``.
    """
    if not isinstance(url, str):
        return UNPARSEABLE
    try:
        out: list[str] = []
        last = 0
        for a, b in sorted(_secret_spans(url)):
            if a >= last:
                out.extend((url[last:a], MASK))
            last = max(last, b)  # overlapping spans extend one mask
        out.append(url[last:])
        return "".join(out)
    except Exception:  # redaction must never be the thing that fails
        return UNPARSEABLE


def url_secrets(url: str) -> tuple[str, ...]:
    """Every secret string ``url`` holds, as written and percent-decoded."""
    found: list[str] = []
    try:
        for a, b in _secret_spans(url):
            raw = url[a:b]
            found.extend((raw, unquote(raw)))
    except Exception:  # pragma: no cover - defensive, mirrors redact_url
        return ()
    return tuple(dict.fromkeys(s for s in found if s))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret of 3+ characters in ``text`` with ``***``.

    Longer secrets go first, so that a secret containing another is masked whole.
    """
    known = {s for s in secrets if s and len(s) >= 3}
    # A driver may quote only part of a password that holds URL delimiters ("/", "@", ":",
    # "?", "#", "%", "="): mask those pieces too.
    pieces = {p for s in known for p in _DELIMITERS.split(s) if len(p) >= 3}
    for secret in sorted(known | pieces, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


_DELIMITERS = re.compile(r"[/@:?#%=&;\s]+")


class SecretResolver:
    """Expands ``${secret:NAME}`` placeholders: the provider first, then the environment.

    Every value it substitutes is remembered in :attr:`resolved` so that the configuration can
    report it through ``Settings.secret_values()``. Errors name the placeholder, never a value.
    """

    def __init__(
        self,
        provider: Callable[[str], str | None] | None,
        environ: Mapping[str, str],
    ) -> None:
        self._provider = provider
        self._environ = environ
        self.resolved: list[str] = []

    @staticmethod
    def has_placeholder(value: str) -> bool:
        return _PLACEHOLDER.search(value) is not None

    def expand(self, value: str, where: str) -> str:
        """``value`` with its placeholders replaced; ``where`` names the setting for errors."""
        return _PLACEHOLDER.sub(lambda m: self._lookup(m.group(1), where), value)

    def _lookup(self, name: str, where: str) -> str:
        if not _SECRET_NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: invalid secret placeholder ${{secret:{name}}}; a name is letters, "
                "digits and _ . - /"
            )
        value: str | None = None
        if self._provider is not None:
            try:
                value = self._provider(name)
            except Exception as exc:
                raise ConfigError(
                    f"{where}: the secret provider failed for ${{secret:{name}}} "
                    f"({type(exc).__name__})"
                ) from None
            if value is not None and not isinstance(value, str):
                raise ConfigError(
                    f"{where}: the secret provider returned a {type(value).__name__} for "
                    f"${{secret:{name}}}, expected a string"
                )
        if value is None:
            value = self._environ.get(name)
        if value is None:
            raise ConfigError(
                f"{where}: secret ${{secret:{name}}} could not be resolved (the secret provider "
                f"has no value for it and the environment variable {name} is not set)"
            )
        self.resolved.append(value)
        return value
