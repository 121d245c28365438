"""``cowork demo`` on the embedded SQLite default exits 0, and its output
shows both built-in workflows completed and the instance a new worker resumed; it runs twice on
the same data directory; and the README's first command does all that in a fresh clone.

The demo runs as a real process with ``HOME`` and ``COWORK_DATA_DIR`` inside the test's temporary
directory and no ``COWORK_*`` configuration, so it creates a fresh default SQLite file there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.support import ROOT

PROVISIONING_STEPS = ["created", "member-added", "artifact-updated"]
REVIEW_STEPS = ["created", "feedback-added", "entry-updated"]
DEMO_STEPS = ["render", "publish"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a newcomer: no Cowork settings, no active virtualenv, home in tmp."""
    venv_bins = {str(ROOT / ".venv" / "bin"), str(Path(sys.prefix) / "bin")}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COWORK_")
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "XDG_DATA_HOME", "CI")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and p not in venv_bins
    )
    env["HOME"] = str(tmp_path / "home")
    env["COWORK_DATA_DIR"] = str(tmp_path / "data")
    (tmp_path / "home").mkdir(exist_ok=True)
    env.update(extra)
    return env


@dataclass
class History:
    workflow_id: str
    instance_id: str
    status: str
    rows: list[list[str]]  # seq, kind, step, status

    def steps(self) -> list[str]:
        return [r[2] for r in self.rows if r[1] == "step_completed"]


def histories(out: str) -> list[History]:
    """The tables printed under "7. workflow histories" (titles may wrap on narrow consoles)."""
    section = out.split("7. workflow histories", 1)[1]
    found: list[History] = []
    title: list[str] = []
    rows: list[list[str]] | None = None
    for line in section.splitlines():
        if line.startswith("┏"):
            rows = []
        elif line.startswith("│") and rows is not None:
            rows.append([c.strip() for c in line.strip().strip("│").split("│")])
        elif line.startswith("└") and rows is not None:
            match = re.fullmatch(r"(\S+) (\S+) — (\w+)", " ".join(" ".join(title).split()))
            assert match, f"unexpected history title {title!r}"
            found.append(History(match[1], match[2], match[3], rows))
            title, rows = [], None
        elif rows is None and line.strip() and not line.strip().startswith(("┃", "┡", "─")):
            title.append(line.strip())
    return found


def event_types(out: str) -> list[str]:
    section = out.split("6. the event log", 1)[1].split("7. workflow histories", 1)[0]
    cells = [line.strip().strip("│").split("│") for line in section.splitlines()]
    return [c[1].strip() for c in cells if len(c) >= 3 and c[0].strip().isdigit()]


def squeezed(text: str) -> str:
    """``text`` without any whitespace (rich may fold a long path across lines)."""
    return "".join(text.split())


def check_demo_output(out: str) -> str:
    """Everything the demo must show; returns its tenant."""
    flat = " ".join(out.split())
    tenant = re.search(r"Cowork demo — tenant (\S+)", flat)
    assert tenant, out
    assert re.search(r"database:sqlite:///\S+/cowork\.db\(durable:True\)", squeezed(out)), out
    # The collaboration: a version conflict handled, feedback, a snapshot restored.
    assert "agent-reviewer lost a race" in flat
    assert "opened blocking feedback" in flat
    assert re.search(r"restored: spec is v\d+ with the reviewed content", flat)
    assert "both built-in workflows completed" in flat

    # A worker killed inside a step, a new one resumes the instance.
    killed = re.search(r"worker (\d+) is inside the publish step: SIGKILL", flat)
    replacement = re.search(r"new worker (\d+) started", flat)
    resumed = re.search(
        r"resumed instance (\S+) completed: rendered by (\d+), published by (\d+)", flat
    )
    assert killed and replacement and resumed, out
    assert resumed[3] == replacement[1] != killed[1]
    assert re.search(r"release-notes history: v1 by renderer, v2 by publisher(\s|$)", flat), out
    assert re.search(rf"worker {replacement[1]} stopped on SIGTERM with exit code 0", flat)

    types = event_types(out)
    for expected in (
        "workspace:created",
        "workspace:member:added",
        "blackboard:entry:created",
        "blackboard:entry:updated",
        "feedback:added",
        "snapshot:created",
        "snapshot:restored",
        "workflow:started",
        "workflow:completed",
    ):
        assert expected in types, f"{expected} missing from the event log table"
    assert types.count("workflow:completed") >= 3

    # The histories: both built-ins completed in their step order, and the resumed instance ran
    # each of its steps exactly once.
    tables = histories(out)
    by_workflow: dict[str, list[History]] = {}
    for table in tables:
        by_workflow.setdefault(table.workflow_id, []).append(table)
    [provisioning] = by_workflow["workspace-provisioning"]
    assert provisioning.status == "completed" and provisioning.steps() == PROVISIONING_STEPS
    reviews = [h for h in by_workflow["blackboard-entry-review-publish"] if h.status == "completed"]
    assert len(reviews) == 1 and reviews[0].steps() == REVIEW_STEPS
    [publish] = by_workflow["demo-publish"]
    assert publish.instance_id == resumed[1] and publish.status == "completed"
    assert publish.steps() == DEMO_STEPS
    assert publish.rows[0][1] == "started" and publish.rows[-1][1:] == [
        "completed",
        "",
        "completed",
    ]
    assert [r[0] for r in publish.rows] == [str(n) for n in range(1, len(publish.rows) + 1)]
    for table in (provisioning, reviews[0]):
        assert table.rows[-1][1] == "completed"
    return tenant[1]


def run_demo(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cowork", "demo"],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return result, time.monotonic() - started


def test_demo_on_the_default_sqlite_file_twice(tmp_path: Path) -> None:
    database = tmp_path / "data" / "cowork.db"
    assert not database.exists()

    first, took = run_demo(tmp_path)
    assert first.returncode == 0, f"exit {first.returncode}\n{first.stdout}\n{first.stderr}"
    assert "Traceback" not in first.stderr, first.stderr
    tenant = check_demo_output(first.stdout)
    # The fresh default file, where the README says it is.
    assert f"database:sqlite:///{database}(durable:True)" in squeezed(first.stdout)
    assert database.exists()
    assert took < 60, f"the demo took {took:.0f}s (promised: under a minute)"

    second, _ = run_demo(tmp_path)
    assert second.returncode == 0, f"exit {second.returncode}\n{second.stdout}\n{second.stderr}"
    assert "Traceback" not in second.stderr, second.stderr
    assert check_demo_output(second.stdout) != tenant  # each run gets its own tenant


def readme_first_command() -> str:
    """The first command line of the README's first ```bash block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```(?:bash|sh|shell|console)\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no bash code block"
    lines = [
        line.removeprefix("$ ").strip()
        for line in block[1].splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines, "README.md's first bash block is empty"
    return lines[0]


def test_readme_first_command_runs_the_demo() -> None:
    command = readme_first_command()
    assert "demo" in command, f"the README's first command does not run the demo: {command!r}"


@pytest.mark.slow
def test_readme_first_command_in_a_fresh_clone(tmp_path: Path) -> None:
    """``git clone`` the repository (its committed HEAD), then run the README's first command
    exactly as written; it creates its own ``.venv`` with pip (a minute or two)."""
    command = readme_first_command()
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert not (clone / ".venv").exists()
    database = tmp_path / "data" / "cowork.db"
    env = clean_env(tmp_path)
    # HOME moved into tmp_path: keep the machine's own pip configuration (index, mirrors).
    user_pip_conf = Path.home() / ".config" / "pip" / "pip.conf"
    if "PIP_CONFIG_FILE" not in env and user_pip_conf.is_file():
        env["PIP_CONFIG_FILE"] = str(user_pip_conf)
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"{command!r} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    check_demo_output(result.stdout)
    assert f"database:sqlite:///{database}(durable:True)" in squeezed(result.stdout)
    assert database.exists()
    assert (clone / ".venv" / "bin" / "cowork").exists()
