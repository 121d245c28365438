"""A worker's log line for a failed handler names the exception type and its cause
(``KeyError: 'workspaceId'``, not a bare ``'workspaceId'``), for durable consumers and for
workflow actions, in plain and JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import cowork
from cowork import ActionStep, CompleteStep, WorkflowDefinition

TENANT = "t1"
FLOW = WorkflowDefinition(
    workflow_id="keyerror-flow",
    version=1,
    name="An action that raises KeyError",
    steps=(
        ActionStep(name="lookup", action="bad.lookup", max_attempts=1),
        CompleteStep(name="done"),
    ),
)
APP = textwrap.dedent(
    """
    import cowork

    def lookup_handler(event):
        return event.payload["workspaceId"]  # KeyError: the payload has no such key

    async def lookup_action(ctx):
        return {"found": ctx.input["workspaceId"]}  # KeyError too

    async def setup(rt):
        await rt.events.subscribe(
            "order:*", lookup_handler, consumer_id="bad.consumer", max_attempts=1
        )
        rt.workflows.register_action("bad.lookup", lookup_action)
    """
)


async def _provoke(url: str) -> None:
    async with await cowork.open(url, tenant_id=TENANT, worker=False) as rt:
        await rt.workflows.register(FLOW)
        await rt.events.publish("order:placed", {"orderId": "o-1"})
        await rt.workflows.start("keyerror-flow", input={"orderId": "o-1"})


def run_worker(url: str, tmp_path: Path, log_format: str) -> list[str]:
    """Start a worker with the failing app, provoke both failures, wait for their log lines,
    SIGTERM it; the lines it wrote on stderr."""
    (tmp_path / "bad_app.py").write_text(APP, encoding="utf-8")
    log = tmp_path / f"worker-{log_format}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cowork", "--database-url", url, "worker",
             "--tenant", TENANT, "--app", "bad_app:setup", "--log-format", log_format,
             "--log-level", "INFO"],
            cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while f"serving tenant {TENANT}" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        asyncio.run(_provoke(url))
        while not ("bad.consumer" in log.read_text() and "bad.lookup" in log.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5)  # the parking line follows the attempt line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text().splitlines()


def failures(messages: list[str]) -> dict[str, list[str]]:
    return {
        "consumer attempt": [m for m in messages if "consumer 'bad.consumer' failed" in m],
        "consumer parked": [m for m in messages if "consumer 'bad.consumer' parked" in m],
        "action attempt": [m for m in messages if "action 'bad.lookup' failed" in m],
    }


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_handler_failures_name_the_exception(
    sqlite_url: str, tmp_path: Path, log_format: str
) -> None:
    lines = run_worker(sqlite_url, tmp_path, log_format)
    if log_format == "json":
        messages = [json.loads(line)["message"] for line in lines if line.strip()]
    else:
        messages = lines
    for what, found in failures(messages).items():
        assert found, f"no {what} line in:\n" + "\n".join(messages)
        for message in found:
            assert message.endswith(": KeyError: 'workspaceId'"), message
