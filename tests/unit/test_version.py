"""The version is written once, in pyproject.toml, and read from the installed metadata."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import cowork

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_version_is_the_project_version() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert cowork.__version__ == version("cowork-foundation") == declared["project"]["version"]
    assert "__version__" in cowork.__all__


def test_the_cli_prints_the_same_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cowork", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == f"cowork, version {cowork.__version__}"
