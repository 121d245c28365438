"""The ``cowork`` command line (the ``cli`` extra: click and rich)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    try:
        from cowork.cli.app import main as run
    except ModuleNotFoundError as exc:
        if exc.name not in ("click", "rich"):
            raise
        sys.stderr.write(
            f"cowork: the command line needs {exc.name}, which is not installed; install the "
            "cli extra: pip install 'cowork-foundation[cli]' (or [all] for PostgreSQL too)\n"
        )
        raise SystemExit(1) from None
    run()
