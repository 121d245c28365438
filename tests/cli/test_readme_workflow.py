"""The README's workflow example runs verbatim: its worker module under
``cowork worker --app my_agents:setup`` started from the module's directory, and its client
script beside it, on both backends."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def readme_block(first_line: str) -> str:
    """The README's ```python block whose first line is ``first_line``, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if b.splitlines()[0].startswith(first_line)]
    assert len(found) == 1, f"the README has {len(found)} blocks starting {first_line!r}"
    return found[0]


def test_the_readme_shows_the_commands_it_is_run_with() -> None:
    text = README.read_text(encoding="utf-8")
    assert "cowork worker --app my_agents:setup" in text
    assert "python request_notes.py" in text


async def test_the_readme_worker_module_and_client_run_verbatim(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "my_agents.py").write_text(readme_block("# my_agents.py"), encoding="utf-8")
    (tmp_path / "request_notes.py").write_text(readme_block("# request_notes.py"), encoding="utf-8")
    env = {
        **os.environ,
        "COWORK_DATABASE_URL": database_url,
        "PYTHONPATH": "",  # my_agents is found because the worker runs in its directory
    }
    env.pop("COWORK_TENANT_ID", None)
    stderr_path = tmp_path / "worker.stderr"
    with stderr_path.open("wb") as stderr:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cowork",
            "worker",
            "--app",
            "my_agents:setup",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while "worker ready" not in stderr_path.read_text(errors="replace"):
            assert worker.returncode is None, stderr_path.read_text(errors="replace")
            assert asyncio.get_running_loop().time() < deadline, "the worker never got ready"
            await asyncio.sleep(0.1)
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "request_notes.py",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(client.communicate(), 120)
        assert client.returncode == 0, err.decode(errors="replace")
    finally:
        if worker.returncode is None:
            worker.terminate()
        await asyncio.wait_for(worker.wait(), 30)
    printed = out.decode().strip()
    expected = "completed {'chars': 22, 'storedVersion': 1} Release notes for v1.0"
    assert printed == expected
    # The README says what the run prints.
    assert f"python request_notes.py                 # {expected}" in README.read_text(
        encoding="utf-8"
    )
    assert worker.returncode == 0, stderr_path.read_text(errors="replace")


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both processes share the database: a PostgreSQL clone or a SQLite file."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'readme.db'}"
