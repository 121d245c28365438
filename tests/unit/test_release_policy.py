"""The production deliverable policy check (docs/PRODUCTION_DELIVERABLE_POLICY.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cowork.release_policy import check_tree

REPO = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path, files: list[str]) -> Path:
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return tmp_path


def test_the_repository_passes() -> None:
    assert check_tree(REPO) == []


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    tree = _tree(tmp_path, ["src/pkg/a.py", "docs/x.md", "tests/test_a.py", "README.md"])
    assert check_tree(tree) == []


def test_build_artifact_log_and_virtualenv_fail(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        ["src/pkg/a.py", "dist/pkg-1.0-py3-none-any.whl", "worker.log", "venv/pyvenv.cfg"],
    )
    found = {(v.path, v.rule) for v in check_tree(tree)}
    assert found == {
        ("dist/pkg-1.0-py3-none-any.whl", "build-artifact"),
        ("worker.log", "log-file"),
        ("venv/pyvenv.cfg", "virtual-environment"),
    }


def test_tracked_files_decide_inside_git(tmp_path: Path) -> None:
    tree = _tree(tmp_path, ["src/a.py", "notes.log"])
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "src/a.py"], check=True)
    assert check_tree(tree) == []  # the untracked log is not part of a release
    subprocess.run(["git", "-C", str(tree), "add", "-f", "notes.log"], check=True)
    assert [v.path for v in check_tree(tree)] == ["notes.log"]


def test_cli_exit_codes(tmp_path: Path) -> None:
    bad = _tree(tmp_path / "bad", ["a.py", "build/lib/a.py"])
    good = _tree(tmp_path / "good", ["a.py"])
    cmd = [sys.executable, "-m", "cowork", "release-check"]
    assert subprocess.run([*cmd, str(good)], capture_output=True, check=False).returncode == 0
    result = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "build/lib/a.py" in result.stdout
