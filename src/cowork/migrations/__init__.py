"""Forward-only, checksummed schema migrations."""

from cowork.migrations.runner import (
    MigrationFile,
    MigrationReport,
    checksum,
    discover,
    migrate,
    plan,
)

__all__ = ["MigrationFile", "MigrationReport", "checksum", "discover", "migrate", "plan"]
