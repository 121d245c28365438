"""`import cowork` and the embedded default work with none of the optional extras installed:
no psycopg, no click, no rich. scripts/test.sh builds that environment (.venv-minimal: this
checkout installed without extras) and names its interpreter in COWORK_MINIMAL_PYTHON."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

PYTHON = os.environ.get("COWORK_MINIMAL_PYTHON")

pytestmark = pytest.mark.skipif(
    not PYTHON and os.environ.get("CI") != "true",
    reason="COWORK_MINIMAL_PYTHON is not set (scripts/test.sh sets it)",
)

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.util, sys
    for name in ("psycopg", "psycopg_pool", "click", "rich"):
        assert importlib.util.find_spec(name) is None, f"{name} is installed"
    import cowork
    from cowork.errors import ConfigError

    async def main():
        rt = await cowork.open("memory://", tenant_id="acme")
        try:
            ws = await rt.workspaces.create(name="w", actor="alice")
            await rt.blackboard.put(ws.workspace_id, "plan", {"steps": 1}, actor="alice")
            entry = await rt.blackboard.get(ws.workspace_id, "plan")
            assert entry.payload == {"steps": 1}, entry
        finally:
            await rt.close()
        try:
            await cowork.open("postgresql://127.0.0.1/none", required=True)
        except ConfigError as exc:
            assert "postgres extra" in str(exc), exc
        else:
            raise AssertionError("a PostgreSQL URL opened without psycopg")
        assert "psycopg" not in sys.modules
        print("minimal ok")

    asyncio.run(main())
    """
)


def test_cowork_works_without_psycopg_or_the_cli() -> None:
    assert PYTHON, "under CI=true, scripts/test.sh must build .venv-minimal"
    done = subprocess.run(
        [PYTHON, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("minimal ok")


def test_the_cli_says_which_extra_it_needs() -> None:
    assert PYTHON
    done = subprocess.run(
        [PYTHON, "-m", "cowork", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install 'cowork-foundation[cli]'" in done.stderr
    assert "Traceback" not in done.stderr
