"""Subprocesses for the chaos and load tests: start, read stdout lines, kill, measure RSS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rss_kb(pid: int) -> int | None:
    """Resident set size of a live process (``VmRSS`` in /proc), in kB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Proc:
    """One child process run from the project root; stdout lines are collected as they come,
    stderr goes to ``<log_dir>/<name>.stderr``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = [sys.executable, *argv]
        self.env = {**os.environ, **(env or {})}
        self.stderr_path = log_dir / f"{name}.stderr"
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> Proc:
        with self.stderr_path.open("ab") as stderr:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=1 << 24,
            )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid) if self.alive else None

    def stderr_tail(self, lines: int = 30) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def find(self, predicate: Callable[[str], bool]) -> list[str]:
        return [line for line in self.lines if predicate(line)]

    async def wait_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            while index < len(self.lines):
                if self.lines[index].startswith(prefix):
                    return self.lines[index]
                index += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._reader is not None and self._reader.done()):
                code = None if self.proc is None else self.proc.returncode
                raise AssertionError(
                    f"{self.name} (exit {code}): no {prefix!r} line within {timeout}s; stdout "
                    f"tail {self.lines[-5:]}; stderr:\n{self.stderr_tail()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def kill(self) -> None:
        """SIGKILL (no cleanup at all: a crash)."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            await self.proc.wait()

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; the exit code (SIGKILL and AssertionError if it did not exit)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s of SIGTERM; stderr:\n"
                f"{self.stderr_tail()}"
            ) from None
        if self._reader is not None:
            await self._reader
        return code


async def stop_all(procs: Sequence[Proc]) -> None:
    """Best-effort cleanup: SIGKILL whatever still runs."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            await proc.kill()
