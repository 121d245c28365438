"""TLS settings: certificate verification is on whenever TLS is asked for.

- ``ssl=true`` (a common but non-libpq spelling) becomes ``sslmode=verify-full``;
- ``sslmode=require`` (encrypts but trusts any certificate) is upgraded to ``verify-full``,
  unless ``cowork_tls_verify=false`` says, explicitly, to skip verification;
- a verifying mode without ``sslrootcert`` uses the system's trusted CAs (``sslrootcert=system``).

``sslmode=verify-full`` / ``verify-ca`` given by the user are honoured as they are.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from cowork.errors import ConfigError

__all__ = ["secure_url"]

_TRUE = {"1", "true", "yes", "on", "require"}
_FALSE = {"0", "false", "no", "off", "disable"}
_VERIFYING = {"verify-full", "verify-ca"}


def secure_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query or "@" in parts.query or "@" in parts.fragment:
        # No parameters, or a password with a raw "?" or "#" made the split ambiguous:
        # leave the URL exactly as given (libpq reads it the same way).
        return url
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    ssl = params.pop("ssl", None)
    verify = params.pop("cowork_tls_verify", "true").lower()
    if verify not in _TRUE | _FALSE:
        raise ConfigError("cowork_tls_verify must be true or false")
    if ssl is not None:
        flag = ssl.lower()
        if flag in _TRUE:
            params.setdefault("sslmode", "verify-full")
        elif flag not in _FALSE:
            raise ConfigError(f"ssl must be true or false in the database URL, got {ssl!r}")
    mode = params.get("sslmode")
    if mode == "require" and verify in _TRUE:
        params["sslmode"] = mode = "verify-full"
    if mode in _VERIFYING:
        params.setdefault("sslrootcert", "system")
    query = urlencode(params, safe="/:", quote_via=quote)  # %20, not "+": libpq decodes %XX
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
