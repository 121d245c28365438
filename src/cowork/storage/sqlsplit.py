"""Split a SQL script into statements (for files that run outside a transaction).

Understands single-quoted strings, double-quoted identifiers, dollar-quoted bodies
(``$tag$ … $tag$``), ``--`` line comments and ``/* */`` block comments; a ``;`` inside any of
them does not end a statement. SQLite trigger bodies (``BEGIN … END;``) are handled by the
SQLite adapter with ``sqlite3.complete_statement`` instead.
"""

from __future__ import annotations

import re

__all__ = ["split_statements"]

_DOLLAR_TAG = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\$|\$\$")


def split_statements(script: str) -> list[str]:
    statements: list[str] = []
    start = 0
    i = 0
    n = len(script)
    while i < n:
        ch = script[i]
        if ch == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"":
            i += 1
            while i < n:
                if script[i] == ch:
                    if i + 1 < n and script[i + 1] == ch:  # doubled quote escapes itself
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif ch == "$":
            match = _DOLLAR_TAG.match(script, i)
            if match:
                end = script.find(match.group(0), match.end())
                i = n if end < 0 else end + len(match.group(0))
            else:
                i += 1
        elif ch == ";":
            statement = script[start:i].strip()
            if _has_code(statement):
                statements.append(statement)
            i += 1
            start = i
        else:
            i += 1
    tail = script[start:].strip()
    if _has_code(tail):
        statements.append(tail)
    return statements


def _has_code(statement: str) -> bool:
    for line in statement.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return True
    return False
