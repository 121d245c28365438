"""Nothing in the repository points at documents it does not contain: the specification and
style notes the project was built from, and the issue tracker, live outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\bissues? #?\d+|\bMISSION\b|\.\./shared|\bSTYLE\.md\b", re.IGNORECASE)


def _shipped_text() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml"]
    files += sorted((ROOT / "docs").glob("*.md"))
    for folder in ("src", "benchmarks", "scripts"):
        files += sorted(
            p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".sql", ".sh", ".md")
        )
    return files


def offenders(text: str) -> list[str]:
    return [m.group(0) for m in OUTSIDE.finditer(text)]


def test_no_reference_to_documents_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {hit}"
        for path in _shipped_text()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for hit in offenders(line)
        # A figure's group in the benchmark report is named after the targets it checks.
        if not (path.name == "common.py" and line.strip() == 'section: str = "mission"')
    ]
    assert found == [], "\n".join(found)


def test_the_check_sees_such_references() -> None:
    assert offenders("see MISSION.md section 4.9") == ["MISSION"]
    assert offenders("(issue 12: agent steps)") == ["issue 12"]
    assert offenders("read ../shared/STYLE.md") == ["../shared", "STYLE.md"]
    assert offenders("the commit-order horizon") == []
