"""The README's first example, run verbatim: its durable consumer prints every ``workspace:*``
event the example committed, although the example leaves ``async with`` (closing the runtime)
right after its last publish — the close lets the consumer handle what was committed first."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import cowork
from cowork.events.patterns import EventPattern

README = Path(__file__).resolve().parents[2] / "README.md"


def first_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert 'consumer_id="indexer"' in blocks[0], "the README's first example moved"
    return str(blocks[0])


def test_the_first_example_prints_every_committed_workspace_event(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(first_example(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COWORK_")}
    env["COWORK_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "current version is 1"
    printed = [tuple(line.split(" ", 2)[:2]) for line in lines[1:]]

    async def committed() -> list[tuple[str, str]]:
        url = f"sqlite:///{tmp_path / 'data' / 'cowork.db'}"
        async with await cowork.open(url, tenant_id="acme", worker=False) as rt:
            events = await rt.events.read(limit=10_000)
        wanted = EventPattern.parse("workspace:*")
        return [(str(e.position), e.event_type) for e in events if wanted.matches(e.event_type)]

    expected = asyncio.run(committed())
    assert len(expected) >= 4  # created, member added, two artifacts
    assert printed == expected
