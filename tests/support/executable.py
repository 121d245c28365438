"""Run the installed ``cowork`` console script (the virtualenv's, beside this Python) as a user
would: in a chosen directory, with no ``COWORK_*`` variable but those given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COWORK = Path(sys.executable).with_name("cowork")


def run_cowork(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``cowork *args`` in ``cwd``; the default data directory is ``cwd/default-data``."""
    assert COWORK.is_file(), f"no cowork executable beside {sys.executable}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COWORK_")}
    clean |= {"COWORK_DATA_DIR": str(cwd / "default-data"), "NO_COLOR": "1", **env}
    return subprocess.run(
        [str(COWORK), *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )
