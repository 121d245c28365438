"""The printed table and ``bench.json``."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .common import Figure


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MiB":
        return f"{value:+.1f} MiB"
    return f"{value:,.0f}/s"


def _pass(figure: Figure) -> str:
    if figure.error is not None:
        return "ERROR"
    passed = figure.passed
    return "info" if passed is None else ("PASS" if passed else "FAIL")


def table(figures: Sequence[Figure]) -> str:
    header = ("figure", "ours", "baseline", "ratio", "target", "result")
    rows: list[tuple[str, ...]] = []
    sections: list[int] = []
    last_section = None
    for f in figures:
        if f.section != last_section:
            if last_section is not None:
                sections.append(len(rows))
            last_section = f.section
        ratio = f.ratio
        rows.append(
            (
                f.label,
                "error" if f.error else _fmt(f.ours, f.unit),
                _fmt(f.baseline, f.unit) + (f" {f.baseline_label}" if f.baseline_label else ""),
                "-" if ratio is None else f"{ratio:.2f}x",
                f.target,
                _pass(f),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {1, 2, 3}

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line(header), rule]
    for index, row in enumerate(rows):
        if index in sections:
            out.append(rule)
        out.append(line(row))
    return "\n".join(out)


def _meminfo_total() -> str | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for entry in f:
                if entry.startswith("MemTotal:"):
                    kib = int(entry.split()[1])
                    return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        return None
    return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for entry in f:
                if entry.startswith("model name"):
                    return entry.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _meminfo_total(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {
            name: _version(name)
            for name in (
                "cowork-foundation",
                "psycopg",
                "psycopg-binary",
                "psycopg-pool",
                "eventsourcing",
                "dbos",
            )
        },
    }


def summary(figures: Sequence[Figure]) -> dict[str, Any]:
    judged = [f for f in figures if f.kind != "info"]
    failed = [f.key for f in judged if f.passed is not True]
    return {
        "judged": len(judged),
        "passed": len(judged) - len(failed),
        "failed": failed,
        "all_passed": not failed,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
