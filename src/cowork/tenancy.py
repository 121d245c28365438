"""Tenant scope and the validation of identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cowork.errors import ValidationError

__all__ = ["MAX_ID_LENGTH", "TenantScope", "validate_id", "validate_limit"]

MAX_ID_LENGTH = 128
# Printable, no whitespace or control characters; safe in logs, URLs and SQL literals.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$")


def validate_id(value: object, what: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    """Return ``value`` if it is a valid identifier, else raise ValidationError naming ``what``."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{what} must not be empty")
    if len(value) > max_length:
        raise ValidationError(f"{what} is {len(value)} characters long; the limit is {max_length}")
    if not _ID.match(value):
        raise ValidationError(
            f"{what} {value[:40]!r} has characters that are not allowed; use letters, digits "
            "and . _ : @ / + = - (starting with a letter or digit)"
        )
    return value


def validate_limit(value: object, *, maximum: int = 10_000, what: str = "limit") -> int:
    """A page size: an integer from 1 to ``maximum`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"{what} must be an integer from 1 to {maximum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TenantScope:
    """Whose data an operation touches: the tenant, and the owner recorded on new rows."""

    tenant_id: str
    owner_id: str

    def __post_init__(self) -> None:
        validate_id(self.tenant_id, "tenant_id")
        validate_id(self.owner_id, "owner_id")
