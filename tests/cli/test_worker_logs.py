"""``cowork worker`` logs in plain or JSON form, on the embedded SQLite database.

With ``--log-format json`` every line the worker writes to stderr is one JSON object, so that a
log shipper can parse the stream; with ``plain`` the lines are for people.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.support import ROOT


def _run_worker(sqlite_url: str, tmp_path: Path, log_format: str) -> tuple[int, str]:
    """Start a worker, wait until it served its tenant, SIGTERM it; (exit code, stderr)."""
    stderr_path = tmp_path / f"worker-{log_format}.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "cowork", "--database-url", sqlite_url, "worker"),
                *("--tenant", "t1", "--log-format", log_format, "--log-level", "INFO"),
            ],
            cwd=ROOT,
            env={**os.environ, "HOME": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while "serving tenant t1" not in stderr_path.read_text():
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, stderr_path.read_text()


def test_worker_plain_logs(sqlite_url: str, tmp_path: Path) -> None:
    code, stderr = _run_worker(sqlite_url, tmp_path, "plain")
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "serving tenant t1" in stderr
    assert "stopping" in stderr  # it says that it shuts down gracefully


def test_worker_json_logs_are_one_object_a_line(sqlite_url: str, tmp_path: Path) -> None:
    code, stderr = _run_worker(sqlite_url, tmp_path, "json")
    assert code == 0, stderr
    records, not_json = [], []
    for line in filter(str.strip, stderr.splitlines()):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            not_json.append(line)
    assert not_json == [], "--log-format json wrote lines that are not JSON"
    messages = [r["message"] for r in records]
    assert "serving tenant t1" in messages
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
