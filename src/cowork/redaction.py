"""Keeping credentials out of text: URL redaction and scrubbing of known secret values.

The implementation lives beside secret resolution in :mod:`cowork._secrets`; this module is
the name the rest of the package imports.
"""

from __future__ import annotations

from cowork._secrets import redact_url, scrub, url_secrets

__all__ = ["redact_url", "scrub", "url_secrets"]
