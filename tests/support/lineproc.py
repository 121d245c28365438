"""A subprocess for multi-process tests: stdout collected line by line, stderr to a file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class LineProcess:
    """A test's subprocess (``python *args``, run from the repository root) whose stdout lines
    are collected as they come."""

    def __init__(
        self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.stderr_path = log_dir / f"{name}.stderr"
        self.stderr_path.touch()
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> LineProcess:
        stderr = os.open(self.stderr_path, os.O_WRONLY | os.O_APPEND)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.args,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        finally:
            os.close(stderr)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr_tail(self) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return "\n".join(text.splitlines()[-30:])

    async def wait_line(
        self, predicate: Callable[[str], bool], timeout: float, *, start: int = 0
    ) -> str:
        """The first stdout line from index ``start`` on that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.lines):
                if predicate(self.lines[index]):
                    return self.lines[index]
                index += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._reader is not None and self._reader.done()):
                raise AssertionError(
                    f"{self.name}: no expected line within {timeout}s; stdout tail "
                    f"{self.lines[-5:]}; stderr:\n{self.stderr_tail()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def ready(self, timeout: float = 20.0) -> None:
        await self.wait_line(lambda line: line.startswith("READY "), timeout)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s; stderr:\n{self.stderr_tail()}"
            ) from None
        if self._reader is not None:
            await self._reader
        return code

    async def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    async def wait_prefix(self, prefix: str, timeout: float) -> str:
        """The first stdout line that starts with ``prefix``."""
        return await self.wait_line(lambda line: line.startswith(prefix), timeout)


class ProcessGroup:
    """A test's subprocesses, logging to one directory; :meth:`kill_all` ends those still
    running (a fixture calls it on the way out)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[LineProcess] = []

    async def start(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> LineProcess:
        proc = await LineProcess(name, args, self.log_dir, env=env).start()
        self.started.append(proc)
        return proc

    async def kill_all(self) -> None:
        for proc in self.started:
            await proc.kill()
