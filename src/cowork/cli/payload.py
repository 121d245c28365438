"""JSON arguments given inline, as ``@FILE`` or as ``-`` (standard input).

A large document does not fit in one command-line argument (Linux caps a single argument at
128 KiB), so every command that takes a JSON payload also reads it from a file or a pipe::

    cowork blackboard put W spec @spec.json --actor alice
    generate-spec | cowork blackboard put W spec - --actor alice
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["JSON_PAYLOAD", "JsonPayload"]


class JsonPayload(click.ParamType[Any, Any]):
    """A JSON document: the argument itself, ``@path`` (a UTF-8 file) or ``-`` (stdin)."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default that is already a document
        label = param.human_readable_name if param is not None else "PAYLOAD"
        if value == "-":
            text, where = self._read_stdin(label, param, ctx), f"{label} from standard input"
        elif value.startswith("@"):
            text, where = self._read_file(value[1:], label, param, ctx), f"{label} from {value}"
        else:
            text, where = value, label
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.fail(f"{where} is not JSON: {exc}", param, ctx)

    def _read_stdin(
        self, label: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        try:
            return sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{label} on standard input is not UTF-8 text", param, ctx)

    def _read_file(
        self, path: str, label: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        if not path:
            self.fail(f"{label}: give a file name after @ (@payload.json)", param, ctx)
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            self.fail(f"cannot read {label} from {path}: {exc.strerror or exc}", param, ctx)
        except UnicodeDecodeError:
            self.fail(f"{label} file {path} is not UTF-8 text", param, ctx)


JSON_PAYLOAD = JsonPayload()
